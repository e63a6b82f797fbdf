"""The transport in-process against a real Mosquitto: status, replay in seq order, delete on
PUBACK, the cmd topic, topic aliases (bytes measured through a TCP relay), passwords that
never reach a log, TLS with a CA file and a client certificate."""
import json
import logging
import os
import pwd
import random
import shutil
import subprocess
import tempfile
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from schoolmon.agent.config import load_config
from schoolmon.agent.spool import Spool
from schoolmon.agent.transport import Transport, backoff_delay
from schoolmon.protocol import decode, topic

from tests.servers import ByteRelay, Mosquitto, free_port, make_test_pki

from .agenthelp import SCHOOL, Recorder, check_in_order_no_gap, wait_for

DEVICE = "79000101-test-abcde"


def _cfg(url, **mqtt_over):
    cfg = load_config(None, env={})
    cfg.mqtt.url = url
    cfg.mqtt.keepalive = 5
    cfg.mqtt.reconnect_min = 0.2
    cfg.mqtt.reconnect_max = 1.0
    cfg.queue.replay_rate = 500.0
    cfg.intervals.health = 60
    for k, v in mqtt_over.items():
        setattr(cfg.mqtt, k, v)
    return cfg


def _fill(spool, n, kind="health"):
    name = topic(SCHOOL, DEVICE, kind)
    for _ in range(n):
        spool.put(name, lambda seq: json.dumps(
            {"v": 1, "ts": int(time.time()), "seq": seq, "cpu_pct": 1.0, "cpu_n": 2,
             "mem_pct": 3.0, "up": 10}).encode())


def test_backoff_is_exponential_capped_and_jittered():
    rng = random.Random(1)
    waits = [[backoff_delay(a, 1.0, 60.0, rng.uniform) for _ in range(50)] for a in range(10)]
    for attempt, ws in enumerate(waits):
        d = min(60.0, 2 ** attempt)
        assert all(d / 2 <= w <= d for w in ws), attempt
        assert len(set(ws)) > 40, "every agent waits a different time"
    assert max(waits[9]) <= 60.0


@pytest.fixture
def spool(tmp_path):
    sp = Spool(str(tmp_path / "q"))
    yield sp
    sp.close()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_status_replay_in_order_and_delete_on_puback(mosquitto, spool, protocol):
    _fill(spool, 30)  # left over from a previous run
    rec = Recorder(mosquitto.port)
    t = Transport(_cfg(mosquitto.url, protocol=protocol), SCHOOL, DEVICE, spool)
    t.start()
    try:
        wait_for(lambda: len(set(rec.data_seqs())) == 30, 15, "30 replayed messages")
        check_in_order_no_gap(rec.data_seqs())
        online = rec.of("status")[0]["payload"]
        assert online["state"] == "online" and online["seq"] == 30
        assert online["agent"] and online["hb"] == 60
        for m in rec.messages:
            decode(m["topic"], json.dumps(m["payload"]).encode())
        wait_for(lambda: spool.count == 0, 10, "spool emptied by PUBACKs")
        # new messages while connected go out at once
        _fill(spool, 3)
        t.notify()
        wait_for(lambda: len(set(rec.data_seqs())) == 33, 10, "live messages")
    finally:
        t.stop()
        rec.close()
    late = Recorder(mosquitto.port, topic(SCHOOL, DEVICE, "status"))
    try:
        m = wait_for(lambda: late.of("status"), 5, "retained status")[0]
        assert m["retain"] and m["payload"]["state"] == "offline"
        assert m["payload"]["reason"] == "shutdown" and m["payload"]["seq"] == 33
    finally:
        late.close()


def test_commands_reach_the_handler(mosquitto, spool, caplog):
    got = []
    t = Transport(_cfg(mosquitto.url), SCHOOL, DEVICE, spool, on_command=got.append)
    t.start()
    try:
        wait_for(t.connected.is_set, 10, "connect")
        time.sleep(0.3)  # SUBACK
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        cmd = topic(SCHOOL, DEVICE, "cmd")
        pub.publish(cmd, b"not json", qos=1).wait_for_publish(5)
        pub.publish(cmd, json.dumps({"cmd": "speedtest_lease", "id": 1}), qos=1) \
            .wait_for_publish(5)
        pub.publish(topic(SCHOOL, "other-device", "cmd"), b'{"cmd":"x"}', qos=1) \
            .wait_for_publish(5)
        wait_for(lambda: got, 5, "command")
        assert got == [{"cmd": "speedtest_lease", "id": 1}]
        assert "not a JSON object" in caplog.text
        pub.loop_stop()
        pub.disconnect()
    finally:
        t.stop()


