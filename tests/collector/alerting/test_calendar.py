"""The school calendar: the shipped file, the boundaries, overrides, holidays, next_change,
and every kind of bad file refused with its line."""
import datetime as dt
import math
import textwrap

import pytest
from schoolmon.collector.alerting.calendar import (
    ALWAYS_OPEN,
    SHIPPED_FILE,
    CalendarError,
    load_calendar,
    parse_calendar,
)

CAL = load_calendar(None)
TZ = CAL.tz


def at(*args):
    return dt.datetime(*args, tzinfo=TZ).timestamp()


def test_shipped_file_is_the_default_and_in_ho_chi_minh():
    assert load_calendar("").source == SHIPPED_FILE
    assert str(CAL.tz) == "Asia/Ho_Chi_Minh"
    assert set(CAL.window_names()) >= {"school_hours", "office_hours", "always"}
    assert [y.name for y in CAL.school_years] == ["2026–2027", "2027–2028"]


@pytest.mark.parametrize("when, inside", [
    ((2026, 12, 2, 6, 59, 59), False),   # Wednesday
    ((2026, 12, 2, 7, 0), True),
    ((2026, 12, 2, 16, 59, 59), True),
    ((2026, 12, 2, 17, 0), False),
    ((2026, 12, 2, 21, 0), False),
    ((2026, 12, 5, 7, 0), True),         # Saturday morning
    ((2026, 12, 5, 11, 29, 59), True),
    ((2026, 12, 5, 11, 30), False),
    ((2026, 12, 6, 10, 0), False),       # Sunday
])
def test_school_hours_boundaries(when, inside):
    assert CAL.in_school_hours(at(*when)) is inside
    assert CAL.in_window("school_hours", at(*when)) is inside


def test_fixed_offset_no_dst():
    # Asia/Ho_Chi_Minh is UTC+7 all year: 07:00 local is 00:00 UTC in January and July
    for month in (3, 11):  # Fridays either side of a northern summer
        utc = dt.datetime(2027, month, 5, 0, 0, tzinfo=dt.timezone.utc)
        assert CAL.in_school_hours(utc.timestamp())
        assert not CAL.in_school_hours(utc.timestamp() - 1)


@pytest.mark.parametrize("day, name", [
    (dt.date(2027, 1, 1), "Tết Dương lịch"),
    (dt.date(2027, 2, 6), "Nghỉ Tết Nguyên đán"),
    (dt.date(2028, 1, 26), "Nghỉ Tết Nguyên đán"),
    (dt.date(2027, 4, 16), "Giỗ Tổ Hùng Vương"),
    (dt.date(2028, 4, 4), "Giỗ Tổ Hùng Vương"),
    (dt.date(2027, 4, 30), "Ngày Giải phóng miền Nam 30/4"),
    (dt.date(2027, 5, 1), "Ngày Quốc tế Lao động 1/5"),
    (dt.date(2027, 7, 15), "Nghỉ hè"),
    (dt.date(2027, 9, 2), "Quốc khánh 2/9"),
    (dt.date(2027, 9, 3), "Quốc khánh 2/9"),
    (dt.date(2026, 12, 2), None),
])
def test_holidays_by_name(day, name):
    assert CAL.holiday(day) == name
    if name is not None:
        assert not CAL.is_school_day(day)


def test_school_days():
    assert CAL.is_school_day(dt.date(2026, 12, 5))      # Saturday
    assert not CAL.is_school_day(dt.date(2026, 12, 6))  # Sunday
    assert CAL.is_school_day(dt.date(2027, 9, 6))       # the first Monday of 2027–2028
    assert not CAL.in_school_hours(at(2027, 4, 16, 10, 0))  # Giỗ Tổ


