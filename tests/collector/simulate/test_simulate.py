"""The simulated province and its publisher speak the real wire format."""
import random
import threading
import time

import paho.mqtt.client as mqtt
from schoolmon.collector.simulate import (
    Simulation,
    health_fields,
    health_templates,
    province_fixture,
)
from schoolmon.collector.store import registry
from schoolmon.collector.store import schema as db
from schoolmon.protocol import SUBSCRIPTION, decode, encode, envelope, topic

from tests.collector.helpers import wait_until


def test_province_fixture_is_believable_and_deterministic():
    p = province_fixture(40, 12, seed=3)
    assert p == province_fixture(40, 12, seed=3)
    assert len(p.schools) == 40 and len(p.devices) == 480
    assert len({s.code for s in p.schools}) == 40
    assert len({d.id for d in p.devices}) == 480
    assert len(p.areas) >= 3
    assert {s.level for s in p.schools} >= {"MN", "TH", "THCS"}
    assert all(s.name.startswith(("Trường", "Trung tâm")) for s in p.schools)
    assert {d.role for d in p.devices} == {"lab", "office", "router", "server"}
    profiles = {d.profile for d in p.devices}
    assert {"offline", "old", "slow"} <= profiles
    assert any(d.os[:2] == ("Windows", "7") for d in p.devices)
    assert {s.link_type for s in p.schools} & {"3g", "4g", "adsl"}
    # The same rows seed the registry.
    engine = db.make_engine("sqlite://")
    db.create_all(engine)
    assert registry.add_schools(engine, p.school_rows()) == (40, 0)


def test_health_templates_are_what_encode_makes():
    p = province_fixture(3, 10, seed=1)
    rng = random.Random(5)
    for d in p.devices:
        for tmpl in health_templates(d, rng, variants=2):
            raw = tmpl % (1_800_000_000, 77, 12345)
            msg = decode(topic(d.school, d.id, "health"), raw)
            assert (msg.ts, msg.seq, msg.payload["up"]) == (1_800_000_000, 77, 12345)
            assert raw == encode(envelope("health", {k: v for k, v in msg.payload.items()
                                                     if k not in ("v", "ts", "seq")},
                                          77, 1_800_000_000))
        fields = health_fields(d, rng, 100)
        assert decode(topic(d.school, d.id, "health"), encode(envelope("health", fields, 1,
                                                                     time.time())))


def _subscriber(port, prefix):
    got = []
    lock = threading.Lock()
    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(client, userdata, m):
        if m.topic.startswith(prefix):
            with lock:
                got.append((m.topic, m.payload, m.retain))
    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.subscribe(SUBSCRIPTION, qos=1)
    c.loop_start()
    return c, got


def test_simulation_publishes_valid_messages(shared_mosquitto):
    prov = province_fixture(4, 6, seed=11, province_code="97")
    online = [d for d in prov.devices if d.online]
    c, got = _subscriber(shared_mosquitto.port, "schoolmon/v1/97")
    try:
        time.sleep(0.3)
        sim = Simulation(shared_mosquitto.url, prov, rate=100, duration=2, connections=3)
        stats = sim.run()
        assert stats.acked == stats.sent > 150
        assert stats.health_sent >= 150
        assert stats.acked_pairs() == stats.health_sent
        wait_until(lambda: len(got) >= stats.sent, timeout=10, what="every message")
    finally:
        c.loop_stop()
        c.disconnect()
    kinds = {}
    last_seq = {}
    for t, payload, _retain in got:
        msg = decode(t, payload)  # raises if anything is off the wire format
        kinds.setdefault(msg.kind, set()).add(msg.device)
        if msg.kind == "health":
            assert msg.seq > last_seq.get(msg.device, 0)
            last_seq[msg.device] = msg.seq
    assert kinds["inventory"] == {d.id for d in prov.devices}
    assert kinds["status"] == {d.id for d in prov.devices}
    # an offline device was heard once before its Last Will: last_seen and status_since
    assert kinds["health"] == {d.id for d in prov.devices}
    assert len(online) < len(prov.devices)
    states = [decode(t, p).payload["state"] for t, p, _r in got if t.endswith("/status")]
    assert states.count("offline") == len(prov.devices)  # Last Wills + orderly stop
    assert states.count("online") == len(prov.devices)
    gone = [d.id for d in prov.devices if not d.online]
    order = [(decode(t, p).device, decode(t, p).payload["state"]) for t, p, _r in got
             if t.endswith("/status") and decode(t, p).device in gone]
    for dev in gone:  # on, then its Last Will
        assert [s for d, s in order if d == dev] == ["online", "offline"], dev


def test_last_will_when_one_device_per_connection(shared_mosquitto):
    prov = province_fixture(1, 1, seed=2, province_code="96")
    d = prov.devices[0]
    d.profile = "normal"
    sim = Simulation(shared_mosquitto.url, prov, rate=1, connections=1)
    conn = sim.conns[0]
    conn._connect()
    assert conn.sock is not None
    conn._hello()
    time.sleep(0.2)
    conn.sock.close()  # vanish without DISCONNECT: the broker publishes the Last Will
    c, got = _subscriber(shared_mosquitto.port, topic(d.school, d.id, "status"))
    try:
        def will():
            states = [decode(t, p).payload for t, p, _r in got]
            return states and states[-1]["state"] == "offline" and states[-1]["reason"] == "lost"
        wait_until(will, timeout=10, what="the Last Will")
    finally:
        c.loop_stop()
        c.disconnect()


def test_simulator_survives_broker_restart(mosquitto):
    prov = province_fixture(2, 5, seed=4, province_code="95")
    sim = Simulation(mosquitto.url, prov, rate=50, duration=4, connections=2,
                     final_status=False).start()
    time.sleep(1.5)
    mosquitto.restart(down_seconds=0.5)
    stats = sim.join(30)
    assert stats.reconnects >= 1
    assert stats.acked == stats.sent


def test_simulate_against_an_unreachable_broker_says_so_and_stops(tmp_path):
    """No broker listens: a clear error naming it, and the run still ends at --duration
    (exit 1), instead of retrying silently for ever."""
    import os
    import subprocess
    import sys

    from tests.servers import free_port
    port = free_port()
    script = os.path.join(os.path.dirname(sys.executable), "schoolmon-collector")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    r = subprocess.run([script, "simulate", "--broker", "mqtt://127.0.0.1:%d" % port,
                        "--schools", "1", "--devices-per-school", "2", "--duration", "2"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "could not connect to the broker mqtt://127.0.0.1:%d" % port in r.stderr
    assert "cannot connect to the broker 127.0.0.1:%d" % port in r.stderr  # said at once


def test_some_schools_have_their_router_down_while_pcs_are_on():
    prov = province_fixture(30, 10, seed=1)
    by_school = {}
    for d in prov.devices:
        by_school.setdefault(d.school, []).append(d)
    router_down = [s for s, devs in by_school.items()
                   if any(d.role == "router" and not d.online for d in devs)
                   and any(d.role != "router" and d.online for d in devs)]
    assert len(router_down) >= 3
    assert len(router_down) < len(by_school) // 2  # most routers are up
