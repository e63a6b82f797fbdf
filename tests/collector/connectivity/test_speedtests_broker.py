"""Speed-test grants end to end through a real Mosquitto: the collector service (ingest,
scheduler, command publisher) and real agent Transports whose ``on_command`` records what
arrives. The scheduler's clock is injected (a Monday in Lào Cai), so nothing depends on
the time of day; every wait is on a condition.

- 30 agents of one school come online in the same second: one grant for the boot test,
  then one per slot as the clock moves through the day, always to the designated test PC;
- the holder vanishes: its lease expires and a wired office PC gets the next slot, never
  the Wi-Fi one;
- the holder reconnects: its grant is sent again (same id, remaining ttl), never after exp;
- two services on one PostgreSQL never grant twice.
"""
import datetime as dt
import threading
from typing import Any, Dict, List

import pytest
from schoolmon.agent.config import load_config as agent_config
from schoolmon.agent.message import build_message
from schoolmon.agent.spool import Spool
from schoolmon.agent.transport import Transport
from schoolmon.collector.config import load_config
from schoolmon.collector.connectivity.leases import LEASE_KEY
from schoolmon.collector.metrics import Registry
from schoolmon.collector.service import CollectorService
from schoolmon.collector.store import registry, school_state
from schoolmon.collector.store import schema as db
from schoolmon.collector.timeseries import NullTimeSeries
from schoolmon.protocol import topic, validate_command
from zoneinfo import ZoneInfo

from tests.collector.helpers import wait_until
from tests.e2e_help import fresh_database

from .connhelp import Clock, add_device, add_result, local

SCHOOL = "79000801"


class Agent:
    """A real agent Transport; the commands it receives are kept in ``grants``."""

    def __init__(self, url: str, folder: str, device: str, probe: Dict[str, Any]) -> None:
        self.device = device
        self.folder = folder
        self.url = url
        self.grants: List[Dict[str, Any]] = []
        self.lock = threading.Lock()
        self.spool = Spool(folder)
        self.spool.put(topic(SCHOOL, device, "probe"),
                       lambda seq: build_message("probe", probe, seq, local(7)))
        self.transport = self._transport()

    def _transport(self) -> Transport:
        cfg = agent_config(None, env={})
        cfg.mqtt.url = self.url
        cfg.mqtt.keepalive = 5
        cfg.mqtt.reconnect_min = 0.2
        cfg.mqtt.reconnect_max = 1.0
        cfg.queue.replay_rate = 500.0
        return Transport(cfg, SCHOOL, self.device, self.spool, on_command=self._command)

    def _command(self, cmd: Dict[str, Any]) -> None:
        validate_command(cmd)
        with self.lock:
            self.grants.append(cmd)

    def start(self) -> "Agent":
        self.transport.start()
        return self

    def stop(self) -> None:
        self.transport.stop()

    def restart(self) -> None:
        """Off and on again: a new connection, a new ``online``."""
        self.transport.stop()
        self.transport = self._transport()
        self.transport.start()

    def close(self) -> None:
        self.transport.stop()
        self.spool.close()


def _service(mqtt_url, store_url, clock, name, **conn):
    over = {"mqtt": {"url": mqtt_url, "client_id": name}, "store": {"url": store_url},
            "influx": {"url": ""}, "liveness": {"sweep_interval": 1.0},
            "ingest": {"batch_wait": 0.05, "shared_group": "speedtests"},
            "connectivity": dict({"schedule_interval": 3600.0,
                                  "test_server": "http://so.example/speedtest/upload.php"},
                                 **conn)}
    cfg = load_config(env={}, demo=True, overrides=over)
    return CollectorService(cfg, timeseries=NullTimeSeries(), registry=Registry(), clock=clock)


def _fleet(engine, tmp_path, url, n):
    """n agents: a designated test PC, a wired office PC, an office PC on Wi-Fi, and lab
    PCs; registered and approved before they first connect."""
    wired = {"gw": "10.0.0.1", "gw_ok": True, "gw_ms": 1.0, "dom_ok": True, "dom_ms": 20.0,
             "wired": True}
    specs = [("tester", "lab", dict(wired, tester=True)), ("office", "office", wired),
             ("office-wifi", "office", dict(wired, wired=False))]
    specs += [("lab-%02d" % i, "lab", wired) for i in range(n - 3)]
    agents = []
    for name, role, probe in specs:
        add_device(engine, SCHOOL, name, role, online=False, since=local(6))
        agents.append(Agent(url, str(tmp_path / name), name, probe))
    return agents


