"""Schools: one page of them with filters (``GET /api/v1/schools``) and one school with its
devices (``GET /api/v1/schools/{code}``); the per-school building blocks the summary and the
organisation tree share."""
import math
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Set, Tuple

from sqlalchemy import Connection, and_, false, func, select

from ..alerting.calendar import Calendar
from ..store.registry import descendant_units
from ..store.schema import devices, org_units, rollup_1h, rollup_5m, schools
from ..text import fold, sort_key
from . import connectivity as conn_read
from .counts import NO_DEVICES, school_counts
from .devices import device_brief, latest_health
from .hours import OffHours, off_hours_at
from .posture import NOT_EVALUATED, NOT_MEETING, SORT_ORDER, counts_note, school_statuses
from .scope import QueryError, Scope, resolve_scope, school_filter, storable

#: School statuses, worst first (the order lists and the UI use); ``off_hours``: every
#: device silent is one expected off now (lab PCs at night: read/hours.py).
SCHOOL_STATUSES = ("offline", "partial", "online", "off_hours", "no_devices")
#: ``baseline=`` filter values: ``attt`` (schools not meeting the ATTT baseline: improve,
#: below, insufficient), ``connectivity`` (not meeting the connectivity baseline: improve,
#: below), and the older codes of a school's ``baseline``: ``meets``, ``below`` (= attt),
#: ``not_evaluated``.
BASELINE_VALUES = ("attt", "connectivity", "meets", "below", "not_evaluated")
BASELINES = ("connectivity", "security")
#: ``attt=`` filter values: one ATTT status.
ATTT_VALUES = SORT_ORDER
#: ``connectivity=`` filter values: one connectivity status.
CONNECTIVITY_VALUES = conn_read.SORT_ORDER
#: Unit ids are SQL integers: a larger number names no unit (and no database must see it).
MAX_UNIT_ID = 2 ** 63 - 1


def baseline_note() -> Dict[str, Any]:
    """The baselines of a count before any is evaluated (see posture.counts_note)."""
    return counts_note(None, False)


def baseline_code(attt_status: Optional[str]) -> str:
    """A school's ``baseline`` (meets / below / not_evaluated) from its ATTT status."""
    if attt_status in NOT_MEETING:
        return "below"
    return "meets" if attt_status == "meets" else "not_evaluated"


def units_by_id(conn: Connection) -> Dict[int, Any]:
    return {r.id: r for r in conn.execute(select(org_units))}


def _area_and_province(units: Dict[int, Any], unit_id: Optional[int]) -> Tuple[
        Optional[Dict[str, Any]], Optional[Dict[str, Any]]]:
    area = units.get(unit_id) if unit_id is not None else None
    if area is None:
        return None, None
    chain = [area]
    seen = {area.id}
    while chain[-1].parent_id is not None and chain[-1].parent_id in units \
            and chain[-1].parent_id not in seen:
        chain.append(units[chain[-1].parent_id])
        seen.add(chain[-1].id)
    top = chain[-1]

    def brief(u: Any) -> Dict[str, Any]:
        return {"id": u.id, "code": u.code, "name": u.name, "level": u.level,
                "former": bool(u.former)}  # abolished by the 2025 reform: shown "(cũ)"

    return brief(area), (brief(top) if top.id != area.id else None)


def area_units(conn: Connection, area: str) -> Set[int]:
    """Unit ids an ``area`` filter names: an id, a code, the last part of a code, or a
    name, the code and name compared without case or diacritics ("bat xat" names "Bát Xát");
    and every unit below them."""
    a = area.strip()
    if not a or not storable(a):
        return set()
    wanted = fold(a)
    ids: Set[int] = set()
    # "²" and "٣" are digits to str.isdigit() but not to int(); ids are ASCII, and SQL
    # integers stop at 64 bits
    by_id = int(a) if a.isascii() and a.isdigit() and int(a) <= MAX_UNIT_ID else None
    for r in conn.execute(select(org_units.c.id, org_units.c.code, org_units.c.name)):
        code = fold(r.code)
        if (r.id == by_id or code == wanted or code.endswith("/" + wanted)
                or fold(r.name) == wanted):
            ids.add(r.id)
    return descendant_units(conn, ids) if ids else set()


