"""Retention of the connectivity tables, by the store's maintenance, on SQLite and the real
PostgreSQL: link_tests past ``store.link_tests_days``, probe hours past
``link_probe_hours_days``, school days past ``connectivity_history_days`` (the day column
is the province's local date) go; the rest stays; the deletes come in bounded batches."""
import datetime as dt

import pytest
from schoolmon.collector.config import load_config
from schoolmon.collector.store import StateStore, retention
from schoolmon.collector.store import schema as db
from schoolmon.collector.store.registry import add_schools
from sqlalchemy import event, func, select
from zoneinfo import ZoneInfo

from ..storehelp import engine_for

DAY = 86400
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
#: 2026-03-02 00:00 local (a Monday), the maintenance's "now"
NOW = dt.datetime(2026, 3, 2, tzinfo=ZONE).timestamp()
SCHOOLS = ["7900%04d" % i for i in range(3)]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    yield from engine_for(request.param, tmp_path, postgres)


def _seed(engine, days_back):
    """Per school: a test each day, a probe hour each 6 hours, a school day each day, from
    ``days_back`` days before NOW up to NOW."""
    db.create_all(engine)
    add_schools(engine, [dict(code=c, name="Trường %s" % c, level="THCS", area="Bát Xát",
                              province="Lào Cai") for c in SCHOOLS])
    tests, hours, days = [], [], []
    for school in SCHOOLS:
        for k in range(days_back):
            at = NOW - (k + 0.5) * DAY
            tests.append(dict(school_code=school, device_id="pc-" + school, seq=k + 1, ts=at,
                              received_at=at + 1, ok=True, down_mbps=30.0))
            day = dt.datetime.fromtimestamp(at, ZONE).date().isoformat()
            days.append(dict(school_code=school, day=day, status="meets", tests=1,
                             bytes=1, evaluated_at=at))
            for h in range(0, 24, 6):
                hours.append(dict(school_code=school, hour_start=int(NOW - (k + 1) * DAY)
                                  + h * 3600, n=4))
    with engine.begin() as c:
        c.execute(db.link_tests.insert(), tests)
        c.execute(db.link_probe_hours.insert(), hours)
        c.execute(db.connectivity_school_days.insert(), days)


def _count(engine, table):
    with engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(table)).scalar_one())


def _oldest(engine, col):
    with engine.connect() as c:
        return c.execute(select(func.min(col))).scalar_one()


def test_defaults_keep_a_school_year_of_tests_and_follow_the_config(engine):
    cfg = load_config(None, env={}, demo=True, overrides={"store": {
        "link_tests_days": 400, "link_probe_hours_days": 90,
        "connectivity_history_days": 730}})
    assert retention.Keep() == StateStore.from_config(cfg, engine).keep
    _seed(engine, 800)
    store = StateStore(engine, keep=retention.Keep(), timezone="Asia/Ho_Chi_Minh")
    out = store.maintain(NOW)
    n = len(SCHOOLS)
    assert out["pruned_link_tests"] == n * (800 - 400)
    assert out["pruned_probe_hours"] == n * 4 * (800 - 90)
    assert out["pruned_school_days"] == n * (800 - 730)
    assert _count(engine, db.link_tests) == n * 400
    assert _count(engine, db.link_probe_hours) == n * 4 * 90
    assert _count(engine, db.connectivity_school_days) == n * 730
    assert _oldest(engine, db.link_tests.c.ts) >= NOW - 400 * DAY
    assert _oldest(engine, db.link_probe_hours.c.hour_start) >= NOW - 90 * DAY
    first_day = dt.datetime.fromtimestamp(NOW - 730 * DAY, ZONE).date().isoformat()
    assert _oldest(engine, db.connectivity_school_days.c.day) == first_day
    # idempotent: nothing more to prune at the same moment
    again = store.maintain(NOW)
    assert again["pruned_link_tests"] == again["pruned_probe_hours"] == 0
    assert again["pruned_school_days"] == 0


def test_deletes_come_in_bounded_batches(engine):
    """Each statement deletes at most ``batch`` rows in its own transaction; after
    ``max_batches`` the rest waits for the next run."""
    _seed(engine, 60)
    statements = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("DELETE"):
            statements.append(statement)
    event.listen(engine, "before_cursor_execute", seen)
    keep = retention.Keep(link_tests_days=31, link_probe_hours_days=8,
                          connectivity_history_days=30)
    try:
        out = retention.prune_connectivity(engine, keep, NOW, batch=10, max_batches=3)
        # 3 × 29 tests are due; three batches of 10 went, the rest waits
        assert out["pruned_link_tests"] == 30 and out["pruned_probe_hours"] == 30
        assert out["pruned_school_days"] == 30
        assert len(statements) == 9
        out = retention.prune_connectivity(engine, keep, NOW, batch=1000)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert out["pruned_link_tests"] == len(SCHOOLS) * 29 - 30
    assert _count(engine, db.link_tests) == len(SCHOOLS) * 31
    assert _count(engine, db.link_probe_hours) == len(SCHOOLS) * 4 * 8