def _grants(agents):
    return [(a.device, g) for a in agents for g in list(a.grants)]


def _seed(url):
    engine = db.make_engine(url)
    db.create_all(engine)
    registry.add_schools(engine, [{"code": SCHOOL, "name": "Trường THCS Bản Vược",
                                   "level": "THCS", "area": "Bát Xát", "province": "Lào Cai",
                                   "link_type": "fiber", "contracted_down_mbps": 50.0,
                                   "contracted_up_mbps": 10.0}])
    return engine


def _report(engine, agents, svc):
    """The holder's result as ingest stores it (a link_tests row), then the pass that
    releases the lease."""
    with engine.connect() as c:
        lease = school_state.read(c, SCHOOL, LEASE_KEY).value
    add_result(engine, SCHOOL, lease["device"], svc.scheduler.clock() + 30, lease["id"])
    svc.scheduler.clock.t += 60
    svc.scheduler.wake.set()
    wait_until(lambda: _released(engine), timeout=20, what="the lease released")


def _released(engine):
    with engine.connect() as c:
        lease = school_state.read(c, SCHOOL, LEASE_KEY).value
    return lease and lease.get("released_at") is not None


def test_thirty_agents_one_test_per_slot(mosquitto, tmp_path):
    url = "sqlite:///%s" % (tmp_path / "state.db")
    engine = _seed(url)
    clock = Clock(local(7))
    svc = _service(mosquitto.url, url, clock, "speedtests-30")
    agents = _fleet(engine, tmp_path, mosquitto.url, 30)
    svc.start()
    try:
        assert svc.ingest.wait_subscribed(10) and svc.publisher.wait_connected(10)
        for a in agents:  # all in the same second
            a.start()
        wait_until(lambda: svc.metrics.stored.get(kind="probe") >= 30, timeout=30,
                   what="30 probes stored")
        # 07:15: the boot moment (within 15 min of 07:00, when they came online) has come
        clock.t = local(7, 15)
        svc.scheduler.wake.set()
        wait_until(lambda: len(_grants(agents)) == 1, timeout=20, what="the boot grant")
        (holder, g), = _grants(agents)
        assert holder == "tester" and g["trigger"] == "boot" and g["mode"] == "full"
        assert g["server"] == "http://so.example/speedtest/upload.php"
        assert g["exp"] == pytest.approx(local(7, 15) + 240) and g["ttl"] == 240
        _report(engine, agents, svc)
        # through the day: the latest moment of each slot (20:00 - the lease's 240 s ...)
        for n, (hh, mm) in enumerate(((11, 56), (15, 56), (19, 56)), start=2):
            clock.t = local(hh, mm)
            svc.scheduler.wake.set()
            wait_until(lambda n=n: len(_grants(agents)) == n, timeout=20, what="grant %d" % n)
            _report(engine, agents, svc)
        got = _grants(agents)
        assert [d for d, _ in got] == ["tester"] * 4
        assert [g["trigger"] for _, g in got] == ["boot", "slot", "slot", "slot"]
        assert len({g["id"] for _, g in got}) == 4
        # a pass more at the end of the day grants nothing more
        clock.t = local(21)
        svc.scheduler.run_once()
        assert len(_grants(agents)) == 4
        m = svc.metrics
        assert m.leases_granted.get() == 4 and m.leases_released.get() == 4
        wait_until(lambda: m.commands_published.get(cmd="speedtest") == 4, timeout=10,
                   what="4 commands acknowledged")
    finally:
        for a in agents:
            a.close()
        svc.stop()
        engine.dispose()