#: Abbreviations of school levels people type in a search ("TH Kim Đồng", "mn kim dong"):
#: folded abbreviation → (level code, folded words of the level in names).
LEVEL_ABBREVIATIONS: Dict[str, Tuple[str, str]] = {
    "mn": ("MN", "mam non"), "th": ("TH", "tieu hoc"), "thcs": ("THCS", "trung hoc co so"),
    "thpt": ("THPT", "trung hoc pho thong"), "gdnn": ("GDNN-GDTX", "giao duc nghe nghiep"),
    "gdtx": ("GDNN-GDTX", "giao duc thuong xuyen"), "lc": ("LIEN-CAP", "lien cap"),
}
#: Words a search may leave out of a school's name: "truong kim dong" = "Kim Đồng".
OPTIONAL_WORDS = ("truong",)


def _words(text: str) -> str:
    """Folded text without the optional words, padded for whole-word matching."""
    return " " + " ".join(w for w in fold(text).replace("-", " ").split()
                          if w not in OPTIONAL_WORDS) + " "


def search_matcher(q: str) -> Callable[[str, str, Optional[str]], bool]:
    """A test (code, name, level) → bool for a search ``q``: part of the code, or the words
    of the name in order, case and diacritics ignored, "trường" optional, and a leading
    level abbreviation (TH, MN, THCS, THPT, GDNN, GDTX) standing for the level's words or
    the school's level code."""
    needle = fold(q)
    words = _words(q).split()
    level: Optional[Tuple[str, str]] = None
    if words and words[0] in LEVEL_ABBREVIATIONS:
        level = LEVEL_ABBREVIATIONS[words[0]]
    rest = (" " + " ".join(words[1:]) + " ") if level else None
    phrase = " " + " ".join(words) + " " if words else None

    def match(code: str, name: str, school_level: Optional[str]) -> bool:
        if needle and needle in code.lower():
            return True
        folded = fold(name)
        if needle and needle in folded:
            return True
        padded = _words(name)
        if phrase is not None and phrase.strip() and phrase in padded:
            return True
        if level is not None and rest is not None:
            if rest.strip() and rest not in padded and rest.strip() not in folded:
                return False
            return school_level == level[0] or (" " + level[1] + " ") in padded
        return False

    return match


class _SchoolKey(NamedTuple):
    """What the school list filters and sorts by; ``worst``: index in SCHOOL_STATUSES."""
    code: str
    name: str
    level: Optional[str]
    isp: Optional[str]
    link_type: Optional[str]
    area_name: Optional[str]
    worst: int
    n: int
    online: int
    attt: int
    connectivity: int


#: Sort keys of the school list (``sort=``); ``-key`` for descending.
SCHOOL_SORTS = ("status", "name", "code", "area", "offline", "online_pct", "attt",
                "connectivity")
#: Largest page of a list; a larger ``per_page`` is refused (422) by the API.
MAX_PER_PAGE = 500


def _pct(online: int, n: int) -> Optional[float]:
    return round(100.0 * online / n, 1) if n else None


