"""End to end: alerting (issue 11, "Done when") through the real parts, on a clock the test
controls.

What is real: a private Mosquitto (tests/servers.py); devices that publish the wire format
through it (one paho client for the whole fleet, one topic per device and kind: 200 schools
publish in well under a second); the collector's own ingest (``CollectorService.ingest``)
into a real state store (SQLite; the first scenario also on PostgreSQL); the shipped rules,
school calendar and routes; the evaluator (``AlertEngine``), routing (``route_pass``) and
the outbox's sender (``Sender``) delivering over SMTP to a real aiosmtpd.

What the test drives: the clock. Ingest stamps ``received_at`` from ``ingest_clock``, and
the test calls, at instants it chooses, what the service's threads call —
``store.sweep(now)`` (liveness), ``AlertEngine.evaluate(now, full=True)``,
``route_pass(now)`` and ``Sender.run_once(now)`` — every ``STEP`` seconds, like the
service's ``alerting.evaluate_interval``. Nothing sleeps and hopes: the only waits are for
the broker's delivery into the store (``wait_until``, generous timeout).

How the collector learns that a school went silent: its PCs time out after
3 × hb + 60 s (hb = 60 s: 4 min), its router, heard only through a PC's poll, after
3 × ``connectivity.router_hb`` + 60 s (46 min). ``school_offline`` needs every device, the
router too: it opens when the router times out and fires 15 min (its ``for``) later.

Scenarios (exact counts in each):
- a school silent from 10:00 on a school day (Wed 02/12/2026) → one alert firing and one
  e-mail to each of the school's IT teacher, the area officer and the Sở (the shipped routes:
  school, area, so); it comes back → one resolved e-mail to each of them (SQLite and
  PostgreSQL);
- the same from 21:00, and on Tết (Wed 03/02/2027, in the calendar's Tết break) → no alert
  and no e-mail;
- a school whose router dies while its office PCs are on (the router's poll answers
  nothing; the PCs' connections drop, so the broker would publish their Last Will
  ``offline`` — the test publishes that will itself) → one alert that is told
  (``school_offline``), the router's and the three PCs' alerts suppressed by it, one e-mail
  per recipient, not one per PC;
- 200 schools of one area silent at once → the area officer gets ONE e-mail listing them,
  the Sở one, each school's teacher (two here) one; back → one resolved e-mail each;
- a collector restart between the evaluation that fired and the routing (a new service,
  new engine instance, on the same store) and the clock going back an hour → nothing sent
  twice, nothing lost.
"""
import datetime as dt
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import paho.mqtt.client as mqtt
import pytest
from schoolmon.collector.alerting.calendar import SHIPPED_FILE
from schoolmon.collector.metrics import Registry
from schoolmon.collector.notify.routing import route_pass, settings_from_config
from schoolmon.collector.service import CollectorService
from schoolmon.collector.store import registry
from schoolmon.collector.store import schema as db
from schoolmon.protocol import encode, envelope, topic
from sqlalchemy import select
from zoneinfo import ZoneInfo

from tests.collector.helpers import config, wait_until
from tests.collector.notify.alerthelp import user
from tests.collector.notify.receivers import SmtpServer
from tests.e2e_help import fresh_database

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
#: seconds between passes, as the service's alerting.evaluate_interval
STEP = 30.0
AREA = "lao-cai/bat-xat"
PUBLIC_URL = "https://giamsat.sgd-laocai.example.vn"


def local(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> float:
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=HCM).timestamp()


class Clock:
    """The one clock of a scenario: ingest, sweeps, evaluation, routing and sending."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Fleet:
    """Schools' devices on one MQTT connection: each message on its device's own topic,
    QoS 1, with the device's own seq, ``ts`` = the clock."""

    def __init__(self, port: int, clock: Clock) -> None:
        self.clock = clock
        self.seq: Dict[str, int] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-fleet",
                                  protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        connected = threading.Event()
        self.client.on_connect = lambda *a: connected.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert connected.wait(10), "the fleet could not connect to the broker"

    def publish(self, msgs: Sequence[Tuple[str, str, str, Dict[str, Any]]]) -> int:
        infos = []
        for school, device, kind, fields in msgs:
            self.seq[device] = self.seq.get(device, 0) + 1
            body = encode(envelope(kind, fields, self.seq[device], self.clock()))
            infos.append(self.client.publish(topic(school, device, kind), body, qos=1))
        for info in infos:
            info.wait_for_publish(30)
        return len(infos)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def pc_online(school: str, device: str, role: str = "lab") -> List[Tuple[str, str, str, Any]]:
    return [(school, device, "status", {"state": "online", "hb": 60, "agent": "0.1.0"}),
            (school, device, "inventory", {"hostname": device.upper(), "role": role,
                                           "os_name": "Windows", "agent": "0.1.0"}),
            (school, device, "health", {"cpu_pct": 12.0, "cpu_n": 4, "mem_pct": 41.0,
                                        "up": 5000})]


