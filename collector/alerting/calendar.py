"""The school calendar: when a window (``school_hours``, ``office_hours``, ``always`` or any
other the file names) is open, which days are school days, and the holidays by name.

One TOML file (the shipped ``calendar.toml``, or ``alerting.calendar_file``) holds the
province's hours and holidays as data, with overrides per area (org unit code, which
applies to the units below it: ``LCI`` covers ``LCI/bat-xat``) and per school code. For a
window the most specific definition wins (school > area > parent area > the file's own);
holidays add up. A file that cannot be used raises :class:`CalendarError` naming the file
and the line, in Vietnamese with English.

Answers are cached per (override set, local date): the alert evaluator asks for thousands
of schools per pass, and schools without an override all share one cached day.
"""
import datetime as dt
import math
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import tomllib
from schoolmon.protocol.settings import ConfigError
from zoneinfo import ZoneInfo

SHIPPED_FILE = os.path.join(os.path.dirname(__file__), "calendar.toml")
#: ``alerting.calendar_file`` value meaning "every instant in every window" (ALWAYS_OPEN).
ALWAYS = "always"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Which days a window opens on at all.
WINDOW_DAYS = ("school_days", "working_days", "every_day")
#: What a holiday closes: the school (pupils; offices work), or everything.
CLOSES = ("school", "all")
#: next_change looks this many days ahead at most (a summer break is ~100 days).
SEARCH_DAYS = 400

TOP_KEYS = ("timezone", "windows", "school_years", "holidays", "area", "school")
OVERRIDE_KEYS = ("windows", "holidays")
WINDOW_KEYS = ("on",) + WEEKDAYS
YEAR_KEYS = ("name", "start", "end")
HOLIDAY_KEYS = ("name", "date", "start", "end", "closes")
_TIME = re.compile(r"^(\d{2}):(\d{2})$")
_SPAN = re.compile(r"^\s*(\S+)\s*-\s*(\S+)\s*$")


class CalendarError(ConfigError):
    """A calendar file that cannot be used; the message names the file and the line (a
    ConfigError: the collector refuses to start, like any other bad configuration)."""


@dataclass(frozen=True)
class Window:
    """Open hours per weekday (Monday first) as (start, end) minutes after local midnight
    (end up to 1440), on the days ``on`` allows."""
    name: str
    hours: Tuple[Tuple[Tuple[int, int], ...], ...]
    on: str = "school_days"


@dataclass(frozen=True)
class Holiday:
    """Days ``start`` … ``end`` (inclusive, local dates) off, with their Vietnamese name."""
    name: str
    start: dt.date
    end: dt.date
    closes: str = "school"


@dataclass(frozen=True)
class SchoolYear:
    name: str
    start: dt.date
    end: dt.date


@dataclass(frozen=True)
class Override:
    """An area's or a school's own windows and extra holidays."""
    windows: Mapping[str, Window] = field(default_factory=dict)
    holidays: Tuple[Holiday, ...] = ()


@dataclass(frozen=True)
class DayPlan:
    """One local date under one override set: the holiday (if any), whether it is a school
    day, and each window's open intervals as UTC epoch seconds."""
    holiday: Optional[Holiday]
    school_day: bool
    open: Mapping[str, Tuple[Tuple[float, float], ...]]


