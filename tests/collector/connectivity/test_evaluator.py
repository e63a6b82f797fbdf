"""The connectivity evaluator on crafted link_tests and link_probe_hours rows (SQLite and
the real PostgreSQL), the clock injected: each status, each reason, N consecutive failures
and the recovery (one event each way), insufficient after 7 days, the per-student rule,
the contract %, the week's median rather than one test."""

import itertools

import pytest
from schoolmon.collector.connectivity.baseline import (
    SHIPPED_CONNECTIVITY_FILE,
    load_connectivity,
    parse_connectivity,
)
from schoolmon.collector.connectivity.evaluator import EVENT_KIND, Evaluator, status_counts
from schoolmon.collector.store import schema as db
from schoolmon.collector.store.registry import add_schools
from sqlalchemy import select

from ..storehelp import engine_for

DAY = 86400
# Wednesday 2026-01-14 12:00 in Hà Nội (05:00 UTC); 2026-01-12 is the Monday
NOW = 1_768_366_800.0
MONDAY_LOCAL0 = 1_768_150_800.0  # 2026-01-12 00:00 +07:00
_seq = itertools.count(1)
SCHOOLS = ("S-A", "S-B", "S-C")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    for e in engine_for(request.param, tmp_path, postgres):
        db.create_all(e)
        add_schools(e, [dict(code=c, name="Trường " + c, level="THPT", area="Huyện Bát Xát",
                             province="Lào Cai") for c in SCHOOLS])
        yield e


