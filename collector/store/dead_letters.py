"""Dead letters: messages refused for good, kept aside with their reason.

A message the state store or the time-series server refuses for what it is (not for an
outage) can never be stored, yet left unacknowledged it would hold one of the broker's
delivery slots forever (and come back on every reconnect): enough of them stop all ingest.
Ingest keeps each one here — the raw bytes as received, the topic, why — and then
acknowledges it. An administrator inspects them (``recent``) and ``/metrics`` counts them
(``schoolmon_dead_letters_total{reason}``).

``reason`` is a protocol reject reason, ``store_refused`` or ``timeseries_refused``.
"""
from typing import Any, Dict, Iterable, List, NamedTuple, Optional

from sqlalchemy import Engine, func, select

from .schema import dead_letters

STORE_REFUSED = "store_refused"
TIMESERIES_REFUSED = "timeseries_refused"


class DeadLetter(NamedTuple):
    received_at: float
    topic: str
    payload: bytes
    reason: str
    detail: Optional[str] = None
    device_id: Optional[str] = None
    school_code: Optional[str] = None


def _text(value: Optional[str], limit: int) -> Optional[str]:
    """Text every database takes: what the database refused is often the text itself (a
    NUL, a lone surrogate), so escape both and cut to the column's size."""
    if value is None:
        return None
    s = str(value).replace("\x00", "\\x00")
    s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s[:limit]


def _row(letter: DeadLetter) -> Dict[str, Any]:
    return {"received_at": float(letter.received_at),
            "topic": _text(letter.topic, 512) or "",
            "payload": bytes(letter.payload),
            "reason": _text(letter.reason, 64) or "",
            "detail": _text(letter.detail, 1000),
            "device_id": _text(letter.device_id, 128),
            "school_code": _text(letter.school_code, 64)}


def keep(engine: Engine, letters: Iterable[DeadLetter]) -> int:
    """Keep ``letters`` in one transaction; returns how many."""
    rows = [_row(x) for x in letters]
    if not rows:
        return 0
    with engine.begin() as conn:
        conn.execute(dead_letters.insert(), rows)
    return len(rows)


def count_by_reason(engine: Engine) -> Dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(dead_letters.c.reason, func.count())
                            .group_by(dead_letters.c.reason)).all()
    return {reason: int(n) for reason, n in rows}


def recent(engine: Engine, limit: int = 100, reason: Optional[str] = None
           ) -> List[Dict[str, Any]]:
    """The newest ``limit`` letters (newest first), as dicts of the table's columns."""
    q = select(dead_letters).order_by(dead_letters.c.received_at.desc(),
                                      dead_letters.c.id.desc()).limit(limit)
    if reason is not None:
        q = q.where(dead_letters.c.reason == reason)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]