def test_holder_vanishes_and_reconnects(mosquitto, tmp_path):
    url = "sqlite:///%s" % (tmp_path / "state.db")
    engine = _seed(url)
    clock = Clock(local(7))
    svc = _service(mosquitto.url, url, clock, "speedtests-vanish")
    agents = _fleet(engine, tmp_path, mosquitto.url, 5)
    by = {a.device: a for a in agents}
    svc.start()
    try:
        assert svc.ingest.wait_subscribed(10) and svc.publisher.wait_connected(10)
        for a in agents:
            a.start()
        wait_until(lambda: svc.metrics.stored.get(kind="probe") >= 5, timeout=30,
                   what="5 probes stored")
        clock.t = local(7, 15)
        svc.scheduler.wake.set()
        wait_until(lambda: len(by["tester"].grants) == 1, timeout=20, what="the boot grant")
        first = by["tester"].grants[0]
        # The holder reconnects mid-test: the same grant again, with the ttl left.
        clock.t += 100
        by["tester"].restart()
        wait_until(lambda: len(by["tester"].grants) == 2, timeout=20, what="the grant resent")
        again = by["tester"].grants[1]
        assert again["id"] == first["id"] and again["exp"] == first["exp"]
        assert again["ttl"] == pytest.approx(140, abs=1)
        # ... then vanishes (switched off): the lease expires, nothing is sent after exp.
        by["tester"].stop()
        wait_until(lambda: not svc.store.device("tester").online, timeout=20,
                   what="the holder offline")
        clock.t = first["exp"] + 1
        svc.scheduler.wake.set()
        wait_until(lambda: svc.metrics.leases_expired.get() == 1, timeout=20,
                   what="the lease expired")
        by["tester"].transport = by["tester"]._transport()
        by["tester"].start()
        wait_until(lambda: svc.store.device("tester").online, timeout=20, what="back online")
        svc.scheduler.run_once()
        assert len(by["tester"].grants) == 2  # an expired grant is never sent
        # The next slot goes to another PC: the holder whose lease expired comes last, the
        # wired office PC first, never the one on Wi-Fi.
        clock.t = local(11, 56)
        svc.scheduler.wake.set()
        wait_until(lambda: len(_grants(agents)) == 3, timeout=20, what="the slot grant")
        assert [d for d, _ in _grants(agents)][-1] == "office"
        assert by["office-wifi"].grants == []
    finally:
        for a in agents:
            a.close()
        svc.stop()
        engine.dispose()


def test_two_services_on_one_postgresql_never_grant_twice(mosquitto, postgres, tmp_path):
    url = fresh_database(postgres)
    engine = _seed(url)
    clock = Clock(local(7))
    services = [_service(mosquitto.url, url, clock, "speedtests-pg-%d" % i) for i in (1, 2)]
    agents = _fleet(engine, tmp_path, mosquitto.url, 6)
    for s in services:
        s.start()
    try:
        for s in services:
            assert s.ingest.wait_subscribed(10) and s.publisher.wait_connected(10)
        for a in agents:
            a.start()
        wait_until(lambda: sum(s.metrics.stored.get(kind="probe") for s in services) >= 6,
                   timeout=30, what="6 probes stored")
        for n, (hh, mm) in enumerate(((7, 15), (11, 56), (15, 56), (19, 56)), start=1):
            clock.t = local(hh, mm)
            # both schedulers, several passes each, at the same moment
            passes = [threading.Thread(target=s.scheduler.run_once) for s in services
                      for _ in range(3)]
            for p in passes:
                p.start()
            for p in passes:
                p.join(30)
            wait_until(lambda n=n: len(_grants(agents)) >= n, timeout=20, what="grant %d" % n)
            _report(engine, agents, services[n % 2])
        assert len(_grants(agents)) == 4
        assert sum(s.metrics.leases_granted.get() for s in services) == 4
    finally:
        for a in agents:
            a.close()
        for s in services:
            s.stop()
        engine.dispose()


def test_publisher_counts_what_it_could_not_send(mosquitto):
    """A command that does not validate is never published and counted failed; a valid one
    published while the broker is down goes once it is back, acknowledged."""
    from schoolmon.collector.metrics import IngestMetrics
    from schoolmon.collector.mqtt.publisher import CommandPublisher

    cfg = load_config(env={}, demo=True, overrides={"mqtt": {"url": mosquitto.url}})
    metrics = IngestMetrics(Registry())
    pub = CommandPublisher(cfg.mqtt, "schoolmon-collector-test-cmd", metrics).start()
    try:
        assert pub.wait_connected(10)
        assert not pub.send_grant(SCHOOL, "pc-01", {"id": "x"}, local(9))  # no exp, ttl ...
        assert metrics.commands_failed.get(cmd="speedtest") == 1
        mosquitto.kill()
        wait_until(lambda: not pub.connected.is_set(), timeout=20, what="disconnected")
        fields = {"id": "l1", "exp": local(9) + 240, "ttl": 240, "server": "", "budget": 1000,
                  "mode": "full", "trigger": "slot"}
        assert pub.send_grant(SCHOOL, "pc-01", fields, local(9))
        mosquitto.start()
        wait_until(lambda: metrics.commands_published.get(cmd="speedtest") == 1, timeout=40,
                   what="the queued command acknowledged after the broker came back")
    finally:
        pub.stop()


