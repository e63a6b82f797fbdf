"""Fleet counts for the caller's units (``GET /api/v1/summary``)."""
import time
from typing import Any, Dict, Optional

from sqlalchemy import Connection, and_, func, select

from ..store.schema import devices, schools
from .devices import DEVICE_STATES, DEVICE_STATUSES
from .schools import (
    SCHOOL_STATUSES,
    baseline_note,
    counted_device,
    device_counts,
    school_status_expr,
)
from .scope import Scope, resolve_scope, school_filter


def summary(conn: Connection, scope: Scope, now: Optional[float] = None) -> Dict[str, Any]:
    """Fleet counts: schools by status, devices by status / state / role, and the
    baselines (not evaluated in this version: ``None``, never a made-up 0)."""
    now = time.time() if now is None else now
    visible = resolve_scope(conn, scope)
    agg = device_counts(visible)
    status = school_status_expr(agg)
    q = (select(status.label("status"), func.count().label("n"))
         .select_from(schools.outerjoin(agg, agg.c.school_code == schools.c.code))
         .where(school_filter(schools.c.code, visible))
         .group_by(status))
    by_status = {s: 0 for s in SCHOOL_STATUSES}
    for r in conn.execute(q):
        by_status[r.status] = int(r.n)
    n_schools = sum(by_status.values())

    never = and_(devices.c.last_seen.is_(None), devices.c.offline_reason.is_(None))
    where = and_(school_filter(devices.c.school_code, visible), counted_device())
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
        "below_baseline": baseline_note(),
    }
