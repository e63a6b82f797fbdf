"""The outbox's sender on real SQLite and PostgreSQL, with a controllable clock (``now``
passed in): retries by the documented backoff, dead after N attempts, a restart (a new
sender) and a clock jump never re-send a sent row, a crashed sender's claim is taken
over, two senders on PostgreSQL never both send one row, channel health and metrics,
delivery_status, and the channels' worker threads: a hanging webhook delays neither
e-mail nor ingest."""
import threading

import pytest
from schoolmon.collector.metrics import IngestMetrics, Registry
from schoolmon.collector.notify import outbox
from schoolmon.collector.notify.channels import DeliveryError
from schoolmon.collector.notify.channels.mail import EmailChannel
from schoolmon.collector.notify.channels.webhook import WebhookChannel
from schoolmon.collector.notify.delivery import BACKOFF, Sender, Workers, backoff, health_key
from schoolmon.collector.notify.status import delivery_status
from schoolmon.collector.store import schema as db
from sqlalchemy import select

from tests.collector.helpers import wait_until
from tests.collector.storehelp import engine_for

T0 = 1_796_180_400.0  # 2026-12-02T03:00:00Z, 10:00 in Hà Nội


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    for e in engine_for(request.param, tmp_path, postgres):
        db.create_all(e)
        yield e


class FakeChannel:
    """Records what it was asked to send; fails while ``failing`` is set (a unit-test fake:
    the boundary under test here is the database)."""

    def __init__(self, name="email"):
        self.name = name
        self.sent = []
        self.failing = None
        self.lock = threading.Lock()

    def send(self, message):
        if self.failing is not None:
            raise self.failing
        with self.lock:
            self.sent.append(message.dedup_key)


def put(engine, key, channel="email", recipient="a@x.vn", now=T0):
    with engine.begin() as conn:
        assert outbox.enqueue(conn, outbox.Message(
            dedup_key=key, channel=channel, recipient=recipient,
            subject="Cảnh báo", body="Trường mất kết nối"), now)
        return conn.execute(select(db.notifications.c.id).where(
            db.notifications.c.dedup_key == key)).scalar_one()


def row(engine, row_id):
    with engine.connect() as conn:
        return conn.execute(select(db.notifications).where(
            db.notifications.c.id == row_id)).one()


def health(engine, channel):
    with engine.connect() as conn:
        return conn.execute(select(db.attt_state.c.value).where(
            db.attt_state.c.key == health_key(channel))).scalar_one()


def test_backoff_is_the_documented_schedule():
    assert [backoff(n) for n in range(1, 8)] == [30, 120, 600, 1800, 3600, 3600, 3600]
    assert BACKOFF[-1] == 3600


def test_sent_once_and_never_again_after_a_restart_or_a_clock_jump(engine):
    ch = FakeChannel()
    metrics = IngestMetrics(Registry())
    rid = put(engine, "a1")
    stats = Sender(engine, {"email": ch}, metrics=metrics).run_once(T0)
    assert [a.result for a in stats.attempts] == ["sent"]
    r = row(engine, rid)
    assert (r.state, r.attempts, r.sent_at, r.last_error) == ("sent", 1, T0, None)
    # a new sender (a restart), the clock far ahead, then back before the row was made
    for now in (T0 + 86400 * 30, T0 - 86400, T0 + 1):
        assert Sender(engine, {"email": ch}).run_once(now).attempts == []
    assert ch.sent == ["a1"]
    # enqueueing the same message again records nothing new
    with engine.begin() as conn:
        assert not outbox.enqueue(conn, outbox.Message("a1", "email", "a@x.vn", "s", "b"), T0)
    assert metrics.notifications.get(channel="email", result="sent") == 1
    assert metrics.notify_queue.get(state="queued") == 0