def router_poll(school: str, pc: str, ok: bool = True) -> Tuple[str, str, str, Any]:
    fields = ({"host": "192.168.1.1", "gw_ok": True, "wan_up": True} if ok else
              {"host": "192.168.1.1", "gw_ok": False, "snmp_ok": False})
    return (school, pc, "router", fields)


class Collector:
    """One collector's parts on one store, run by the test at the clock's instants."""

    def __init__(self, broker_url: str, store_url: str, smtp_url: str, clock: Clock,
                 name: str) -> None:
        cfg = config(broker_url, store_url, client_id=name, batch_wait=0.02)
        cfg.notify.smtp_url = smtp_url
        cfg.api.public_url = PUBLIC_URL
        # the shipped calendar, named: the suite's default is always-open (tests/conftest.py)
        cfg.alerting.calendar_file = SHIPPED_FILE
        self.clock = clock
        self.svc = CollectorService(cfg, registry=Registry(), clock=clock, ingest_clock=clock)
        assert self.svc.alerting is not None and self.svc.delivery is not None
        self.alerting = self.svc.alerting
        self.sender = self.svc.delivery.sender
        self.settings = settings_from_config(cfg)
        self.engine = self.svc.store.engine
        self.svc.ingest.start()
        assert self.svc.ingest.wait_subscribed(20), "ingest did not subscribe"

    def stored(self) -> float:
        m = self.svc.metrics
        return m.stored.total() + m.duplicates.get() + m.rejected.total()

    def receive(self, fleet: Fleet, msgs: Sequence[Tuple[str, str, str, Any]]) -> None:
        """Publish ``msgs`` now and wait until ingest has stored every one of them."""
        before = self.stored()
        n = fleet.publish(msgs)
        wait_until(lambda: self.stored() >= before + n and self.svc.ingest.pending() == 0,
                   timeout=60, what="%d messages stored" % n)
        assert self.svc.metrics.rejected.total() == 0

    def tick(self, now: float) -> None:
        """One round of what the service's threads do, at ``now``."""
        self.clock.t = now
        self.svc.store.sweep(now)
        self.alerting.evaluate(now, full=True)
        route_pass(self.engine, now, self.settings)
        self.sender.run_once(now)

    def run_until(self, end: float, step: float = STEP,
                  alive: Optional[Callable[[], None]] = None, every: float = 120.0) -> None:
        """Ticks every ``step`` up to ``end``; ``alive()`` (devices that keep reporting)
        before the first tick and every ``every`` seconds of the clock."""
        t = self.clock.t
        last_alive: Optional[float] = None
        while t + step <= end:
            t += step
            if alive is not None and (last_alive is None or t - last_alive >= every):
                self.clock.t = t
                alive()
                last_alive = t
            self.tick(t)
        self.clock.t = end

    def stop(self) -> None:
        self.svc.ingest.stop(10)
        self.svc.timeseries.close()
        self.svc.store.engine.dispose()


# --- fixtures --------------------------------------------------------------------------

@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.stop()


def seed(store_url: str, schools: Sequence[str]) -> None:
    engine = db.make_engine(store_url)
    db.create_all(engine)
    registry.add_schools(engine, [
        {"code": c, "name": "Trường Tiểu học Bát Xát %s" % c[-3:], "level": "TH",
         "area": "Bát Xát", "province": "Lào Cai"} for c in schools])
    engine.dispose()


def people(store_url: str, teachers: Sequence[str]) -> None:
    """Each school in ``teachers`` has an IT teacher (school_tech); the area an officer; the
    Sở an administrator. Every one has an e-mail address."""
    engine = db.make_engine(store_url)
    for code in teachers:
        user(engine, "gv_%s" % code.lower(), "school_tech", [code],
             email="tinhoc.%s@truong.edu.vn" % code.lower())
    user(engine, "cb_batxat", "area_officer", [AREA], email="phong.batxat@laocai.edu.vn")
    user(engine, "sgd_admin", "so_admin", [], email="cntt@sgd.laocai.edu.vn")
    engine.dispose()


def alerts(engine: Any, **where: Any) -> List[Any]:
    q = select(db.alerts).order_by(db.alerts.c.id)
    for k, v in where.items():
        q = q.where(getattr(db.alerts.c, k) == v)
    with engine.connect() as c:
        return list(c.execute(q))


