"""The demo's past 30 days (``simulate.write_history``), written into a real state store
(SQLite and PostgreSQL) as the demo writes it, and read back through the real API
(uvicorn, httpx): a lab PC's 30-day series has hundreds of hourly points and none at
night, a router reports around the clock, the overview's 30-day trend shows Sundays
below school days, "offline for more than 3 days" finds devices, and writing twice
leaves the store as writing once."""
import datetime as dt
import time
from typing import Dict

import httpx
import pytest
from schoolmon.collector.api import create_app
from schoolmon.collector.simulate import live_province, province_fixture, write_history
from schoolmon.collector.simulate.history import build_history
from schoolmon.collector.store import registry
from schoolmon.collector.store import schema as db
from schoolmon.collector.text import parse_time
from sqlalchemy import func, select
from zoneinfo import ZoneInfo

from tests.collector.api.apihelp import LiveServer, _cfg, client
from tests.e2e_help import fresh_database

SCHOOLS, PER_SCHOOL = 36, 9  # the demo's defaults
DAY = 86400
VN = ZoneInfo("Asia/Ho_Chi_Minh")


def local(value) -> dt.datetime:
    """A time of the API (ISO 8601) in Vietnam."""
    return parse_time(value).astimezone(VN)


def epoch(value) -> float:
    return parse_time(value).timestamp()


def _counts(engine) -> Dict[str, int]:
    out = {}
    with engine.connect() as conn:
        for t in (db.rollup_5m, db.rollup_1h, db.events, db.devices, db.device_latest):
            out[t.name] = int(conn.execute(select(func.count()).select_from(t)).scalar_one())
        out["messages_1h"] = int(conn.execute(select(func.sum(db.rollup_1h.c.n))).scalar_one())
    return out


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled(request, tmp_path_factory):
    if request.param == "sqlite":
        engine = db.make_engine("sqlite:///%s" % (tmp_path_factory.mktemp("hist") / "s.db"))
    else:
        engine = db.make_engine(fresh_database(request.getfixturevalue("postgres")))
    db.create_all(engine)
    province = province_fixture(SCHOOLS, PER_SCHOOL, seed=1)
    registry.add_schools(engine, province.school_rows())
    now = time.time()
    stats = write_history(engine, province, now=now)
    print("history (%s): %d devices, %d 5-min + %d hourly rollups, %d events in %.2f s"
          % (request.param, stats.devices, stats.rows_5m, stats.rows_1h, stats.events,
             stats.seconds))
    first = _counts(engine)
    again = write_history(engine, province, now=now)  # the demo restarted on the same store
    print("again (%s): %.2f s" % (request.param, again.seconds))
    srv = LiveServer(create_app(engine, _cfg()))
    yield province, engine, srv, first
    srv.stop()
    engine.dispose()


@pytest.fixture
def c(filled):
    with client(filled[2]) as cl:
        yield cl


def test_writing_twice_leaves_the_store_as_writing_once(filled):
    province, engine, _srv, first = filled
    assert _counts(engine) == first
    gone = [d for d in province.devices if not d.online]
    # their last inventory and health; every PC's last inventory and security before now
    # (its agent has the family), so the evaluator's first pass judges facts, not silence
    reporting = [d for d in province.devices if d.sec is not None and d.sec.reports]
    live = [d for d in reporting if d.online]
    assert live
    assert first["devices"] == len(province.devices)
    assert first["device_latest"] == 2 * len(gone) + len(reporting) + len(live)
    assert first["rollup_5m"] > 10_000 and first["rollup_1h"] > 50_000


def test_the_same_seed_gives_the_same_past_and_another_seed_another():
    province = province_fixture(4, 9, seed=1)
    now = 1_780_000_000.0
    one, two = build_history(province, now), build_history(province, now)
    assert one == two
    assert build_history(province, now, seed=2)[1] != one[1]


def test_a_lab_pc_has_hundreds_of_hourly_points_in_30_days_and_none_at_night(filled, c):
    province = filled[0]
    now = int(time.time())
    labs = [d for d in province.devices if d.role == "lab" and d.online][:5]
    for d in labs:
        r = c.get("/api/v1/devices/%s/series" % d.id,
                  params={"metric": "cpu_pct", "from": now - 30 * DAY, "to": now})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["resolution"] == 3600
        points = body["points"]
        assert len(points) >= 150, (d.id, len(points))
        hours = [local(p["ts"]) for p in points]
        # lab PCs are on in school hours only: no report at night, none on a Sunday
        assert not [t for t in hours if t.hour >= 18 or t.hour < 6], d.id
        assert not [t for t in hours if t.weekday() == 6], d.id
        assert all(0 <= p["min"] <= p["mean"] <= p["max"] for p in points)


def test_a_router_and_a_server_report_around_the_clock(filled, c):
    province = filled[0]
    now = int(time.time())
    router = next(d for d in province.devices if d.role == "router" and d.online)
    month = c.get("/api/v1/devices/%s/series" % router.id,
                  params={"metric": "rx", "from": now - 30 * DAY, "to": now}).json()
    assert len(month["points"]) >= 29 * 24
    night = [p for p in month["points"]
             if local(p["ts"]).hour in (0, 1, 2, 3)]
    assert len(night) >= 29 * 4
    day = c.get("/api/v1/devices/%s/series" % router.id, params={"metric": "rx"}).json()
    assert day["resolution"] == 300 and len(day["points"]) >= 280  # 288 in 24 h


