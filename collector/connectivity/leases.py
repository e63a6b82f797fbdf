"""A school's speed-test lease and its monthly data budget (school_state; docs/connectivity.md
"Who tests when: leases, slots and budgets").

One lease per school at a time, whatever the number of collector processes on one store:
the lease is the school_state entry ``speedtest.lease``, changed only by compare-and-set, so
of two collectors granting at the same moment one wins and the other is told ``held``.

    got = grant(conn, school, device, now, settings, trigger="slot")
    got.lease        # the lease (a dict, shared decision 4), or None ...
    got.refused      # ... and why: "held" (another unexpired lease) or "budget"
    release(conn, school, lease_id, device, now)   # the holder's result arrived
    expire(conn, school, now)                      # exp passed without a result

Bytes used per school and local month are summed from ``link_tests`` (every stored test,
by hand too); ``speedtest.budget`` keeps that sum for the pages, rewritten on each result.
"""
import datetime as dt
import uuid
from types import SimpleNamespace
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from sqlalchemy import Connection, func, select
from zoneinfo import ZoneInfo

from ..store import school_state
from ..store.schema import link_tests, schools

LEASE_KEY = "speedtest.lease"
BUDGET_KEY = "speedtest.budget"
PLAN_KEY = "speedtest.plan"

MB = 1_000_000

#: schools.link_type values (lower case) that are metered mobile data: budget_mobile_mb and
#: the short test mode.
METERED = frozenset({"3g", "4g", "5g", "lte", "mobile", "di động", "di dong", "usb 3g",
                     "dcom"})

#: Bytes a full test moves per Mbit/s of link speed: about rate × 10 s each way (DOMAIN.md:
#: 31 MB at 20/5, 155 MB at 100/30).
BYTES_PER_MBPS = 10 * 1_000_000 // 8

#: Contracted speed assumed when a school has none and no earlier test (a mid-size fibre).
DEFAULT_DOWN_MBPS, DEFAULT_UP_MBPS = 100.0, 30.0

#: The grant's budget over a full test's bytes: room for a link faster than the rate it is
#: sized from (an upgrade, an ISP giving more than the contract).
HEADROOM = 2.0

#: Earlier leases remembered in the lease entry, so a result that arrives late (an agent
#: that was offline) is still matched to its lease.
RECENT_LEASES = 8


class Settings(NamedTuple):
    """The ``connectivity`` keys leases use (``settings_from_config``)."""

    test_timeout: float = 180.0
    lease_margin: float = 60.0
    budget_fibre_mb: float = 60000.0
    budget_mobile_mb: float = 1000.0
    short_mb: float = 10.0
    server: str = ""
    timezone: str = "Asia/Ho_Chi_Minh"


def settings_from_config(cfg: SimpleNamespace, server: str = "") -> Settings:
    c = cfg.connectivity
    return Settings(float(c.test_timeout), float(c.lease_margin), float(c.budget_fibre_mb),
                    float(c.budget_mobile_mb), float(c.short_mb), server,
                    getattr(getattr(cfg, "province", None), "timezone", "Asia/Ho_Chi_Minh"))


class Grant(NamedTuple):
    #: the lease granted, or None
    lease: Optional[Dict[str, Any]]
    #: None when granted; "held" (a lease is held and not expired, or another collector was
    #: first) or "budget" (the test would take the month's data budget past its limit)
    refused: Optional[str]
    #: bytes used this month, the limit, and what this test was expected to cost
    used: int = 0
    limit: int = 0
    expected: int = 0


def is_metered(link_type: Optional[str]) -> bool:
    return (link_type or "").strip().lower() in METERED


def month_bounds(now: float, tz: str) -> Tuple[str, float, float]:
    """("YYYY-MM", start, end) of the local month that holds ``now`` (UTC epochs)."""
    zone = ZoneInfo(tz)
    local = dt.datetime.fromtimestamp(now, zone)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = (start + dt.timedelta(days=32)).replace(day=1)
    return "%04d-%02d" % (start.year, start.month), start.timestamp(), nxt.timestamp()


def held(lease: Optional[Dict[str, Any]], now: float) -> bool:
    """The lease is granted, not released, not expired."""
    if not lease:
        return False
    return lease.get("released_at") is None and lease.get("expired_at") is None and \
        float(lease["exp"]) > now


