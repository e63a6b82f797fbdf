"""Đo ngay: a person asks for a bandwidth test of one school now (docs/connectivity.md
"Đo ngay"). The API (``POST /api/v1/schools/{code}/speedtest``) and the CLI
(``schoolmon-collector speedtest request``) both call :func:`request_now`.

It takes the path of a slot test: the same device choice (``Scheduler.choose_device``), the
same lease (``leases.grant``, trigger ``command``: one lease per school, so the lease is
the per-school rate limit) and data budget, and the grant goes out through the scheduler's
``send`` (the service's command publisher). It never records a slot in the day's plan: a
test asked for by hand does not take a slot's place.

Every request that reaches a decision is audited (``speedtest_request``: who, which
school, the lease or why not) in the transaction of the lease, and the audit rows are also
what the per-user limit counts (``connectivity.manual_per_hour`` in the last hour), so the
limit holds across collector processes and restarts.

    got = request_now(scheduler, "79000801", "tech@school", client="10.0.0.5",
                      per_hour=6)
    got.outcome      # "granted" | "held" | "budget" | "no_device" | "rate_limited"
    got.lease        # the lease when granted (shared decision 4)
    request_text(got, "vi")   # what a person reads (REQUEST_TEXT)
"""
import math
from typing import Any, Dict, NamedTuple, Optional

from sqlalchemy import func, select

from ..store import audit, school_state
from ..store.schema import audit_log, devices
from .leases import LEASE_KEY
from .text import REQUEST_TEXT

#: The audit action of a request (collector/store/audit.py ACTIONS).
AUDIT_ACTION = "speedtest_request"

#: The per-user window of ``connectivity.manual_per_hour``, seconds.
WINDOW = 3600.0

OUTCOMES = ("granted", "held", "budget", "no_device", "rate_limited")


class Asked(NamedTuple):
    """What came of one request."""

    outcome: str
    #: the lease granted (outcome "granted"), or the one held by another test ("held")
    lease: Optional[Dict[str, Any]] = None
    #: the holder's host name (or its id when it sent no inventory)
    device_name: Optional[str] = None
    #: the grant was handed to the publisher (False: no broker connection configured)
    sent: bool = False
    #: this month's bytes used, the limit and the test's expected cost (budget)
    used: int = 0
    limit: int = 0
    expected: int = 0
    #: requests of this user in the last hour and the limit (rate_limited)
    requests: int = 0
    per_hour: int = 0
    #: seconds until the user may ask again (rate_limited), or until the lease ends (held)
    retry_after: float = 0.0
    #: minutes within which the result should arrive (granted)
    minutes: int = 0


def recent_requests(conn: Any, actor: str, now: float) -> Any:
    """(count, oldest ts) of ``actor``'s requests in the last hour."""
    row = conn.execute(select(func.count(), func.min(audit_log.c.ts)).where(
        audit_log.c.action == AUDIT_ACTION, audit_log.c.actor == actor[:64],
        audit_log.c.ts > now - WINDOW)).first()
    return (int(row[0] or 0), float(row[1]) if row and row[1] is not None else None)


def _name(conn: Any, device: Optional[str]) -> Optional[str]:
    if not device:
        return None
    row = conn.execute(select(devices.c.hostname).where(devices.c.id == device)).first()
    return (row.hostname if row is not None and row.hostname else None) or device


