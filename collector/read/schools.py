"""Schools: one page of them with filters (``GET /api/v1/schools``) and one school with its
devices (``GET /api/v1/schools/{code}``); the per-school building blocks the summary and the
organisation tree share."""
import math
from typing import Any, Dict, FrozenSet, List, Optional, Set, Tuple

from sqlalchemy import Connection, and_, case, false, func, literal, or_, select

from ..store import school_status
from ..store.registry import descendant_units
from ..store.schema import devices, org_units, schools
from ..text import fold, sort_key
from .devices import device_brief
from .scope import QueryError, Scope, resolve_scope, school_filter, storable

#: School statuses, worst first (the order lists and the UI use).
SCHOOL_STATUSES = ("offline", "partial", "online", "no_devices")
#: Baseline values a school can have; in this version every school is "not_evaluated".
BASELINE_VALUES = ("meets", "below", "not_evaluated")
BASELINES = ("connectivity", "security")
#: Unit ids are SQL integers: a larger number names no unit (and no database must see it).
MAX_UNIT_ID = 2 ** 63 - 1


def counted_device() -> Any:
    """Devices in the fleet figures: every one but the retired (kept for their history)."""
    return devices.c.state != "retired"


def device_counts(visible: Optional[FrozenSet[str]] = None) -> Any:
    """Subquery, per school: devices ``n``, ``online``, ``pending``, ``last_seen`` (only of
    the ``visible`` schools when given: a scoped caller's query reads their devices only)."""
    online = case((devices.c.online, 1), else_=0)
    pending = case((devices.c.state == "pending", 1), else_=0)
    return (select(devices.c.school_code.label("school_code"),
                   func.count().label("n"),
                   func.sum(online).label("online"),
                   func.sum(pending).label("pending"),
                   func.max(devices.c.last_seen).label("last_seen"))
            .where(counted_device(), school_filter(devices.c.school_code, visible))
            .group_by(devices.c.school_code).subquery("agg"))


def school_status_expr(agg: Any) -> Any:
    """SQL for :func:`schoolmon.collector.store.school_status` over :func:`device_counts`."""
    n = func.coalesce(agg.c.n, 0)
    on = func.coalesce(agg.c.online, 0)
    return case((n == 0, literal("no_devices")), (on >= n, literal("online")),
                (on == 0, literal("offline")), else_=literal("partial"))


def baseline_note() -> Dict[str, Any]:
    """The baselines of a school or a count: not evaluated in this version."""
    note: Dict[str, Any] = {b: None for b in BASELINES}
    note.update(evaluated=False, status="not_evaluated")
    return note


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


def _area_units(conn: Connection, area: str) -> Set[int]:
    """Unit ids an ``area`` filter names: an id, a code, the last part of a code, or a
    name; and every unit below them."""
    a = area.strip()
    if not a or not storable(a):
        return set()
    conds = [org_units.c.code == a, org_units.c.code.endswith("/" + a, autoescape=True),
             org_units.c.name == a]
    # "²" and "٣" are digits to str.isdigit() but not to int(); ids are ASCII, and SQL
    # integers stop at 64 bits
    if a.isascii() and a.isdigit() and int(a) <= MAX_UNIT_ID:
        conds.append(org_units.c.id == int(a))
    ids = set(conn.execute(select(org_units.c.id).where(or_(*conds))).scalars())
    return descendant_units(conn, ids) if ids else set()


def _name_match(conn: Connection, q: str, visible: Optional[FrozenSet[str]]) -> Any:
    """Schools whose code contains ``q`` or whose name contains it ignoring case and
    Vietnamese diacritics ("truong kim dong" finds "Trường Kim Đồng"), on SQLite and
    PostgreSQL alike (a province has a few thousand schools: folded here, not in SQL)."""
    needle = fold(q)
    hits = [r.code for r in conn.execute(select(schools.c.code, schools.c.name)
                                         .where(school_filter(schools.c.code, visible)))
            if needle in fold(r.name) or needle in r.code.lower()]
    return schools.c.code.in_(hits) if hits else false()


