"""The connectivity tables' retention on a big store:
``python bench/connectivity_retention.py [--rows 1200000] [--db FILE]``.

Fills a throwaway SQLite store with ``--rows`` speed tests of 100 schools spread evenly
over the last 800 days (so about half are past the 400-day default), then runs the store's
retention (``store/retention.py``) as maintenance would, run after run until nothing is
left to prune, and times every transaction: the longest is the longest the write lock is
held (ingest waits at most that long). The figures in docs/benchmarks.md come from this.
"""
import argparse
import os
import sys
import tempfile
import time

from sqlalchemy import event, func, select

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from schoolmon.collector.store import retention  # noqa: E402
from schoolmon.collector.store import schema as db  # noqa: E402
from schoolmon.collector.store.registry import add_schools  # noqa: E402

NOW = 1_800_000_000.0
DAY = 86400


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_200_000)
    ap.add_argument("--db", default="")
    args = ap.parse_args()
    path = args.db or os.path.join(tempfile.mkdtemp(prefix="schoolmon-retention-"), "s.db")
    engine = db.make_engine("sqlite:///" + path)
    db.create_all(engine)
    add_schools(engine, [dict(code="S%03d" % i, name="Trường %d" % i, level="THCS",
                              area="Bát Xát", province="Lào Cai") for i in range(100)])
    t0 = time.monotonic()
    span = 800 * DAY
    with engine.begin() as c:
        rows = []
        for k in range(args.rows):
            at = NOW - span + k * span / args.rows
            rows.append(dict(school_code="S%03d" % (k % 100), device_id="pc-%d" % (k % 100),
                             seq=k, ts=at, received_at=at, ok=True, down_mbps=30.0))
            if len(rows) == 20000:
                c.execute(db.link_tests.insert(), rows)
                rows = []
        if rows:
            c.execute(db.link_tests.insert(), rows)
    print("seeded %d tests in %.1f s" % (args.rows, time.monotonic() - t0))
    keep = retention.Keep()
    with engine.connect() as c:
        due = c.execute(select(func.count()).select_from(db.link_tests).where(
            db.link_tests.c.ts < NOW - keep.link_tests_days * DAY)).scalar_one()
    held = []
    began = {}

    @event.listens_for(engine, "begin")
    def _begin(conn):
        began[id(conn)] = time.monotonic()

    @event.listens_for(engine, "commit")
    def _commit(conn):
        held.append(time.monotonic() - began.pop(id(conn), time.monotonic()))

    t0 = time.monotonic()
    total = runs = 0
    while True:
        out = retention.prune_connectivity(engine, keep, NOW)
        runs += 1
        total += out["pruned_link_tests"]
        if out["pruned_link_tests"] < retention.BATCH * retention.MAX_BATCHES:
            break
    took = time.monotonic() - t0
    held.sort()
    print("due %d, pruned %d in %.1f s over %d maintenance runs; %d transactions, longest "
          "%.3f s, median %.3f s" % (due, total, took, runs, len(held), held[-1],
                                     held[len(held) // 2]))
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
