"""Devices: one device with the latest message of each kind (``GET /api/v1/devices/{id}``)
and a metric series from the state store's rollups (``GET /api/v1/devices/{id}/series``)."""
import math
import time
from typing import Any, Dict, Iterable, List, Optional

from sqlalchemy import Connection, and_, false, func, or_, select

from ..alerting.calendar import Calendar
from ..store.schema import (
    ROLLUP_METRICS,
    device_latest,
    devices,
    events,
    org_units,
    rollup_1h,
    rollup_5m,
    schools,
)
from ..text import fold, sort_key
from .hours import OffHours, off_hours_at
from .posture import device_filter
from .scope import QueryError, Scope, resolve_scope, school_filter, storable

#: ``off_hours``: offline outside its role's calendar window (read/hours.py).
DEVICE_STATUSES = ("online", "offline", "off_hours", "unknown")
#: Device states a filter can ask for ("retired" once devices can be retired).
DEVICE_STATES = ("pending", "active", "retired")
DEVICE_ROLES = ("lab", "office", "server", "router")
#: Status history: the newest this many changes of one device.
HISTORY_LIMIT = 100

#: Series: ranges up to this many seconds are answered from 5-minute rollups (when they
#: start inside the 5-minute retention, ``store.rollup_5m_days``), longer ones from hourly.
FIVE_MIN_MAX_SPAN = 2 * 86400
DEFAULT_FIVE_MIN_DAYS = 30
MAX_SERIES_SPAN = 400 * 86400


def device_status(row: Any) -> str:
    """online / offline, or unknown for a device never heard from (a device whose only
    news is the broker's Last Will is offline)."""
    if row.online:
        return "online"
    if row.last_seen is None and row.offline_reason is None:
        return "unknown"
    return "offline"


def device_brief(r: Any, hours: Optional[OffHours] = None) -> Dict[str, Any]:
    """A device row as lists show it. ``offline_since`` is ``status_since`` of an offline
    device (None when online or never heard); ``status`` is ``off_hours`` for one offline
    outside its role's window by ``hours`` (None: the calendar is not asked)."""
    status = device_status(r)
    offline = status == "offline"
    if hours is not None:
        status = hours.device_status(status, r.role, r.school_code)
    return {
        "id": r.id, "school_code": r.school_code, "role": r.role, "room": r.room,
        "hostname": r.hostname, "os": r.os,
        "agent": r.agent, "state": r.state, "status": status,
        "offline_reason": None if r.online else r.offline_reason,
        "status_since": r.online_changed_at,
        "offline_since": r.online_changed_at if offline else None,
        "first_seen": r.first_seen, "last_seen": r.last_seen,
    }


def health_brief(payload: Optional[Dict[str, Any]], ts: Optional[float] = None
                 ) -> Optional[Dict[str, Any]]:
    """CPU, memory, fullest disk (%) and temperature from a health payload, with the
    time it was measured; None without one."""
    if not isinstance(payload, dict):
        return None
    disks = payload.get("disks") or []
    disk = max((float(d["pct"]) for d in disks if isinstance(d, dict)
                and isinstance(d.get("pct"), (int, float))), default=None)
    return {"ts": ts, "cpu_pct": payload.get("cpu_pct"), "mem_pct": payload.get("mem_pct"),
            "disk_pct": disk, "temp": payload.get("temp")}


