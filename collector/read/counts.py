"""Per-school device counts and the fleet's device totals, shared by the overview, the
summary and the school list.

For the whole province (scope None) the two aggregates read every device row (51,000 at
province scale), which alone took most of the Sở's 150 ms budget on every request. They are
therefore computed by one GROUP BY each and kept per process for :data:`TTL` seconds: a
change (a device going offline) shows after at most that long. Nothing here holds state only
one process knows: every process recomputes from the shared store, so several collectors on
one PostgreSQL agree within the TTL. A scoped request (an area officer, a school
technician) counts only its own schools' devices, straight from the store, every time.
"""
import logging
import threading
import time
import weakref
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Hashable,
    List,
    NamedTuple,
    Optional,
    Set,
    Tuple,
    TypeVar,
    cast,
)

from sqlalchemy import Connection, Engine, and_, case, func, select

from ..store.schema import devices
from .scope import school_filter

log = logging.getLogger(__name__)


def counted_device() -> Any:
    """Devices in the fleet figures: every one but the retired (kept for their history)."""
    return devices.c.state != "retired"

#: Seconds a province-wide count is reused before it is counted again.
TTL = 5.0
T = TypeVar("T")
#: The clock the TTL is measured on (tests replace it; wall-clock jumps must not matter).
clock: Callable[[], float] = time.monotonic


class SchoolCounts(NamedTuple):
    """One school's devices: total, online, pending (not approved) and the latest
    ``last_seen`` of any of them (UTC epoch seconds, None when never heard); and the lab
    and office PCs offline (heard once), which the calendar may excuse (read/hours.py)."""
    n: int
    online: int
    pending: int
    last_seen: Optional[float]
    off_lab: int = 0
    off_office: int = 0


#: A school without devices.
NO_DEVICES = SchoolCounts(0, 0, 0, None)


class DeviceGroup(NamedTuple):
    """Devices sharing online, state, role and never-heard, with how many were heard since
    ``recent_since`` (the 24 h before the count was made)."""
    online: bool
    state: Optional[str]
    role: Optional[str]
    never: bool
    n: int
    recent: int


def _count_schools(conn: Connection, visible: Optional[FrozenSet[str]]
                   ) -> Dict[str, SchoolCounts]:
    online = case((devices.c.online, 1), else_=0)
    pending = case((devices.c.state == "pending", 1), else_=0)
    heard_off = and_(devices.c.online.is_(False),
                     ~and_(devices.c.last_seen.is_(None), devices.c.offline_reason.is_(None)))
    off_lab = case((and_(heard_off, devices.c.role == "lab"), 1), else_=0)
    off_office = case((and_(heard_off, devices.c.role == "office"), 1), else_=0)
    q = (select(devices.c.school_code, func.count().label("n"),
                func.sum(online).label("online"), func.sum(pending).label("pending"),
                func.max(devices.c.last_seen).label("last_seen"),
                func.sum(off_lab).label("off_lab"), func.sum(off_office).label("off_office"))
         .where(counted_device(), school_filter(devices.c.school_code, visible))
         .group_by(devices.c.school_code))
    return {r.school_code: SchoolCounts(int(r.n), int(r.online or 0), int(r.pending or 0),
                                        r.last_seen, int(r.off_lab or 0),
                                        int(r.off_office or 0))
            for r in conn.execute(q)}


def _count_devices(conn: Connection, visible: Optional[FrozenSet[str]], now: float
                   ) -> List[DeviceGroup]:
    never = and_(devices.c.last_seen.is_(None), devices.c.offline_reason.is_(None))
    recent = case((devices.c.last_seen >= now - 86400, 1), else_=0)
    q = (select(devices.c.online, devices.c.state, devices.c.role, never.label("never"),
                func.count().label("n"), func.sum(recent).label("recent"))
         .where(counted_device(), school_filter(devices.c.school_code, visible))
         .group_by(devices.c.online, devices.c.state, devices.c.role, never))
    return [DeviceGroup(bool(r.online), r.state, r.role, bool(r.never), int(r.n),
                        int(r.recent or 0)) for r in conn.execute(q)]