def test_office_hours_work_in_summer_not_on_public_holidays():
    assert not CAL.in_school_hours(at(2027, 7, 1, 10, 0))
    assert CAL.in_window("office_hours", at(2027, 7, 1, 10, 0))
    assert not CAL.in_window("office_hours", at(2027, 4, 30, 10, 0))
    assert not CAL.in_window("office_hours", at(2026, 12, 2, 21, 0))


def test_always_and_always_open():
    assert CAL.in_window("always", at(2027, 2, 6, 3, 0))
    assert CAL.next_change("always", at(2027, 2, 6, 3, 0)) == math.inf
    assert ALWAYS_OPEN.in_school_hours(at(2026, 12, 6, 3, 0))
    assert ALWAYS_OPEN.in_window("whatever", 0.0)
    assert ALWAYS_OPEN.is_school_day(dt.date(2027, 2, 6))
    assert ALWAYS_OPEN.holiday(dt.date(2027, 2, 6)) is None
    assert load_calendar("always") is ALWAYS_OPEN


def test_unknown_window_is_a_key_error():
    with pytest.raises(KeyError, match="no such calendar window"):
        CAL.in_window("lunch", at(2026, 12, 2, 10, 0))


def test_next_change():
    wed_10 = at(2026, 12, 2, 10, 0)
    assert CAL.next_change("school_hours", wed_10) == at(2026, 12, 2, 17, 0)
    assert CAL.next_change("school_hours", at(2026, 12, 2, 17, 0)) == at(2026, 12, 3, 7, 0)
    # Saturday noon → Monday 07:00
    assert CAL.next_change("school_hours", at(2026, 12, 5, 12, 0)) == at(2026, 12, 7, 7, 0)
    # in the summer break → the first school day of the next year
    assert CAL.next_change("school_hours", at(2027, 6, 10, 9, 0)) == at(2027, 9, 6, 7, 0)
    # after the last school year: bounded search, nothing found
    assert CAL.next_change("school_hours", at(2028, 7, 1, 9, 0)) == math.inf


OVERRIDES = textwrap.dedent("""\
    timezone = "Asia/Ho_Chi_Minh"

    [windows.school_hours]
    mon = "07:00-17:00"
    tue = "07:00-17:00"

    [windows.night]
    on = "every_day"
    mon = ["00:00-06:00", "22:00-24:00"]
    tue = "00:00-06:00"

    [[school_years]]
    name = "2026–2027"
    start = 2026-09-05
    end = 2027-05-31

    [area."LCI".windows.school_hours]
    mon = "07:30-11:00"
    tue = "07:30-11:00"

    [[area."LCI/bat-xat".holidays]]
    name = "Nghỉ do lũ lụt"
    start = 2026-12-07
    end = 2026-12-08

    [school."S1".windows.school_hours]
    mon = "06:45-17:30"
    """)


def test_overrides_most_specific_wins_and_holidays_add_up():
    cal = parse_calendar(OVERRIDES, "o.toml")
    mon_0715, mon_1200 = at(2026, 12, 14, 7, 15), at(2026, 12, 14, 12, 0)
    assert cal.in_school_hours(mon_0715) and cal.in_school_hours(mon_1200)  # province
    # the province-level unit LCI applies to its area LCI/sa-pa
    assert not cal.in_school_hours(mon_0715, area="LCI/sa-pa")
    assert cal.in_school_hours(at(2026, 12, 14, 8, 0), area="LCI/sa-pa")
    assert not cal.in_school_hours(mon_1200, area="LCI")
    # the school beats its area
    assert cal.in_school_hours(at(2026, 12, 14, 6, 50), school="S1", area="LCI/bat-xat")
    assert cal.in_school_hours(at(2026, 12, 14, 17, 15), school="S1", area="LCI")
    assert not cal.in_school_hours(at(2026, 12, 15, 12, 0), school="S1", area="LCI")  # Tue: area's
    # the flood closure: only in Bát Xát (and its schools), with its name
    flood = dt.date(2026, 12, 7)
    assert cal.holiday(flood, school="S1", area="LCI/bat-xat") == "Nghỉ do lũ lụt"
    assert not cal.is_school_day(flood, area="LCI/bat-xat")
    assert cal.is_school_day(flood, area="LCI/sa-pa")
    assert cal.holiday(flood) is None
    # an "every_day" window spanning midnight merges across days in next_change
    mon_23 = at(2026, 12, 14, 23, 0)
    assert cal.in_window("night", mon_23)
    assert cal.next_change("night", mon_23) == at(2026, 12, 15, 6, 0)


