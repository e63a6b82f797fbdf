"""The connectivity evaluator at province scale:
``python bench/connectivity_eval.py [--store sqlite|postgresql|both] [--schools 3000]``.

Fills a throwaway state store directly with a province's last ``--days`` (30) days:
``--schools`` schools, four speed tests a school a day (one in a while failed, a few
refused as implausible), the probe hours 08:00–20:00 local, contracted speeds and student
counts; schools slow, fast, flaky, metered or silent in believable shares. Then times
``Evaluator.run_once``: the whole province (the daily pass), an incremental pass after
``--changed`` schools reported a new test, and a pass with nothing new. PostgreSQL is a
private throwaway cluster (tests/servers.py). The figures in docs/benchmarks.md come from
this script.
"""
import argparse
import os
import random
import sys
import time
from typing import Any, Dict, List

from sqlalchemy import func, select

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from schoolmon.collector.connectivity.baseline import load_connectivity  # noqa: E402
from schoolmon.collector.connectivity.evaluator import Evaluator  # noqa: E402
from schoolmon.collector.store import registry  # noqa: E402
from schoolmon.collector.store import schema as db  # noqa: E402

from bench.stores import STORES, on_each_store  # noqa: E402

DAY = 86400
#: Wednesday 2026-01-14 12:00 in Hà Nội: the pass's clock (a fixed one: same data each run)
NOW = 1_768_366_800.0
OFF = 7 * 3600


def _insert(engine: Any, table: Any, rows: List[Dict[str, Any]], chunk: int = 20000) -> None:
    with engine.begin() as conn:
        for i in range(0, len(rows), chunk):
            conn.execute(table.insert(), rows[i:i + chunk])


def fill(engine: Any, n: int, days: int) -> Dict[str, int]:
    db.create_all(engine)
    rng = random.Random(10)
    registry.add_schools(engine, [
        {"code": "%08d" % i, "name": "Trường %d" % i, "level": ("TH", "THCS", "THPT")[i % 3],
         "area": "Khu vực %d" % (i % 40), "province": "Lào Cai",
         "students": rng.choice((150, 300, 450, 900, 1500)),
         "contracted_down_mbps": rng.choice((None, 30.0, 50.0, 100.0)),
         "isp": rng.choice(("VNPT", "Viettel", "FPT")),
         "link_type": rng.choice(("ftth", "ftth", "4g"))} for i in range(n)])
    tests: List[Dict[str, Any]] = []
    hours: List[Dict[str, Any]] = []
    today = int(NOW + OFF) // DAY
    seq = 0
    for i in range(n):
        code = "%08d" % i
        kind = rng.random()
        speed = (rng.uniform(0.3, 3) if kind < 0.1 else rng.uniform(5, 19) if kind < 0.35
                 else rng.uniform(20, 120))
        silent = kind > 0.97
        for d in range(today - days + 1, today + 1):
            local0 = d * DAY - OFF
            if silent and d > today - 10:
                continue
            for slot in (8.3, 10.5, 13.2, 17.4):
                ts = local0 + slot * 3600 + rng.uniform(0, 1800)
                if ts > NOW:
                    continue
                seq += 1
                ok = rng.random() > 0.05
                down = speed * rng.uniform(0.6, 1.3)
                tests.append({"school_code": code, "device_id": "d%d-1" % i, "seq": seq,
                              "ts": ts, "received_at": ts + 2, "ok": ok,
                              "reason": None if ok else "timeout",
                              "down_mbps": down if ok else None,
                              "up_mbps": down / 3 if ok else None,
                              "ping_ms": rng.uniform(5, 80) if ok else None,
                              "bytes_rx": int(down * 1.25e6 * 10), "bytes_tx": int(down * 4e5 * 10),
                              "refused": "implausible" if rng.random() < 0.005 else None})
            for h in range(8, 20):
                start = local0 + h * 3600
                if start > NOW:
                    continue
                k = rng.randint(20, 120)  # 10 PCs × 12 probes an hour, some off
                bad = rng.random() < 0.05
                hours.append({"school_code": code, "hour_start": int(start), "n": k,
                              **{t + s: v for t in ("gw", "dns", "dom", "intl")
                                 for s, v in (("_n", k), ("_ok", k // 2 if bad else k),
                                              ("_ms", k * 20.0))}})
    _insert(engine, db.link_tests, tests)
    _insert(engine, db.link_probe_hours, hours)
    return {"tests": len(tests), "probe_hours": len(hours)}


def run(url: str, label: str, args: argparse.Namespace) -> Dict[str, float]:
    engine = db.make_engine(url)
    t0 = time.perf_counter()
    sizes = fill(engine, args.schools, args.days)
    fill_s = time.perf_counter() - t0
    ev = Evaluator(engine, load_connectivity())
    stats, events = ev.run_once(NOW)
    with engine.connect() as conn:
        by_status = dict(conn.execute(select(db.connectivity_schools.c.status, func.count())
                                      .group_by(db.connectivity_schools.c.status)).all())
    # --changed schools report one new test each
    with engine.begin() as conn:
        conn.execute(db.link_tests.insert(), [
            {"school_code": "%08d" % i, "device_id": "d%d-1" % i, "seq": 10 ** 9 + i,
             "ts": NOW + 10, "received_at": NOW + 10, "ok": False, "reason": "timeout"}
            for i in range(min(args.changed, args.schools))])
    inc, _ = ev.run_once(NOW + 30)
    idle, _ = ev.run_once(NOW + 400)
    engine.dispose()
    print("%-10s fill %.1f s (%d tests, %d probe hours) | whole province: %d schools in "
          "%.2f s (%d events) | incremental: %d schools in %.2f s | nothing new: %.3f s"
          % (label, fill_s, sizes["tests"], sizes["probe_hours"], stats.schools,
             stats.seconds, len(events), inc.schools, inc.seconds, idle.seconds), flush=True)
    print("%-10s schools by status: %s" % (label, dict(sorted(by_status.items()))), flush=True)
    return {"full": stats.seconds, "incremental": inc.seconds, "idle": idle.seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--schools", type=int, default=3000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--changed", type=int, default=100,
                    help="schools with a new test before the incremental pass")
    ap.add_argument("--store", choices=STORES, default="both")
    args = ap.parse_args()
    on_each_store(args.store, "schoolmon-connbench-", lambda url, label: run(url, label, args))


if __name__ == "__main__":
    main()