def fired(engine: Any) -> List[Any]:
    return [a for a in alerts(engine) if a.fired_at is not None]


def kinds(engine: Any, alert_id: int) -> List[str]:
    with engine.connect() as c:
        return list(c.execute(select(db.alert_events.c.kind)
                              .where(db.alert_events.c.alert_id == alert_id)
                              .order_by(db.alert_events.c.id)).scalars())


def mails(smtp: SmtpServer) -> List[Tuple[str, str, str]]:
    """(recipient, subject, plain-text body) of every e-mail received."""
    out = []
    for r in smtp.received:
        body = r.message.get_body(("plain",))
        assert body is not None
        for rcpt in r.rcpt_tos:
            out.append((rcpt, str(r.message["Subject"]), body.get_content()))
    return out


TEACHER, OFFICER, SO = ("tinhoc.bx001@truong.edu.vn", "phong.batxat@laocai.edu.vn",
                        "cntt@sgd.laocai.edu.vn")


@pytest.fixture
def stack(mosquitto, smtp, tmp_path):
    """(clock, fleet, start(store_url) → Collector); everything stopped after."""
    made: List[Any] = []
    clock = Clock(0.0)

    def start(store_url: str, name: str = "e2e-collector") -> Collector:
        c = Collector(mosquitto.url, store_url, smtp.url, clock, name)
        made.append(c)
        return c

    fleet = Fleet(mosquitto.port, clock)
    yield clock, fleet, start
    fleet.stop()
    for c in made:
        try:
            c.stop()
        except Exception:
            pass


def _store_url(kind: str, tmp_path: Any, request: Any) -> str:
    if kind == "sqlite":
        return "sqlite:///%s" % (tmp_path / "state.db")
    return fresh_database(request.getfixturevalue("postgres"))


# --- a school goes silent ----------------------------------------------------------------

def _school_online(school: str, pcs: int = 3, role: str = "lab"
                   ) -> List[Tuple[str, str, str, Any]]:
    msgs: List[Tuple[str, str, str, Any]] = []
    for i in range(pcs):
        msgs += pc_online(school, "%s-pc%d" % (school.lower(), i), role)
    msgs.append(router_poll(school, "%s-pc0" % school.lower()))
    return msgs


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_school_silent_at_10_on_a_school_day(kind, stack, smtp, tmp_path, request):
    clock, fleet, start = stack
    url = _store_url(kind, tmp_path, request)
    seed(url, ["BX001"])
    people(url, ["BX001"])
    clock.t = local(2026, 12, 2, 9, 50)
    col = start(url)
    col.receive(fleet, _school_online("BX001"))
    col.tick(clock.t)
    clock.t = local(2026, 12, 2, 10, 0)
    col.receive(fleet, _school_online("BX001"))  # the last sign of life
    col.tick(clock.t)

    # the router times out at 10:46 (its poll is every 15 min), so school_offline opens at
    # the first pass after it and fires 15 min (its `for`) later
    col.run_until(local(2026, 12, 2, 10, 45), step=60.0)
    assert alerts(col.engine, rule="school_offline") == []
    col.run_until(local(2026, 12, 2, 11, 1, 0))
    [school] = alerts(col.engine, rule="school_offline")
    assert school.state == "pending" and school.started_at == local(2026, 12, 2, 10, 46, 30)
    assert not fired(col.engine) and not smtp.received
    col.run_until(local(2026, 12, 2, 11, 2, 0))  # fired at 11:01:30; group_wait 60 s
    assert [a.rule for a in fired(col.engine)] == ["school_offline"]
    assert fired(col.engine)[0].fired_at == school.started_at + 900
    assert not smtp.received
    col.run_until(local(2026, 12, 2, 11, 5))
    got = mails(smtp)
    assert sorted(r for r, _s, _b in got) == sorted([TEACHER, OFFICER, SO])
    for _rcpt, subject, body in got:
        assert subject == "[schoolmon] Trường Tiểu học Bát Xát 001: mất kết nối toàn trường"
        assert "Cảnh báo mới (1)" in body and "Nghiêm trọng" in body
        # local times (Asia/Ho_Chi_Minh): silent since its last message, told at the firing
        assert "mất kết nối từ 10:00 02/12/2026 (1 giờ 1 phút) trong giờ học" in body
        assert "Từ 02/12/2026 10:00" in body  # when it went silent, not when it fired
        assert PUBLIC_URL + "/schools/BX001" in body

    # it comes back at 11:30 → resolved after clear_for (10 min), one message each
    clock.t = local(2026, 12, 2, 11, 30)
    col.receive(fleet, _school_online("BX001"))
    col.run_until(local(2026, 12, 2, 11, 50))
    school = alerts(col.engine, rule="school_offline")[0]
    assert school.state == "resolved"
    assert kinds(col.engine, school.id) == ["pending", "firing", "resolved"]
    got = mails(smtp)
    assert len(got) == 6
    resolved = [(r, s) for r, s, _b in got if s.startswith("[schoolmon] Đã khắc phục:")]
    assert sorted(r for r, _s in resolved) == sorted([TEACHER, OFFICER, SO])
    assert {s for _r, s in resolved} == {
        "[schoolmon] Đã khắc phục: Trường Tiểu học Bát Xát 001: mất kết nối toàn trường"}
    # every alert that fired was told or suppressed: router_down never opened (a router
    # heard only through PCs that are all off is no evidence), lab PCs are `info`
    assert [a.rule for a in fired(col.engine)] == ["school_offline"]