def request_now(scheduler: Any, school: str, actor: str, client: Optional[str] = None,
                per_hour: Optional[int] = None, now: Optional[float] = None) -> Asked:
    """Ask for a test of ``school`` now, as ``actor`` (audited). ``per_hour``: refuse more
    than this many requests of ``actor`` in the last hour (None: no limit, the CLI on the
    server). The caller has checked that the school exists and that ``actor`` may."""
    from . import leases

    now = scheduler.clock() if now is None else now
    s = scheduler.s
    with scheduler.engine.begin() as conn:
        if per_hour is not None:
            count, oldest = recent_requests(conn, actor, now)
            if count >= per_hour:
                _count(scheduler, "rate_limited")
                wait = (oldest + WINDOW - now) if oldest is not None else WINDOW
                return Asked("rate_limited", requests=count, per_hour=per_hour,
                             retry_after=max(1.0, math.ceil(wait)))
        current = school_state.read(conn, school, LEASE_KEY).value
        if leases.held(current, now):
            # the lease held is answered before "no device": its holder is testing
            return _refused(scheduler, conn, school, actor, client, now, "held", current)
        device = scheduler.choose_device(conn, school, now)
        if device is None:
            return _refused(scheduler, conn, school, actor, client, now, "no_device")
        got = leases.grant(conn, school, device, now, s, trigger="command")
        if got.refused == "budget":
            scheduler._count("leases_refused", reason="budget")
            return _refused(scheduler, conn, school, actor, client, now, "budget",
                            used=got.used, limit=got.limit, expected=got.expected)
        if got.lease is None:  # another collector granted between our read and write
            scheduler._count("leases_refused", reason="held")
            held_now = school_state.read(conn, school, LEASE_KEY).value
            return _refused(scheduler, conn, school, actor, client, now, "held", held_now)
        lease = got.lease
        audit.record(conn, actor, AUDIT_ACTION, school,
                     {"lease": lease["id"], "device": device, "trigger": "command"},
                     client, now=now)
        name = _name(conn, device)
    scheduler._count("leases_granted")
    _count(scheduler, "granted")
    sent = bool(scheduler.send_grant(school, lease, now))
    return Asked("granted", lease=lease, device_name=name, sent=sent, used=got.used,
                 limit=got.limit, expected=got.expected,
                 minutes=max(1, math.ceil(float(s.test_timeout) / 60)))


def _refused(scheduler: Any, conn: Any, school: str, actor: str, client: Optional[str],
             now: float, outcome: str, lease: Optional[Dict[str, Any]] = None,
             **figures: Any) -> Asked:
    detail: Dict[str, Any] = {"refused": outcome}
    if lease:
        detail.update(lease=lease.get("id"), device=lease.get("device"))
    detail.update(figures)
    audit.record(conn, actor, AUDIT_ACTION, school, detail, client, now=now)
    _count(scheduler, outcome)
    if lease:
        return Asked(outcome, lease=lease, device_name=_name(conn, lease.get("device")),
                     retry_after=max(1.0, math.ceil(float(lease["exp"]) - now)))
    return Asked(outcome, **figures)


def _count(scheduler: Any, outcome: str) -> None:
    m = getattr(scheduler, "metrics", None)
    if m is not None and hasattr(m, "speedtest_requests"):
        m.speedtest_requests.inc(outcome=outcome)


def _mb(n: int) -> str:
    return "%d MB" % round(n / 1_000_000)


def request_text(got: Asked, lang: str, tz: str = "Asia/Ho_Chi_Minh") -> str:
    """The sentence a person reads about ``got`` (Vietnamese or English)."""
    pair = REQUEST_TEXT[got.outcome]
    text = pair[1] if lang == "en" else pair[0]
    values = {"device": got.device_name or (got.lease or {}).get("device") or "—",
              "minutes": str(got.minutes), "used": _mb(got.used), "limit": _mb(got.limit),
              "expected": _mb(got.expected), "count": str(got.requests),
              "per_hour": str(got.per_hour), "time": "—",
              "wait": str(max(1, math.ceil(got.retry_after / 60)))}
    if got.lease and got.lease.get("exp") is not None:
        import datetime as dt

        from zoneinfo import ZoneInfo
        values["time"] = dt.datetime.fromtimestamp(float(got.lease["exp"]), ZoneInfo(tz)) \
            .strftime("%H:%M:%S")
    for key, value in values.items():
        text = text.replace("{%s}" % key, value)
    if got.outcome == "granted" and not got.sent:
        tail = REQUEST_TEXT["not_sent"]
        text += " " + (tail[1] if lang == "en" else tail[0])
    return text


__all__ = ["AUDIT_ACTION", "OUTCOMES", "Asked", "request_now", "request_text",
           "recent_requests"]
