"""API latency at province scale: ``python bench/api_scale.py [--store sqlite|postgresql|both]``.

Fills a throwaway state store directly (registry through ``registry.add_schools``; devices,
their latest health, 30 days of hourly rollups, a week of 5-minute rollups for the school
and devices measured, status events, every school's ATTT status), serves the API with
uvicorn on a free loopback port and prints p50/p95 of ``--requests`` requests per page's
route, as the Sở (scope None) and as a school technician (scope: one school). PostgreSQL
is a private throwaway cluster (tests/servers.py). The figures in docs/benchmarks.md come from this script.

The province-wide counts are reused for read.counts.TTL seconds (so roughly one request in
each TTL pays for counting them: see the max column). Unless ``--no-warm``, the trend's
finished days are counted by read.summary.warm before the server starts, as the collector
should do at start.

Rollups: every device has one hourly bucket per day for 30 days (the trend's finished days;
counted once per process, then cached), the measured devices every hour of 30 days and every
5 minutes of 7 days.
"""
import argparse
import os
import random
import socket
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Any, Dict, List

import httpx
from schoolmon.collector.api.app import create_app
from schoolmon.collector.api.deps import Principal, get_principal
from schoolmon.collector.api.server import ApiServer
from schoolmon.collector.families.health import ROLLUP_METRICS
from schoolmon.collector.read import counts, summary
from schoolmon.collector.store import registry
from schoolmon.collector.store import schema as db

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.stores import STORES, on_each_store  # noqa: E402

DAY = 86400
OSES = ("Windows 7 Professional", "Windows 10 Pro 22H2", "Windows 11 Pro 23H2",
        "Ubuntu 22.04 LTS")


def _rollup(device: str, bucket: int, rng: random.Random) -> Dict[str, Any]:
    row: Dict[str, Any] = {"device_id": device, "bucket_start": bucket, "n": 12}
    for m in ROLLUP_METRICS:
        v = rng.uniform(5, 95)
        row.update({m + "_n": 12, m + "_min": v * 0.8, m + "_max": v * 1.1, m + "_sum": v * 12})
    return row


def _insert(engine: Any, table: Any, rows: List[Dict[str, Any]], chunk: int = 20000) -> None:
    with engine.begin() as conn:
        for i in range(0, len(rows), chunk):
            conn.execute(table.insert(), rows[i:i + chunk])


