"""The alert evaluator at province scale: ``python bench/alert_eval.py [--store sqlite|postgresql|both]``.

Fills a throwaway state store (3,000 schools, 50,000 PCs by default) with the ATTT
benchmark's own filler (bench/attt_eval.py: registry, device rows, each PC's inventory and
security payload) and the real ATTT evaluator's judgement, then adds what the alert rules
read: a router per school (``router.{code}``, a few with the WAN down), each PC's latest
health (a few disks over 95 %, a few hot CPUs) and light probe (a few schools with no
Internet), whole schools offline (2 %) and PCs offline (10 %). Then it times
``AlertEngine.evaluate`` at 10:00 on a school day (every window open: the worst case):

- the first full pass (every alert opens: inserts),
- a full pass a minute later (nothing changed: the steady state),
- a full pass 20 minutes later (pending alerts fire),
- an incremental pass after store events named 50 schools,
- a pass with no new event (``skipped``),

and prints the seconds against ``alerting.evaluate_interval`` (30 s by default).
PostgreSQL is a private throwaway cluster (tests/servers.py). The figures in
docs/benchmarks.md come from this script.
"""
import argparse
import os
import random
import sys
import time
from typing import Any, Dict, List

from sqlalchemy import func, select, update

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from schoolmon.collector.alerting.calendar import load_calendar  # noqa: E402
from schoolmon.collector.alerting.conditions import CollectorStats  # noqa: E402
from schoolmon.collector.alerting.engine import AlertEngine  # noqa: E402
from schoolmon.collector.alerting.rules import load_rules  # noqa: E402
from schoolmon.collector.posture import Evaluator, rules_from_config  # noqa: E402
from schoolmon.collector.store import schema as db  # noqa: E402

from bench.attt_eval import fill  # noqa: E402
from bench.stores import STORES, on_each_store  # noqa: E402

#: Wednesday 2026-12-02 10:00 in Hà Nội: school and office hours.
NOW = 1_796_180_400.0
INTERVAL = 30.0


def _insert(engine: Any, table: Any, rows: List[Dict[str, Any]], chunk: int = 10000) -> None:
    with engine.begin() as conn:
        for i in range(0, len(rows), chunk):
            conn.execute(table.insert(), rows[i:i + chunk])


