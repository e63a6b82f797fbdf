"""The read side of the state store, as the API and the web UI need it.

Every function takes a ``scope``: None means everything; otherwise an iterable of
organisation units and schools the caller may see, each one of

- an ``int`` or ``"unit:<id>"``: an organisation unit by id (and everything below it),
- ``"org:<code>"``: an organisation unit by code (``"lao-cai"``, ``"lao-cai/bat-xat"``),
- ``"school:<code>"``: one school by its MOET code,
- any other string: an organisation unit with that code if there is one, else a school code.

Objects outside the scope are reported as not found (None), exactly like objects that do
not exist, so a caller cannot learn which codes exist elsewhere.

Times are returned as UTC epoch seconds (as stored); the API renders them. Statuses are
codes (``online``, ``offline``, ``partial``, ``no_devices``, ``pending``...); the API adds
labels. Nothing here invents a number it does not have: the security/connectivity
baselines are not evaluated in this version, so their counts are ``None`` with a note.
"""
import math
import time
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

from sqlalchemy import Connection, and_, case, false, func, literal, or_, select

from .store.registry import descendant_units, fold
from .store.schema import ROLLUP_METRICS, device_latest, devices, org_units, rollup_1h, rollup_5m, schools

Scope = Optional[Iterable[Any]]

#: School statuses, worst first (the order lists and the UI use).
SCHOOL_STATUSES = ("offline", "partial", "online", "no_devices")
DEVICE_STATUSES = ("online", "offline", "unknown")
DEVICE_STATES = ("pending", "active")
#: Baseline values a school can have; in this version every school is "not_evaluated".
BASELINE_VALUES = ("meets", "below", "not_evaluated")
BASELINES = ("connectivity", "security")

#: Series: ranges up to this many seconds are answered from 5-minute rollups, longer
#: ones (or ones reaching further back than the 5-minute retention) from hourly ones.
FIVE_MIN_MAX_SPAN = 2 * 86400
FIVE_MIN_RETENTION = 30 * 86400
MAX_SERIES_SPAN = 400 * 86400