def test_default_handler_logs_unknown_commands(mosquitto, spool, caplog):
    caplog.set_level(logging.INFO)
    t = Transport(_cfg(mosquitto.url), SCHOOL, DEVICE, spool)
    t.start()
    try:
        wait_for(t.connected.is_set, 10, "connect")
        time.sleep(0.3)
        subprocess.run(["mosquitto_pub", "-p", str(mosquitto.port), "-q", "1", "-t",
                        topic(SCHOOL, DEVICE, "cmd"), "-m", '{"cmd":"reboot"}'], check=True)
        wait_for(lambda: "'reboot' is not known" in caplog.text, 5, "log line")
        assert t.connected.is_set()
    finally:
        t.stop()


def _bytes_for(mosquitto, tmp_path, alias, n=40):
    relay = ByteRelay(mosquitto.port)
    sp = Spool(str(tmp_path / ("q-%s" % alias)))
    _fill(sp, n)
    rec = Recorder(mosquitto.port, topic(SCHOOL, DEVICE, "health"))
    t = Transport(_cfg("mqtt://127.0.0.1:%d" % relay.port, topic_alias=alias), SCHOOL,
                  DEVICE, sp)
    t.start()
    try:
        wait_for(lambda: sp.count == 0, 15, "all acknowledged")
        wait_for(lambda: len(rec.of("health")) >= n, 10, "all received")
        assert [m["payload"]["seq"] for m in rec.of("health")] == list(range(1, n + 1))
        assert all(m["topic"] == topic(SCHOOL, DEVICE, "health") for m in rec.of("health"))
    finally:
        t.stop()
        rec.close()
        sp.close()
        relay.close()
    return relay.up + relay.down


def test_topic_aliases_cut_bytes(mosquitto, tmp_path):
    with_alias = _bytes_for(mosquitto, tmp_path, True)
    without = _bytes_for(mosquitto, tmp_path, False)
    saved_per_msg = (without - with_alias) / 40.0
    print("bytes for 40 health messages: alias %d, no alias %d (%.1f B/message saved)"
          % (with_alias, without, saved_per_msg))
    topic_len = len(topic(SCHOOL, DEVICE, "health"))
    assert saved_per_msg > topic_len - 10


def _chown_for_mosquitto(*paths):
    if os.geteuid() == 0:
        try:
            uid = pwd.getpwnam("mosquitto").pw_uid
        except KeyError:
            return
        for p in paths:
            os.chown(p, uid, -1)