_lock = threading.Lock()
#: engine -> {what: (clock time counted, its ``now``, value)}; by engine, not URL, so two
#: in-memory SQLite stores do not share counts, and a disposed engine's entries go with it
_cache: "weakref.WeakKeyDictionary[Engine, Dict[Hashable, Tuple[float, float, Any]]]" = \
    weakref.WeakKeyDictionary()


def reused(conn: Connection, what: Hashable, now: float,
           count: Callable[[Connection, float], T]) -> T:
    """``count(conn, now)`` of the whole province, reused for TTL seconds on the process's
    clock and for a ``now`` within TTL of the one it was counted at (a caller asking about
    another moment gets its own count). ``what`` names the count within the store.

    Refresh ahead: a request that finds the count older than REFRESH_AHEAD × TTL is still
    answered from it, and one background thread counts again meanwhile, so under steady
    traffic no request pays for the count (it was 40-90 ms of the Sở's 150 ms on SQLite at
    province scale); a count is still never shown older than TTL."""
    t = clock()
    hit = _cache.get(conn.engine, {}).get(what)
    if hit is not None and 0 <= t - hit[0] < TTL and abs(now - hit[1]) < TTL:
        if t - hit[0] >= REFRESH_AHEAD * TTL and abs(now - time.time()) < 1.0:
            _refresh_in_background(conn.engine, what, count)
        return cast(T, hit[2])
    value = count(conn, now)
    with _lock:
        _cache.setdefault(conn.engine, {})[what] = (t, now, value)
    return value


#: Share of TTL after which a reused count is counted again in the background.
REFRESH_AHEAD = 0.6
#: (engine id, what) being counted in the background now: one thread per count
_refreshing: Set[Tuple[int, Hashable]] = set()


def _refresh_in_background(engine: Engine, what: Hashable,
                           count: Callable[[Connection, float], Any]) -> None:
    key = (id(engine), what)
    with _lock:
        if key in _refreshing:
            return
        _refreshing.add(key)

    def run() -> None:
        try:
            t, now = clock(), time.time()
            with engine.connect() as conn:
                value = count(conn, now)
            with _lock:
                _cache.setdefault(engine, {})[what] = (t, now, value)
        except Exception:  # the next request past the TTL counts in its own thread
            log.exception("counting %r in the background failed", what)
        finally:
            with _lock:
                _refreshing.discard(key)

    threading.Thread(target=run, name="schoolmon-read-recount", daemon=True).start()


def _province(conn: Connection, now: float
              ) -> Tuple[Dict[str, SchoolCounts], List[DeviceGroup]]:
    """Both province-wide aggregates, counted together (so the overview's school cards and
    device cards add up to the same devices)."""
    return reused(conn, "province", now,
                  lambda c, at: (_count_schools(c, None), _count_devices(c, None, at)))


def school_counts(conn: Connection, visible: Optional[FrozenSet[str]],
                  now: Optional[float] = None) -> Dict[str, SchoolCounts]:
    """Device counts per school code of ``visible`` (None: every school, at most
    :data:`TTL` seconds old); schools without devices are absent (see NO_DEVICES)."""
    if visible is None:
        return _province(conn, time.time() if now is None else now)[0]
    if not visible:
        return {}
    return _count_schools(conn, visible)


def device_groups(conn: Connection, visible: Optional[FrozenSet[str]], now: float
                  ) -> List[DeviceGroup]:
    """The devices of ``visible`` grouped by online, state, role and never-heard (None:
    the whole fleet, at most :data:`TTL` seconds old, "recent" relative to when counted)."""
    if visible is None:
        return _province(conn, now)[1]
    return _count_devices(conn, visible, now)


def forget(engine: Optional[Engine] = None) -> None:
    """Drop the cached counts of ``engine`` (None: of every store), so the next request
    counts again: for a process that changed devices itself (approved, retired) and should
    not show the old counts for up to TTL seconds."""
    with _lock:
        if engine is None:
            _cache.clear()
        else:
            _cache.pop(engine, None)