def add_alerting_facts(engine: Any, now: float) -> Dict[str, int]:
    rng = random.Random(11)
    with engine.connect() as c:
        pcs = list(c.execute(select(db.devices.c.id, db.devices.c.school_code)))
        codes = sorted(set(c.execute(select(db.schools.c.code)).scalars()))
    dark = set(rng.sample(codes, len(codes) // 50))  # whole schools offline
    no_internet = set(rng.sample([c for c in codes if c not in dark], len(codes) // 100))
    wan_down = set(rng.sample([c for c in codes if c not in dark | no_internet],
                              len(codes) // 100))
    routers, latest = [], []
    for code in codes:
        rid = "router." + code
        routers.append(dict(id=rid, school_code=code, role="router", hostname="router",
                            state="active", online=code not in dark,
                            online_changed_at=now - 3600, last_seen=now - 60,
                            offline_reason="unreachable" if code in dark else None,
                            received_total=10, lost_total=0, duplicates_total=0, resets=0))
        latest.append(dict(device_id=rid, kind="router", ts=now - 60, seq=1,
                           received_at=now - 60,
                           payload={"v": 1, "ts": now - 60, "seq": 1, "host": "192.168.1.1",
                                    "gw_ok": code not in dark,
                                    "wan_up": code not in wan_down}))
    offline: List[str] = []
    for did, code in pcs:
        if code in dark or rng.random() < 0.10:
            offline.append(did)
        latest.append(dict(device_id=did, kind="health", ts=now - 60, seq=11,
                           received_at=now - 60, payload={
                               "v": 1, "ts": now - 60, "seq": 11, "cpu_pct": 10.0,
                               "cpu_n": 4, "mem_pct": 50.0, "up": 3600,
                               "disks": [{"mnt": "C:", "pct": 97.0 if rng.random() < 0.02
                                          else 60.0, "free": 1, "size": 2}],
                               "temp": 95.0 if rng.random() < 0.01 else 55.0}))
        ok = code not in no_internet
        latest.append(dict(device_id=did, kind="probe", ts=now - 120, seq=12,
                           received_at=now - 120, payload={
                               "v": 1, "ts": now - 120, "seq": 12, "gw_ok": True,
                               "dom_ok": ok, "intl_ok": ok}))
    _insert(engine, db.devices, routers)
    _insert(engine, db.device_latest, latest)
    with engine.begin() as c:
        for i in range(0, len(offline), 5000):
            c.execute(update(db.devices).where(db.devices.c.id.in_(offline[i:i + 5000]))
                      .values(online=False, online_changed_at=now - 3600,
                              offline_reason="lost"))
    return {"schools_offline": len(dark), "schools_no_internet": len(no_internet),
            "routers_wan_down": len(wan_down), "pcs_offline": len(offline)}


def run(url: str, label: str, args: argparse.Namespace) -> Dict[str, float]:
    engine = db.make_engine(url)
    t0 = time.perf_counter()
    fill(engine, args.schools, args.devices, args.areas, NOW - 60)
    Evaluator(engine, rules_from_config(argparse.Namespace())).run_once(NOW - 30)
    facts = add_alerting_facts(engine, NOW)
    fill_s = time.perf_counter() - t0
    ev = AlertEngine(engine, load_rules(), load_calendar(None),
                     stats=lambda: CollectorStats(0.0, 0, True))
    cpu: Dict[str, float] = {}

    def timed(name: str, now: float, full: bool = True) -> Any:
        # the process's CPU time beside the wall time: on this shared 2-core machine the
        # wall time follows the other engineers' load; on SQLite the database's work is in
        # this process, on PostgreSQL the server's is not counted
        c0 = time.process_time()
        got = ev.evaluate(now, full=full)
        cpu[name] = time.process_time() - c0
        return got

    first = timed("first", NOW)
    steady = timed("steady", NOW + 60)
    firing = timed("firing", NOW + 20 * 60)
    with engine.connect() as c:
        codes = list(c.execute(select(db.schools.c.code).order_by(db.schools.c.code)
                               .limit(50)).scalars())
        by_state = dict(c.execute(select(db.alerts.c.state, func.count())
                                  .group_by(db.alerts.c.state)).all())
    with engine.begin() as c:
        c.execute(db.events.insert(), [dict(ts=NOW + 1250, kind="device_online", school=code,
                                            device="router." + code, detail={})
                                       for code in codes])
    changes = timed("changes", NOW + 21 * 60, False)
    idle = timed("idle", NOW + 21 * 60 + 2, False)
    engine.dispose()

    def pct(s: float) -> str:
        return "%.2f s (%.0f %% of %d s)" % (s, 100 * s / INTERVAL, INTERVAL)

    load = os.getloadavg()[0]

    print("%-10s fill %.0f s: %d schools, %d PCs + %d routers; %s" % (
        label, fill_s, args.schools, args.devices, args.schools, facts), flush=True)
    print("%-10s first full pass %s, %d findings, events %s" % (
        label, pct(first.seconds), first.findings, dict(sorted(first.events.items()))),
        flush=True)
    print("%-10s steady full pass %s | 20 min later %s, events %s" % (
        label, pct(steady.seconds), pct(firing.seconds), dict(sorted(firing.events.items()))),
        flush=True)
    print("%-10s incremental (%d schools) %.3f s | nothing new %.4f s | alerts by state %s"
          % (label, changes.schools, changes.seconds, idle.seconds, by_state), flush=True)
    print("%-10s CPU seconds of this process: %s; load average %.1f" % (
        label, {k: round(v, 2) for k, v in cpu.items()}, load), flush=True)
    return {"first": first.seconds, "steady": steady.seconds, "firing": firing.seconds,
            "changes": changes.seconds, "idle": idle.seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--schools", type=int, default=3000)
    ap.add_argument("--devices", type=int, default=50000, help="PCs in the province")
    ap.add_argument("--areas", type=int, default=40)
    ap.add_argument("--store", choices=STORES, default="both")
    args = ap.parse_args()
    on_each_store(args.store, "schoolmon-alertbench-", lambda url, label: run(url, label, args))


if __name__ == "__main__":
    main()
