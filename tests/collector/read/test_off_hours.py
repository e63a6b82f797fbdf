"""Liveness on the school calendar (issue 11, item 1), SQLite and PostgreSQL, through the
real writer: lab and office PCs offline outside their hours are ``off_hours`` ("ngoài giờ
học"), not offline; a school whose only silent devices are those is not "partial"; servers
keep the "always" window. The clock is the test's: every read is at a fixed ``now``."""
import datetime as dt
from typing import Any, Iterator

import pytest
from schoolmon.collector.alerting.calendar import ALWAYS_OPEN, load_calendar, parse_calendar
from schoolmon.collector.read import devices, org, schools, summary
from schoolmon.collector.store import StateStore, registry
from schoolmon.collector.store import schema as db

from tests.collector.storehelp import engine_for, received

CAL = load_calendar(None)
TZ = CAL.tz
PROVINCE = "Lào Cai"


def at(*args: int) -> float:
    return dt.datetime(*args, tzinfo=TZ).timestamp()


WED_10 = at(2026, 12, 2, 10, 0)      # a school day, in school hours
WED_21 = at(2026, 12, 2, 21, 0)      # the same day at night
THU_10 = at(2026, 12, 3, 10, 0)
SUN_10 = at(2026, 12, 6, 10, 0)
TET_10 = at(2027, 2, 8, 10, 0)       # Monday in the Tết break


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path) -> Iterator[Any]:
    pg = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    gen = engine_for(request.param, tmp_path, pg)
    eng = next(gen)
    db.create_all(eng)
    registry.add_schools(eng, [
        {"code": "A1", "name": "Trường Tiểu học Kim Đồng", "level": "TH", "area": "Bát Xát",
         "province": PROVINCE},
        {"code": "B1", "name": "Trường Mầm non Hoa Sen", "level": "MN", "area": "Sa Pa",
         "province": PROVINCE},
        {"code": "C1", "name": "Trường THCS Sa Pa", "level": "THCS", "area": "Sa Pa",
         "province": PROVINCE}])
    store = StateStore(eng)

    def device(school: str, dev: str, role: str, online: bool) -> None:
        t = WED_10 - 3600
        msgs = [received(school, dev, "inventory", 1, t, role=role),
                received(school, dev, "status", 2, t + 1, state="online", hb=60)]
        if not online:  # switched off after school
            msgs.append(received(school, dev, "status", 3, at(2026, 12, 2, 17, 30),
                                 state="offline", reason="shutdown"))
        store.commit(store.prepare(msgs))

    device("A1", "a-lab1", "lab", False)
    device("A1", "a-lab2", "lab", False)
    device("A1", "a-srv", "server", True)
    device("B1", "b-lab1", "lab", False)
    device("B1", "b-off1", "office", False)
    device("C1", "c-lab1", "lab", True)
    device("C1", "c-srv", "server", False)   # a server off at night is news
    try:
        yield eng
    finally:
        try:
            next(gen)
        except StopIteration:
            pass


def statuses(engine: Any, now: float, calendar: Any = CAL) -> dict:
    with engine.connect() as c:
        lst = schools.list_schools(c, None, now=now, calendar=calendar)
    return {i["code"]: i["status"] for i in lst["items"]}


def test_at_night_lab_pcs_are_off_hours_and_their_school_is_fine(engine):
    assert statuses(engine, WED_21) == {"A1": "online", "B1": "off_hours", "C1": "partial"}
    with engine.connect() as c:
        a1 = schools.get_school(c, "A1", None, now=WED_21, calendar=CAL)
        by_id = {d["id"]: d for d in a1["devices"]}
        assert by_id["a-lab1"]["status"] == "off_hours"
        assert by_id["a-lab1"]["offline_since"] == at(2026, 12, 2, 17, 30) + 1  # received
        assert by_id["a-srv"]["status"] == "online"
        assert a1["status"] == "online" and a1["condition"] == "all_online"
        assert a1["counts"]["offline"] == 0 and a1["counts"]["off_hours"] == 2
        c1 = schools.get_school(c, "C1", None, now=WED_21, calendar=CAL)
        assert {d["id"]: d["status"] for d in c1["devices"]} == {"c-lab1": "online",
                                                                 "c-srv": "offline"}
        dev = devices.get_device(c, "b-off1", None, calendar=CAL, now=WED_21)
        assert dev["status"] == "off_hours"  # office hours end at 17:00 too


