"""Liveness: when a device and a school are online, and the sweep that times devices out.

Online: status ``online``, or a fresh data message (``ts`` within the heartbeat timeout of
its receipt). Offline: status ``offline`` (orderly stop or Last Will) at once, or no fresh
message for ``3 × hb + 60`` s (``sweep``). A school is online when all its devices are,
offline when none is, partial in between (``school_status``: THE one definition).
"""
import time
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Set, Tuple

from ..state import Event
from .devices import DeviceState
from .events import insert_events

if TYPE_CHECKING:
    from .writer import StateStore


def school_status(online: int, total: int) -> str:
    """online | partial | offline | no_devices (pending devices count: they report)."""
    if total == 0:
        return "no_devices"
    if online >= total:
        return "online"
    return "offline" if online == 0 else "partial"


def heartbeat_timeout(hb: Optional[int], default_hb: int) -> float:
    """Seconds without a fresh message after which a device is offline."""
    return 3 * (hb or default_hb) + 60


def school_counts(devices: Dict[str, DeviceState], by_school: Dict[str, Set[str]], school: str,
                  overlay: Dict[str, DeviceState], moved_in: Iterable[str] = ()
                  ) -> Tuple[int, int]:
    """(online, total) devices of a school, with ``overlay`` states replacing cached ones."""
    online = total = 0
    for did in set(by_school.get(school, ())).union(moved_in):
        st = overlay.get(did) or devices[did]
        if st.school_code == school and st.state != "retired":  # retired: out of the figures
            total += 1
            online += st.online
    return online, total


def school_events(devices: Dict[str, DeviceState], by_school: Dict[str, Set[str]],
                  touched: Iterable[str], overlay: Dict[str, DeviceState],
                  now: float) -> List[Event]:
    """``school_status`` events for the touched schools whose status ``overlay`` changes."""
    in_overlay: Dict[str, List[str]] = {}
    for did, st in overlay.items():
        in_overlay.setdefault(st.school_code, []).append(did)
    out = []
    for school in touched:
        before = school_status(*school_counts(devices, by_school, school, {}))
        online, total = school_counts(devices, by_school, school, overlay,
                                      in_overlay.get(school, ()))
        after = school_status(online, total)
        if after != before:
            out.append(Event(now, "school_status", school, None,
                             {"status": after, "previous": before, "online": online,
                              "total": total}))
    return out


def sweep(store: "StateStore", now: Optional[float] = None) -> List[Event]:
    """Mark devices offline whose last fresh message is older than 3 × hb + 60 s.

    Candidates are re-checked against their rows first (another process may have heard
    from them: ``rev``), so a sweep never undoes what another collector stored."""
    now = time.time() if now is None else now
    default_hb = store.default_hb
    with store.lock:
        def due(st: DeviceState) -> bool:
            return st.online and now - (st.last_seen or 0.0) > heartbeat_timeout(st.hb, default_hb)

        cache = store.devices_cache
        cands = [did for did, st in cache.items() if due(st)]
        if not cands:
            return []
        with store.engine.begin() as conn:
            stale = store.stale_devices(conn, {d: cache[d] for d in cands})
            if stale:
                store.refresh_devices(conn, stale)
            overlay: Dict[str, DeviceState] = {}
            evs: List[Event] = []
            for did in cands:
                st = cache.get(did)
                if st is None or not due(st):
                    continue
                c = st.copy()
                c.online, c.online_changed_at, c.offline_reason = False, now, "timeout"
                c.rev = st.rev + 1
                overlay[did] = c
                evs.append(Event(now, "device_offline", c.school_code, did,
                                 {"reason": "timeout", "last_seen": st.last_seen}))
            if not overlay:
                return []
            evs.extend(school_events(cache, store.devices_by_school,
                                     {s.school_code for s in overlay.values()}, overlay, now))
            conn.execute(store.offline_statement, [{"b_id": did, "b_at": now,
                                                    "b_reason": "timeout", "b_rev": c.rev}
                                                   for did, c in overlay.items()])
            insert_events(conn, evs)
        cache.update(overlay)
    return evs


__all__ = ["school_status", "heartbeat_timeout", "school_events", "sweep"]
