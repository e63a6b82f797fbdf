"""Per-device bookkeeping: one devices row in memory, and the (device, seq) rules.

Data messages are new or duplicate by (device, seq): per device a high-water mark
``last_seq`` and a bounded list of missing ranges below it. A seq above the mark is new
(the skipped numbers become missing: loss); a seq in a missing range is a late arrival
(accepted, loss reduced); anything else at or below the mark is a duplicate. A seq more
than ``MAX_JUMP`` above the mark is implausible (an agent queue holds 7 days): it is
accepted but *held* (``seq_jump``) and the mark stays, so one stray message cannot make
every later message of the device a duplicate; the device's next message above the held
seq confirms the jump and the mark follows it (event ``seq_jump``).
"""
from typing import Any, Dict, List, Optional

from ..state import Event, Plan, Received
from .bulk import to_json

#: Missing ranges remembered per device; past this the oldest are forgotten (they stay
#: counted as lost, and a forgotten seq arriving later counts as a duplicate). Not only real
#: loss opens ranges: collectors sharing a subscription get one device's messages in turn,
#: so a burst (a queue replayed after an outage) that one process commits before the other
#: leaves every other seq "missing" until the other commits. 64 forgot real messages in
#: such a burst of 200 (tests/collector/mqtt/test_client_ids.py); 1024 ranges hold a
#: burst of 2,000 and keep a device row under ~20 KB even then.
MAX_MISSING_RANGES = 1024
#: A seq jump larger than this is implausible as loss (an agent queue holds 7 days).
MAX_JUMP = 1_000_000
#: An ``online`` status with a seq below the mark is a counter reset (the agent lost its
#: state) only if it was measured this much later than the device's newest data message.
#: Without the margin a status merely delivered late looks like a reset: agents and the
#: simulator give ``ts`` to the second or coarser, so the data message sent right after
#: the status can carry an earlier ``ts`` than the status itself, and with two collectors
#: (or a redelivery) the status can be handled after it. A real reset needs a restart of
#: the agent, far longer than this.
RESET_MIN_LATER = 2.0

DEVICE_COLS = ("school_code", "role", "room", "state", "first_seen", "last_seen", "online",
               "online_changed_at", "offline_reason", "hb", "hostname", "os", "agent",
               "last_seq", "last_ts", "missing", "lost_total", "duplicates_total",
               "received_total", "resets", "rev", "seq_jump")


class DeviceState:
    """One devices row in memory."""

    __slots__ = ("id",) + DEVICE_COLS

    def __init__(self, id: str, school_code: str, **kw: Any) -> None:
        self.id = id
        self.school_code = school_code
        self.role: Optional[str] = None
        self.room: Optional[str] = None
        self.state = "pending"
        self.first_seen: Optional[float] = None
        self.last_seen: Optional[float] = None
        self.online = False
        self.online_changed_at: Optional[float] = None
        self.offline_reason: Optional[str] = None
        self.hb: Optional[int] = None
        self.hostname: Optional[str] = None
        self.os: Optional[str] = None
        self.agent: Optional[str] = None
        self.last_seq: Optional[int] = None
        self.last_ts: Optional[float] = None
        self.missing: List[List[int]] = []
        self.lost_total = 0
        self.duplicates_total = 0
        self.received_total = 0
        self.resets = 0
        self.rev = 0
        self.seq_jump: Optional[int] = None
        for k, v in kw.items():
            setattr(self, k, v)

    def copy(self) -> "DeviceState":  # replaced below by a generated straight-line version
        c = DeviceState.__new__(DeviceState)
        for k in self.__slots__:
            setattr(c, k, getattr(self, k))
        c.missing = [list(r) for r in self.missing]
        return c

    @property
    def missing_json(self) -> Optional[str]:
        return to_json(self.missing)

    def row(self) -> Dict[str, Any]:
        d = {k: getattr(self, k) for k in DEVICE_COLS}
        d["id"] = self.id
        return d

    def db_row(self) -> Dict[str, Any]:
        """row() ready for the driver (JSON as text)."""
        d = self.row()
        d["missing"] = to_json(self.missing)
        return d


def state_from_row(m: Dict[str, Any]) -> DeviceState:
    m = dict(m)
    did = m.pop("id")
    m["missing"] = [list(x) for x in (m.get("missing") or [])]
    for k in ("lost_total", "duplicates_total", "received_total", "resets", "rev"):
        m[k] = m.get(k) or 0
    m["online"] = bool(m["online"])
    return DeviceState(did, **m)


def _make_copy() -> Any:
    # prepare() copies every device it touches: a straight-line copy is several times
    # faster than a getattr/setattr loop (this is on the 10,000 msg/s path).
    lines = ["def copy(self):", "    c = _new(DeviceState)"]
    for k in DeviceState.__slots__:
        if k == "missing":
            lines.append("    c.missing = [r[:] for r in self.missing] if self.missing else []")
        else:
            lines.append("    c.%s = self.%s" % (k, k))
    lines.append("    return c")
    ns: Dict[str, Any] = {"_new": object.__new__, "DeviceState": DeviceState}
    exec("\n".join(lines), ns)
    return ns["copy"]


DeviceState.copy = _make_copy()  # type: ignore[method-assign]


def remove_from_ranges(ranges: List[List[int]], seq: int) -> bool:
    """Remove seq from the sorted ranges; True if it was there."""
    for i, (lo, hi) in enumerate(ranges):
        if seq < lo:
            return False
        if seq <= hi:
            if lo == hi:
                del ranges[i]
            elif seq == lo:
                ranges[i] = [lo + 1, hi]
            elif seq == hi:
                ranges[i] = [lo, hi - 1]
            else:
                ranges[i:i + 1] = [[lo, seq - 1], [seq + 1, hi]]
            return True
    return False



def check_seq(st: DeviceState, seq: int, plan: Plan, evs: List[Event],
               r: Received) -> bool:
    """True if (device, seq) is new; updates the mark and missing ranges of ``st``."""
    mark = st.last_seq
    if mark is None:
        st.last_seq = seq
        return True
    if seq > mark:
        gap = seq - mark - 1
        if gap > MAX_JUMP:
            held = st.seq_jump
            if seq == held:  # the held message again (redelivered)
                return False
            if held is not None and held < seq <= held + MAX_JUMP:
                # A second message above the held one: the counter really jumped.
                evs.append(Event(r.received_at, "seq_jump", st.school_code, st.id,
                                 {"from": mark, "to": seq, "confirmed": True}))
                st.last_seq = seq
                st.seq_jump = None
                return True
            # Implausible: keep the message, not the mark (later messages stay new).
            evs.append(Event(r.received_at, "seq_jump", st.school_code, st.id,
                             {"from": mark, "to": seq, "held": True}))
            st.seq_jump = seq
            return True
        if gap > 0:
            st.missing.append([mark + 1, seq - 1])
            if len(st.missing) > MAX_MISSING_RANGES:
                del st.missing[: len(st.missing) - MAX_MISSING_RANGES]
            st.lost_total += gap
            plan.gaps[st.id] = plan.gaps.get(st.id, 0) + gap
        st.last_seq = seq
        return True
    if st.missing and remove_from_ranges(st.missing, seq):
        st.lost_total -= 1
        plan.filled[st.id] = plan.filled.get(st.id, 0) + 1
        return True
    return False
