"""Delivery status for administrators (the admin page, the CLI): per channel its health
(what the last attempt said, since when), how many messages wait, failed or died, the
last error and the oldest message still waiting. Reads only the state store."""
from typing import Any, Dict, Optional

from sqlalchemy import Connection, func, select

from ..store.schema import attt_state, notifications
from .delivery import HEALTH_PREFIX
from .outbox import CHANNELS
from .text import error_text


def delivery_status(conn: Connection, now: float, lang: str = "vi") -> Dict[str, Any]:
    """``{channel: {"health": {ok, since, error, last_attempt} | None, "queued", "sending",
    "failed", "dead", "sent", "last_error", "last_error_text", "oldest_queued_at",
    "oldest_queued_age"}}`` for every channel. ``last_error`` is the newest stored error
    of a message not sent (``"<code>: <detail>"``), ``last_error_text`` the same in
    ``lang``; times are UTC epoch seconds."""
    t = notifications.c
    out: Dict[str, Any] = {}
    counts: Dict[str, Dict[str, int]] = {c: {} for c in CHANNELS}
    for channel, state, n in conn.execute(select(t.channel, t.state, func.count())
                                          .group_by(t.channel, t.state)).all():
        counts.setdefault(channel, {})[state] = int(n)
    oldest = dict(conn.execute(select(t.channel, func.min(t.created_at)).where(
        t.state.in_(("queued", "sending", "failed"))).group_by(t.channel)).all())
    health_rows = dict(conn.execute(select(attt_state.c.key, attt_state.c.value).where(
        attt_state.c.key.like(HEALTH_PREFIX + "%"))).all())
    for channel in counts:
        row = conn.execute(select(t.last_error).where(
            t.channel == channel, t.state.in_(("failed", "dead", "sending")),
            t.last_error.is_not(None)).order_by(t.id.desc()).limit(1)).first()
        last_error: Optional[str] = row.last_error if row is not None else None
        health = health_rows.get(HEALTH_PREFIX + channel)
        if isinstance(health, dict):
            health = dict(health, error_text=error_text(health.get("error"), lang))
        first = oldest.get(channel)
        c = counts[channel]
        out[channel] = {
            "health": health if isinstance(health, dict) else None,
            "queued": c.get("queued", 0), "sending": c.get("sending", 0),
            "failed": c.get("failed", 0), "dead": c.get("dead", 0), "sent": c.get("sent", 0),
            "last_error": last_error, "last_error_text": error_text(last_error, lang),
            "oldest_queued_at": float(first) if first is not None else None,
            "oldest_queued_age": max(0.0, now - float(first)) if first is not None else None,
        }
    return out