@pytest.fixture
def broker_files():
    """A folder the broker (which drops root to user mosquitto) can read."""
    d = tempfile.mkdtemp(prefix="schoolmon-brokerfiles-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_password_is_used_and_never_logged(tmp_path, broker_files, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "s3cret-Pw-%d" % random.randint(1000, 9999)
    pwfile = os.path.join(broker_files, "passwd")
    subprocess.run(["mosquitto_passwd", "-b", "-c", pwfile, DEVICE, secret], check=True,
                   capture_output=True)
    os.chmod(pwfile, 0o600)
    _chown_for_mosquitto(pwfile)
    broker = Mosquitto("password_file %s\nallow_anonymous false\n" % pwfile)
    sp = Spool(str(tmp_path / "q"))
    try:
        t = Transport(_cfg(broker.url, password="wrong-" + secret), SCHOOL, DEVICE, sp)
        t.start()
        wait_for(lambda: "refused the connection" in caplog.text, 10, "refusal logged")
        t.stop()
        assert not t.connects
        _fill(sp, 2)
        t = Transport(_cfg(broker.url, password=secret), SCHOOL, DEVICE, sp)
        t.start()
        wait_for(lambda: sp.count == 0, 10, "delivered with the right password")
        t.stop()
        assert t.connects == 1
        assert secret not in caplog.text
        assert DEVICE in caplog.text  # the user name (= device id) may be logged
    finally:
        sp.close()
        broker.stop()


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")
def test_tls_with_ca_file_and_client_certificate(tmp_path, broker_files):
    d = broker_files
    make_test_pki(d, client_cn=DEVICE)
    tls_port = free_port()
    broker = Mosquitto("listener %d 127.0.0.1\ncafile %s/ca.crt\ncertfile %s/server.crt\n"
                       "keyfile %s/server.key\nrequire_certificate true\n"
                       % (tls_port, d, d, d))
    sp = Spool(str(tmp_path / "q"))
    _fill(sp, 3)
    rec = Recorder(broker.port)
    url = "mqtts://127.0.0.1:%d" % tls_port
    t = Transport(_cfg(url, ca_file=d + "/ca.crt", cert_file=d + "/client.crt",
                       key_file=d + "/client.key"), SCHOOL, DEVICE, sp)
    try:
        t.start()
        wait_for(lambda: sp.count == 0, 15, "delivered over TLS")
        wait_for(lambda: len(rec.data_seqs()) == 3, 5, "received")
        assert t.connects == 1
    finally:
        t.stop()
        rec.close()
        sp.close()
        broker.stop()


def test_status_payload_shapes():
    from schoolmon.agent.transport import status_payload

    online = json.loads(status_payload("online", 7, 1795000000.4, hb=60))
    assert online == {"v": 1, "ts": 1795000000, "seq": 7, "state": "online",
                      "agent": online["agent"], "hb": 60}
    assert json.loads(status_payload("offline", 7, 1795000000, reason="lost")) == {
        "v": 1, "ts": 1795000000, "seq": 7, "state": "offline", "reason": "lost"}
    assert "hb" not in json.loads(status_payload("online", 0, 1795000000, hb=1))


def test_refused_publish_is_counted_and_never_blocks_the_queue(tmp_path, broker_files, caplog):
    """A broker ACL that refuses the data topics (PUBACK 0x87 Not authorized): each refused
    message is dropped and counted in q_drop instead of being retried forever at the head
    of the queue. (Mosquitto 2.0 also closes the connection after such a refusal.)"""
    acl = os.path.join(broker_files, "acl")
    with open(acl, "w") as fh:
        fh.write("pattern readwrite schoolmon/v1/%s/%%u/status\n"
                 "pattern readwrite schoolmon/v1/%s/%%u/cmd\n" % (SCHOOL, SCHOOL))
    os.chmod(acl, 0o644)
    broker = Mosquitto("acl_file %s\n" % acl)
    sp = Spool(str(tmp_path / "q"))
    _fill(sp, 3)
    t = Transport(_cfg(broker.url), SCHOOL, DEVICE, sp)
    try:
        t.start()
        wait_for(lambda: sp.dropped == 3, 20, "refused messages dropped and counted")
        assert sp.count == 0
        assert "Not authorized" in caplog.text
    finally:
        t.stop()
        sp.close()
        broker.stop()


def test_replay_rate_is_capped(mosquitto, spool):
    _fill(spool, 30)
    rec = Recorder(mosquitto.port, topic(SCHOOL, DEVICE, "health"))
    cfg = _cfg(mosquitto.url)
    cfg.queue.replay_rate = 20.0
    t = Transport(cfg, SCHOOL, DEVICE, spool)
    try:
        t.start()
        wait_for(lambda: len(rec.of("health")) == 30, 15, "replay")
        arrivals = [m["at"] for m in rec.of("health")]
        span = arrivals[-1] - arrivals[0]
        assert span >= 29 / 20.0 * 0.9, "30 messages at <= 20/s take >= 1.45 s, took %.2f" % span
        assert span < 5
        check_in_order_no_gap([m["payload"]["seq"] for m in rec.of("health")])
    finally:
        t.stop()
        rec.close()


def test_mqtt_311_mode_works_with_the_demo_broker(spool):
    """`mqtt.protocol = "3.1.1"` lets the agent use amqtt (the demo's embedded broker, which
    refuses MQTT 5): status, replay in order, delete on PUBACK."""
    pytest.importorskip("amqtt")
    from schoolmon.collector.demo import AmqttBroker
    broker = AmqttBroker(free_port()).start()
    rec = None
    t = None
    try:
        got = []
        watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="watcher",
                              protocol=mqtt.MQTTv311)
        watcher.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload)))
        watcher.connect("127.0.0.1", broker.port)
        watcher.subscribe("schoolmon/v1/#", qos=1)
        watcher.loop_start()
        rec = watcher
        _fill(spool, 5)
        t = Transport(_cfg(broker.url, protocol="3.1.1"), SCHOOL, DEVICE, spool)
        t.start()
        wait_for(lambda: spool.count == 0, 15, "queue delivered through amqtt")
        wait_for(lambda: len([1 for n, _ in got if n.endswith("/health")]) >= 5, 5, "5 health")
        seqs = [p["seq"] for name, p in got if name.endswith("/health")]
        check_in_order_no_gap(seqs)
        assert any(p.get("state") == "online" for n, p in got if n.endswith("/status"))
    finally:
        if t is not None:
            t.stop()
        if rec is not None:
            rec.loop_stop()
            rec.disconnect()
        broker.stop()