def list_schools(conn: Connection, scope: Scope, area: Optional[str] = None,
                 status: Optional[str] = None, baseline: Optional[str] = None,
                 page: int = 1, per_page: int = 50, q: Optional[str] = None,
                 level: Optional[str] = None, isp: Optional[str] = None,
                 link_type: Optional[str] = None, sort: str = "status",
                 descending: bool = False, attt: Optional[str] = None,
                 connectivity: Optional[str] = None, calendar: Optional[Calendar] = None,
                 now: Optional[float] = None) -> Dict[str, Any]:
    """One page of schools with their status and device counts. Order: ``sort`` (one of
    SCHOOL_SORTS; default worst status first), ties broken by area, then name, in
    Vietnamese order. Filters: ``area`` (unit id, code or name, diacritics folded; includes
    the units below), ``status`` (one of SCHOOL_STATUSES), ``baseline`` (every school is
    ``not_evaluated`` in this version), ``level``, ``isp`` and ``link_type`` (case and
    diacritics ignored), ``q`` (see :func:`search_matcher`), ``attt`` and
    ``connectivity`` (one status of each baseline). Statuses at ``now`` on ``calendar``
    (default: always open, nothing off hours; see read/hours.py)."""
    if status is not None and status not in SCHOOL_STATUSES:
        raise QueryError("bad_status", "status must be one of " + ", ".join(SCHOOL_STATUSES))
    if baseline is not None and baseline not in BASELINE_VALUES:
        raise QueryError("bad_baseline",
                         "baseline must be one of " + ", ".join(BASELINE_VALUES))
    if attt is not None and attt not in ATTT_VALUES:
        raise QueryError("bad_attt", "attt must be one of " + ", ".join(ATTT_VALUES))
    if connectivity is not None and connectivity not in CONNECTIVITY_VALUES:
        raise QueryError("bad_connectivity",
                         "connectivity must be one of " + ", ".join(CONNECTIVITY_VALUES))
    if sort not in SCHOOL_SORTS:
        raise QueryError("bad_sort", "sort must be one of " + ", ".join(SCHOOL_SORTS))
    page = max(1, int(page))
    per_page = max(1, min(MAX_PER_PAGE, int(per_page)))
    visible = resolve_scope(conn, scope)
    area_u = org_units.alias("area_u")
    conds = [school_filter(schools.c.code, visible)]
    if area:
        ids = area_units(conn, area)
        conds.append(schools.c.org_unit_id.in_(sorted(ids)) if ids else false())
    if level:
        conds.append(schools.c.level == level)
    base = schools.outerjoin(area_u, area_u.c.id == schools.c.org_unit_id)
    where = and_(*conds)
    # The order is Vietnamese (SQL collations are not, and differ between SQLite and
    # PostgreSQL), and the search folds diacritics: both here, over the matching schools'
    # keys (a province has a few thousand), then one page of full rows is read. The device
    # counts come from counts.school_counts (the whole province's: reused for a few
    # seconds), one set for the filter, the order and the page's rows alike.
    now = time.time() if now is None else now
    counts = school_counts(conn, visible, now)
    hours = off_hours_at(conn, calendar, now, visible)
    statuses = school_statuses(conn, visible)
    link_statuses = conn_read.school_statuses(conn, visible)

    def conn_ok(code: str) -> bool:
        st = conn_read.status_of(link_statuses, code)
        if connectivity is not None and st != connectivity:
            return False
        return baseline != "connectivity" or st in conn_read.NOT_MEETING

    def attt_ok(code: str) -> bool:
        st = statuses.get(code, NOT_EVALUATED)
        if attt is not None and st != attt:
            return False
        if baseline in ("attt", "below"):
            return st in NOT_MEETING
        if baseline == "meets":
            return st == "meets"
        if baseline == "not_evaluated":
            return st == NOT_EVALUATED
        return True

    keys: List[_SchoolKey] = []
    for k in conn.execute(select(
            schools.c.code, schools.c.name, schools.c.level, schools.c.isp,
            schools.c.link_type, area_u.c.name.label("area_name")).select_from(base)
            .where(where)):
        kc = counts.get(k.code, NO_DEVICES)
        st = hours.school_status(kc.online, kc.n, hours.excused(kc, k.code))
        if status and st != status:
            continue
        if not attt_ok(k.code) or not conn_ok(k.code):
            continue
        keys.append(_SchoolKey(k.code, k.name, k.level, k.isp, k.link_type, k.area_name,
                               SCHOOL_STATUSES.index(st), kc.n, kc.online,
                               SORT_ORDER.index(statuses.get(k.code, NOT_EVALUATED)),
                               conn_read.SORT_ORDER.index(
                                   conn_read.status_of(link_statuses, k.code))))
    if isp and isp.strip():
        want = fold(isp)
        keys = [r for r in keys if r.isp and fold(r.isp) == want]
    if link_type and link_type.strip():
        want = fold(link_type)
        keys = [r for r in keys if r.link_type and fold(r.link_type) == want]
    if q and q.strip() and storable(q):
        match = search_matcher(q)
        keys = [r for r in keys if match(r.code, r.name, r.level)]
    elif q and q.strip():
        keys = []

    def tie(r: Any) -> Tuple[Any, ...]:
        return (sort_key(r.area_name or ""), sort_key(r.name), r.code)

    if sort != "name":  # by name, the tie-break is the sort itself
        keys.sort(key=tie)  # stable sorts: the primary key below keeps this order in ties
    primary: Dict[str, Callable[[Any], Any]] = {
        "status": lambda r: r.worst,
        "name": lambda r: (sort_key(r.name), r.code),
        "code": lambda r: r.code,
        "area": lambda r: sort_key(r.area_name or ""),
        "offline": lambda r: int(r.n) - int(r.online),
        # schools without devices have no percentage: last either way
        "online_pct": lambda r: (_pct(int(r.online), int(r.n)) is None,
                                 (-1 if descending else 1) * (_pct(int(r.online), int(r.n))
                                                              or 0.0)),
        "attt": lambda r: r.attt,
        "connectivity": lambda r: r.connectivity,
    }
    if sort == "online_pct":
        keys.sort(key=primary[sort])
    else:
        keys.sort(key=primary[sort], reverse=descending)
    total = len(keys)
    page_codes = [r.code for r in keys[(page - 1) * per_page: page * per_page]]
    rows = {r.code: r for r in conn.execute(
        select(schools.c.code, schools.c.name, schools.c.level, schools.c.isp,
               schools.c.link_type, schools.c.students, schools.c.contracted_down_mbps,
               schools.c.contracted_up_mbps,
               area_u.c.id.label("area_id"), area_u.c.code.label("area_code"),
               area_u.c.name.label("area_name"))
        .select_from(base).where(schools.c.code.in_(page_codes) if page_codes else false()))}
    items: List[Dict[str, Any]] = []
    for code in page_codes:
        r = rows.get(code)
        if r is None:  # gone between the two reads
            continue
        c = counts.get(code, NO_DEVICES)
        n, on = c.n, c.online
        excused = hours.excused(c, code)
        items.append({
            "code": r.code, "name": r.name, "level": r.level,
            "area": {"id": r.area_id, "code": r.area_code, "name": r.area_name},
            "status": hours.school_status(on, n, excused),
            "devices": {"total": n, "online": on, "offline": n - on - excused,
                        "off_hours": excused,
                        "pending": c.pending, "online_pct": _pct(on, n)},
            "offline_count": n - on - excused,
            "online_pct": _pct(on, n),
            "last_seen": c.last_seen,
            "baseline": baseline_code(statuses.get(code)),
            "attt": {"status": statuses.get(code, NOT_EVALUATED)},
            "connectivity": {"status": conn_read.status_of(link_statuses, code)},
            "isp": r.isp, "link_type": r.link_type, "students": r.students,
            "contracted_down_mbps": r.contracted_down_mbps,
            "contracted_up_mbps": r.contracted_up_mbps,
        })
    return {"items": items, "page": page, "per_page": per_page, "total": total,
            "pages": max(1, math.ceil(total / per_page)) if total else 0,
            "sort": ("-" if descending else "") + sort,
            "filters": {"area": area, "status": status, "baseline": baseline, "q": q,
                        "level": level, "isp": isp, "link_type": link_type, "attt": attt,
                        "connectivity": connectivity}}


