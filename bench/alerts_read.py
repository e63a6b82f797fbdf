"""The alerts' read side at province scale:
``python bench/alerts_read.py [--store sqlite|postgresql|both] [--schools 3000]``.

Fills a throwaway state store with ``--schools`` schools in 40 areas and their alert
history: ``--alerts`` (30,000) alerts over 90 days, ``--open`` (3,000) of them open (a
bad morning: a tenth of the province), each with its pending/firing(/resolved) events, a
few hundred acknowledged, and 50 silences in force. Then times what the pages ask for:
the alerts page's first page (open, with its counts), a filtered page (one area,
critical), a school's open alerts (the school page), the overview's counts, one alert
with its history, and the same first page for an area officer (scope of 75 schools).
Each figure is the median of ``--repeat`` (7) runs. The figures in docs/benchmarks.md
come from this script.
"""
import argparse
import os
import random
import statistics
import sys
import time
from typing import Any, Callable, Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from schoolmon.collector.read import alerts as read  # noqa: E402
from schoolmon.collector.read.schools import area_units  # noqa: E402
from schoolmon.collector.read.scope import resolve_scope  # noqa: E402
from schoolmon.collector.store import registry  # noqa: E402
from schoolmon.collector.store import schema as db  # noqa: E402

from bench.stores import STORES, on_each_store  # noqa: E402

NOW = 1_768_366_800.0  # Wednesday 2026-01-14 12:00 in Hà Nội (a fixed clock)
RULES = (("school_offline", "critical"), ("school_internet_down", "critical"),
         ("router_down", "warning"), ("lab_pc_offline", "info"),
         ("below_attt", "warning"), ("device_disk_full", "warning"),
         ("device_av_off", "critical"))


def fill(engine: Any, n: int, total: int, n_open: int) -> None:
    db.create_all(engine)
    rng = random.Random(11)
    registry.add_schools(engine, [
        {"code": "%08d" % i, "name": "Trường %d" % i, "level": "TH",
         "area": "Khu vực %d" % (i % 40), "province": "Lào Cai"} for i in range(n)])
    with engine.connect() as conn:
        area_of = {r.code: r.area for r in conn.execute(
            db.schools.join(db.org_units, db.schools.c.org_unit_id == db.org_units.c.id)
            .select().with_only_columns(db.schools.c.code, db.org_units.c.code.label("area")))}
    alerts: List[Dict[str, Any]] = []
    for k in range(total):
        code = "%08d" % rng.randrange(n)
        rule, sev = RULES[k % len(RULES)]
        device = "pc-%s-%d" % (code, k % 30) if rule.startswith(("lab", "device")) else None
        is_open = k < n_open
        start = NOW - (rng.uniform(0, 6 * 3600) if is_open else rng.uniform(0, 90 * 86400))
        alerts.append(dict(
            id=k + 1, rule=rule, subject="%s:%s:%d" % (rule, device or code, k),
            school_code=code, area_code=area_of[code], device_id=device, severity=sev,
            state="firing" if is_open else "resolved", started_at=start,
            fired_at=start + 900, resolved_at=None if is_open else start + 7200,
            last_true_at=NOW, evaluated_at=NOW, rev=1,
            value={"title": {"vi": "Trường %s: %s" % (code, rule), "en": rule},
                   "text": {"vi": "…", "en": "…"}, "evidence": {"n": k}},
            ack_by="tech" if is_open and k % 10 == 0 else None,
            ack_at=NOW - 60 if is_open and k % 10 == 0 else None,
            ack_comment="đang xử lý" if is_open and k % 10 == 0 else None))
    events = [dict(ts=a["started_at"] + j * 900, alert_id=a["id"], kind=kind)
              for a in alerts for j, kind in enumerate(
                  ("pending", "firing") if a["state"] == "firing"
                  else ("pending", "firing", "resolved"))]
    silences = [dict(kind="silence", school_code="%08d" % rng.randrange(n), starts_at=NOW - 600,
                     ends_at=NOW + 86400, comment="bảo trì", created_by="boss",
                     created_at=NOW - 600) for _ in range(50)]
    with engine.begin() as conn:
        for table, rows in ((db.alerts, alerts), (db.alert_events, events),
                            (db.silences, silences)):
            for i in range(0, len(rows), 20000):
                conn.execute(table.insert(), rows[i:i + 20000])


def timed(repeat: int, fn: Callable[[], Any]) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def run(url: str, label: str, args: argparse.Namespace) -> None:
    engine = db.make_engine(url)
    t0 = time.perf_counter()
    fill(engine, args.schools, args.alerts, args.open)
    print("%s: filled %d schools, %d alerts (%d open) in %.1f s"
          % (label, args.schools, args.alerts, args.open, time.perf_counter() - t0))
    with engine.connect() as conn:
        units = area_units(conn, "khu-vuc-7")
        officer = resolve_scope(conn, ["org:" + next(iter(
            r.code for r in conn.execute(db.org_units.select().where(
                db.org_units.c.name == "Khu vực 7")))), ])
        cases = {
            "alerts page (open, first 50, counts)":
                lambda: read.list_alerts(conn, None, NOW, "vi"),
            "one area, critical": lambda: read.list_alerts(
                conn, None, NOW, "vi", area_units=units, severity="critical"),
            "resolved, first 50": lambda: read.list_alerts(conn, None, NOW, "vi",
                                                           state="resolved"),
            "a school's open alerts": lambda: read.list_alerts(
                conn, None, NOW, "vi", school="%08d" % 7, per_page=20),
            "overview counts": lambda: read.open_counts(conn, None, NOW),
            "one alert with history": lambda: read.get_alert(conn, 5, None, NOW, "vi"),
            "area officer's alerts page (%d schools)" % len(officer or ()):
                lambda: read.list_alerts(conn, officer, NOW, "vi"),
        }
        for name, fn in cases.items():
            print("  %-45s %7.1f ms" % (name, 1000 * timed(args.repeat, fn)))
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", choices=STORES, default="sqlite")
    ap.add_argument("--schools", type=int, default=3000)
    ap.add_argument("--alerts", type=int, default=30000)
    ap.add_argument("--open", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    on_each_store(args.store, "schoolmon-alerts-bench-",
                  lambda url, label: run(url, label, args))


if __name__ == "__main__":
    main()