@pytest.mark.parametrize("when", ["21:00", "tet"], ids=["at-21h", "on-tet"])
def test_school_silent_outside_school_time_sends_nothing(when, stack, smtp, tmp_path):
    clock, fleet, start = stack
    url = "sqlite:///%s" % (tmp_path / "state.db")
    seed(url, ["BX001"])
    people(url, ["BX001"])
    if when == "21:00":
        begin, end = local(2026, 12, 2, 20, 50), local(2026, 12, 3, 6, 59)
    else:  # Wednesday 03/02/2027, inside the shipped calendar's Tết break; to past 17:00
        begin, end = local(2027, 2, 3, 9, 50), local(2027, 2, 3, 17, 30)
    clock.t = begin
    col = start(url)
    col.receive(fleet, _school_online("BX001"))
    col.tick(clock.t)
    clock.t = begin + 600
    col.receive(fleet, _school_online("BX001"))
    col.run_until(end, step=300.0)
    with col.engine.connect() as c:
        offline = c.execute(select(db.devices.c.id).where(db.devices.c.online.is_(False))
                            ).scalars().all()
    assert len(offline) == 4  # the school did go silent: 3 PCs and the router
    assert alerts(col.engine) == []
    assert smtp.received == []


# --- a router dies while the PCs are on --------------------------------------------------

def test_router_dies_one_alert_not_one_per_pc(stack, smtp, tmp_path):
    clock, fleet, start = stack
    url = "sqlite:///%s" % (tmp_path / "state.db")
    seed(url, ["BX001"])
    people(url, ["BX001"])
    clock.t = local(2026, 12, 2, 9, 50)
    col = start(url)
    col.receive(fleet, _school_online("BX001", role="office"))
    col.tick(clock.t)
    # 10:00: the router dies. The PC that polls it says so; every PC loses the broker, which
    # publishes each one's Last Will "offline" (published here in the will's own words).
    clock.t = local(2026, 12, 2, 10, 0)
    pcs = ["bx001-pc%d" % i for i in range(3)]
    col.receive(fleet, [router_poll("BX001", pcs[0], ok=False)] +
                [("BX001", d, "status", {"state": "offline", "reason": "lost"}) for d in pcs])
    col.run_until(local(2026, 12, 2, 10, 20))
    assert [a.rule for a in fired(col.engine)] == ["school_offline", "router_down"]
    school, router = fired(col.engine)
    assert router.suppressed_by == school.id and school.suppressed_by is None
    # the office PCs' own rule (2 h) fires too, suppressed by the school's alert
    col.run_until(local(2026, 12, 2, 12, 10), step=60.0)
    office = alerts(col.engine, rule="office_pc_offline")
    assert len(office) == 3 and all(a.state == "firing" for a in office)
    assert all(a.suppressed_by == school.id for a in office)
    got = mails(smtp)
    assert sorted(r for r, _s, _b in got) == sorted([TEACHER, OFFICER, SO])
    assert {s for _r, s, _b in got} == {
        "[schoolmon] Trường Tiểu học Bát Xát 001: mất kết nối toàn trường"}

    # the router is back: one resolved message each, nothing about the PCs or the router
    clock.t = local(2026, 12, 2, 12, 30)
    col.receive(fleet, _school_online("BX001", role="office"))
    col.run_until(local(2026, 12, 2, 12, 50), step=60.0, alive=lambda: col.receive(
        fleet, _school_online("BX001", role="office")))
    assert len(alerts(col.engine)) == 5
    assert all(a.state == "resolved" for a in alerts(col.engine))
    got = mails(smtp)
    assert len(got) == 6
    assert sorted(r for r, s, _b in got if "Đã khắc phục" in s) == sorted([TEACHER, OFFICER, SO])