def get_school_row(conn: Connection, code: str, scope: Scope) -> Any:
    """The school's registry row; None when it does not exist or is outside ``scope`` (the
    same answer, so codes do not leak)."""
    if not storable(code):
        return None
    visible = resolve_scope(conn, scope)
    if visible is not None and code not in visible:
        return None
    return conn.execute(select(schools).where(schools.c.code == code)).first()


def get_school(conn: Connection, code: str, scope: Scope,
               now: Optional[float] = None, calendar: Optional[Calendar] = None
               ) -> Optional[Dict[str, Any]]:
    """A school with its area, province, status and devices; None when it does not exist
    or is outside ``scope``. Statuses at ``now`` on ``calendar`` (read/hours.py)."""
    row = get_school_row(conn, code, scope)
    if row is None:
        return None
    now = time.time() if now is None else now
    school = dict(row._mapping)
    area, province = _area_and_province(units_by_id(conn), school.pop("org_unit_id"))
    hours = OffHours(calendar, now, {code: area["code"] if area else None}) \
        if calendar is not None else off_hours_at(conn, None, now)
    devs = [device_brief(r, hours) for r in conn.execute(
        select(devices).where(devices.c.school_code == code))]
    # the router first, then rooms and host names in Vietnamese order
    devs.sort(key=lambda d: (d["role"] != "router", sort_key(d["room"] or ""),
                             sort_key(d["hostname"] or ""), d["id"]))
    health = latest_health(conn, [d["id"] for d in devs])
    for d in devs:
        d["health"] = health.get(d["id"])
    n = len(devs)
    on = sum(1 for d in devs if d["status"] == "online")
    excused = sum(1 for d in devs if d["status"] == "off_hours")
    routers = [d for d in devs if d["role"] == "router"]
    attt_status = school_statuses(conn, frozenset((code,))).get(code)
    link_status = conn_read.school_statuses(conn, frozenset((code,))).get(code)
    below = baseline_note()
    if attt_status is not None:
        below.update(security=attt_status in NOT_MEETING, evaluated=True, status="evaluated")
    if link_status is not None:
        below.update(connectivity=link_status in conn_read.NOT_MEETING,
                     connectivity_evaluated=True)
    school.update(
        area=area, province=province, status=hours.school_status(on, n, excused),
        baseline=baseline_code(attt_status),
        condition=school_condition(devs), below_baseline=below,
        counts={"devices": n, "online": on, "offline": n - on - excused,
                "off_hours": excused,
                "pending": sum(1 for d in devs if d["state"] == "pending"),
                "online_pct": _pct(on, n)},
        last_seen=max((d["last_seen"] for d in devs if d["last_seen"] is not None),
                      default=None),
        contacts=[{"name": school.get("contact_name"), "phone": school.get("contact_phone"),
                   "email": school.get("contact_email")}]
        if any(school.get(k) for k in ("contact_name", "contact_phone", "contact_email"))
        else [],
        router=({"id": routers[0]["id"], "status": routers[0]["status"],
                 "status_since": routers[0]["status_since"],
                 "offline_since": routers[0]["offline_since"],
                 "last_seen": routers[0]["last_seen"]} if routers else None),
        devices=devs,
        online_hourly=online_hourly(conn, [d["id"] for d in devs], now))
    return school