def month_usage(conn: Connection, school: str, now: float, tz: str) -> Tuple[str, int, int]:
    """(month, bytes, tests) of the school's tests in the local month of ``now``."""
    month, start, end = month_bounds(now, tz)
    row = conn.execute(select(
        func.coalesce(func.sum(func.coalesce(link_tests.c.bytes_rx, 0)
                               + func.coalesce(link_tests.c.bytes_tx, 0)), 0),
        func.count()).where(link_tests.c.school_code == school, link_tests.c.ts >= start,
                            link_tests.c.ts < end)).first()
    return month, int(row[0] or 0) if row else 0, int(row[1] or 0) if row else 0


def _school(conn: Connection, school: str) -> Dict[str, Any]:
    row = conn.execute(select(schools.c.link_type, schools.c.contracted_down_mbps,
                              schools.c.contracted_up_mbps).where(
        schools.c.code == school)).first()
    return dict(row._mapping) if row else {}


def budget_limit(info: Dict[str, Any], s: Settings) -> int:
    mb = s.budget_mobile_mb if is_metered(info.get("link_type")) else s.budget_fibre_mb
    return int(mb * MB)


def _last_full(conn: Connection, school: str) -> Any:
    """The school's last counted full test (bytes and rates), or None."""
    return conn.execute(select(link_tests.c.bytes_rx, link_tests.c.bytes_tx,
                               link_tests.c.down_mbps, link_tests.c.up_mbps).where(
        link_tests.c.school_code == school, link_tests.c.ok.is_(True),
        link_tests.c.refused.is_(None), link_tests.c.bytes_rx.is_not(None),
        link_tests.c.mode.is_(None) | (link_tests.c.mode == "full"))
        .order_by(link_tests.c.ts.desc()).limit(1)).first()


def _contract_cost(info: Dict[str, Any]) -> int:
    """A full test's bytes at the contracted speed (none: 100/30 assumed; a contract with
    no upload: a quarter of the download)."""
    down = info.get("contracted_down_mbps") or DEFAULT_DOWN_MBPS
    up = info.get("contracted_up_mbps") or (DEFAULT_UP_MBPS if not info.get(
        "contracted_down_mbps") else down / 4)
    return int((float(down) + float(up)) * BYTES_PER_MBPS)


def expected_cost(conn: Connection, school: str, info: Dict[str, Any], mode: str,
                  s: Settings) -> int:
    """Bytes the next test is expected to move: ``short_mb`` in short mode; else the last
    full test's bytes, else the contracted speed × 10 s each way."""
    if mode == "short":
        return int(s.short_mb * MB)
    row = _last_full(conn, school)
    if row is not None and (row.bytes_rx or 0) + (row.bytes_tx or 0) > 0:
        return int((row.bytes_rx or 0) + (row.bytes_tx or 0))
    return _contract_cost(info)


def grant_budget(conn: Connection, school: str, info: Dict[str, Any], mode: str,
                s: Settings, cost: int) -> int:
    """The most a full test may move (the grant's ``budget``, before the month's rest).

    HEADROOM × the largest of: the expected cost (the last test's bytes); a full test at
    the contracted speed (none: 100/30); a full test at the last *measured* rates. Sized
    from the last test's bytes alone, a slow test made the next grant small: after a link
    upgrade the first fast test ran out of budget in its first seconds, and each one only
    doubled the next (seen end to end: 3 MB, then 6, then 12), with rates measured on a
    few seconds of warm-up (upload +38 %). The contract is the floor because a school
    rarely gets less than a tenth of it for long, and the month's budget still caps the
    grant; the measured rates keep a test that stopped at its budget (fewer bytes than
    its rate needs) from shrinking the next one."""
    if mode == "short":
        return cost
    need = max(cost, _contract_cost(info))
    row = _last_full(conn, school)
    if row is not None and row.down_mbps is not None and row.up_mbps is not None:
        need = max(need, int((float(row.down_mbps) + float(row.up_mbps)) * BYTES_PER_MBPS))
    return int(HEADROOM * need)


def grant(conn: Connection, school: str, device: str, now: float, s: Settings,
          trigger: str = "slot") -> Grant:
    """Grant the school's lease to ``device`` if none is held and the budget allows it.
    Call inside a transaction; the lease is only this device's once that commits."""
    current, version = school_state.read(conn, school, LEASE_KEY)
    if held(current, now):
        return Grant(None, "held")
    info = _school(conn, school)
    mode = "short" if is_metered(info.get("link_type")) else "full"
    month, used, _tests = month_usage(conn, school, now, s.timezone)
    limit = budget_limit(info, s)
    cost = expected_cost(conn, school, info, mode, s)
    if used + cost > limit:
        return Grant(None, "budget", used, limit, cost)
    # The most the test may move (grant_budget), never past what is left of the month's.
    budget = min(limit - used, grant_budget(conn, school, info, mode, s, cost))
    lease = {"id": uuid.uuid4().hex, "device": device, "granted_at": now,
             "exp": now + s.test_timeout + s.lease_margin, "server": s.server,
             "budget": int(budget), "mode": mode, "trigger": trigger, "released_at": None,
             "recent": _recent(current)}
    if school_state.compare_and_set(conn, school, LEASE_KEY, lease, version) is None:
        return Grant(None, "held", used, limit, cost)
    return Grant(lease, None, used, limit, cost)


