"""The audit log: who did what, when, to what (``audit_log``; revision 0004).

Actions (``ACTIONS``) are codes; text.AUDIT_LABELS names them for people.
"""
import time
from typing import Any, Dict, List, Mapping, Optional

from sqlalchemy import Connection, func, select

from .schema import audit_log

ACTIONS = ("login", "login_failed", "logout", "user_add", "user_disable", "token_create",
           "device_approve", "device_retire", "device_move", "school_approve",
           "schools_import", "unit_rename", "unit_former", "speedtest_request",
           # alerts (collector/alerting/actions.py)
           "alert_ack", "alert_unack", "silence_create", "silence_delete")


def record(conn: Connection, actor: str, action: str, target: Optional[str] = None,
           detail: Optional[Mapping[str, Any]] = None, client: Optional[str] = None,
           now: Optional[float] = None) -> None:
    """One audit row, inside the caller's transaction (the action and its record commit
    together or not at all)."""
    if action not in ACTIONS:
        raise ValueError("unknown audit action %r" % action)
    conn.execute(audit_log.insert().values(
        ts=now or time.time(), actor=actor[:64], action=action,
        target=None if target is None else target[:255],
        detail=dict(detail) if detail else None, client=(client or None) and client[:64]))


def query(conn: Connection, action: Optional[str] = None, actor: Optional[str] = None,
          target: Optional[str] = None, since: Optional[float] = None,
          until: Optional[float] = None, page: int = 1, per_page: int = 50) -> Dict[str, Any]:
    """Newest first, filtered, paged: ``{"items", "total", "page", "per_page", "pages"}``."""
    where: List[Any] = []
    if action:
        where.append(audit_log.c.action == action)
    if actor:
        where.append(audit_log.c.actor == actor)
    if target:
        where.append(audit_log.c.target == target)
    if since is not None:
        where.append(audit_log.c.ts >= since)
    if until is not None:
        where.append(audit_log.c.ts < until)
    total = int(conn.execute(select(func.count()).select_from(audit_log).where(*where))
                .scalar_one())
    rows = conn.execute(select(audit_log).where(*where)
                        .order_by(audit_log.c.ts.desc(), audit_log.c.id.desc())
                        .limit(per_page).offset((page - 1) * per_page))
    items = [{"id": int(r.id), "ts": r.ts, "actor": r.actor, "action": r.action,
              "target": r.target, "detail": r.detail or {}, "client": r.client}
             for r in rows]
    return {"items": items, "total": total, "page": page, "per_page": per_page,
            "pages": (total + per_page - 1) // per_page}
