"""Time the outbox sender: N e-mails enqueued, then sent to a local aiosmtpd by one or two
senders (the worker threads the service runs), until every row is ``sent``.

    .venv/bin/python bench/notify_delivery.py [--messages 2000] [--postgres] [--senders 1|2]

Without --postgres: a SQLite file in a temporary folder; with it a private PostgreSQL
(tests/servers.py). Prints messages per second and how the rows were shared.
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from schoolmon.collector.notify import outbox  # noqa: E402
from schoolmon.collector.notify.channels.mail import EmailChannel  # noqa: E402
from schoolmon.collector.notify.delivery import Sender, Workers  # noqa: E402
from schoolmon.collector.store import schema as db  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from tests.collector.notify.receivers import SmtpServer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--postgres", action="store_true")
    ap.add_argument("--senders", type=int, default=1)
    args = ap.parse_args()
    pg = None
    tmp = tempfile.mkdtemp(prefix="schoolmon-bench-notify-")
    if args.postgres:
        from tests.servers import Postgres
        pg = Postgres()
        url = pg.url
    else:
        url = "sqlite:///%s/state.db" % tmp
    smtp = SmtpServer()
    engine = db.make_engine(url)
    try:
        db.create_all(engine)
        now = time.time()
        t0 = time.perf_counter()
        with engine.begin() as conn:
            for i in range(args.messages):
                outbox.enqueue(conn, outbox.Message(
                    "bench:%d" % i, "email", "kythuat%d@truong.edu.vn" % i,
                    "[Cảnh báo] Trường TH số %d mất kết nối" % i,
                    "Trường Tiểu học số %d: mọi thiết bị mất kết nối từ 10:00." % i), now)
        enq = time.perf_counter() - t0
        channel = EmailChannel(smtp.url, "canhbao@laocai.edu.vn", 15)
        workers = [Workers(Sender(engine, {"email": channel}, name="bench-%d" % k),
                           interval=0.05) for k in range(args.senders)]
        t0 = time.perf_counter()
        for w in workers:
            w.start()

        def sent() -> int:
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).where(
                    db.notifications.c.state == "sent")).scalar_one())

        while sent() < args.messages:
            time.sleep(0.05)
        took = time.perf_counter() - t0
        for w in workers:
            w.stop()
        with engine.connect() as conn:
            shares = conn.execute(select(func.count()).where(
                db.notifications.c.attempts != 1)).scalar_one()
        print("%s, %d sender(s): enqueue %d in %.2f s; sent %d e-mails in %.2f s = %.0f/s; "
              "received %d; rows with more than one attempt: %d"
              % ("PostgreSQL" if pg else "SQLite", args.senders, args.messages, enq,
                 args.messages, took, args.messages / took, len(smtp.received), shares))
    finally:
        engine.dispose()
        smtp.stop()
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    main()
