"""Alert rows written as the evaluator writes them (engine.py owns ``alerts``): the tests of
the actions, the API and the pages insert their own, with the ``value`` contract
({"title": {vi, en}, "text": {vi, en}, "evidence", "school_name", "device_name"})."""
from typing import Any, Optional

from schoolmon.collector.store.schema import alert_events, alerts
from sqlalchemy import Connection


def insert_alert(conn: Connection, rule: str, school: Optional[str], now: float,
                 severity: str = "warning", state: str = "firing",
                 device: Optional[str] = None, area: Optional[str] = None,
                 title_vi: str = "", title_en: str = "", age: float = 3600.0,
                 **extra: Any) -> int:
    subject = ("device:" + device) if device else ("school:" + school) if school else "collector"
    title_vi = title_vi or "%s: %s" % (school or "schoolmon", rule)
    title_en = title_en or "%s: %s (en)" % (school or "schoolmon", rule)
    values = dict(
        rule=rule, subject=subject, school_code=school, area_code=area, device_id=device,
        severity=severity, state=state, started_at=now - age,
        fired_at=None if state == "pending" else now - age + 600,
        resolved_at=now - 60 if state == "resolved" else None,
        last_true_at=now, evaluated_at=now,
        value={"title": {"vi": title_vi, "en": title_en},
               "text": {"vi": "Chi tiết " + title_vi, "en": "Details " + title_en},
               "evidence": {"devices_offline": 3}, "school_name": school,
               "device_name": device},
        rev=1)
    values.update(extra)
    new_id = int(conn.execute(alerts.insert().values(**values).returning(alerts.c.id))
                 .scalar_one())
    conn.execute(alert_events.insert().values(ts=now - age, alert_id=new_id, kind="pending"))
    if state != "pending":
        conn.execute(alert_events.insert().values(ts=now - age + 600, alert_id=new_id,
                                                  kind="firing"))
    return new_id