def fill(engine: Any, schools: int, per_school: int, areas: int, now: float) -> None:
    db.create_all(engine)
    rng = random.Random(1)
    registry.add_schools(engine, [
        {"code": "%08d" % i, "name": "Trường %s %d" % (("Tiểu học", "Mầm non", "THCS")[i % 3], i),
         "level": ("TH", "MN", "THCS")[i % 3], "area": "Khu vực %d" % (i % areas),
         "province": "Lào Cai", "isp": ("VNPT", "Viettel")[i % 2], "link_type": "fiber"}
        for i in range(schools)])
    devs, latest = [], []
    for i in range(schools):
        router_down = i % 8 == 3
        for j in range(per_school):
            role = "router" if j == 0 else "office" if j == 1 else "lab"
            online = (not router_down) if j == 0 else rng.random() < 0.8
            seen = now - (rng.random() * 600 if online else rng.uniform(3600, 10 * DAY))
            did = "d%d-%d" % (i, j)
            devs.append(dict(id=did, school_code="%08d" % i, role=role, room="Phòng %d" % j,
                             hostname="PC-%d-%d" % (i, j), os=rng.choice(OSES),
                             state="active" if j else "pending", online=online,
                             online_changed_at=seen, last_seen=seen, first_seen=now - 60 * DAY,
                             offline_reason=None if online else "lost", received_total=1000,
                             lost_total=0, duplicates_total=0, resets=0))
            latest.append(dict(device_id=did, kind="health", ts=seen, seq=1000, received_at=seen,
                               payload={"cpu_pct": 20.0, "mem_pct": 50.0,
                                        "disks": [{"mnt": "C:", "pct": rng.uniform(20, 99)}]}))
    _insert(engine, db.devices, devs)
    _insert(engine, db.device_latest, latest)
    hour = int(now // 3600 * 3600)
    daily = [_rollup(d["id"], hour - k * DAY - rng.randrange(24) * 3600, rng)
             for d in devs for k in range(1, 30)]
    measured = ["d5-%d" % j for j in range(per_school)]
    hourly = [_rollup(did, hour - k * 3600, rng) for did in measured for k in range(30 * 24)]
    # one row per (device, bucket): drop the daily rows the hourly ones cover
    covered = {(r["device_id"], r["bucket_start"]) for r in hourly}
    _insert(engine, db.rollup_1h, [r for r in daily if (r["device_id"], r["bucket_start"])
                                   not in covered] + hourly)
    five = [_rollup(did, hour - k * 300, rng) for did in measured for k in range(7 * 288)]
    _insert(engine, db.rollup_5m, five)
    # every school judged against the ATTT baseline, as after the evaluator's first pass:
    # the overview's counts and its schools needing attention read these statuses
    statuses = ("meets",) * 5 + ("improve",) * 2 + ("below",) * 2 + ("insufficient",)
    _insert(engine, db.attt_schools, [
        dict(school_code="%08d" % i, status=rng.choice(statuses), since=now - 10 * DAY,
             evaluated_at=now - 60, detail={}, rev=1) for i in range(schools)])
    _insert(engine, db.attt_state, [dict(key="run", value={"at": now - 60}, updated_at=now - 60,
                                         rev=1)])
    evs = [dict(ts=now - k * 3600, kind=("device_offline", "device_online")[k % 2],
                school="%08d" % 5, device="d5-3", detail={"reason": "lost"})
           for k in range(200)]
    _insert(engine, db.events, evs)


PATHS = [
    ("overview", "/api/v1/overview"),
    ("summary", "/api/v1/summary"),
    ("school list", "/api/v1/schools?per_page=50"),
    ("school list, search", "/api/v1/schools?q=th%205"),
    ("school list, sort name", "/api/v1/schools?sort=name&per_page=50"),
    ("school page", "/api/v1/schools/00000005"),
    ("device page", "/api/v1/devices/d5-3"),
    ("device 30-day series", "/api/v1/devices/d5-3/series?metric=cpu_pct&from={from30}"),
    ("device list", "/api/v1/devices?per_page=50"),
    ("device list, os", "/api/v1/devices?os=windows%207&per_page=50"),
]


def measure(url: str, token: str, n: int, now: float) -> List[Dict[str, Any]]:
    out = []
    with httpx.Client(base_url=url, timeout=120,
                      headers={"Authorization": "Bearer " + token}) as c:
        for name, path in PATHS:
            path = path.format(from30=int(now - 30 * DAY))
            t = time.perf_counter()
            r = c.get(path)
            first = time.perf_counter() - t
            if r.status_code != 200:
                raise SystemExit("%s: %d %s" % (path, r.status_code, r.text[:300]))
            times = []
            for _ in range(n):
                t = time.perf_counter()
                c.get(path)
                times.append(time.perf_counter() - t)
            times.sort()
            out.append({"name": name, "path": path, "first": first * 1000,
                        "p50": statistics.median(times) * 1000,
                        "p95": times[min(len(times) - 1, int(0.95 * len(times)))] * 1000,
                        "max": times[-1] * 1000,
                        "bytes": len(r.content)})
    return out


def run(url: str, label: str, args: argparse.Namespace) -> None:
    engine = db.make_engine(url)
    now = time.time()
    t = time.perf_counter()
    fill(engine, args.schools, args.devices, args.areas, now)
    n_dev = args.schools * args.devices
    print("\n%s: %d schools, %d devices, filled in %.0f s" % (label, args.schools, n_dev,
                                                            time.perf_counter() - t))
    token = "bench-" + "x" * 20
    cfg = SimpleNamespace(api=SimpleNamespace(admin_token=token, read_tokens=[]),
                          province=SimpleNamespace(timezone="Asia/Ho_Chi_Minh"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(engine, cfg)
    print("  province-wide counts reused for %.0f s (read.counts.TTL)" % counts.TTL)
    if args.warm:  # what the collector should do at start (read.summary.warm)
        t = time.perf_counter()
        summary.warm(engine, cfg.province.timezone).join()
        print("  warm-up (trend's finished days, province counts; a background thread at "
              "start): %.1f s" % (time.perf_counter() - t))
    server = ApiServer(app, "127.0.0.1", port).start()
    try:
        for who, principal in (("Sở (scope None)", None),
                               ("school technician (one school)",
                                Principal("tech", "read", frozenset({"school:00000005"})))):
            if principal is not None:
                app.dependency_overrides[get_principal] = lambda p=principal: p
            print("  as %s, %d requests each:" % (who, args.requests))
            print("    %-24s %8s %8s %8s %8s %9s" % ("route", "first", "p50", "p95", "max",
                                                  "bytes"))
            for row in measure(server.url, token, args.requests, now):
                flag = "" if row["p95"] < args.target else "  (over %d ms by %.0f ms)" % (
                    args.target, row["p95"] - args.target)
                print("    %-24s %6.0f ms %5.0f ms %5.0f ms %5.0f ms %9d%s"
                      % (row["name"], row["first"], row["p50"], row["p95"], row["max"],
                         row["bytes"], flag))
            app.dependency_overrides.clear()
    finally:
        server.stop()
        engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--schools", type=int, default=3000)
    ap.add_argument("--devices", type=int, default=17, help="devices per school")
    ap.add_argument("--areas", type=int, default=40)
    ap.add_argument("--requests", type=int, default=40, help="timed requests per route")
    ap.add_argument("--target", type=int, default=150, help="p95 target, ms")
    ap.add_argument("--store", choices=STORES, default="both")
    ap.add_argument("--no-warm", dest="warm", action="store_false",
                    help="leave the trend to the first overview (no read.summary.warm)")
    args = ap.parse_args()
    on_each_store(args.store, "schoolmon-apibench-", lambda url, label: run(url, label, args))


if __name__ == "__main__":
    main()