class Calendar:
    """The calendar of one province. ``always_open``: every instant in every window
    (ALWAYS_OPEN; tests and ``alerting.calendar_file = "always"``)."""

    def __init__(self, tz: ZoneInfo, windows: Mapping[str, Window],
                 school_years: Sequence[SchoolYear] = (), holidays: Sequence[Holiday] = (),
                 areas: Optional[Mapping[str, Override]] = None,
                 schools: Optional[Mapping[str, Override]] = None,
                 always_open: bool = False, source: str = "") -> None:
        self.tz = tz
        self.windows: Mapping[str, Window] = dict(windows)
        self.school_years = tuple(school_years)
        self.holidays = tuple(holidays)
        self.areas: Mapping[str, Override] = dict(areas or {})
        self.schools: Mapping[str, Override] = dict(schools or {})
        self.always_open = always_open
        self.source = source
        self._lock = threading.Lock()
        self._days: Dict[Tuple[Tuple[str, ...], dt.date], DayPlan] = {}
        self._chains: Dict[Tuple[Optional[str], Optional[str]], Tuple[str, ...]] = {}

    # --- which overrides apply ----------------------------------------------------------

    def window_names(self) -> Tuple[str, ...]:
        """Every window a rule may name (``always`` included)."""
        names = set(self.windows) | {ALWAYS}
        for o in list(self.areas.values()) + list(self.schools.values()):
            names |= set(o.windows)
        return tuple(sorted(names))

    def _chain(self, school: Optional[str], area: Optional[str]) -> Tuple[str, ...]:
        """Override keys that apply, most specific first: ``school:CODE``, then the area
        and its ancestors by code (``A/B/C``, ``A/B``, ``A``). Schools without an override
        share the empty chain, hence one cached plan per date."""
        key = (school, area)
        hit = self._chains.get(key)
        if hit is not None:
            return hit
        chain: List[str] = []
        if school is not None and school in self.schools:
            chain.append("school:" + school)
        if area:
            parts = area.split("/")
            for i in range(len(parts), 0, -1):
                code = "/".join(parts[:i])
                if code in self.areas:
                    chain.append("area:" + code)
        out = tuple(chain)
        self._chains[key] = out
        return out

    def _override(self, key: str) -> Override:
        kind, code = key.split(":", 1)
        return (self.schools if kind == "school" else self.areas)[code]

    def _plan(self, chain: Tuple[str, ...], day: dt.date) -> DayPlan:
        hit = self._days.get((chain, day))
        if hit is not None:
            return hit
        overrides = [self._override(k) for k in chain]
        # the override's own closures first, then the shortest (2/9 inside the summer
        # break is named "Quốc khánh", not "Nghỉ hè")
        own = [h for o in overrides for h in o.holidays if h.start <= day <= h.end]
        province = sorted((h for h in self.holidays if h.start <= day <= h.end),
                          key=lambda h: h.end - h.start)
        holiday = (own + province)[0] if own or province else None
        in_year = any(y.start <= day <= y.end for y in self.school_years)
        school_off = holiday is not None or not in_year
        all_off = any(h.closes == "all" for h in own + province)
        windows: Dict[str, Window] = dict(self.windows)
        for o in reversed(overrides):  # least specific first: the most specific wins
            windows.update(o.windows)
        open_: Dict[str, Tuple[Tuple[float, float], ...]] = {}
        midnight = dt.datetime(day.year, day.month, day.day, tzinfo=self.tz)
        for name, w in windows.items():
            if (w.on == "school_days" and school_off) or (w.on == "working_days" and all_off):
                open_[name] = ()
                continue
            open_[name] = tuple(
                (self._at(midnight, start), self._at(midnight, end))
                for start, end in w.hours[day.weekday()])
        school_hours = windows.get("school_hours")
        plan = DayPlan(holiday, not school_off and bool(
            school_hours is None or school_hours.hours[day.weekday()]), open_)
        with self._lock:
            if len(self._days) > 200_000:  # years of dates × overrides: never in practice
                self._days.clear()
            self._days[(chain, day)] = plan
        return plan

    def _at(self, midnight: dt.datetime, minutes: int) -> float:
        # wall-clock minutes of that date (a zone with DST would move them; fold 0)
        local = midnight.replace(tzinfo=None) + dt.timedelta(minutes=minutes)
        return local.replace(tzinfo=self.tz).timestamp()

    def _local_date(self, ts: float) -> dt.date:
        return dt.datetime.fromtimestamp(ts, self.tz).date()

    def _intervals(self, window: str, day: dt.date, chain: Tuple[str, ...]
                   ) -> Tuple[Tuple[float, float], ...]:
        plan = self._plan(chain, day)
        spans = plan.open.get(window)
        if spans is None:
            raise KeyError("cửa sổ thời gian không có trong lịch / no such calendar window: "
                           "%r (known: %s)" % (window, ", ".join(self.window_names())))
        return spans

    # --- the interface ------------------------------------------------------------------

    def in_window(self, window: str, ts: float, school: Optional[str] = None,
                  area: Optional[str] = None) -> bool:
        """Whether ``ts`` (UTC epoch seconds) is inside ``window`` for that school; an
        interval includes its start and excludes its end (17:00 is outside 07:00-17:00).
        An unknown window name raises KeyError."""
        if self.always_open or window == ALWAYS:
            return True
        chain = self._chain(school, area)
        return any(s <= ts < e for s, e in self._intervals(window, self._local_date(ts), chain))

    def in_school_hours(self, ts: float, school: Optional[str] = None,
                        area: Optional[str] = None) -> bool:
        return self.in_window("school_hours", ts, school, area)

    def is_school_day(self, day: dt.date, school: Optional[str] = None,
                      area: Optional[str] = None) -> bool:
        """Inside a school year, not a holiday or break, and school hours that weekday."""
        if self.always_open:
            return True
        return self._plan(self._chain(school, area), day).school_day

    def holiday(self, day: dt.date, school: Optional[str] = None,
                area: Optional[str] = None) -> Optional[str]:
        """The Vietnamese name of the holiday or break on ``day``, or None."""
        if self.always_open:
            return None
        h = self._plan(self._chain(school, area), day).holiday
        return h.name if h is not None else None

    def school_year(self, day: dt.date) -> Optional[SchoolYear]:
        return next((y for y in self.school_years if y.start <= day <= y.end), None)

    def hours(self, window: str, day: dt.date, school: Optional[str] = None,
              area: Optional[str] = None) -> List[Tuple[str, str]]:
        """``window``'s open intervals on ``day`` as local "HH:MM" pairs (for people)."""
        if self.always_open or window == ALWAYS:
            return [("00:00", "24:00")]
        out = []
        for s, e in self._intervals(window, day, self._chain(school, area)):
            start = dt.datetime.fromtimestamp(s, self.tz)
            end = dt.datetime.fromtimestamp(e, self.tz)
            out.append((start.strftime("%H:%M"),
                        "24:00" if end.date() > day else end.strftime("%H:%M")))
        return out

    def next_change(self, window: str, ts: float, school: Optional[str] = None,
                    area: Optional[str] = None) -> float:
        """The next instant after ``ts`` at which in_window flips; ``math.inf`` when it
        does not flip within :data:`SEARCH_DAYS` days (``always``, ALWAYS_OPEN)."""
        if self.always_open or window == ALWAYS:
            return math.inf
        chain = self._chain(school, area)
        inside = self.in_window(window, ts, school, area)
        for start, end in self._merged(window, ts, chain):
            if inside and start <= ts < end:
                return end
            if not inside and start > ts:
                return start
        return math.inf

    def _merged(self, window: str, ts: float, chain: Tuple[str, ...]
                ) -> Iterator[Tuple[float, float]]:
        """Open intervals from ``ts``'s local date on, touching ones merged (17:00-24:00
        then 00:00-07:00 is one interval), for SEARCH_DAYS days."""
        day = self._local_date(ts)
        cur: Optional[Tuple[float, float]] = None
        for i in range(SEARCH_DAYS):
            for s, e in self._intervals(window, day + dt.timedelta(days=i), chain):
                if cur is not None and s <= cur[1]:
                    cur = (cur[0], max(cur[1], e))
                    continue
                if cur is not None:
                    yield cur
                cur = (s, e)
        if cur is not None:
            yield cur