@pytest.mark.parametrize("now", [WED_10, THU_10])
def test_in_school_hours_they_are_offline_as_before(engine, now):
    assert statuses(engine, now) == {"A1": "partial", "B1": "offline", "C1": "partial"}


@pytest.mark.parametrize("now", [SUN_10, TET_10])
def test_sunday_and_tet_are_outside_school_hours(engine, now):
    assert statuses(engine, now) == {"A1": "online", "B1": "off_hours", "C1": "partial"}


def test_always_open_keeps_the_old_statuses_at_any_hour(engine):
    for now in (WED_21, SUN_10):
        assert statuses(engine, now, ALWAYS_OPEN) == statuses(engine, now, None) == {
            "A1": "partial", "B1": "offline", "C1": "partial"}


def test_filters_and_cards_add_up(engine):
    with engine.connect() as c:
        s = summary.summary(c, None, WED_21, calendar=CAL)
        o = summary.overview(c, None, WED_21, calendar=CAL)
        tree = org.org_tree(c, None, calendar=CAL, now=WED_21)
        off = devices.list_devices(c, None, status="off_hours", now=WED_21, calendar=CAL)
        offline = devices.list_devices(c, None, status="offline", now=WED_21, calendar=CAL)
        by_filter = {st: schools.list_schools(c, None, status=st, now=WED_21,
                                              calendar=CAL)["total"]
                     for st in schools.SCHOOL_STATUSES}
    assert s["schools"]["by_status"] == {"offline": 0, "partial": 1, "online": 1,
                                         "off_hours": 1, "no_devices": 0}
    assert o["schools"]["by_status"] == s["schools"]["by_status"] == by_filter
    assert sum(s["schools"]["by_status"].values()) == s["schools"]["total"] == 3
    dev = s["devices"]["by_status"]
    assert dev == {"online": 2, "offline": 1, "off_hours": 4, "unknown": 0}
    assert o["devices"]["by_status"] == dev
    assert sum(dev.values()) == s["devices"]["total"] == 7
    assert sorted(d["id"] for d in off["items"]) == ["a-lab1", "a-lab2", "b-lab1", "b-off1"]
    assert {d["status"] for d in off["items"]} == {"off_hours"}
    assert [d["id"] for d in offline["items"]] == ["c-srv"]
    assert off["total"] == dev["off_hours"] and offline["total"] == dev["offline"]
    counts = tree["counts"]
    assert (counts["schools_online"], counts["schools_partial"], counts["schools_off_hours"],
            counts["offline"], counts["off_hours"]) == (1, 1, 1, 1, 4)
    assert sum(a["off_hours"] for a in o["areas"]) == 4


def test_a_school_override_and_a_closure(engine):
    # B1 has lessons until 22:00 (a boarding school); the whole Bát Xát area is closed by
    # a flood on Thursday
    with engine.connect() as c:
        area = schools.get_school(c, "A1", None)["area"]["code"]
    cal = parse_calendar(
        '[windows.school_hours]\n'
        + "".join('%s = "07:00-17:00"\n' % d for d in ("mon", "tue", "wed", "thu", "fri"))
        + '[windows.office_hours]\non = "working_days"\n'
        + "".join('%s = "07:00-17:00"\n' % d for d in ("mon", "tue", "wed", "thu", "fri"))
        + '[[school_years]]\nname = "2026–2027"\nstart = 2026-09-05\nend = 2027-05-31\n'
        '[school."B1".windows.school_hours]\nwed = "07:00-22:00"\n'
        '[[area."%s".holidays]]\nname = "Nghỉ do lũ lụt"\ndate = 2026-12-03\n' % area)
    # B1: its lab PC is missing until 22:00, its office PC is off hours: nothing online
    assert statuses(engine, WED_21, cal) == {"A1": "online", "B1": "offline", "C1": "partial"}
    assert statuses(engine, THU_10, cal) == {"A1": "online", "B1": "offline", "C1": "partial"}
