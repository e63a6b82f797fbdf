"""Time routing for a province-wide storm: every school of a province goes silent at once.

    .venv/bin/python bench/notify_route.py [--postgres] [--areas 30] [--per-area 100]

Builds a store (a SQLite file in a temporary folder, or with --postgres a private
PostgreSQL from tests/servers.py) with one IT teacher (e-mail) per school, one officer
(e-mail and Zalo) per area and three Sở users; writes one firing school_offline alert per
school as the evaluator does; then times three route_pass calls: the one that reads the
events (groups opened, nothing due: group_wait), the one that flushes every group (the
messages composed and enqueued), and a quiet pass (no event, nothing due: the cost paid
after every evaluation). Prints the wall and CPU seconds of each (CPU: this process's,
which on a shared machine says more than wall time; PostgreSQL's own work is not in it)
and the messages enqueued.
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from schoolmon.collector.notify.routing import NotifySettings, load_routes, route_pass  # noqa: E402
from schoolmon.collector.store import registry  # noqa: E402
from schoolmon.collector.store import schema as db  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

T0 = 1_796_180_400.0  # 2026-12-02 10:00 in Hà Nội


def build(engine, areas, per_area):
    db.create_all(engine)
    rows = [{"code": "S%02d%03d" % (a, i), "name": "Trường TH Khu %d số %d" % (a, i),
             "level": "TH", "area": "Khu vực %02d" % a, "province": "Lào Cai"}
            for a in range(areas) for i in range(per_area)]
    registry.add_schools(engine, rows)
    with engine.begin() as c:
        c.execute(db.users.insert(), [{"name": "tech%d" % n, "role": "school_tech",
                                       "created_at": T0, "disabled": False,
                                       "email": "tech%d@truong.edu.vn" % n}
                                      for n in range(len(rows))])
        tech_ids = dict(c.execute(select(db.users.c.name, db.users.c.id)).all())
        c.execute(db.user_units.insert(), [{"user_id": tech_ids["tech%d" % n], "kind": "school",
                                            "code": r["code"]} for n, r in enumerate(rows)])
        for a in range(areas):
            uid = c.execute(db.users.insert().values(
                name="officer%d" % a, role="area_officer", created_at=T0, disabled=False,
                email="officer%d@phong.edu.vn" % a, zalo_chat_id="z%d" % a)
                .returning(db.users.c.id)).scalar_one()
            c.execute(db.user_units.insert().values(user_id=uid, kind="org",
                                                    code="lao-cai/khu-vuc-%02d" % a))
        for k in range(3):
            c.execute(db.users.insert().values(name="so%d" % k, role="so_admin",
                                               created_at=T0, disabled=False,
                                               email="so%d@sogd.edu.vn" % k))
        areas_of = dict(c.execute(select(db.schools.c.code, db.org_units.c.code).join(
            db.org_units, db.org_units.c.id == db.schools.c.org_unit_id)).all())
        for r in rows:
            aid = c.execute(db.alerts.insert().values(
                rule="school_offline", subject="school:" + r["code"], school_code=r["code"],
                area_code=areas_of[r["code"]], severity="critical", state="firing",
                started_at=T0 - 600, fired_at=T0, last_true_at=T0, evaluated_at=T0,
                value={"title": {"vi": "%s: mất kết nối toàn trường" % r["name"],
                                 "en": "%s: offline" % r["name"]},
                       "text": {"vi": "Mọi thiết bị mất kết nối.", "en": "All offline."},
                       "evidence": {}, "school_name": r["name"], "device_name": None},
                rev=1).returning(db.alerts.c.id)).scalar_one()
            c.execute(db.alert_events.insert(), [
                {"ts": T0 - 600, "alert_id": aid, "kind": "pending"},
                {"ts": T0, "alert_id": aid, "kind": "firing"}])
    return len(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--postgres", action="store_true")
    ap.add_argument("--areas", type=int, default=30)
    ap.add_argument("--per-area", type=int, default=100)
    a = ap.parse_args()
    pg = None
    tmp = tempfile.mkdtemp(prefix="notify-bench-")
    if a.postgres:
        from tests.servers import Postgres
        pg = Postgres()
        url = pg.url
    else:
        url = "sqlite:///%s/state.db" % tmp
    engine = db.make_engine(url)
    try:
        n = build(engine, a.areas, a.per_area)
        s = NotifySettings(routes=load_routes(), public_url="https://sm.example.vn")
        for label, now in (("events read, groups opened", T0 + 1),
                           ("every group flushed", T0 + 61), ("quiet pass", T0 + 62)):
            t, cpu = time.perf_counter(), time.process_time()
            st = route_pass(engine, now, s)
            print("%-28s %7.2f s wall %7.2f s CPU  events %6d  enqueued %5d"
                  % (label, time.perf_counter() - t, time.process_time() - cpu, st.events,
                     st.enqueued))
        with engine.connect() as c:
            groups = c.execute(select(func.count()).select_from(db.notification_groups)).scalar()
            sample = c.execute(select(db.notifications.c.subject)
                               .where(db.notifications.c.route == "area")).first()
        print("%s, %d schools, %d groups; an area message: %s"
              % (engine.dialect.name, n, groups, sample.subject if sample else None))
    finally:
        engine.dispose()
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    main()