#: Every instant in every window: no school is ever "outside school hours".
ALWAYS_OPEN = Calendar(ZoneInfo("Asia/Ho_Chi_Minh"), {}, always_open=True, source=ALWAYS)


# --- reading the file -------------------------------------------------------------------------

def load_calendar(path: Optional[str] = None) -> Calendar:
    """The calendar of ``path`` (None or "": the shipped file; "always": ALWAYS_OPEN)."""
    if path == ALWAYS:
        return ALWAYS_OPEN
    path = path or SHIPPED_FILE
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise CalendarError("%s: không đọc được tệp lịch / cannot read the calendar file: %s"
                            % (path, exc.strerror or exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CalendarError("%s: tệp lịch không phải UTF-8 / the calendar file is not UTF-8"
                            % path) from None
    return parse_calendar(text, path)


def parse_calendar(text: str, path: str = "<calendar>") -> Calendar:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+)", str(exc))
        line = m.group(1) if m else "?"
        raise CalendarError("%s:%s: lỗi cú pháp TOML (hoặc ngày không tồn tại) / TOML syntax "
                            "error (or a date that does not exist): %s"
                            % (path, line, exc)) from None
    return _Reader(text, path).calendar(data)


class _Reader:
    """Turns the parsed TOML into a Calendar; every error names the line of the key."""

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.lines = key_lines(text)

    def fail(self, where: Sequence[Any], vi: str, en: str) -> CalendarError:
        line = self.line_of(where)
        key = ".".join(str(p) for p in where)
        return CalendarError("%s:%s: %s: %s / %s" % (self.path, line, key or "(tệp / file)",
                                                     vi, en))

    def line_of(self, where: Sequence[Any]) -> str:
        path = tuple(where)
        while path:
            if path in self.lines:
                return str(self.lines[path])
            path = path[:-1]
        return "1"

    def known(self, table: Mapping[str, Any], keys: Sequence[str], where: Sequence[Any]
              ) -> None:
        for k in table:
            if k not in keys:
                raise self.fail(list(where) + [k], "khóa không hợp lệ (dùng: %s)"
                                % ", ".join(keys), "unknown key (known: %s)" % ", ".join(keys))

    def table(self, value: Any, where: Sequence[Any]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "phải là một bảng", "must be a table")
        return value

    def calendar(self, data: Mapping[str, Any]) -> Calendar:
        self.known(data, TOP_KEYS, [])
        tz_name = data.get("timezone", "Asia/Ho_Chi_Minh")
        try:
            tz = ZoneInfo(tz_name)
        except (KeyError, ValueError, TypeError):
            raise self.fail(["timezone"], "không phải múi giờ IANA (vd. Asia/Ho_Chi_Minh)",
                            "not an IANA time zone (e.g. Asia/Ho_Chi_Minh)") from None
        windows = self.windows(data.get("windows", {}), ["windows"])
        if "school_hours" not in windows:
            raise self.fail(["windows"], "thiếu cửa sổ school_hours (giờ học)",
                            "the school_hours window is missing")
        years = []
        for i, y in enumerate(self.array(data.get("school_years", []), ["school_years"])):
            where = ["school_years", i]
            y = self.table(y, where)
            self.known(y, YEAR_KEYS, where)
            start, end = self.date(y, "start", where), self.date(y, "end", where)
            if start is None or end is None:
                raise self.fail(where, "năm học cần start và end", "a school year needs "
                                "start and end")
            self.ordered(start, end, where)
            years.append(SchoolYear(self.name(y, where), start, end))
        holidays = self.holidays(data.get("holidays", []), ["holidays"])
        areas = self.overrides(data.get("area", {}), "area")
        schools = self.overrides(data.get("school", {}), "school")
        return Calendar(tz, windows, years, holidays, areas, schools, source=self.path)

    def array(self, value: Any, where: Sequence[Any]) -> List[Any]:
        if not isinstance(value, list):
            raise self.fail(where, "phải là một danh sách ([[...]])", "must be an array "
                            "of tables ([[...]])")
        return value

    def overrides(self, value: Any, kind: str) -> Dict[str, Override]:
        out = {}
        for code, o in self.table(value, [kind]).items():
            where = [kind, code]
            o = self.table(o, where)
            self.known(o, OVERRIDE_KEYS, where)
            out[code] = Override(self.windows(o.get("windows", {}), where + ["windows"]),
                                 tuple(self.holidays(o.get("holidays", []),
                                                     where + ["holidays"])))
        return out

    def windows(self, value: Any, where: Sequence[Any]) -> Dict[str, Window]:
        out = {}
        for name, w in self.table(value, where).items():
            here = list(where) + [name]
            if name == ALWAYS:
                raise self.fail(here, "cửa sổ always có sẵn, không định nghĩa lại",
                                "the always window is implicit and cannot be redefined")
            w = self.table(w, here)
            for k in w:
                if k not in WINDOW_KEYS:
                    raise self.fail(here + [k], "không phải thứ trong tuần hay 'on' (dùng: %s)"
                                    % ", ".join(WINDOW_KEYS), "not a weekday nor 'on' "
                                    "(known: %s)" % ", ".join(WINDOW_KEYS))
            on = w.get("on", "school_days")
            if on not in WINDOW_DAYS:
                raise self.fail(here + ["on"], "phải là một trong %s" % ", ".join(WINDOW_DAYS),
                                "must be one of %s" % ", ".join(WINDOW_DAYS))
            hours = tuple(self.spans(w.get(d), here + [d]) for d in WEEKDAYS)
            out[name] = Window(name, hours, on)
        return out

    def spans(self, value: Any, where: Sequence[Any]) -> Tuple[Tuple[int, int], ...]:
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        out = []
        for item in items:
            m = _SPAN.match(item) if isinstance(item, str) else None
            if m is None:
                raise self.fail(where, "giờ phải có dạng \"HH:MM-HH:MM\", có %r" % (item,),
                                "hours must read \"HH:MM-HH:MM\", got %r" % (item,))
            start, end = self.minutes(m.group(1), where), self.minutes(m.group(2), where)
            if end <= start:
                raise self.fail(where, "giờ kết thúc phải sau giờ bắt đầu: %r" % item,
                                "the end must be after the start: %r" % item)
            out.append((start, end))
        out.sort()
        for (_, e1), (s2, _) in zip(out, out[1:]):
            if s2 < e1:
                raise self.fail(where, "các khoảng giờ chồng lên nhau", "the hours overlap")
        return tuple(out)

    def minutes(self, text: str, where: Sequence[Any]) -> int:
        m = _TIME.match(text)
        if m is not None:
            h, mi = int(m.group(1)), int(m.group(2))
            if (h < 24 and mi < 60) or (h == 24 and mi == 0):
                return h * 60 + mi
        raise self.fail(where, "giờ không hợp lệ %r (00:00 … 24:00)" % text,
                        "not a valid time %r (00:00 … 24:00)" % text)

    def holidays(self, value: Any, where: Sequence[Any]) -> List[Holiday]:
        out = []
        for i, h in enumerate(self.array(value, where)):
            here = list(where) + [i]
            h = self.table(h, here)
            self.known(h, HOLIDAY_KEYS, here)
            name = self.name(h, here)
            one = self.date(h, "date", here)
            start, end = self.date(h, "start", here), self.date(h, "end", here)
            if one is not None and (start is not None or end is not None):
                raise self.fail(here, "dùng date hoặc start/end, không cả hai",
                                "give date or start/end, not both")
            if one is not None:
                start = end = one
            if start is None or end is None:
                raise self.fail(here, "ngày nghỉ cần date, hoặc start và end",
                                "a holiday needs date, or start and end")
            self.ordered(start, end, here)
            closes = h.get("closes", "school")
            if closes not in CLOSES:
                raise self.fail(here + ["closes"], "phải là một trong %s" % ", ".join(CLOSES),
                                "must be one of %s" % ", ".join(CLOSES))
            out.append(Holiday(name, start, end, closes))
        return out

    def name(self, table: Mapping[str, Any], where: Sequence[Any]) -> str:
        name = table.get("name")
        if not isinstance(name, str) or not name.strip():
            raise self.fail(list(where) + ["name"], "cần tên (tiếng Việt)",
                            "needs a (Vietnamese) name")
        return name.strip()

    def date(self, table: Mapping[str, Any], key: str, where: Sequence[Any]
             ) -> Optional[dt.date]:
        value = table.get(key)
        here = list(where) + [key]
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            raise self.fail(here, "phải là ngày, không kèm giờ", "must be a date, no time")
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise self.fail(here, "ngày không tồn tại hoặc sai dạng YYYY-MM-DD: %r" % (value,),
                        "not an existing date in the form YYYY-MM-DD: %r" % (value,))

    def ordered(self, start: dt.date, end: dt.date, where: Sequence[Any]) -> None:
        if end < start:
            raise self.fail(list(where) + ["end"], "ngày kết thúc trước ngày bắt đầu",
                            "the end is before the start")


# --- where each key is in the text --------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(text: str, i: int) -> Tuple[List[str], int]:
    """Dotted key segments of TOML at ``text[i:]`` and where they end."""
    parts: List[str] = []
    n = len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] in "\"'":
            q = text[i]
            j = i + 1
            buf = []
            while j < n and text[j] != q:
                if q == '"' and text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            parts.append("".join(buf))
            i = j + 1
        else:
            m = _BARE.match(text, i)
            if m is None:
                return parts, i
            parts.append(m.group(0))
            i = m.end()
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == ".":
            i += 1
            continue
        return parts, i