def list_schools(conn: Connection, scope: Scope, area: Optional[str] = None,
                 status: Optional[str] = None, baseline: Optional[str] = None,
                 page: int = 1, per_page: int = 50, q: Optional[str] = None
                 ) -> Dict[str, Any]:
    """One page of schools with their status and device counts, worst status first, then
    area and name in Vietnamese order. Filters: ``area`` (unit id, code or name; includes
    the units below), ``status`` (one of SCHOOL_STATUSES), ``baseline`` (one of
    BASELINE_VALUES; every school is ``not_evaluated`` in this version), ``q`` (part of the
    code or of the name, case and diacritics ignored)."""
    if status is not None and status not in SCHOOL_STATUSES:
        raise QueryError("bad_status", "status must be one of " + ", ".join(SCHOOL_STATUSES))
    if baseline is not None and baseline not in BASELINE_VALUES:
        raise QueryError("bad_baseline",
                         "baseline must be one of " + ", ".join(BASELINE_VALUES))
    page = max(1, int(page))
    per_page = max(1, min(500, int(per_page)))
    visible = resolve_scope(conn, scope)
    agg = device_counts(visible)
    st = school_status_expr(agg)
    area_u = org_units.alias("area_u")
    conds = [school_filter(schools.c.code, visible)]
    if area:
        ids = _area_units(conn, area)
        conds.append(schools.c.org_unit_id.in_(sorted(ids)) if ids else false())
    if status:
        conds.append(st == status)
    if baseline and baseline != "not_evaluated":
        conds.append(false())  # nothing is evaluated yet: no school meets or is below
    if q and q.strip():
        conds.append(_name_match(conn, q, visible))
    base = (schools.outerjoin(agg, agg.c.school_code == schools.c.code)
            .outerjoin(area_u, area_u.c.id == schools.c.org_unit_id))
    where = and_(*conds)
    # The order is Vietnamese (SQL collations are not, and differ between SQLite and
    # PostgreSQL): sort the matching codes here, then read one page of rows.
    worst = case((st == "offline", 0), (st == "partial", 1), (st == "online", 2), else_=3)
    keys = list(conn.execute(select(schools.c.code, worst.label("worst"),
                                    area_u.c.name.label("area_name"), schools.c.name)
                             .select_from(base).where(where)))
    keys.sort(key=lambda r: (r.worst, sort_key(r.area_name or ""), sort_key(r.name), r.code))
    total = len(keys)
    page_codes = [r.code for r in keys[(page - 1) * per_page: page * per_page]]
    rows = {r.code: r for r in conn.execute(
        select(schools.c.code, schools.c.name, schools.c.level, schools.c.isp,
               schools.c.link_type, schools.c.students, schools.c.contracted_down_mbps,
               schools.c.contracted_up_mbps,
               area_u.c.id.label("area_id"), area_u.c.code.label("area_code"),
               area_u.c.name.label("area_name"),
               func.coalesce(agg.c.n, 0).label("n"),
               func.coalesce(agg.c.online, 0).label("online"),
               func.coalesce(agg.c.pending, 0).label("pending"),
               agg.c.last_seen, st.label("status"))
        .select_from(base).where(schools.c.code.in_(page_codes) if page_codes else false()))}
    items: List[Dict[str, Any]] = []
    for code in page_codes:
        r = rows.get(code)
        if r is None:  # gone between the two reads
            continue
        n, on = int(r.n), int(r.online)
        items.append({
            "code": r.code, "name": r.name, "level": r.level,
            "area": {"id": r.area_id, "code": r.area_code, "name": r.area_name},
            "status": r.status,
            "devices": {"total": n, "online": on, "offline": n - on,
                        "pending": int(r.pending)},
            "last_seen": r.last_seen,
            "baseline": "not_evaluated",
            "isp": r.isp, "link_type": r.link_type, "students": r.students,
            "contracted_down_mbps": r.contracted_down_mbps,
            "contracted_up_mbps": r.contracted_up_mbps,
        })
    return {"items": items, "page": page, "per_page": per_page, "total": total,
            "pages": max(1, math.ceil(total / per_page)) if total else 0,
            "filters": {"area": area, "status": status, "baseline": baseline, "q": q}}


def get_school(conn: Connection, code: str, scope: Scope) -> Optional[Dict[str, Any]]:
    """A school with its area, province, status and devices; None when it does not exist
    or is outside ``scope``."""
    if not storable(code):
        return None
    visible = resolve_scope(conn, scope)
    if visible is not None and code not in visible:
        return None
    row = conn.execute(select(schools).where(schools.c.code == code)).first()
    if row is None:
        return None
    school = dict(row._mapping)
    area, province = _area_and_province(units_by_id(conn), school.pop("org_unit_id"))
    devs = [device_brief(r) for r in conn.execute(
        select(devices).where(devices.c.school_code == code)
        .order_by(devices.c.role, devices.c.room, devices.c.hostname, devices.c.id))]
    n = len(devs)
    on = sum(1 for d in devs if d["status"] == "online")
    school.update(
        area=area, province=province, status=school_status(on, n), baseline="not_evaluated",
        below_baseline=baseline_note(),
        counts={"devices": n, "online": on, "offline": n - on,
                "pending": sum(1 for d in devs if d["state"] == "pending")},
        last_seen=max((d["last_seen"] for d in devs if d["last_seen"] is not None),
                      default=None),
        devices=devs)
    return school