def test_a_school_page_charts_its_whole_week(filled, c):
    """The 7-day chart reads the hourly rollups for the days the 5-minute ones no longer
    hold (the history keeps 2 days of those): its routers report in every hour of the week."""
    province = filled[0]
    router = next(d for d in province.devices if d.role == "router" and d.online)
    school = c.get("/api/v1/schools/%s" % router.school).json()
    points = school["online_hourly"]["points"]
    assert len(points) == 168
    now = time.time()
    older = [p for p in points if epoch(p["ts"]) < now - 3 * DAY]
    assert older and all(p["n"] >= 1 for p in older), older[:5]


def test_profiles_show_in_the_values(filled, c):
    province = filled[0]
    now = int(time.time())

    def mean(d, metric):
        pts = c.get("/api/v1/devices/%s/series" % d.id,
                    params={"metric": metric, "from": now - 30 * DAY, "to": now}).json()["points"]
        return sum(p["mean"] for p in pts) / len(pts)

    slow = next(d for d in province.devices if d.profile == "slow" and d.role == "lab")
    busy = next(d for d in province.devices if d.profile == "busy")
    normal = next(d for d in province.devices if d.profile == "normal" and d.role == "lab")
    assert mean(slow, "disk_pct") > 90 > mean(normal, "disk_pct")
    assert mean(busy, "cpu_pct") > 60 > mean(normal, "cpu_pct")
    assert mean(busy, "temp") > 0


def test_the_overview_trend_has_30_days_with_sundays_below_school_days(c):
    body = c.get("/api/v1/overview").json()
    points = body["trend"]["points"][:-1]  # today comes from last_seen (no live fleet here)
    assert len(body["trend"]["points"]) == 30
    by_day: Dict[int, list] = {}
    for p in points:
        by_day.setdefault(local(p["ts"]).weekday(), []).append(p["n"])
    sundays = by_day[6]
    school_days = [n for wd in range(5) for n in by_day.get(wd, [])]
    assert sundays and school_days and min(sundays) > 0  # servers and routers never sleep
    assert max(sundays) < min(school_days), by_day


def test_offline_for_more_than_3_days_finds_devices_with_their_history(filled, c):
    now = time.time()
    r = c.get("/api/v1/devices", params={"offline_days": 3, "per_page": 500})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) >= 5, items
    assert all(d["status"] == "offline" and epoch(d["last_seen"]) < now - 3 * DAY
               and d["status_since"] for d in items)
    # the devices that went away days ago (the live simulation leaves them away; a lab PC
    # unused for a few school days can be here too until the live simulation runs)
    live = {d.id for d in live_province(filled[0]).devices}
    away = [d for d in items if d["id"] not in live]
    assert len(away) >= 5 and all(d["offline_reason"] == "lost" for d in away), away
    one = c.get("/api/v1/devices/" + away[0]["id"]).json()
    assert one["history"][0]["status"] == "offline" and one["history"][0]["reason"] == "lost"
    assert one["history"][1]["status"] == "online"
    assert one["os"] and "inventory" in one["latest"] and "health" in one["latest"]
    # and a router of a router-down school went away hours ago, not days: 2-20 h before
    # the start of today (UTC; history.offline_since), whatever the time of day now
    since_midnight = now - now // DAY * DAY
    routers = c.get("/api/v1/devices", params={"role": "router", "status": "offline"}).json()
    assert routers["items"] and all(now - epoch(d["last_seen"]) < 20 * 3600 + since_midnight
                                    for d in routers["items"] if d["id"].endswith("router01"))


def test_every_device_reported_in_the_past_month(filled, c):
    _province, engine, _srv, _first = filled
    with engine.connect() as conn:
        heard = set(conn.execute(select(db.rollup_1h.c.device_id).distinct()).scalars())
    assert heard == {d.id for d in filled[0].devices}
    assert httpx.get(filled[2].url + "/api/v1/summary").status_code == 401  # no token


def test_a_restart_later_on_the_same_store_repeats_nothing(tmp_path):
    engine = db.make_engine("sqlite:///%s" % (tmp_path / "s.db"))
    db.create_all(engine)
    province = province_fixture(4, 9, seed=1)
    registry.add_schools(engine, province.school_rows())
    now = time.time()
    first = write_history(engine, province, now=now - 3 * 3600)
    write_history(engine, province, now=now)  # the demo started again three hours later
    e = db.events.c
    with engine.connect() as conn:
        n_events = conn.execute(select(func.count()).select_from(db.events)).scalar_one()
        distinct = conn.execute(select(func.count()).select_from(
            select(e.device, e.kind, e.ts).distinct().subquery())).scalar_one()
        n_devices = conn.execute(select(func.count()).select_from(db.devices)).scalar_one()
    assert n_events == distinct  # no switch-on or switch-off twice
    assert first.events - 50 <= n_events <= first.events + 50
    assert n_devices == len(province.devices)
    engine.dispose()


def test_most_devices_were_approved_long_ago_and_a_few_wait(filled, c):
    """A running province: about one device in 25 is new and waits for approval, the others
    are active (the demo has both, and the approve button something to do)."""
    province, _engine, _srv, _first = filled
    from schoolmon.collector.simulate.history import awaiting_approval
    waiting = {d.id for d in province.devices if awaiting_approval(d)}
    assert 0 < len(waiting) < len(province.devices) // 10
    body = c.get("/api/v1/devices", params={"state": "pending", "per_page": 500}).json()
    assert {i["id"] for i in body["items"]} == waiting
    active = c.get("/api/v1/devices", params={"state": "active", "per_page": 1}).json()
    assert active["total"] == len(province.devices) - len(waiting)
