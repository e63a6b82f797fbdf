"""An in-memory stand-in for the StateStore (prepare/commit/sweep/maintain), for tests
of ingest that do not need the real store."""
import threading
from typing import Callable, Dict, List, Optional, Set, Tuple

from schoolmon.collector.state import Accepted, Event, Plan, Received
from sqlalchemy.exc import OperationalError


class FakeStore:
    def __init__(self, schools: Optional[Dict[str, Tuple[str, str]]] = None,
                 fail_times: int = 0) -> None:
        #: school code -> (province, area); None = every school is known
        self.schools = schools
        self.keys: Set[tuple] = set()
        self.rows: List[Received] = []
        self.last_seq: Dict[str, int] = {}
        self.devices: Set[str] = set()
        self.fail_times = fail_times
        #: devices whose messages make prepare() raise (a bug or data the store refuses)
        self.poison: Set[str] = set()
        self.lock = threading.Lock()
        self.sweeps = 0
        self.maintains = 0

    @staticmethod
    def key(r: Received) -> tuple:
        m = r.message
        if m.kind == "status":
            return (m.device, "status", m.ts)
        return (m.device, m.seq)

    def prepare(self, batch: List[Received]) -> Plan:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("store down (fake)"))
        for r in batch:
            if r.message.device in self.poison:
                raise ValueError("cannot store %s (fake)" % r.message.device)
        plan = Plan()
        seen = set()
        with self.lock:
            for r in batch:
                m = r.message
                if self.schools is not None and m.school not in self.schools:
                    plan.rejected.append((r, "unknown_school"))
                    continue
                k = self.key(r)
                if k in self.keys or k in seen:
                    plan.duplicates += 1
                    continue
                seen.add(k)
                province, area = (self.schools or {}).get(m.school, ("p", "a"))
                tags = {"province": province, "area": area, "school": m.school,
                        "device": m.device, "role": "lab"}
                plan.accepted.append(Accepted(r, tags))
                if m.device not in self.devices and m.device not in plan.new_devices:
                    plan.new_devices.append(m.device)
                if m.kind != "status":
                    last = self.last_seq.get(m.device)
                    if last is not None and m.seq > last + 1:
                        plan.gaps[m.device] = plan.gaps.get(m.device, 0) + m.seq - last - 1
        return plan

    def commit(self, plan: Plan, before_commit: Optional[Callable[[], None]] = None
               ) -> List[Event]:
        if before_commit is not None:
            before_commit()
        events = []
        with self.lock:
            for a in plan.accepted:
                r = a.received
                self.keys.add(self.key(r))
                self.rows.append(r)
                m = r.message
                if m.kind != "status":
                    self.last_seq[m.device] = max(self.last_seq.get(m.device, -1), m.seq)
            for d in plan.new_devices:
                self.devices.add(d)
                events.append(Event(0.0, "device_registered", "", d, {}))
        return events

    def sweep(self, now: float) -> List[Event]:
        self.sweeps += 1
        return []

    def maintain(self, now: float) -> None:
        self.maintains += 1

    def stored(self, kind: Optional[str] = None) -> List[Received]:
        with self.lock:
            return [r for r in self.rows if kind is None or r.message.kind == kind]
