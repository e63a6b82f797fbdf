"""Liveness on the school calendar: a lab PC that is off outside school hours (at night, on
a Sunday, in Tết or the summer break) is ``off_hours`` — "ngoài giờ học" — not offline,
and a school whose only silent devices are such PCs is not "mất kết nối một phần".

Each role has its window (ROLE_WINDOWS); servers and routers have none here: they are
expected on always, so silence from them is always news. The judgement is made per request
at its ``now`` with the calendar the service loaded at start (collector/api/app.py), so
tests pass a fixed ``now`` and a calendar of their own; the read functions default to
ALWAYS_OPEN (no device is ever off hours), the behaviour before the calendar.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Optional

from sqlalchemy import Connection, and_, false, or_, select

from ..alerting.calendar import ALWAYS_OPEN, Calendar
from ..store.schema import devices, org_units, schools
from .scope import school_filter

#: The calendar window each device role is expected on in; a role not named: always.
ROLE_WINDOWS: Dict[str, str] = {"lab": "school_hours", "office": "office_hours"}


@dataclass(frozen=True)
class OffHours:
    """The calendar at one instant, for the schools of one request."""
    calendar: Calendar
    now: float
    #: school code → its org unit code (the calendar's area overrides)
    areas: Dict[str, Optional[str]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """False for ALWAYS_OPEN: nothing is ever off hours, no work to do."""
        return not self.calendar.always_open

    def closed(self, role: Optional[str], school: str) -> bool:
        """Whether a device of ``role`` at ``school`` is outside its window now."""
        window = ROLE_WINDOWS.get(role or "")
        if window is None or not self.active:
            return False
        return not self.calendar.in_window(window, self.now, school, self.areas.get(school))

    def device_status(self, status: str, role: Optional[str], school: str) -> str:
        """``off_hours`` for an offline device outside its role's window, else ``status``
        (a device never heard stays ``unknown``: it has not been seen working yet)."""
        if status == "offline" and self.closed(role, school):
            return "off_hours"
        return status

    def excused(self, counts: Any, school: str) -> int:
        """Devices of a school's ``counts`` (counts.SchoolCounts) offline off hours."""
        if not self.active:
            return 0
        return sum(getattr(counts, "off_" + role) for role in ROLE_WINDOWS
                   if getattr(counts, "off_" + role) and self.closed(role, school))

    def school_status(self, online: int, total: int, excused: int) -> str:
        """online | partial | offline | off_hours | no_devices: devices off outside
        their hours are not missing; a school with nothing but those is ``off_hours``."""
        if total == 0:
            return "no_devices"
        missing = total - online - excused
        if missing <= 0:
            return "online" if online > 0 else "off_hours"
        return "offline" if online == 0 else "partial"

    def off_hours_sql(self) -> Any:
        """SQL condition: the device is offline (not never heard) and off hours now."""
        if not self.active:
            return false()
        d = devices.c
        heard = ~and_(d.last_seen.is_(None), d.offline_reason.is_(None))
        by_role = []
        for role in ROLE_WINDOWS:
            closed = frozenset(code for code in self.areas if self.closed(role, code))
            if not closed:
                continue
            # the smaller list of the two: most schools share the province's hours
            if len(closed) * 2 <= len(self.areas):
                where = d.school_code.in_(sorted(closed))
            else:
                where = ~d.school_code.in_(sorted(set(self.areas) - closed))
            by_role.append(and_(d.role == role, where))
        if not by_role:
            return false()
        return and_(d.online.is_(False), heard, or_(*by_role))


def off_hours_at(conn: Connection, calendar: Optional[Calendar], now: float,
                 visible: Optional[FrozenSet[str]] = None) -> OffHours:
    """The calendar at ``now`` for the schools of ``visible`` (None: every school)."""
    calendar = ALWAYS_OPEN if calendar is None else calendar
    if calendar.always_open:
        return OffHours(calendar, now)
    q = (select(schools.c.code, org_units.c.code.label("area"))
         .select_from(schools.outerjoin(org_units, org_units.c.id == schools.c.org_unit_id))
         .where(school_filter(schools.c.code, visible)))
    return OffHours(calendar, now, {r.code: r.area for r in conn.execute(q)})