def write(tmp_path, text):
    p = tmp_path / "cal.toml"
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(p)


GOOD_HEAD = """\
timezone = "Asia/Ho_Chi_Minh"
[windows.school_hours]
mon = "07:00-17:00"
"""


@pytest.mark.parametrize("text, line, words", [
    (GOOD_HEAD + "tue = \"07:00-17:00\n", 4, "TOML"),                        # syntax
    (GOOD_HEAD + "colour = 1\n", 4, "colour"),                             # unknown key in window
    ("timezone = \"Asia/Ho_Chi_Minh\"\nmood = 1\n" + GOOD_HEAD[30:], 2, "mood"),  # unknown top key
    (GOOD_HEAD + "tue = \"25:00-26:00\"\n", 4, "25:00"),                    # bad time
    (GOOD_HEAD + "tue = \"17:00-07:00\"\n", 4, "giờ kết thúc"),             # end before start
    (GOOD_HEAD + "\n\nfunday = \"07:00-17:00\"\n", 6, "weekday"),           # unknown weekday
    (GOOD_HEAD + "[[holidays]]\nname = \"X\"\ndate = 2027-02-30\n", 6, "TOML"),  # no such date
    (GOOD_HEAD + "[[holidays]]\nname = \"X\"\ndate = \"2027-02-30\"\n", 6, "2027-02-30"),
    (GOOD_HEAD + "[[holidays]]\nname = \"A\"\ndate = 2027-01-01\n"
     "[[holidays]]\nname = \"B\"\nstart = 2027-02-10\nend = 2027-02-01\n", 10, "end"),
    (GOOD_HEAD + "[[school_years]]\nname = \"Y\"\nstart = 2026-09-05\n", 4, "start và end"),
    (GOOD_HEAD + "[area.\"LCI\".windows.school_hours]\nsat = \"7:00-11:30\"\n", 5, "7:00"),
    (GOOD_HEAD + "[[school.\"S1\".holidays]]\nname = \"Lũ\"\ndate = 2027-01-01\nclose = \"all\"\n",
     7, "close"),
    ("timezone = \"Mars/Olympus\"\n" + GOOD_HEAD[30:], 1, "IANA"),
    ("[windows.office_hours]\nmon = \"07:00-17:00\"\n", 1, "school_hours"),
])
def test_bad_file_names_the_file_and_line(tmp_path, text, line, words):
    path = write(tmp_path, text)
    with pytest.raises(CalendarError) as err:
        load_calendar(path)
    msg = str(err.value)
    assert msg.startswith("%s:%d:" % (path, line)), msg
    assert words in msg
    assert " / " in msg  # Vietnamese / English


def test_missing_file(tmp_path):
    with pytest.raises(CalendarError, match="không đọc được"):
        load_calendar(str(tmp_path / "nope.toml"))


def test_cache_per_override_and_date_is_fast():
    import time
    schools = ["S%d" % i for i in range(3000)]
    t0 = time.perf_counter()
    for ts in (at(2026, 12, 2, 10, 0), at(2026, 12, 2, 21, 0)):
        for s in schools:
            for w in ("school_hours", "office_hours", "always"):
                CAL.in_window(w, ts, school=s, area="LCI/bat-xat")
    # 18,000 questions; not a timing assertion of the machine, a guard against per-call parsing
    assert time.perf_counter() - t0 < 5.0