def school_condition(devs: List[Dict[str, Any]]) -> str:
    """What the school's devices come to: ``router_down`` (its router is offline — the
    school has lost its Internet link, not one PC), ``all_offline``, ``some_devices_off``,
    ``all_online`` or ``no_devices``."""
    if not devs:
        return "no_devices"
    if any(d["role"] == "router" and d["status"] == "offline" for d in devs):
        return "router_down"
    on = sum(1 for d in devs if d["status"] == "online")
    expected = len(devs) - sum(1 for d in devs if d["status"] == "off_hours")
    if on >= expected:  # the off-hours PCs are not missing
        return "all_online" if on else "off_hours"
    return "all_offline" if on == 0 else "some_devices_off"


#: The school page's chart: this many hours of devices heard per hour.
HOURLY_SPAN = 7 * 24


def online_hourly(conn: Connection, ids: List[str], now: Optional[float] = None,
                  hours: int = HOURLY_SPAN) -> Dict[str, Any]:
    """Devices heard per hour (distinct devices with a health message) over the last
    ``hours`` hours, one point per hour, 0 for an hour nobody reported in. Hours come from
    the hourly rollups (kept a year) and, for the recent hours maintenance has not rolled up
    yet, from the 5-minute ones (kept ``store.rollup_5m_days``); where both have an hour the
    larger count is the one with every device."""
    now = time.time() if now is None else now
    end = int(now // 3600 * 3600)
    start = end - (hours - 1) * 3600
    counts: Dict[int, int] = {}
    if ids:
        h = rollup_1h.c
        for r in conn.execute(select(h.bucket_start, func.count().label("n"))
                              .where(h.device_id.in_(ids), h.bucket_start >= start)
                              .group_by(h.bucket_start)):
            counts[int(r.bucket_start)] = int(r.n)
        c = rollup_5m.c
        hour = (c.bucket_start // 3600) * 3600
        for r in conn.execute(select(hour.label("hour"),
                                     func.count(func.distinct(c.device_id)).label("n"))
                              .where(c.device_id.in_(ids), c.bucket_start >= start)
                              .group_by(hour)):
            counts[int(r.hour)] = max(counts.get(int(r.hour), 0), int(r.n))
    points = [{"ts": float(t), "n": counts.get(t, 0)} for t in range(start, end + 1, 3600)]
    return {"resolution": 3600, "from": float(start), "to": float(end + 3600),
            "devices": len(ids), "points": points}
