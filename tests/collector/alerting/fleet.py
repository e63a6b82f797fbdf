"""Helpers for the alerting tests: schools whose devices report through the real wire format
and the store's own prepare/commit, a fake calendar (school hours as a rule the test
controls), and readers of the alerts tables."""
import datetime as _dt
from typing import Any, Dict, List, Optional, Sequence, Set

from schoolmon.collector.store import StateStore
from schoolmon.collector.store import schema as db
from sqlalchemy import Engine, select
from zoneinfo import ZoneInfo

from tests.collector.postures import send

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
#: Wednesday 2026-12-02 10:00 in Hà Nội (03:00 UTC): a school day, in school hours.
T0 = 1_796_180_400.0
MIN = 60.0
HOUR = 3600.0


class FakeCalendar:
    """School and office hours 07:00–17:00 local on every day but ``holidays`` (dates);
    counts its calls."""

    def __init__(self, holidays: Sequence[str] = ()) -> None:
        self.holidays: Set[str] = set(holidays)
        self.calls = 0

    def in_window(self, window: str, ts: float, school: Optional[str] = None,
                  area: Optional[str] = None) -> bool:
        self.calls += 1
        if window == "always":
            return True
        d = _dt.datetime.fromtimestamp(ts, HCM)
        return d.date().isoformat() not in self.holidays and 7 <= d.hour < 17

    def in_school_hours(self, ts: float, school: Optional[str] = None,
                        area: Optional[str] = None) -> bool:
        return self.in_window("school_hours", ts, school, area)


class School:
    """A school's PCs (and router, polled by its first PC), reporting at times the test
    says."""

    def __init__(self, store: StateStore, code: str, pcs: int = 3, role: str = "lab",
                 router: bool = True) -> None:
        self.store, self.code = store, code
        self.pcs = ["%s-pc%d" % (code.lower(), i) for i in range(pcs)]
        self.roles = {d: role for d in self.pcs}
        self.router = router
        self.seq: Dict[str, int] = {d: 0 for d in self.pcs}

    def send(self, device: str, kind: str, ts: float, **fields: Any) -> None:
        self.seq[device] += 1
        send(self.store, self.code, device, kind, self.seq[device], ts, **fields)

    def online(self, ts: float, devices: Optional[Sequence[str]] = None,
               wan_up: bool = True) -> None:
        for d in devices or self.pcs:
            self.send(d, "status", ts, state="online")
            self.send(d, "inventory", ts, hostname=d.upper(), role=self.roles[d],
                      os_name="Windows", agent="0.1.0")
        if self.router and devices is None:
            self.send(self.pcs[0], "router", ts, host="192.168.1.1", gw_ok=True,
                      wan_up=wan_up)

    def offline(self, ts: float, devices: Optional[Sequence[str]] = None,
                router: bool = True) -> None:
        """``devices`` (default: every PC) stop; with ``router`` the router dies first (its
        last poll answers nothing)."""
        if self.router and router and devices is None:
            self.send(self.pcs[0], "router", ts, host="192.168.1.1", gw_ok=False,
                      snmp_ok=False)
        for d in devices or self.pcs:
            self.send(d, "status", ts, state="offline", reason="lost")


def alerts(engine: Engine, **where: Any) -> List[Any]:
    q = select(db.alerts).order_by(db.alerts.c.id)
    for k, v in where.items():
        q = q.where(getattr(db.alerts.c, k) == v)
    with engine.connect() as c:
        return list(c.execute(q))


def events(engine: Engine, alert_id: Optional[int] = None) -> List[str]:
    q = select(db.alert_events.c.kind).order_by(db.alert_events.c.id)
    if alert_id is not None:
        q = q.where(db.alert_events.c.alert_id == alert_id)
    with engine.connect() as c:
        return list(c.execute(q).scalars())


def open_alerts(engine: Engine) -> Dict[str, Any]:
    """(rule, subject) as "rule subject" -> row, of the open alerts."""
    return {"%s %s" % (r.rule, r.subject): r for r in alerts(engine)
            if r.state != "resolved"}
