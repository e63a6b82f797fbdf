"""Alerts and their events written as the evaluator writes them (its contract for
``alerts.value`` and the alert_events kinds), and a store with schools, areas and users."""
from typing import Any, Dict, Iterator, List, Optional

from schoolmon.collector.notify.routing import NotifySettings, load_routes
from schoolmon.collector.store import registry
from schoolmon.collector.store import schema as db
from schoolmon.collector.store.users import add_user
from sqlalchemy import Engine, select, update

from ..storehelp import engine_for

T0 = 1_796_180_400.0  # 2026-12-02T03:00:00Z, 10:00 in Hà Nội (a Wednesday)
PROVINCE = "Lào Cai"
BAT_XAT = "lao-cai/bat-xat"
SA_PA = "lao-cai/sa-pa"


def make_store(kind: str, tmp_path: Any, postgres: Any, n_bat_xat: int = 3,
               n_sa_pa: int = 2) -> Iterator[Engine]:
    for e in engine_for(kind, tmp_path, postgres):
        db.create_all(e)
        rows = [{"code": "BX%03d" % i, "name": "Trường TH Bát Xát %d" % i, "level": "TH",
                 "area": "Bát Xát", "province": PROVINCE} for i in range(1, n_bat_xat + 1)]
        rows += [{"code": "SP%03d" % i, "name": "Trường THCS Sa Pa %d" % i, "level": "THCS",
                  "area": "Sa Pa", "province": PROVINCE} for i in range(1, n_sa_pa + 1)]
        registry.add_schools(e, rows)
        yield e


def user(engine: Engine, name: str, role: str, units: List[str] = (),  # type: ignore[assignment]
         email: Optional[str] = None, zalo: Optional[str] = None,
         min_severity: Optional[str] = None, lang: Optional[str] = None,
         disabled: bool = False) -> None:
    with engine.begin() as c:
        u = add_user(c, name, role, None, list(units), now=T0 - 86400)
        c.execute(update(db.users).where(db.users.c.id == u.id).values(
            email=email, zalo_chat_id=zalo, notify_min_severity=min_severity, lang=lang,
            disabled=disabled))


def contact(engine: Engine, school: str, email: str) -> None:
    with engine.begin() as c:
        c.execute(update(db.schools).where(db.schools.c.code == school)
                  .values(contact_email=email))


def settings(**over: Any) -> NotifySettings:
    base: Dict[str, Any] = dict(routes=load_routes(), public_url="https://sm.example.vn")
    base.update(over)
    return NotifySettings(**base)


class Evaluator:
    """Writes alerts and alert_events rows the way collector/alerting does."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def event(self, c: Any, alert_id: int, kind: str, ts: float, actor: Optional[str] = None
              ) -> None:
        c.execute(db.alert_events.insert().values(ts=ts, alert_id=alert_id, kind=kind,
                                                  actor=actor))

    def fire(self, rule: str, school: Optional[str], ts: float, severity: str = "critical",
             area: Optional[str] = None, device: Optional[str] = None,
             subject: Optional[str] = None, title_vi: Optional[str] = None) -> int:
        with self.engine.begin() as c:
            name = None
            if school:
                name = c.execute(select(db.schools.c.name)
                                 .where(db.schools.c.code == school)).scalar()
                if area is None:
                    area = c.execute(select(db.org_units.c.code).join(
                        db.schools, db.schools.c.org_unit_id == db.org_units.c.id)
                        .where(db.schools.c.code == school)).scalar()
            subj = subject or ("device:%s" % device if device else
                               "school:%s" % school if school else "area:%s" % area)
            value = {"title": {"vi": title_vi or "%s: mất kết nối toàn trường" % name,
                               "en": "%s: the whole school is offline" % name},
                     "text": {"vi": "Mọi thiết bị của %s mất kết nối." % name,
                              "en": "Every device of %s is offline." % name},
                     "evidence": {"devices": 12}, "school_name": name, "device_name": device}
            aid = c.execute(db.alerts.insert().values(
                rule=rule, subject=subj, school_code=school, area_code=area, device_id=device,
                severity=severity, state="firing", started_at=ts - 600, fired_at=ts,
                last_true_at=ts, evaluated_at=ts, value=value, rev=1)
                .returning(db.alerts.c.id)).scalar_one()
            self.event(c, aid, "pending", ts - 600)
            self.event(c, aid, "firing", ts)
            return int(aid)

    def resolve(self, alert_id: int, ts: float) -> None:
        with self.engine.begin() as c:
            c.execute(update(db.alerts).where(db.alerts.c.id == alert_id).values(
                state="resolved", resolved_at=ts, evaluated_at=ts))
            self.event(c, alert_id, "resolved", ts)

    def ack(self, alert_id: int, who: str, ts: float) -> None:
        with self.engine.begin() as c:
            c.execute(update(db.alerts).where(db.alerts.c.id == alert_id).values(
                ack_by=who, ack_at=ts, ack_comment="đang xử lý"))
            self.event(c, alert_id, "acked", ts, who)

    def silence(self, alert_id: int, ts: float, on: bool = True) -> None:
        with self.engine.begin() as c:
            sid = None
            if on:
                sid = c.execute(db.silences.insert().values(
                    kind="silence", school_code=None, starts_at=ts, ends_at=ts + 86400,
                    comment="bảo trì", created_by="admin", created_at=ts)
                    .returning(db.silences.c.id)).scalar_one()
            c.execute(update(db.alerts).where(db.alerts.c.id == alert_id)
                      .values(silenced_by=sid))
            self.event(c, alert_id, "silenced" if on else "unsilenced", ts)

    def suppress(self, alert_id: int, parent: int, ts: float) -> None:
        with self.engine.begin() as c:
            c.execute(update(db.alerts).where(db.alerts.c.id == alert_id)
                      .values(suppressed_by=parent))
            self.event(c, alert_id, "suppressed", ts)


def outbox(engine: Engine) -> List[Any]:
    with engine.connect() as c:
        return c.execute(select(db.notifications).order_by(db.notifications.c.id)).all()