def _recent(previous: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    if not previous:
        return []
    ended = ("released" if previous.get("released_at") is not None else
             "expired" if previous.get("expired_at") is not None else None)
    old = [{"id": previous["id"], "device": previous["device"], "exp": previous["exp"],
            "ended": ended}]
    return (old + list(previous.get("recent") or []))[:RECENT_LEASES]


def find(lease: Optional[Dict[str, Any]], lease_id: str) -> Optional[Dict[str, Any]]:
    """The lease (current or a recent one) with this id, or None."""
    if not lease:
        return None
    if lease.get("id") == lease_id:
        return lease
    for old in lease.get("recent") or []:
        if old.get("id") == lease_id:
            return old  # type: ignore[no-any-return]
    return None


def release(conn: Connection, school: str, lease_id: str, device: str, now: float) -> bool:
    """The holder reported its test: the lease is free again. False when this is not the
    current, held lease of ``device`` (nothing changed)."""
    current, version = school_state.read(conn, school, LEASE_KEY)
    if not current or current.get("id") != lease_id or current.get("device") != device \
            or current.get("released_at") is not None or current.get("expired_at") is not None:
        return False
    done = dict(current, released_at=now)
    return school_state.compare_and_set(conn, school, LEASE_KEY, done, version) is not None


def expire(conn: Connection, school: str, now: float) -> Optional[Dict[str, Any]]:
    """Mark the lease expired when ``exp`` passed without a result; returns it, else None."""
    current, version = school_state.read(conn, school, LEASE_KEY)
    if not current or current.get("released_at") is not None \
            or current.get("expired_at") is not None or float(current["exp"]) > now:
        return None
    done = dict(current, expired_at=now)
    if school_state.compare_and_set(conn, school, LEASE_KEY, done, version) is None:
        return None
    return done


def update_budget(conn: Connection, school: str, now: float, s: Settings) -> Dict[str, Any]:
    """Rewrite ``speedtest.budget`` from link_tests (the month's bytes and tests)."""
    month, used, tests = month_usage(conn, school, now, s.timezone)
    value = {"month": month, "bytes": used, "tests": tests,
             "limit": budget_limit(_school(conn, school), s)}
    school_state.write(conn, school, BUDGET_KEY, value)
    return value


def lease_state(conn: Connection, school: str, now: Optional[float] = None,
                s: Optional[Settings] = None) -> Dict[str, Any]:
    """What the school page shows: the lease held now (holder, granted, expires, trigger,
    mode) or None; the next planned test (epoch) or None; the month's budget (month,
    used, limit, tests; from ``speedtest.budget``, or computed when absent)."""
    import time as _time

    now = _time.time() if now is None else now
    s = s or Settings()
    lease = school_state.read(conn, school, LEASE_KEY).value
    plan = school_state.read(conn, school, PLAN_KEY).value
    budget = school_state.read(conn, school, BUDGET_KEY).value
    month = month_bounds(now, s.timezone)[0]
    if not budget or budget.get("month") != month:
        month, used, tests = month_usage(conn, school, now, s.timezone)
        budget = {"month": month, "bytes": used, "tests": tests,
                  "limit": budget_limit(_school(conn, school), s)}
    current = None
    if held(lease, now):
        current = {k: lease[k] for k in ("id", "device", "granted_at", "exp", "trigger",
                                         "mode", "server")}
    nxt = None
    if plan:
        done = {d.get("slot") for d in plan.get("done") or []}
        pending = [float(at) for key, at in (plan.get("slots") or {}).items()
                   if key not in done and at is not None]
        if plan.get("boot") is not None and "boot" not in done:
            pending.append(float(plan["boot"]))
        nxt = min(pending) if pending else None
    return {"lease": current, "next_test": nxt,
            "budget": {"month": budget["month"], "used": int(budget["bytes"]),
                       "limit": int(budget["limit"]), "tests": int(budget["tests"])}}


__all__ = ["LEASE_KEY", "BUDGET_KEY", "PLAN_KEY", "METERED", "Settings", "Grant",
           "settings_from_config", "is_metered", "month_bounds", "held", "month_usage",
           "expected_cost", "grant_budget", "grant", "find", "release", "expire",
           "update_budget", "lease_state"]