def school_day(k):
    """10:00 local on the k-th school day before NOW's (0: today, Wednesday; Sunday skipped)."""
    day = MONDAY_LOCAL0 + 2 * DAY  # Wednesday 00:00 local
    n = 0
    while n < k:
        day -= DAY
        if (int(day + 7 * 3600) // DAY + 3) % 7 + 1 != 7:
            n += 1
    return day + 10 * 3600


def add_test(engine, school, ts, ok=True, down=40.0, up=10.0, ping=15.0, refused=None,
             device="pc-1"):
    with engine.begin() as c:
        c.execute(db.link_tests.insert().values(
            school_code=school, device_id=device, seq=next(_seq), ts=ts, received_at=ts + 1,
            ok=ok, reason=None if ok else "timeout", down_mbps=down if ok else None,
            up_mbps=up if ok else None, ping_ms=ping if ok else None, bytes_rx=10 ** 7,
            bytes_tx=10 ** 6, refused=refused))


def add_probes(engine, school, hour_start, n=12, dom_ok=12, intl_ok=12):
    with engine.begin() as c:
        c.execute(db.link_probe_hours.insert().values(
            school_code=school, hour_start=int(hour_start), n=n, gw_n=n, gw_ok=n, gw_ms=n * 1.0,
            dns_n=n, dns_ok=n, dns_ms=n * 5.0, dom_n=n, dom_ok=dom_ok, dom_ms=dom_ok * 20.0,
            intl_n=n, intl_ok=intl_ok, intl_ms=intl_ok * 150.0))


def good_week(engine, school, days=5, **kw):
    for k in range(days):
        add_test(engine, school, school_day(k) - 3600, **kw)
        add_test(engine, school, school_day(k) + 3600, **kw)


def set_school(engine, code, **values):
    if not values:
        return
    with engine.begin() as c:
        c.execute(db.schools.update().where(db.schools.c.code == code).values(**values))


def judged(engine, code):
    with engine.connect() as c:
        return c.execute(select(db.connectivity_schools).where(
            db.connectivity_schools.c.school_code == code)).first()


def shipped():
    with open(SHIPPED_CONNECTIVITY_FILE, encoding="utf-8") as fh:
        return fh.read()


def codes(row):
    return [r["code"] for r in row.detail["reasons"]]


@pytest.fixture
def ev(engine):
    return Evaluator(engine, load_connectivity())


def test_meets_then_each_reason(engine, ev):
    good_week(engine, "S-A")
    for k in range(5):
        add_probes(engine, "S-A", school_day(k) + 3600)  # 11:00 local
    stats, events = ev.run_once(NOW)
    assert stats.full and stats.schools == 3
    a = judged(engine, "S-A")
    assert (a.status, codes(a)) == ("meets", [])
    d = a.detail
    assert d["week"]["days"] == 5 and d["week"]["tests"] == 10 and d["week"]["down_mbps"] == 40
    assert d["week"]["uptime_pct"] == 100 and d["week"]["intl_ok_pct"] == 100
    assert d["week"]["dom_ms"] == 20 and d["week"]["intl_ms"] == 150
    assert d["day"]["date"] == "2026-01-14" and d["day"]["tests"] == 2
    assert d["thresholds"]["required_down_mbps"] == 20 and d["thresholds"]["contract_pct"] == 80
    assert d["last_test"]["device"] == "pc-1" and d["consecutive_failures"] == 0
    assert judged(engine, "S-B").status == "insufficient"
    assert codes(judged(engine, "S-B")) == ["no_recent_test"]
    assert sorted((e.school, e.detail["to"]) for e in events) == [
        ("S-A", "meets"), ("S-B", "insufficient"), ("S-C", "insufficient")]
    assert all(e.kind == EVENT_KIND and e.detail["from"] == "not_evaluated" for e in events)
    with engine.connect() as c:
        days = c.execute(select(db.connectivity_school_days).where(
            db.connectivity_school_days.c.school_code == "S-A")).all()
    assert len(days) == 5 and {x.status for x in days} == {"meets"}
    assert days[0].bytes == 2 * 11_000_000 and days[0].uptime_pct == 100

    cases = [  # (test values, school columns, expected status, expected reasons)
        (dict(down=0.5), {}, "below", ["down_below_bad"]),
        (dict(down=10.0), {}, "improve", ["down_below_good"]),
        (dict(up=2.0), {}, "improve", ["up_below_good"]),
        (dict(ping=250.0), {}, "improve", ["ping_high"]),
        (dict(down=30.0), dict(students=1000), "improve", ["down_below_good"]),
        (dict(down=30.0), dict(students=400), "meets", []),
        (dict(down=70.0), dict(contracted_down_mbps=100.0), "improve", ["below_contract"]),
        (dict(down=85.0), dict(contracted_down_mbps=100.0), "meets", []),
    ]
    for i, (values, cols, status, reasons) in enumerate(cases):
        with engine.begin() as c:
            c.execute(db.link_tests.delete().where(db.link_tests.c.school_code == "S-B"))
            c.execute(db.schools.update().where(db.schools.c.code == "S-B").values(
                students=None, contracted_down_mbps=None))
        set_school(engine, "S-B", **cols)
        good_week(engine, "S-B", **values)
        ev.run_once(NOW + i, full=True)
        b = judged(engine, "S-B")
        assert (b.status, codes(b)) == (status, reasons), (values, cols)
    b = judged(engine, "S-B")
    assert b.detail["contracted"] == {"down_mbps": 100.0, "up_mbps": None}
    assert judged(engine, "S-B").detail["thresholds"]["required_down_mbps"] == 20
    set_school(engine, "S-B", students=1000)
    ev.run_once(NOW + 20, full=True)
    assert judged(engine, "S-B").detail["thresholds"]["required_down_mbps"] == 50


def test_uptime_intl_and_school_hours(engine, ev):
    good_week(engine, "S-A")
    for k in range(5):
        base = school_day(k) - 10 * 3600  # 00:00 local
        add_probes(engine, "S-A", base + 9 * 3600, dom_ok=10, intl_ok=12)
        add_probes(engine, "S-A", base + 22 * 3600, dom_ok=0, intl_ok=0)  # night
    ev.run_once(NOW)
    a = judged(engine, "S-A")
    assert (a.status, codes(a)) == ("improve", ["uptime_low"])
    assert a.detail["week"]["uptime_pct"] == pytest.approx(83.33)
    good_week(engine, "S-C")
    for k in range(5):
        add_probes(engine, "S-C", school_day(k), intl_ok=6)
    ev.run_once(NOW + 1, full=True)
    c = judged(engine, "S-C")
    assert (c.status, codes(c)) == ("improve", ["intl_unreachable"])
    assert c.detail["reasons"][0]["value"] == 50


def test_week_median_not_one_test_and_variability(engine, ev):
    good_week(engine, "S-A")
    add_test(engine, "S-A", school_day(0) + 1800, down=0.4)  # one bad test: still meets
    for k in range(5):  # S-C alternates 22 and 150 Mbit/s: median passes, spread high
        add_test(engine, "S-C", school_day(k), down=22.0)
        add_test(engine, "S-C", school_day(k) + 3600, down=150.0)
    add_test(engine, "S-C", school_day(0) + 7200, down=30.0)
    ev.run_once(NOW)
    assert judged(engine, "S-A").status == "meets"
    c = judged(engine, "S-C")
    assert (c.status, codes(c)) == ("improve", ["high_variability"])
    # the refused tests never count
    add_test(engine, "S-B", school_day(0), down=9000.0, refused="implausible")
    ev.run_once(NOW + 1)
    assert judged(engine, "S-B").status == "insufficient"


def test_consecutive_failures_below_then_recovery(engine, ev):
    good_week(engine, "S-A")
    ev.run_once(NOW)
    assert judged(engine, "S-A").status == "meets"
    add_test(engine, "S-A", NOW + 60, ok=False)
    add_test(engine, "S-A", NOW + 120, ok=False)
    _, events = ev.run_once(NOW + 200)
    a = judged(engine, "S-A")
    assert a.status == "meets" and a.detail["consecutive_failures"] == 2 and not events
    add_test(engine, "S-A", NOW + 180, ok=False)
    stats, events = ev.run_once(NOW + 300)
    assert not stats.full and stats.schools == 1  # only the school with a new test
    a = judged(engine, "S-A")
    assert (a.status, codes(a)) == ("below", ["tests_failing"])
    assert a.detail["reasons"][0] == {"code": "tests_failing", "value": 3, "limit": 3}
    assert [(e.detail["from"], e.detail["to"]) for e in events] == [("meets", "below")]
    assert a.since == NOW + 300
    add_test(engine, "S-A", NOW + 400)
    _, events = ev.run_once(NOW + 500)
    assert judged(engine, "S-A").status == "meets"
    assert [(e.detail["from"], e.detail["to"]) for e in events] == [("below", "meets")]
    with engine.connect() as c:
        stored = c.execute(select(db.events.c.detail).where(db.events.c.kind == EVENT_KIND,
                                                            db.events.c.school == "S-A")).all()
    assert [x.detail["to"] for x in stored] == ["meets", "below", "meets"]
    # nothing new: only the overlap's school judged again (OVERLAP s of the watermark), no
    # event; another school's new test: that school only
    stats, events = ev.run_once(NOW + 600)
    assert stats.schools <= 1 and not events
    add_test(engine, "S-B", NOW + 900)
    stats, events = ev.run_once(NOW + 1000)
    assert stats.schools <= 2 and [e.school for e in events] == ["S-B"]


def test_insufficient_after_seven_days_and_baseline_change(engine, ev):
    good_week(engine, "S-A")
    ev.run_once(NOW)
    assert judged(engine, "S-A").status == "meets"
    _, events = ev.run_once(NOW + 8 * DAY)  # a new local day: everything again
    assert judged(engine, "S-A").status == "insufficient"
    assert [(e.school, e.detail["to"]) for e in events] == [("S-A", "insufficient")]
    with engine.connect() as c:
        assert status_counts(c) == {"meets": 0, "improve": 0, "below": 0, "insufficient": 3}
        assert status_counts(c, ["S-A", "S-X"])["insufficient"] == 2
    # a baseline that asks more: every school judged again at once (same day)
    good_week(engine, "S-B")
    ev.run_once(NOW + 1)
    strict = parse_connectivity(shipped().replace("good_mbps = 20", "good_mbps = 50"),
                                "strict")
    ev2 = Evaluator(engine, strict)
    stats, _ = ev2.run_once(NOW + 2)
    assert stats.full
    assert (judged(engine, "S-B").status, codes(judged(engine, "S-B"))) == (
        "improve", ["down_below_good"])
    with engine.connect() as c:
        got = status_counts(c)
    assert got == {"meets": 0, "improve": 2, "below": 0, "insufficient": 1}  # S-A, S-B at 40


def test_contract_off(engine):
    b = parse_connectivity(shipped().replace("min_pct = 80", "min_pct = 0"), "off")
    assert b.contract_pct is None
    set_school(engine, "S-A", contracted_down_mbps=100.0)
    good_week(engine, "S-A", down=50.0)
    Evaluator(engine, b).run_once(NOW)
    a = judged(engine, "S-A")
    assert a.status == "meets" and a.detail["thresholds"]["contract_pct"] is None






def test_failures_under_fail_after_are_never_a_reason(engine, ev):
    # a week of good tests, then one failure: still meets, no reason
    good_week(engine, "S-A")
    add_test(engine, "S-A", NOW - 60, ok=False)
    # only one failed test in the week (no successful one): not enough data, not improve
    add_test(engine, "S-B", NOW - 60, ok=False)
    add_test(engine, "S-C", NOW - 120, ok=False)
    add_test(engine, "S-C", NOW - 60, ok=False)
    ev.run_once(NOW)
    a, b, c = (judged(engine, x) for x in SCHOOLS)
    assert (a.status, codes(a), a.detail["consecutive_failures"]) == ("meets", [], 1)
    for row, n in ((b, 1), (c, 2)):
        assert row.status == "insufficient"
        assert row.detail["reasons"] == [{"code": "no_successful_test", "value": n,
                                          "limit": 3}]
        assert "tests_failing" not in codes(row)
    # the third failure in a row: below at once
    add_test(engine, "S-C", NOW + 60, ok=False)
    ev.run_once(NOW + 120)
    c = judged(engine, "S-C")
    assert (c.status, codes(c)) == ("below", ["tests_failing"])