def latest_health(conn: Connection, ids: Iterable[str]) -> Dict[str, Dict[str, Any]]:
    """The health brief of each device in ``ids`` that ever sent health."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    out: Dict[str, Dict[str, Any]] = {}
    for r in conn.execute(select(device_latest.c.device_id, device_latest.c.ts,
                                 device_latest.c.payload)
                          .where(device_latest.c.kind == "health",
                                 device_latest.c.device_id.in_(wanted))):
        brief = health_brief(r.payload, r.ts)
        if brief is not None:
            out[r.device_id] = brief
    return out


def status_history(conn: Connection, school: str, device_id: str,
                   limit: int = HISTORY_LIMIT) -> List[Dict[str, Any]]:
    """The device's changes of status from the events (registered, online, offline with
    the reason), newest first."""
    rows = conn.execute(
        select(events.c.ts, events.c.kind, events.c.detail)
        .where(events.c.school == school, events.c.device == device_id,
               events.c.kind.in_(("device_registered", "device_online", "device_offline")))
        .order_by(events.c.ts.desc(), events.c.id.desc()).limit(limit))
    out = []
    for r in rows:
        detail = r.detail if isinstance(r.detail, dict) else {}
        status = {"device_online": "online", "device_offline": "offline"}.get(r.kind, "pending")
        out.append({"ts": r.ts, "event": r.kind, "status": status,
                    "reason": detail.get("reason")})
    return out


def _visible_device(conn: Connection, device_id: str, scope: Scope) -> Optional[Any]:
    if not storable(device_id):
        return None
    row = conn.execute(select(devices).where(devices.c.id == device_id)).first()
    if row is None:
        return None
    visible = resolve_scope(conn, scope)
    if visible is not None and row.school_code not in visible:
        return None
    return row


def get_device(conn: Connection, device_id: str, scope: Scope,
               calendar: Optional[Calendar] = None, now: Optional[float] = None
               ) -> Optional[Dict[str, Any]]:
    """A device from the registry with the latest message of each kind; None when it does
    not exist or its school is outside ``scope``. Its status at ``now`` on ``calendar``."""
    row = _visible_device(conn, device_id, scope)
    if row is None:
        return None
    now = time.time() if now is None else now
    out = device_brief(row, off_hours_at(conn, calendar, now, frozenset((row.school_code,))))
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
    health = latest.get("health")
    out["health"] = health_brief(health["payload"], health["ts"]) if health else None
    out["history"] = status_history(conn, row.school_code, device_id)
    out["series_metrics"] = list(ROLLUP_METRICS)
    return out


def choose_resolution(from_ts: float, to_ts: float, now: float,
                      five_min_days: int = DEFAULT_FIVE_MIN_DAYS) -> int:
    """300 (5-minute rollups) for ranges up to two days that start inside the 5-minute
    retention (``five_min_days``, the store's ``rollup_5m_days``), else 3600."""
    if to_ts - from_ts <= FIVE_MIN_MAX_SPAN and from_ts >= now - five_min_days * 86400:
        return 300
    return 3600


def device_series(conn: Connection, device_id: str, metric: str, from_ts: float,
                  to_ts: float, scope: Scope, now: Optional[float] = None,
                  resolution: Optional[int] = None,
                  five_min_days: int = DEFAULT_FIVE_MIN_DAYS) -> Optional[Dict[str, Any]]:
    """A metric of one device over [from_ts, to_ts) from the state store's rollups:
    per bucket the number of messages that carried it, min, max and mean. None when the
    device does not exist or is outside ``scope``; QueryError for an unknown metric or a
    bad range. ``five_min_days`` is how long the store keeps 5-minute rollups."""
    if metric not in ROLLUP_METRICS:
        raise QueryError("metric_unknown", "metric must be one of " + ", ".join(ROLLUP_METRICS))
    if not (math.isfinite(from_ts) and math.isfinite(to_ts)) or from_ts >= to_ts:
        raise QueryError("bad_range", "from must be before to")
    if to_ts - from_ts > MAX_SERIES_SPAN:
        raise QueryError("range_too_long",
                         "at most %d days at once" % (MAX_SERIES_SPAN // 86400))
    row = _visible_device(conn, device_id, scope)
    if row is None:
        return None
    now = time.time() if now is None else now
    res = resolution if resolution in (300, 3600) else choose_resolution(
        from_ts, to_ts, now, five_min_days)
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


#: Sort keys of the device list (``sort=``; ``-key`` descending). Text keys sort in
#: Vietnamese order.
DEVICE_SORTS = ("status", "id", "hostname", "school", "role", "room", "os", "last_seen",
                "status_since")
_TEXT_SORTS = ("hostname", "room", "os")
#: Disk fill for ``disk_over``: the fullest disk of the device's 5-minute rollups in
#: this many seconds before now (a value, not a guess, for devices that reported lately).
DISK_WINDOW = 86400


def list_devices(conn: Connection, scope: Scope, status: Optional[str] = None,
                 role: Optional[str] = None, os: Optional[str] = None,
                 school: Optional[str] = None, area_units: Optional[Iterable[int]] = None,
                 state: Optional[str] = None, offline_days: Optional[float] = None,
                 disk_over: Optional[float] = None, seen_hours: Optional[float] = None,
                 q: Optional[str] = None, sort: str = "status", descending: bool = False,
                 page: int = 1, per_page: int = 50, now: Optional[float] = None,
                 attt: Optional[str] = None, os_support: Optional[str] = None,
                 calendar: Optional[Calendar] = None) -> Dict[str, Any]:
    """One page of the devices the caller may see, with their school and latest health.

    Filters: ``status`` (online / offline / off_hours / unknown: ``off_hours`` is an
    offline device outside its role's window at ``now`` on ``calendar``), ``role``, ``os``
    (part of the OS name, case and diacritics ignored: "windows 7"), ``school`` (code),
    ``area_units`` (unit ids, from the schools' area filter), ``state`` (pending / active
    / retired; without it the retired are left out, as the fleet figures leave them out),
    ``offline_days`` (offline for more than N days: reported last before now − N days),
    ``disk_over`` (the fullest disk over N % in the last 24 h of rollups), ``seen_hours``
    (reported within the last N hours), ``q`` (part of the id or host name), ``attt``
    (``fail`` / ``unknown``: some check fails / is unknown; ``pass``: none does),
    ``os_support`` (``unsupported``, ``esu``, ``supported``, ``unknown``: the OS support
    table's judgement)."""
    if sort not in DEVICE_SORTS:
        raise QueryError("bad_sort", "sort must be one of " + ", ".join(DEVICE_SORTS))
    now = time.time() if now is None else now
    page = max(1, int(page))
    per_page = max(1, min(500, int(per_page)))
    visible = resolve_scope(conn, scope)
    d = devices.c
    conds: List[Any] = [school_filter(d.school_code, visible)]
    never = and_(d.last_seen.is_(None), d.offline_reason.is_(None))
    hours = off_hours_at(conn, calendar, now, visible)
    if status == "online":
        conds.append(d.online.is_(True))
    elif status == "offline":
        conds += [d.online.is_(False), ~never, ~hours.off_hours_sql()]
    elif status == "off_hours":
        conds.append(hours.off_hours_sql())
    elif status == "unknown":
        conds += [d.online.is_(False), never]
    if role:
        conds.append(d.role == role)
    if school is not None:
        conds.append(d.school_code == school if storable(school) else false())
    if area_units is not None:
        unit_ids = sorted(set(area_units))
        conds.append(d.school_code.in_(select(schools.c.code).where(
            schools.c.org_unit_id.in_(unit_ids))) if unit_ids else false())
    if state:
        conds.append(d.state == state)
    else:  # as the fleet figures count them: the retired only when asked for
        conds.append(d.state != "retired")
    if offline_days is not None:
        cutoff = now - offline_days * 86400
        conds += [d.online.is_(False),
                  or_(d.last_seen < cutoff,
                      and_(d.last_seen.is_(None), d.online_changed_at < cutoff))]
    if seen_hours is not None:
        conds.append(d.last_seen >= now - seen_hours * 3600)
    if disk_over is not None:
        r5 = rollup_5m.c
        full = (select(r5.device_id).where(r5.bucket_start >= int(now - DISK_WINDOW),
                                           r5.disk_pct_n > 0)
                .group_by(r5.device_id).having(func.max(r5.disk_pct_max) > disk_over))
        conds.append(d.id.in_(full))
    conds += device_filter(attt, os_support)
    wanted_os = fold(os) if os and os.strip() else None
    needle = fold(q) if q and q.strip() else None
    # ASCII text (OS names, ids, host names mostly are) is matched by the database; only
    # text with diacritics needs folding here
    if wanted_os is not None and wanted_os.isascii():
        conds.append(func.lower(d.os).contains(wanted_os, autoescape=True))
        wanted_os = None
    if needle is not None and needle.isascii():
        conds.append(or_(func.lower(d.id).contains(needle, autoescape=True),
                         func.lower(d.hostname).contains(needle, autoescape=True)))
        needle = None
    where = and_(*conds)
    base = devices.join(schools, schools.c.code == d.school_code)
    status_rank = func.coalesce(d.online, False)
    if wanted_os is None and needle is None and sort not in _TEXT_SORTS:
        # sorted and paged by the database: no text needs Vietnamese order
        col = {"status": status_rank, "id": d.id, "school": d.school_code, "role": d.role,
               "last_seen": d.last_seen, "status_since": d.online_changed_at}[sort]
        order = [col.desc() if descending else col.asc(), d.school_code, d.id]
        total = int(conn.execute(select(func.count()).select_from(base).where(where))
                    .scalar_one())
        ids: List[str] = list(conn.execute(select(d.id).select_from(base).where(where).order_by(*order)
                                .limit(per_page).offset((page - 1) * per_page)).scalars())
    else:
        keys = list(conn.execute(select(d.id, d.hostname, d.room, d.os, d.online,
                                        d.school_code, d.role, d.last_seen,
                                        d.online_changed_at)
                                 .select_from(base).where(where)))
        if wanted_os is not None:
            keys = [r for r in keys if r.os and wanted_os in fold(r.os)]
        if needle is not None:
            keys = [r for r in keys if needle in r.id.lower()
                    or (r.hostname and needle in fold(r.hostname))]

        def key_of(r: Any) -> Any:
            if sort in _TEXT_SORTS:
                value = getattr(r, sort)
                return (value is None, sort_key(value or ""))
            value = {"status": bool(r.online), "id": r.id, "school": r.school_code,
                     "role": r.role or "", "last_seen": r.last_seen or 0.0,
                     "status_since": r.online_changed_at or 0.0}[sort]
            return value

        keys.sort(key=lambda r: (r.school_code, r.id))
        keys.sort(key=key_of, reverse=descending)
        total = len(keys)
        ids = [r.id for r in keys[(page - 1) * per_page: page * per_page]]
    rows = {r.id: r for r in conn.execute(
        select(devices, schools.c.name.label("school_name"),
               org_units.c.name.label("area_name"), org_units.c.code.label("area_code"))
        .select_from(base.join(org_units, org_units.c.id == schools.c.org_unit_id))
        .where(d.id.in_(ids) if ids else false()))}
    health = latest_health(conn, ids)
    items: List[Dict[str, Any]] = []
    for did in ids:
        r = rows.get(did)
        if r is None:
            continue
        item = device_brief(r, hours)
        item["school"] = {"code": r.school_code, "name": r.school_name}
        item["area"] = {"code": r.area_code, "name": r.area_name}
        item["health"] = health.get(did)
        items.append(item)
    return {"items": items, "page": page, "per_page": per_page, "total": total,
            "pages": max(1, math.ceil(total / per_page)) if total else 0,
            "sort": ("-" if descending else "") + sort}