def key_lines(text: str) -> Dict[Tuple[Any, ...], int]:
    """Line number (1-based) of each table header and key in ``text``, by key path (array
    of tables elements by index, as the parsed data has them). Why our own: tomllib keeps no
    positions, and a semantic error must still name its line. Good enough for the shapes a
    calendar file has (no multi-line strings)."""
    out: Dict[Tuple[Any, ...], int] = {}
    counts: Dict[Tuple[Any, ...], int] = {}
    table: Tuple[Any, ...] = ()
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[["):
            parts, _ = _key(line, 2)
            base = tuple(parts)
            # an array of tables nested under the current element of its parent array
            resolved = _resolve(base, counts)
            idx = counts.get(resolved, -1) + 1
            counts[resolved] = idx
            table = resolved + (idx,)
            out.setdefault(resolved, no)
            out[table] = no
            continue
        if line.startswith("["):
            parts, _ = _key(line, 1)
            table = _resolve(tuple(parts), counts)
            out.setdefault(table, no)
            continue
        parts, end = _key(line, 0)
        if parts and end < len(line) and line[end] == "=":
            for k in range(1, len(parts) + 1):
                out.setdefault(table + tuple(parts[:k]), no)
            rest = line[end + 1:]
            if rest.strip().startswith("{"):  # inline table: its keys on this line
                for m in re.finditer(r"([A-Za-z0-9_-]+)\s*=", rest):
                    out.setdefault(table + tuple(parts) + (m.group(1),), no)
    return out


def _resolve(path: Tuple[Any, ...], counts: Mapping[Tuple[Any, ...], int]) -> Tuple[Any, ...]:
    """``path`` with the current index inserted after each array-of-tables prefix."""
    out: Tuple[Any, ...] = ()
    for p in path:
        out = out + (p,)
        if out in counts and out != path:
            out = out + (counts[out],)
    return out


def calendar_from_config(cfg: Any) -> Calendar:
    """The calendar ``alerting.calendar_file`` names (empty: :data:`DEFAULT_PATH`, the
    shipped file; "always": ALWAYS_OPEN). CalendarError (a ConfigError) stops the
    collector at start."""
    alerting = getattr(cfg, "alerting", None)
    return load_calendar(getattr(alerting, "calendar_file", "") or DEFAULT_PATH)


#: What an empty ``alerting.calendar_file`` means (None: the shipped file). The test suite
#: sets "always" (tests/conftest.py): the tests written before the calendar expect
#: "offline" and "partial" whatever hour they run at, also those that build their
#: configuration without the environment.
DEFAULT_PATH: Optional[str] = None
