"""Connectivity on the school calendar: no speed test is planned on a day that is no school
day for the school (a holiday, a break, its own closure), and the evaluator counts only the
calendar's school days; SQLite and PostgreSQL, the clock injected (Monday 2 March 2026)."""
import datetime as dt

from schoolmon.collector.alerting.calendar import ALWAYS_OPEN, load_calendar, parse_calendar
from schoolmon.collector.connectivity.evaluator import SchoolHours
from schoolmon.collector.store import school_state

from . import test_leases
from .connhelp import Clock, add_device, local
from .test_leases import FIBRE, MOBILE, PLAN_KEY, Sent, scheduler

# the lease tests' stores (SQLite and PostgreSQL, two schools in Bát Xát)
url = test_leases.url
engine = test_leases.engine

WEEK = "".join('%s = "07:00-17:00"\n' % d for d in ("mon", "tue", "wed", "thu", "fri", "sat"))
CAL = parse_calendar(
    '[windows.school_hours]\n' + WEEK
    + '[[school_years]]\nname = "2025–2026"\nstart = 2025-09-05\nend = 2026-05-31\n'
    '[[school."%s".holidays]]\nname = "Nghỉ do lũ lụt"\ndate = 2026-03-02\n' % FIBRE)


def plan(engine, school):
    with engine.connect() as c:
        return school_state.read(c, school, PLAN_KEY).value


def test_no_test_planned_on_a_school_closure(engine):
    add_device(engine, FIBRE, "off-01", "office", probe={"wired": True}, since=local(7))
    add_device(engine, MOBILE, "y-01", "office", probe={"wired": True}, since=local(7))
    clock, sent = Clock(local(9)), Sent()
    sch = scheduler(engine, clock, sent)
    sch.calendar = CAL
    for i in range(72):  # 09:00 to 21:00, every 10 minutes
        clock.t = local(9) + 600 * i
        sch.run_once()
    assert plan(engine, FIBRE) is None  # flooded: no plan, no grant
    assert plan(engine, MOBILE)["day"] == "2026-03-02"
    assert {school for school, _d, _f in sent.grants} == {MOBILE}


def test_always_open_changes_nothing(engine):
    add_device(engine, FIBRE, "off-01", "office", probe={"wired": True}, since=local(7))
    clock, sent = Clock(local(9)), Sent()
    sch = scheduler(engine, clock, sent)
    sch.calendar = ALWAYS_OPEN
    sch.run_once()
    assert plan(engine, FIBRE)["day"] == "2026-03-02"


def day_index(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def test_the_evaluators_school_days_ask_the_calendar():
    shipped = load_calendar(None)
    hours = SchoolHours((1, 2, 3, 4, 5, 6), 8, 20, shipped)
    plain = SchoolHours((1, 2, 3, 4, 5, 6), 8, 20)
    for day, expected in ((dt.date(2026, 12, 2), True),    # a Wednesday
                          (dt.date(2026, 12, 6), False),   # Sunday
                          (dt.date(2027, 2, 8), False),    # the Tết break
                          (dt.date(2027, 4, 16), False),   # Giỗ Tổ Hùng Vương
                          (dt.date(2027, 7, 15), False)):  # the summer break
        assert hours.is_school_day(day_index(day)) is expected, day
    assert plain.is_school_day(day_index(dt.date(2027, 2, 8)))  # without: weekdays only
    closure = SchoolHours((1, 2, 3, 4, 5, 6), 8, 20, CAL)
    assert not closure.is_school_day(day_index(dt.date(2026, 3, 2)), FIBRE, "LCI/bat-xat")
    assert closure.is_school_day(day_index(dt.date(2026, 3, 2)), MOBILE, "LCI/bat-xat")
