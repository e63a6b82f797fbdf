"""STAND-IN for ``collector.alerting.calendar`` (written in parallel by another engineer):
delete this file on merge and give the service the real calendar instead.

School hours Monday–Friday 07:00–17:00 and Saturday 07:00–11:30, office hours Monday–Friday
07:00–17:00, Asia/Ho_Chi_Minh; no holidays, no per-school overrides.
"""
import datetime as _dt
from typing import Optional

from zoneinfo import ZoneInfo


class StandInCalendar:
    """Implements ``in_window(window, ts, school, area)`` like the real calendar."""

    def __init__(self, timezone: str = "Asia/Ho_Chi_Minh") -> None:
        self.tz = ZoneInfo(timezone)

    def in_window(self, window: str, ts: float, school: Optional[str] = None,
                  area: Optional[str] = None) -> bool:
        if window == "always":
            return True
        d = _dt.datetime.fromtimestamp(ts, self.tz)
        minute = d.hour * 60 + d.minute
        if d.weekday() < 5:
            return 7 * 60 <= minute < 17 * 60
        if window == "school_hours" and d.weekday() == 5:
            return 7 * 60 <= minute < 11 * 60 + 30
        return False

    def in_school_hours(self, ts: float, school: Optional[str] = None,
                        area: Optional[str] = None) -> bool:
        return self.in_window("school_hours", ts, school, area)
