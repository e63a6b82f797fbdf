"""The runtime loop in-process (no broker): schedules with jitter and start delay, a slow or
hung family never stalls health, timeouts, inventory only on change, the envelope."""
import json
import logging
import random
import threading
import time

from schoolmon.agent.config import load_config
from schoolmon.agent.runtime import Runtime
from schoolmon.agent.spool import Spool
from schoolmon.protocol import decode

SCHOOL, DEVICE = "79000101", "79000101-pc-abcde"


class Health:
    kind = "health"

    def __init__(self, hang_once=0.0):
        self.calls = 0
        self.hang_once = hang_once

    def collect(self):
        self.calls += 1
        if self.calls == 2 and self.hang_once:
            time.sleep(self.hang_once)
        return {"cpu_pct": 5.0, "cpu_n": 2, "mem_pct": 40.0, "up": 100, "temp": 9999}


class Inventory:
    kind = "inventory"

    def __init__(self, hang=0.0, slow=False):
        self.hang = hang
        self.slow = slow
        self.value = "pc1"
        self.calls = 0

    def collect(self):
        self.calls += 1
        if self.hang:
            time.sleep(self.hang)
        return {"hostname": self.value, "role": "lab", "os_name": "Linux", "agent": "0.1.0"}


def _cfg(health=0.2, inventory=0.3, timeout=0.5):
    cfg = load_config(None, env={})
    cfg.intervals.health = health
    cfg.intervals.inventory = inventory
    cfg.intervals.start_delay_min = 0.0
    cfg.intervals.start_delay_max = 0.05
    cfg.intervals.timeout = timeout
    return cfg


def _run(rt, seconds):
    t = threading.Thread(target=rt.run)
    t.start()
    time.sleep(seconds)
    rt.request_stop()
    t.join(5)
    assert not t.is_alive()


def _messages(spool):
    return [(r.topic.rsplit("/", 1)[1], json.loads(r.payload), r)
            for r in spool.peek(limit=10000)]


def test_envelope_sanitize_and_queue(tmp_path, caplog):
    sp = Spool(str(tmp_path))
    notified = []
    rt = Runtime(_cfg(), SCHOOL, DEVICE, {"health": Health(), "inventory": Inventory()}, sp,
                 notify=lambda: notified.append(1), rand=random.Random(3))
    _run(rt, 0.8)
    msgs = _messages(sp)
    kinds = [k for k, _, _ in msgs]
    assert kinds.count("inventory") == 1, "inventory only at start while unchanged"
    assert 3 <= kinds.count("health") <= 6
    assert [m["seq"] for _, m, _ in msgs] == list(range(1, len(msgs) + 1))
    for kind, m, row in msgs:
        decode(row.topic, row.payload)
        assert isinstance(m["ts"], int)
        assert row.retain == (kind == "inventory")
    health = [m for k, m, _ in msgs if k == "health"]
    assert "temp" not in health[0], "an out-of-range reading is dropped, not sent"
    assert "dropping field health.temp" in caplog.text
    assert [h["q"] for h in health] == sorted(h["q"] for h in health)
    assert all(h["q_drop"] == 0 for h in health)
    assert notified


def test_inventory_sent_again_only_when_changed(tmp_path):
    sp = Spool(str(tmp_path))
    inv = Inventory()
    rt = Runtime(_cfg(health=60, inventory=0.1), SCHOOL, DEVICE, {"inventory": inv}, sp)
    t = threading.Thread(target=rt.run)
    t.start()
    time.sleep(0.35)
    inv.value = "pc1-renamed"
    time.sleep(0.35)
    rt.request_stop()
    t.join(5)
    names = [m["hostname"] for k, m, _ in _messages(sp) if k == "inventory"]
    assert names == ["pc1", "pc1-renamed"]
    assert inv.calls >= 4


def test_hung_slow_family_never_stalls_health(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    sp = Spool(str(tmp_path))
    inv = Inventory(hang=3.0, slow=True)
    rt = Runtime(_cfg(health=0.1, timeout=0.3), SCHOOL, DEVICE,
                 {"health": Health(), "inventory": inv}, sp)
    _run(rt, 1.2)
    kinds = [k for k, _, _ in _messages(sp)]
    assert "inventory" not in kinds
    assert kinds.count("health") >= 7, "health kept its pace"
    assert "inventory: no result within" in caplog.text
    assert inv.calls == 1, "a hung family is not started again while it hangs"


def test_health_timeout_skips_one_round_then_recovers(tmp_path, caplog):
    sp = Spool(str(tmp_path))
    rt = Runtime(_cfg(health=0.1, timeout=0.2), SCHOOL, DEVICE,
                 {"health": Health(hang_once=0.5)}, sp)
    _run(rt, 1.4)
    assert "health: no result within" in caplog.text
    health = [m for k, m, _ in _messages(sp) if k == "health"]
    assert len(health) >= 4, "health resumed after the hung round"
    assert [m["seq"] for m in health] == list(range(1, len(health) + 1))


def test_start_delay_and_jitter(tmp_path):
    sp = Spool(str(tmp_path))
    cfg = _cfg(health=10)
    cfg.intervals.start_delay_min, cfg.intervals.start_delay_max = 5.0, 30.0
    delays, gaps = [], []
    for seed in range(20):
        rt = Runtime(cfg, SCHOOL, DEVICE, {"health": Health()}, sp, rand=random.Random(seed))
        s = rt.schedules["health"]
        delays.append(s.due - time.monotonic())
        gaps.append(rt._next_interval(s))
    assert all(4.9 <= d <= 30.0 for d in delays) and len({round(d, 3) for d in delays}) > 15
    assert all(9.0 <= g <= 11.0 for g in gaps) and len(set(gaps)) > 15


def test_broken_family_is_logged_and_others_continue(tmp_path, caplog):
    class Broken:
        kind = "inventory"

        def collect(self):
            raise RuntimeError("WMI exploded")

    sp = Spool(str(tmp_path))
    rt = Runtime(_cfg(), SCHOOL, DEVICE, {"health": Health(), "inventory": Broken()}, sp)
    _run(rt, 0.7)
    assert "collecting inventory failed" in caplog.text
    assert [k for k, _, _ in _messages(sp)].count("health") >= 3


def test_agent_modules_leave_heavy_optional_imports_out():
    """The agent's memory budget: importing every agent module (and parsing a command,
    as the transport does) must not pull in what only the collector wants."""
    import subprocess
    import sys
    code = ("import sys, schoolmon.agent.cli, schoolmon.agent.runtime, schoolmon.agent.transport\n"
            "from schoolmon.protocol import parse_json\n"
            "parse_json(b'{\"cmd\": \"ping\"}')\n"
            "heavy = [m for m in ('orjson', 'sqlalchemy', 'fastapi', 'influxdb_client')"
            " if m in sys.modules]\n"
            "print(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"
