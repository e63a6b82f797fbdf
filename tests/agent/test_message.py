"""The one message builder (agent/message.py): text the OS hands over that is not valid
Unicode (a NIC or mount point named with bytes that are not UTF-8) becomes valid before it
enters a message, in-process with psutil-shaped fakes, in the runtime's loop, through
``collect``, and on this machine with a real interface so named."""
import json
import os
import random
import subprocess
import threading
import time
from collections import namedtuple

import psutil
import pytest
from schoolmon.agent import cli
from schoolmon.agent.config import load_config
from schoolmon.agent.families.health import HealthFamily
from schoolmon.agent.message import REPLACEMENT, build_message, status_fields, valid_text
from schoolmon.agent.runtime import Runtime
from schoolmon.agent.spool import Spool
from schoolmon.protocol import ProtocolError, decode, topic

from .agenthelp import AGENT, wait_for

Part = namedtuple("Part", "device mountpoint fstype opts")
Usage = namedtuple("Usage", "total used free percent")
Nic = namedtuple("Nic", "bytes_sent bytes_recv packets_sent packets_recv errin errout dropin "
                 "dropout")
Stats = namedtuple("Stats", "isup duplex speed mtu flags")
BAD_NIC, BAD_MNT = "eth\udcff", "/mnt/d\udce1ta"  # what os.fsdecode gives for b"eth\xff"


def test_valid_text_replaces_surrogates_and_removes_nul():
    assert valid_text("eth\udcff") == "eth" + REPLACEMENT
    assert valid_text("\ud800x\udfff") == REPLACEMENT + "x" + REPLACEMENT
    assert valid_text("a\x00b") == "ab"
    assert valid_text({"nics": [{"if": "e\udcff"}], "n": 3, "ok": True, "k\udcff": None}) == {
        "nics": [{"if": "e" + REPLACEMENT}], "n": 3, "ok": True, "k" + REPLACEMENT: None}
    text = "Phòng máy 1"
    assert valid_text(text) is text


def test_build_message_is_what_every_sender_uses():
    raw = build_message("health", {"cpu_pct": 1.0, "cpu_n": 1, "mem_pct": 2.0, "up": 3,
                                   "nics": [{"if": BAD_NIC, "rx": 1, "tx": 1}]}, 5, 1795000000)
    msg = decode(topic("79000101", "d-1", "health"), raw)
    assert msg.seq == 5 and msg.payload["nics"][0]["if"] == "eth" + REPLACEMENT
    online = json.loads(build_message("status", status_fields("online", "1.0", hb=60), 5,
                                      1795000000.7))
    assert online == {"v": 1, "ts": 1795000000, "seq": 5, "state": "online", "agent": "1.0",
                      "hb": 60}
    with pytest.raises(ProtocolError):
        build_message("health", {"cpu_n": 1}, 1, 1795000000)  # required fields missing


def _fake_os_with_bad_names(monkeypatch):
    counters = {"n": 0}

    def net(pernic=True, nowrap=True):
        counters["n"] += 100
        return {BAD_NIC: Nic(counters["n"], counters["n"], 1, 1, 0, 0, 0, 0),
                "eth0": Nic(counters["n"], counters["n"], 1, 1, 0, 0, 0, 0)}

    monkeypatch.setattr(psutil, "net_io_counters", net)
    monkeypatch.setattr(psutil, "net_if_stats", lambda: {
        BAD_NIC: Stats(True, 2, 1000, 1500, "up,running"),
        "eth0": Stats(True, 2, 1000, 1500, "up,running")})
    monkeypatch.setattr(psutil, "disk_partitions", lambda all=False: [
        Part("/dev/sda1", "/", "ext4", "rw"), Part("/dev/sdb1", BAD_MNT, "ext4", "rw")])
    monkeypatch.setattr(psutil, "disk_usage", lambda path: Usage(1000, 400, 600, 40.0))


def test_health_with_badly_named_nic_and_mount_point(monkeypatch):
    _fake_os_with_bad_names(monkeypatch)
    fields = HealthFamily().collect()
    assert BAD_NIC in [n["if"] for n in fields["nics"]], "the fake reached the family"
    msg = json.loads(build_message("health", fields, 1, time.time()))
    assert {n["if"] for n in msg["nics"]} == {"eth" + REPLACEMENT, "eth0"}
    assert {d["mnt"] for d in msg["disks"]} == {"/", "/mnt/d" + REPLACEMENT + "ta"}


