"""Time StateStore.prepare + commit for batches of health messages (the real wire format).

    .venv/bin/python bench/store_commit.py [--url URL] [--devices N] [--batch 5000] [--rounds 10]

Without --url: a SQLite file in a temporary folder. With --postgres: a private PostgreSQL
(tests/servers.py; needs the Debian package). Prints the median and worst time per batch.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from schoolmon.collector.service import tune_gc  # noqa: E402
from schoolmon.collector.state import Received  # noqa: E402
from schoolmon.collector.store import StateStore  # noqa: E402
from schoolmon.collector.store import schema as db  # noqa: E402
from schoolmon.collector.store.registry import add_schools  # noqa: E402
from schoolmon.protocol import decode, encode, envelope, topic  # noqa: E402


def payloads(n_devices, batch, rounds, schools, t0):
    seqs = [0] * n_devices
    per_dev = max(1, batch // n_devices)
    for r in range(rounds):
        out = []
        for i in range(batch):
            d = i % n_devices
            seqs[d] += 1
            ts = t0 + r * 60 * per_dev + (i // n_devices) * 60
            school = schools[d % len(schools)]
            dev = "pc-%05d" % d
            fields = {"cpu_pct": 12.5, "cpu_n": 4, "mem_pct": 61.0, "swap_pct": 3.0, "up": 5000,
                      "temp": 55.0, "disks": [{"mnt": "C:", "pct": 70.5, "free": 10 ** 10}],
                      "nics": [{"if": "eth0", "rx": 12000, "tx": 3000}]}
            raw = encode(envelope("health", fields, seqs[d], ts))
            m = decode(topic(school, dev, "health"), raw)
            out.append(Received(m, ts + 0.5, ts, None, raw))  # ingest keeps the bytes
        yield out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--postgres", action="store_true")
    ap.add_argument("--devices", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=10)
    a = ap.parse_args()
    pg = None
    tmp = tempfile.mkdtemp()
    url = a.url or "sqlite:///%s/bench.db" % tmp
    if a.postgres:
        from tests.servers import Postgres
        pg = Postgres()
        url = pg.url
    try:
        engine = db.make_engine(url)
        db.create_all(engine)
        schools = ["7900%04d" % i for i in range(100)]
        add_schools(engine, [dict(code=s, name="Trường " + s, level="TH", area="Khu %d" % (i % 5),
                                  province="Lào Cai") for i, s in enumerate(schools)])
        store = StateStore(engine)
        tune_gc()  # as in a collector process
        t0 = time.time() - 86400
        prep, comm = [], []
        for batch in payloads(a.devices, a.batch, a.rounds, schools, t0):
            s = time.perf_counter()
            plan = store.prepare(batch)
            m = time.perf_counter()
            store.commit(plan)
            e = time.perf_counter()
            assert len(plan.accepted) == len(batch)
            prep.append(m - s)
            comm.append(e - m)
        print("%s: %d batches of %d messages from %d devices" % (
            engine.dialect.name, a.rounds, a.batch, a.devices))
        print("  first batch (registers devices): prepare %.3f s, commit %.3f s"
              % (prep[0], comm[0]))
        rest_p, rest_c = prep[1:] or prep, comm[1:] or comm
        print("  later batches: prepare median %.3f s; commit median %.3f s, max %.3f s; "
              "%.0f msg/s through prepare+commit"
              % (statistics.median(rest_p), statistics.median(rest_c), max(rest_c),
                 a.batch / (statistics.median(rest_p) + statistics.median(rest_c))))
    finally:
        if pg:
            pg.stop()


if __name__ == "__main__":
    main()