class QueryError(ValueError):
    """A request the data cannot answer (unknown metric, bad range); ``code`` names it."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


# --- scope --------------------------------------------------------------------------------

def resolve_scope(conn: Connection, scope: Scope) -> Optional[FrozenSet[str]]:
    """The school codes a scope covers (None: everything)."""
    if scope is None:
        return None
    unit_ids: Set[int] = set()
    codes: Set[str] = set()
    unit_codes: Set[str] = set()
    plain: Set[str] = set()
    for item in scope:
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            unit_ids.add(item)
            continue
        s = str(item)
        kind, sep, rest = s.partition(":")
        if sep and kind == "unit" and rest.isdigit():
            unit_ids.add(int(rest))
        elif sep and kind == "org":
            unit_codes.add(rest)
        elif sep and kind == "school":
            codes.add(rest)
        else:
            plain.add(s)
    if unit_codes or plain:
        wanted = unit_codes | plain
        found = {r.code: r.id for r in conn.execute(
            select(org_units.c.id, org_units.c.code).where(org_units.c.code.in_(wanted)))}
        unit_ids.update(found.values())
        codes.update(p for p in plain if p not in found)
    if unit_ids:
        units = descendant_units(conn, unit_ids)
        codes.update(conn.execute(select(schools.c.code)
                                  .where(schools.c.org_unit_id.in_(units))).scalars())
    return frozenset(codes)


def _school_filter(column: Any, visible: Optional[FrozenSet[str]]) -> Any:
    if visible is None:
        return literal(True)
    if not visible:
        return false()
    return column.in_(sorted(visible))


# --- building blocks ----------------------------------------------------------------------

def _device_agg() -> Any:
    """Per school: devices, online, offline, pending, last_seen."""
    online = case((devices.c.online, 1), else_=0)
    pending = case((devices.c.state == "pending", 1), else_=0)
    return (select(devices.c.school_code.label("school_code"),
                   func.count().label("n"),
                   func.sum(online).label("online"),
                   func.sum(pending).label("pending"),
                   func.max(devices.c.last_seen).label("last_seen"))
            .group_by(devices.c.school_code).subquery("agg"))


def _school_status_expr(agg: Any) -> Any:
    n = func.coalesce(agg.c.n, 0)
    on = func.coalesce(agg.c.online, 0)
    return case((n == 0, literal("no_devices")), (on == n, literal("online")),
                (on == 0, literal("offline")), else_=literal("partial"))


def school_status(n: int, online: int) -> str:
    if not n:
        return "no_devices"
    if online == n:
        return "online"
    if online == 0:
        return "offline"
    return "partial"


def device_status(row: Any) -> str:
    """online / offline, or unknown for a device never heard from (a device whose only
    news is the broker's Last Will is offline)."""
    if row.online:
        return "online"
    if row.last_seen is None and row.offline_reason is None:
        return "unknown"
    return "offline"


def _baseline_note() -> Dict[str, Any]:
    return {b: None for b in BASELINES} | {"evaluated": False, "status": "not_evaluated"}


def _units(conn: Connection) -> Dict[int, Any]:
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
        return {"id": u.id, "code": u.code, "name": u.name, "level": u.level}

    return brief(area), (brief(top) if top.id != area.id else None)


# --- summary ------------------------------------------------------------------------------

def summary(conn: Connection, scope: Scope, now: Optional[float] = None) -> Dict[str, Any]:
    """Fleet counts: schools by status, devices by status / state / role, and the
    baselines (not evaluated in this version: ``None``, never a made-up 0)."""
    now = time.time() if now is None else now
    visible = resolve_scope(conn, scope)
    agg = _device_agg()
    status = _school_status_expr(agg)
    q = (select(status.label("status"), func.count().label("n"))
         .select_from(schools.outerjoin(agg, agg.c.school_code == schools.c.code))
         .where(_school_filter(schools.c.code, visible))
         .group_by(status))
    by_status = {s: 0 for s in SCHOOL_STATUSES}
    for r in conn.execute(q):
        by_status[r.status] = int(r.n)
    n_schools = sum(by_status.values())

    never = and_(devices.c.last_seen.is_(None), devices.c.offline_reason.is_(None))
    where = _school_filter(devices.c.school_code, visible)
    dq = (select(devices.c.online, devices.c.state, devices.c.role, never.label("never"),
                 func.count().label("n"))
          .where(where).group_by(devices.c.online, devices.c.state, devices.c.role, never))
    dev_status = {s: 0 for s in DEVICE_STATUSES}
    dev_state = {s: 0 for s in DEVICE_STATES}
    dev_role: Dict[str, int] = {}
    total = 0
    for r in conn.execute(dq):
        n = int(r.n)
        total += n
        st = "online" if r.online else ("unknown" if r.never else "offline")
        dev_status[st] += n
        dev_state[r.state or "pending"] = dev_state.get(r.state or "pending", 0) + n
        role = r.role or "unknown"
        dev_role[role] = dev_role.get(role, 0) + n
    seen_24h = int(conn.execute(select(func.count()).select_from(devices).where(
        where, devices.c.last_seen >= now - 86400)).scalar_one())
    return {
        "now": now,
        "schools": {
            "total": n_schools,
            "by_status": by_status,
            "offline": by_status["offline"],
            "partial": by_status["partial"],
        },
        "devices": {
            "total": total,
            "by_status": dev_status,
            "by_state": dev_state,
            "by_role": dict(sorted(dev_role.items())),
            "seen_24h": seen_24h,
        },
        "below_baseline": _baseline_note(),
    }


# --- organisation tree --------------------------------------------------------------------

def _zero_counts() -> Dict[str, int]:
    return {"schools": 0, "devices": 0, "online": 0, "offline": 0, "pending": 0,
            "schools_online": 0, "schools_partial": 0, "schools_offline": 0,
            "schools_no_devices": 0}


def org_tree(conn: Connection, scope: Scope, include_schools: bool = True) -> Dict[str, Any]:
    """Province → area → school with rollup counts. With a scope, only the schools in it
    and the units above them appear, and counts cover only those schools.
    ``include_schools=False`` leaves the schools out (units and their counts only)."""
    visible = resolve_scope(conn, scope)
    units = _units(conn)
    agg = _device_agg()
    q = (select(schools.c.code, schools.c.name, schools.c.level, schools.c.org_unit_id,
                func.coalesce(agg.c.n, 0).label("n"),
                func.coalesce(agg.c.online, 0).label("online"),
                func.coalesce(agg.c.pending, 0).label("pending"),
                agg.c.last_seen)
         .select_from(schools.outerjoin(agg, agg.c.school_code == schools.c.code))
         .where(_school_filter(schools.c.code, visible))
         .order_by(schools.c.name, schools.c.code))
    nodes: Dict[int, Dict[str, Any]] = {}

    def node(uid: int) -> Dict[str, Any]:
        if uid not in nodes:
            u = units[uid]
            nodes[uid] = {"type": "unit", "id": u.id, "code": u.code, "name": u.name,
                          "level": u.level, "parent_id": u.parent_id,
                          "counts": _zero_counts(), "children": []}
        return nodes[uid]

    for r in conn.execute(q):
        n, on = int(r.n), int(r.online)
        st = school_status(n, on)
        leaf = {"type": "school", "code": r.code, "name": r.name, "level": r.level,
                "status": st, "last_seen": r.last_seen,
                "counts": {"devices": n, "online": on, "offline": n - on,
                           "pending": int(r.pending)}}
        uid: Optional[int] = r.org_unit_id
        if uid not in units:
            continue
        if include_schools:
            node(uid)["children"].append(leaf)
        else:
            node(uid)
        seen: Set[int] = set()
        while uid is not None and uid in units and uid not in seen:
            seen.add(uid)
            c = node(uid)["counts"]
            c["schools"] += 1
            c["devices"] += n
            c["online"] += on
            c["offline"] += n - on
            c["pending"] += int(r.pending)
            c["schools_" + st] += 1
            uid = units[uid].parent_id
    if visible is None:  # show empty units too when the caller sees everything
        for uid in units:
            node(uid)
    roots: List[Dict[str, Any]] = []
    for uid in sorted(nodes, key=lambda i: (units[i].name, i)):
        nd = nodes[uid]
        parent = nd["parent_id"]
        if parent is not None and parent in nodes and parent != uid:
            nodes[parent]["children"].append(nd)
        else:
            roots.append(nd)
    for nd in nodes.values():  # units first (by name), then schools (by name)
        nd["children"].sort(key=lambda c: (c["type"] != "unit", c["name"], c.get("code")))
    total = _zero_counts()
    for r in roots:
        for k in total:
            total[k] += r["counts"][k]
    return {"roots": roots, "counts": total, "below_baseline": _baseline_note()}


# --- schools ------------------------------------------------------------------------------

def _area_units(conn: Connection, area: str) -> Set[int]:
    """Unit ids an ``area`` filter names: an id, a code, the last part of a code, or a
    name; and every unit below them."""
    a = area.strip()
    conds = [org_units.c.code == a, org_units.c.code.endswith("/" + a, autoescape=True),
             org_units.c.name == a]
    if a.isdigit():
        conds.append(org_units.c.id == int(a))
    ids = set(conn.execute(select(org_units.c.id).where(or_(*conds))).scalars())
    return descendant_units(conn, ids) if ids else set()


def _name_match(conn: Connection, q: str, visible: Optional[FrozenSet[str]]) -> Any:
    """Schools whose code contains ``q`` or whose name contains it ignoring case and
    Vietnamese diacritics ("truong kim dong" finds "Trường Kim Đồng"), on SQLite and
    PostgreSQL alike (a province has a few thousand schools: folded here, not in SQL)."""
    needle = fold(q)
    hits = [r.code for r in conn.execute(select(schools.c.code, schools.c.name)
                                         .where(_school_filter(schools.c.code, visible)))
            if needle in fold(r.name) or needle in r.code.lower()]
    return schools.c.code.in_(hits) if hits else false()


def list_schools(conn: Connection, scope: Scope, area: Optional[str] = None,
                 status: Optional[str] = None, baseline: Optional[str] = None,
                 page: int = 1, per_page: int = 50, q: Optional[str] = None
                 ) -> Dict[str, Any]:
    """One page of schools with their status and device counts, worst status first
    (then area, name). Filters: ``area`` (unit id, code or name; includes the units below),
    ``status`` (one of SCHOOL_STATUSES), ``baseline`` (one of BASELINE_VALUES; every school
    is ``not_evaluated`` in this version), ``q`` (part of the code or of the name, case and
    diacritics ignored)."""
    if status is not None and status not in SCHOOL_STATUSES:
        raise QueryError("bad_status", "status must be one of " + ", ".join(SCHOOL_STATUSES))
    if baseline is not None and baseline not in BASELINE_VALUES:
        raise QueryError("bad_baseline",
                         "baseline must be one of " + ", ".join(BASELINE_VALUES))
    page = max(1, int(page))
    per_page = max(1, min(500, int(per_page)))
    visible = resolve_scope(conn, scope)
    agg = _device_agg()
    st = _school_status_expr(agg)
    area_u = org_units.alias("area_u")
    conds = [_school_filter(schools.c.code, visible)]
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
    total = int(conn.execute(select(func.count()).select_from(base).where(where)).scalar_one())
    order = case((st == "offline", 0), (st == "partial", 1), (st == "online", 2), else_=3)
    rows = conn.execute(
        select(schools.c.code, schools.c.name, schools.c.level, schools.c.isp,
               schools.c.link_type, schools.c.students, schools.c.contracted_down_mbps,
               schools.c.contracted_up_mbps,
               area_u.c.id.label("area_id"), area_u.c.code.label("area_code"),
               area_u.c.name.label("area_name"),
               func.coalesce(agg.c.n, 0).label("n"),
               func.coalesce(agg.c.online, 0).label("online"),
               func.coalesce(agg.c.pending, 0).label("pending"),
               agg.c.last_seen, st.label("status"))
        .select_from(base).where(where)
        .order_by(order, area_u.c.name, schools.c.name, schools.c.code)
        .limit(per_page).offset((page - 1) * per_page)).all()
    items = []
    for r in rows:
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


def _device_brief(r: Any) -> Dict[str, Any]:
    return {
        "id": r.id, "role": r.role, "room": r.room, "hostname": r.hostname, "os": r.os,
        "agent": r.agent, "state": r.state, "status": device_status(r),
        "offline_reason": None if r.online else r.offline_reason,
        "status_since": r.online_changed_at, "first_seen": r.first_seen,
        "last_seen": r.last_seen,
    }


def get_school(conn: Connection, code: str, scope: Scope) -> Optional[Dict[str, Any]]:
    """A school with its area, province, status and devices; None when it does not exist
    or is outside ``scope``."""
    visible = resolve_scope(conn, scope)
    if visible is not None and code not in visible:
        return None
    row = conn.execute(select(schools).where(schools.c.code == code)).first()
    if row is None:
        return None
    school = dict(row._mapping)
    units = _units(conn)
    area, province = _area_and_province(units, school.pop("org_unit_id"))
    devs = [_device_brief(r) for r in conn.execute(
        select(devices).where(devices.c.school_code == code)
        .order_by(devices.c.role, devices.c.room, devices.c.hostname, devices.c.id))]
    n = len(devs)
    on = sum(1 for d in devs if d["status"] == "online")
    school.update(
        area=area, province=province, status=school_status(n, on), baseline="not_evaluated",
        below_baseline=_baseline_note(),
        counts={"devices": n, "online": on, "offline": n - on,
                "pending": sum(1 for d in devs if d["state"] == "pending")},
        last_seen=max((d["last_seen"] for d in devs if d["last_seen"] is not None),
                      default=None),
        devices=devs)
    return school


# --- devices ------------------------------------------------------------------------------

def _visible_device(conn: Connection, device_id: str, scope: Scope) -> Optional[Any]:
    row = conn.execute(select(devices).where(devices.c.id == device_id)).first()
    if row is None:
        return None
    visible = resolve_scope(conn, scope)
    if visible is not None and row.school_code not in visible:
        return None
    return row


def get_device(conn: Connection, device_id: str, scope: Scope) -> Optional[Dict[str, Any]]:
    """A device from the registry with the latest message of each kind; None when it does
    not exist or its school is outside ``scope``."""
    row = _visible_device(conn, device_id, scope)
    if row is None:
        return None
    out = _device_brief(row)
    srow = conn.execute(select(schools.c.code, schools.c.name)
                        .where(schools.c.code == row.school_code)).first()
    out["school"] = {"code": row.school_code, "name": srow.name if srow else None}
    out["hb"] = row.hb
    out["messages"] = {"received": row.received_total, "lost": row.lost_total,
                       "duplicates": row.duplicates_total, "last_seq": row.last_seq,
                       "resets": row.resets}
    latest: Dict[str, Any] = {}
    for r in conn.execute(select(device_latest).where(device_latest.c.device_id == device_id)
                          .order_by(device_latest.c.kind)):
        latest[r.kind] = {"ts": r.ts, "seq": r.seq, "received_at": r.received_at,
                          "skew": r.skew, "payload": r.payload}
    out["latest"] = latest
    out["series_metrics"] = list(ROLLUP_METRICS)
    return out


def choose_resolution(from_ts: float, to_ts: float, now: float) -> int:
    """300 (5-minute rollups) for ranges up to two days inside their retention, else 3600."""
    if to_ts - from_ts <= FIVE_MIN_MAX_SPAN and from_ts >= now - FIVE_MIN_RETENTION:
        return 300
    return 3600


def device_series(conn: Connection, device_id: str, metric: str, from_ts: float,
                  to_ts: float, scope: Scope, now: Optional[float] = None,
                  resolution: Optional[int] = None) -> Optional[Dict[str, Any]]:
    """A metric of one device over [from_ts, to_ts) from the state store's rollups:
    per bucket the number of messages that carried it, min, max and mean. None when the
    device does not exist or is outside ``scope``; QueryError for an unknown metric or a
    bad range."""
    if metric not in ROLLUP_METRICS:
        raise QueryError("metric_unknown", "metric must be one of " + ", ".join(ROLLUP_METRICS))
    if not (math.isfinite(from_ts) and math.isfinite(to_ts)) or from_ts >= to_ts:
        raise QueryError("bad_range", "from must be before to")
    if to_ts - from_ts > MAX_SERIES_SPAN:
        raise QueryError("bad_range", "at most %d days at once" % (MAX_SERIES_SPAN // 86400))
    row = _visible_device(conn, device_id, scope)
    if row is None:
        return None
    now = time.time() if now is None else now
    res = resolution if resolution in (300, 3600) else choose_resolution(from_ts, to_ts, now)
    table = rollup_5m if res == 300 else rollup_1h
    start = int(from_ts // res * res)
    c = table.c
    n_col, mn, mx, sm = c[metric + "_n"], c[metric + "_min"], c[metric + "_max"], c[metric + "_sum"]
    rows = conn.execute(
        select(c.bucket_start, n_col.label("n"), mn.label("min"), mx.label("max"),
               sm.label("sum"))
        .where(c.device_id == device_id, c.bucket_start >= start, c.bucket_start < to_ts,
               n_col > 0)
        .order_by(c.bucket_start)).all()
    points = [{"ts": float(r.bucket_start), "n": int(r.n), "min": r.min, "max": r.max,
               "mean": (r.sum / r.n) if r.n and r.sum is not None else None} for r in rows]
    return {"device": device_id, "metric": metric, "unit": ROLLUP_METRICS[metric],
            "resolution": res, "from": from_ts, "to": to_ts, "points": points}
