"""Devices: one device with the latest message of each kind (``GET /api/v1/devices/{id}``)
and a metric series from the state store's rollups (``GET /api/v1/devices/{id}/series``)."""
import math
import time
from typing import Any, Dict, Optional

from sqlalchemy import Connection, select

from ..store.schema import ROLLUP_METRICS, device_latest, devices, rollup_1h, rollup_5m, schools
from .scope import QueryError, Scope, resolve_scope, storable

DEVICE_STATUSES = ("online", "offline", "unknown")
DEVICE_STATES = ("pending", "active")

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


def device_brief(r: Any) -> Dict[str, Any]:
    """A device row as lists show it."""
    return {
        "id": r.id, "role": r.role, "room": r.room, "hostname": r.hostname, "os": r.os,
        "agent": r.agent, "state": r.state, "status": device_status(r),
        "offline_reason": None if r.online else r.offline_reason,
        "status_since": r.online_changed_at, "first_seen": r.first_seen,
        "last_seen": r.last_seen,
    }


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


def get_device(conn: Connection, device_id: str, scope: Scope) -> Optional[Dict[str, Any]]:
    """A device from the registry with the latest message of each kind; None when it does
    not exist or its school is outside ``scope``."""
    row = _visible_device(conn, device_id, scope)
    if row is None:
        return None
    out = device_brief(row)
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
        raise QueryError("bad_range", "at most %d days at once" % (MAX_SERIES_SPAN // 86400))
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