def test_failures_retry_by_backoff_then_dead_after_max_attempts(engine):
    ch = FakeChannel()
    ch.failing = DeliveryError("unreachable", "SMTP 127.0.0.1:25: Connection refused")
    metrics = IngestMetrics(Registry())
    sender = Sender(engine, {"email": ch}, max_attempts=4, metrics=metrics)
    rid = put(engine, "r1")
    now = T0
    for attempt in range(1, 4):
        [a] = sender.run_once(now).attempts
        assert a.result == "failed" and a.retry_at == now + backoff(attempt)
        r = row(engine, rid)
        assert (r.state, r.attempts) == ("failed", attempt)
        assert r.last_error == "unreachable: SMTP 127.0.0.1:25: Connection refused"
        # not due a second before the backoff ends
        assert sender.run_once(a.retry_at - 1).attempts == []
        now = a.retry_at
    [a] = sender.run_once(now).attempts
    assert a.result == "dead"
    assert row(engine, rid).state == "dead"
    assert sender.run_once(now + 86400).attempts == []
    assert metrics.notifications.get(channel="email", result="failed") == 3
    assert metrics.notifications.get(channel="email", result="dead") == 1
    assert metrics.notify_queue.get(state="dead") == 1
    h = health(engine, "email")
    assert h["ok"] is False and h["since"] == T0 and h["last_attempt"] == now
    assert h["error"].startswith("unreachable:")
    # the channel recovers: health turns ok with a new since; requeue_dead brings it back
    ch.failing = None
    with engine.begin() as conn:
        assert outbox.requeue_dead(conn, now + 100) == 1
    [a] = sender.run_once(now + 100).attempts
    assert a.result == "sent" and ch.sent == ["r1"]
    h = health(engine, "email")
    assert h == {"ok": True, "since": now + 100, "error": None, "last_attempt": now + 100}


def test_a_permanent_refusal_is_dead_at_once(engine):
    ch = FakeChannel()
    ch.failing = DeliveryError("refused", "550 5.1.1 mailbox unavailable", permanent=True)
    rid = put(engine, "p1")
    [a] = Sender(engine, {"email": ch}).run_once(T0).attempts
    assert a.result == "dead" and row(engine, rid).attempts == 1


def test_one_failing_recipient_does_not_hold_back_the_others(engine):
    class Picky(FakeChannel):
        def send(self, message):
            if message.recipient == "bad@x.vn":
                raise DeliveryError("refused", "550 no such user", permanent=True)
            super().send(message)

    ch = Picky()
    put(engine, "m-bad", recipient="bad@x.vn")
    put(engine, "m-good", recipient="good@x.vn")
    stats = Sender(engine, {"email": ch}).run_once(T0)
    assert sorted(a.result for a in stats.attempts) == ["dead", "sent"]
    assert ch.sent == ["m-good"]


def test_a_crashed_senders_claim_is_taken_over_after_claimed_until(engine):
    rid = put(engine, "c1")
    with engine.begin() as conn:
        held = outbox.claim(conn, rid, "crashed-collector", T0, 300)
    assert held is not None and held.attempts == 1
    ch = FakeChannel()
    sender = Sender(engine, {"email": ch}, claim_seconds=300)
    assert sender.run_once(T0 + 299).attempts == []  # still held
    [a] = sender.run_once(T0 + 301).attempts
    assert a.result == "sent" and row(engine, rid).attempts == 2
    # the crashed sender comes back and tries to record its outcome: refused
    with engine.begin() as conn:
        assert not outbox.finish(conn, held, T0 + 302, "crashed: late")
    assert row(engine, rid).state == "sent"


def test_a_channel_that_raises_anything_fails_only_its_message(engine):
    class Broken(FakeChannel):
        def send(self, message):
            raise RuntimeError("bug in a plugin")

    put(engine, "b1")
    [a] = Sender(engine, {"email": Broken()}).run_once(T0).attempts
    assert a.result == "failed" and a.error == "crashed: RuntimeError"


def test_a_sender_looks_only_at_the_channels_it_has(engine):
    put(engine, "z1", channel="zalo", recipient="chat-1")
    [a] = Sender(engine, {"zalo": FakeChannel("zalo")}, max_attempts=1).run_once(T0).attempts
    assert a.result == "sent"
    put(engine, "z2", channel="zalo", recipient="chat-1")
    # a sender built without that channel never looks at its rows
    assert Sender(engine, {"email": FakeChannel()}).run_once(T0).attempts == []