def test_a_grant_sent_before_the_device_ever_subscribed_is_sent_again(mosquitto, tmp_path):
    """The demo's case: the store says the tester is online (seeded, or it reconnected
    before the sweep), the boot grant goes out before its agent has subscribed to its cmd
    topic, so the broker drops it. Its ``online`` is then no transition (no device_online),
    yet the grant must reach it while still valid."""
    url = "sqlite:///%s" % (tmp_path / "state.db")
    engine = _seed(url)
    # 07:15: whatever moment of 07:00-07:15 the boot test drew has come, and its window
    # (15 minutes from that moment) has not ended
    clock = Clock(local(7, 15))
    svc = _service(mosquitto.url, url, clock, "speedtests-early")
    wired = {"gw": "10.0.0.1", "gw_ok": True, "gw_ms": 1.0, "dom_ok": True, "wired": True,
             "tester": True}
    add_device(engine, SCHOOL, "tester", "office", online=True, since=local(7),
               probe=wired, probe_at=local(7, 14))
    agent = Agent(mosquitto.url, str(tmp_path / "tester"), "tester", wired)
    svc.start()
    try:
        assert svc.ingest.wait_subscribed(10) and svc.publisher.wait_connected(10)
        svc.scheduler.wake.set()
        wait_until(lambda: svc.metrics.commands_published.get(cmd="speedtest") == 1,
                   timeout=20, what="the boot grant published to nobody")
        assert agent.grants == []
        clock.t += 60  # the agent comes up a minute later, inside the lease
        agent.start()
        wait_until(lambda: len(agent.grants) == 1, timeout=20, what="the grant sent again")
        g = agent.grants[0]
        assert g["trigger"] == "boot" and g["ttl"] == pytest.approx(240 - 60, abs=1)
        assert svc.metrics.leases_granted.get() == 1  # the same lease, not a new one
        # ... and an online after the lease's end sends nothing
        clock.t = g["exp"] + 1
        agent.restart()
        wait_until(lambda: svc.metrics.leases_expired.get() == 1, timeout=20,
                   what="the lease expired")
        assert len(agent.grants) == 1
    finally:
        agent.close()
        svc.stop()
        engine.dispose()


def test_the_demo_fleet_gets_grants_sent_before_it_connected(mosquitto, tmp_path):
    """``make demo``'s order: the store is seeded with the province's past (its PCs online
    since the morning), the collector's first pass grants every school whose slot moment
    has come, and only then does the simulated fleet connect and subscribe. Every grant
    must still reach its PC (sent again on its ``online``) and come back as a result —
    a third of them expired unanswered before."""
    from schoolmon.collector.simulate import Simulation, connectivity_province, province_fixture
    from schoolmon.collector.simulate.link import deal_links

    prov = province_fixture(6, 5, seed=4, province_code="93")
    fleet = connectivity_province(prov)
    url = "sqlite:///%s" % (tmp_path / "state.db")
    engine = db.make_engine(url)
    db.create_all(engine)
    registry.add_schools(engine, prov.school_rows())
    # a Monday in the future, so the simulator's own clock never finds a grant expired;
    # 11:56 is the latest moment of the 08-12 slot: every school's moment has come
    day = dt.datetime(2027, 3, 1, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")).timestamp()
    clock = Clock(local(11, 56, day))
    for d in fleet.devices:
        if d.online:
            add_device(engine, d.school, d.id, d.role, online=True, since=local(7, 0, day))
    svc = _service(mosquitto.url, url, clock, "speedtests-demo")
    svc.start()
    sim = None
    try:
        assert svc.ingest.wait_subscribed(10) and svc.publisher.wait_connected(10)
        svc.scheduler.wake.set()
        schools = {d.school for d in fleet.devices if d.online}
        wait_until(lambda: svc.metrics.commands_published.get(cmd="speedtest") == len(schools),
                   timeout=20, what="one grant per school, published before the fleet is up")
        silent = {s for s, lp in deal_links(fleet, seed=4).items() if lp.kind == "silent"}
        sim = Simulation(mosquitto.url, prov, rate=20, connections=2, connectivity=True,
                         seed=4, probe_interval=600, router_interval=600,
                         speedtest_delay=0.2)
        sim.start()
        answering = len(schools - silent)
        assert answering >= 4
        wait_until(lambda: svc.metrics.leases_released.get() == answering, timeout=60,
                   what=lambda: "leases released: %s of %d (sim: %r)" % (
                       svc.metrics.leases_released.get(), answering,
                       sim.stats.grants_ignored))
        assert sim.stats.tests_sent == answering
        assert svc.metrics.leases_expired.get() == 0
        assert svc.metrics.leases_granted.get() == len(schools)  # re-sent, not re-granted
    finally:
        if sim is not None:
            sim.stop()
            sim.join(20)
        svc.stop()
        engine.dispose()