# --- 200 schools of one area -------------------------------------------------------------

def test_200_schools_silent_one_grouped_message_per_recipient(stack, smtp, tmp_path):
    """Each school has one lab PC and its router (polled by that PC); the officer of Bát
    Xát, the Sở's administrator and the teachers of two schools are told."""
    clock, fleet, start = stack
    url = "sqlite:///%s" % (tmp_path / "state.db")
    codes = ["BX%03d" % i for i in range(1, 201)]
    seed(url, codes)
    people(url, ["BX001", "BX002"])

    def all_online() -> List[Tuple[str, str, str, Any]]:
        msgs: List[Tuple[str, str, str, Any]] = []
        for c in codes:
            msgs += _school_online(c, pcs=1)
        return msgs

    clock.t = local(2026, 12, 2, 9, 58)
    col = start(url)
    col.receive(fleet, all_online())
    col.tick(clock.t)
    clock.t = local(2026, 12, 2, 10, 0)
    col.receive(fleet, all_online())
    col.run_until(local(2026, 12, 2, 11, 5), step=60.0)
    school = alerts(col.engine, rule="school_offline")
    assert len(school) == 200 and all(a.state == "firing" for a in school)
    got = mails(smtp)
    by = {r: (s, b) for r, s, b in got}
    assert len(got) == 4 and set(by) == {OFFICER, SO, "tinhoc.bx001@truong.edu.vn",
                                         "tinhoc.bx002@truong.edu.vn"}
    for who in (OFFICER, SO):
        subject, body = by[who]
        assert subject == "[schoolmon] 200 trường mất kết nối — Bát Xát"
        assert "Cảnh báo mới (200)" in body and "… và 180 cảnh báo khác" in body
    assert by["tinhoc.bx002@truong.edu.vn"][0] == (
        "[schoolmon] Trường Tiểu học Bát Xát 002: mất kết nối toàn trường")

    clock.t = local(2026, 12, 2, 11, 10)
    col.receive(fleet, all_online())
    col.run_until(local(2026, 12, 2, 11, 30), step=60.0)
    assert all(a.state == "resolved" for a in alerts(col.engine, rule="school_offline"))
    got = mails(smtp)
    assert len(got) == 8
    resolved = {r: s for r, s, _b in got if "Đã khắc phục" in s}
    assert len(resolved) == 4
    assert resolved[OFFICER] == "[schoolmon] Đã khắc phục: 200 trường mất kết nối — Bát Xát"


# --- a restart and a clock that goes back ------------------------------------------------

def test_restart_and_clock_back_nothing_resent_nothing_lost(stack, smtp, tmp_path):
    clock, fleet, start = stack
    url = "sqlite:///%s" % (tmp_path / "state.db")
    seed(url, ["BX001"])
    people(url, ["BX001"])
    clock.t = local(2026, 12, 2, 9, 50)
    first = start(url, "e2e-collector-1")
    first.receive(fleet, _school_online("BX001"))
    first.tick(clock.t)
    clock.t = local(2026, 12, 2, 10, 0)
    first.receive(fleet, _school_online("BX001"))
    # the evaluator fires the alert, then the process dies before routing it
    t = clock.t
    while not fired(first.engine):
        t += STEP
        clock.t = t
        first.svc.store.sweep(t)
        first.alerting.evaluate(t, full=True)
    fired_at = fired(first.engine)[0].fired_at
    assert fired_at == local(2026, 12, 2, 11, 1, 30) and not smtp.received
    first.stop()

    # a new collector on the same store, its clock an hour behind
    clock.t = fired_at - 3600
    second = start(url, "e2e-collector-2")
    second.run_until(fired_at - 3000)
    assert not smtp.received  # no group's wait has elapsed on a clock that went back
    assert len(alerts(second.engine, rule="school_offline")) == 1
    clock.t = fired_at
    second.run_until(fired_at + 300)  # the clock is right again: told once, not lost
    assert sorted(r for r, _s, _b in mails(smtp)) == sorted([TEACHER, OFFICER, SO])

    # back in time again, and a third collector: nothing re-sent
    clock.t = fired_at - 1800
    second.tick(clock.t)
    second.stop()
    third = start(url, "e2e-collector-3")
    third.run_until(fired_at + 600)
    assert len(mails(smtp)) == 3
    assert [a.state for a in alerts(third.engine, rule="school_offline")] == ["firing"]
    with third.engine.connect() as c:
        states = c.execute(select(db.notifications.c.state)).scalars().all()
    assert sorted(states) == ["sent"] * 3