def test_delivery_status_per_channel(engine):
    ch = FakeChannel()
    put(engine, "s1")
    Sender(engine, {"email": ch}).run_once(T0)
    ch.failing = DeliveryError("timeout", "SMTP 127.0.0.1:25, 15 s")
    put(engine, "s2", now=T0 + 10)
    Sender(engine, {"email": ch}).run_once(T0 + 10)
    put(engine, "w1", channel="webhook", recipient="so", now=T0 + 20)
    with engine.connect() as conn:
        st = delivery_status(conn, T0 + 100)
        en = delivery_status(conn, T0 + 100, lang="en")
    assert set(st) == {"email", "apprise", "webhook", "zalo"}
    e = st["email"]
    assert (e["sent"], e["failed"], e["queued"], e["dead"]) == (1, 1, 0, 0)
    assert e["last_error"] == "timeout: SMTP 127.0.0.1:25, 15 s"
    assert e["last_error_text"] == "Quá thời gian chờ (SMTP 127.0.0.1:25, 15 s)"
    assert en["email"]["last_error_text"] == "Timed out (SMTP 127.0.0.1:25, 15 s)"
    assert e["health"]["ok"] is False and e["health"]["since"] == T0 + 10
    assert e["oldest_queued_at"] == T0 + 10 and e["oldest_queued_age"] == 90
    w = st["webhook"]
    assert w["queued"] == 1 and w["health"] is None and w["oldest_queued_age"] == 80


@pytest.fixture
def pg_engine(tmp_path, postgres):
    for e in engine_for("postgresql", tmp_path, postgres):
        db.create_all(e)
        yield e


def test_two_senders_on_postgresql_never_send_the_same_row(pg_engine):
    engine = pg_engine
    for i in range(120):
        put(engine, "race-%03d" % i)
    ch = FakeChannel()
    senders = [Sender(engine, {"email": ch}, name="collector-%d" % k) for k in (1, 2)]
    start = threading.Barrier(2)
    won = {s.name: 0 for s in senders}

    def run(sender):
        start.wait()
        for _ in range(5):
            won[sender.name] += len(sender.run_channel("email", T0).attempts)

    threads = [threading.Thread(target=run, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(ch.sent) == ["race-%03d" % i for i in range(120)]  # each exactly once
    assert sum(won.values()) == 120
    with engine.connect() as conn:
        states = conn.execute(select(db.notifications.c.state, db.notifications.c.attempts)
                              ).all()
    assert {tuple(s) for s in states} == {("sent", 1)}


def test_a_hanging_webhook_delays_no_email(engine, smtp_server, http_receiver):
    """Each channel has its own worker thread: while the webhook receiver hangs (it
    answers only when released), the e-mail queued after it is delivered."""
    http_receiver.hold()
    channels = {"webhook": WebhookChannel(http_receiver.url, "s3cret-webhook-key", 60),
                "email": EmailChannel(smtp_server.url, "canhbao@laocai.edu.vn", 10)}
    wid = put(engine, "h-webhook", channel="webhook", recipient="so")
    eid = put(engine, "h-email", recipient="kythuat@thbaothang.edu.vn")
    workers = Workers(Sender(engine, channels), interval=0.2).start()
    try:
        wait_until(http_receiver.arrived.is_set, timeout=30, what="the webhook request")
        wait_until(lambda: smtp_server.received, timeout=30, what="the e-mail")
        # recorded just after the server took it
        wait_until(lambda: row(engine, eid).state == "sent", timeout=30, what="e-mail sent")
        assert row(engine, wid).state == "sending"  # still waiting on the receiver
        http_receiver.release()
        wait_until(lambda: row(engine, wid).state == "sent", timeout=30, what="webhook sent")
    finally:
        http_receiver.release()
        workers.stop()
    assert len(http_receiver.got()) == 1 and len(smtp_server.received) == 1