def test_psutil_failing_on_one_name_costs_no_other_interface(monkeypatch, tmp_path):
    """Real psutil raises UnicodeEncodeError for every interface once one name is not
    UTF-8: the state then comes from sysfs (here a fixture tree)."""
    from schoolmon.agent.families import netif

    def psutil_like():
        raise UnicodeEncodeError("utf-8", BAD_NIC, 3, 4, "surrogates not allowed")

    monkeypatch.setattr(psutil, "net_if_stats", psutil_like)
    monkeypatch.setattr(netif.sys, "platform", "linux")
    for name, flags, carrier, speed in ((BAD_NIC, "0x1003", "1", "1000"),
                                        ("eth0", "0x1003", "0", "bad"), ("lo", "0x9", "1", "")):
        folder = tmp_path / "class" / "net" / name
        folder.mkdir(parents=True)
        (folder / "flags").write_text(flags + "\n")
        (folder / "carrier").write_text(carrier + "\n")
        (folder / "speed").write_text(speed + "\n")
        (folder / "mtu").write_text("1500\n")
    stats = netif.if_stats(str(tmp_path))
    assert stats[BAD_NIC] == netif.IfStats(True, 0, 1000, 1500, "up,broadcast,running,multicast")
    assert stats["eth0"] == netif.IfStats(False, 0, 0, 1500, "up,broadcast,multicast")
    assert "loopback" in stats["lo"].flags


class _BadNames:
    def collect(self):
        return {"cpu_pct": 1.0, "cpu_n": 1, "mem_pct": 2.0, "up": 3,
                "disks": [{"mnt": BAD_MNT, "pct": 1.0, "free": 1}],
                "nics": [{"if": BAD_NIC, "rx": 1, "tx": 1}]}


def test_runtime_keeps_reporting_with_bad_names(tmp_path):
    cfg = load_config(None, env={})
    cfg.intervals.health = 0.05
    cfg.intervals.start_delay_min = cfg.intervals.start_delay_max = 0.0
    spool = Spool(str(tmp_path))
    rt = Runtime(cfg, "79000101", "d-1", {"health": _BadNames()}, spool,
                 rand=random.Random(1))
    t = threading.Thread(target=rt.run)
    t.start()
    try:
        wait_for(lambda: spool.count >= 3, 30, "three health messages")
        assert t.is_alive(), "the main loop survived"
    finally:
        rt.request_stop()
        t.join(10)
    for row in spool.peek(limit=100):
        assert decode(row.topic, row.payload).payload["nics"][0]["if"] == "eth" + REPLACEMENT


def test_runtime_survives_a_value_json_cannot_carry(tmp_path, caplog):
    class Odd:
        def __init__(self):
            self.calls = 0

        def collect(self):
            self.calls += 1
            fields = dict(_BadNames().collect())
            if self.calls == 1:
                fields["extra"] = {1, 2}  # unknown to the catalogue, and not JSON
            return fields

    cfg = load_config(None, env={})
    cfg.intervals.health = 0.05
    cfg.intervals.start_delay_min = cfg.intervals.start_delay_max = 0.0
    spool = Spool(str(tmp_path))
    odd = Odd()
    rt = Runtime(cfg, "79000101", "d-1", {"health": odd}, spool, rand=random.Random(1))
    t = threading.Thread(target=rt.run)
    t.start()
    try:
        wait_for(lambda: spool.count >= 2, 30, "health after the broken one")
    finally:
        rt.request_stop()
        t.join(10)
    assert "health message not sent" in caplog.text
    assert [r.seq for r in spool.peek()][:2] == [1, 2], "the broken one took no seq"


def test_collect_prints_valid_text(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("SCHOOLMON_AGENT_STATE_DIR", str(tmp_path))
    _fake_os_with_bad_names(monkeypatch)
    assert cli.main(["collect", "--family", "health"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    payload = json.loads(lines[0])["payload"]
    assert "eth" + REPLACEMENT in [n["if"] for n in payload["nics"]]
    assert "/mnt/d" + REPLACEMENT + "ta" in [d["mnt"] for d in payload["disks"]]


@pytest.fixture
def badly_named_interface():
    """A real network interface named b'sm\\xff0' (ifb: no driver, no traffic, no address)."""
    name = b"sm\xff0"
    if os.geteuid() != 0:
        pytest.skip("creating a network interface needs root")
    made = subprocess.run([b"ip", b"link", b"add", b"name", name, b"type", b"ifb"],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot create an ifb interface here: %s" % made.stderr.decode()[:200])
    try:
        subprocess.run([b"ip", b"link", b"set", name, b"up"], check=True, capture_output=True)
        yield os.fsdecode(name)
    finally:
        subprocess.run([b"ip", b"link", b"del", name], capture_output=True)


def test_collect_on_this_machine_with_a_badly_named_interface(badly_named_interface, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    env["SCHOOLMON_AGENT_STATE_DIR"] = str(tmp_path)
    out = subprocess.run([AGENT, "collect", "--family", "health", "--family", "inventory"],
                         capture_output=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr.decode("utf-8", "replace")
    msgs = {json.loads(line)["topic"].rsplit("/", 1)[1]: json.loads(line)["payload"]
            for line in out.stdout.decode("utf-8").splitlines()}
    assert "sm" + REPLACEMENT + "0" in [n["if"] for n in msgs["health"]["nics"]]
    # the other interfaces that are up are still there: one bad name costs no other
    up = set()
    for name in os.listdir("/sys/class/net"):
        with open(os.path.join("/sys/class/net", name, "operstate")) as fh:
            if fh.read().strip() == "up":
                up.add(name)
    assert up and up <= {n["if"] for n in msgs["health"]["nics"]}
    assert up & {n["if"] for n in msgs["inventory"].get("nics", [])}
