"""Command dispatch: a speedtest grant runs once on the slow worker through the real Runtime
and its result is queued in the real spool; replayed, expired (by exp and by ttl), unknown,
malformed and busy grants are refused and counted; the seen ids survive a restart and a
corrupt file. Clocks are injected: nothing depends on timing."""
import json
import threading
import time

import pytest
from schoolmon.agent.commands import SEEN_FILE, CommandHandler
from schoolmon.agent.config import load_config
from schoolmon.agent.runtime import Runtime
from schoolmon.agent.spool import Spool
from schoolmon.protocol import decode

from tests.agent.agenthelp import wait_for

SCHOOL, DEVICE = "79000101", "79000101-pc-abcde"
NOW = 1_800_000_000.0


def grant(i="L1", **kw):
    g = {"v": 1, "ts": NOW, "cmd": "speedtest", "id": i, "exp": NOW + 600, "ttl": 600,
         "server": "http://10.0.0.1/speedtest/upload.php", "budget": 50_000_000,
         "mode": "short", "trigger": "slot"}
    g.update(kw)
    return g


class Family:
    """Stands in for SpeedtestFamily (its own tests use real servers): records the grant's
    arguments; ``gate`` holds the test until released (a test that is running)."""

    def __init__(self):
        self.calls = []
        self.gate = threading.Event()
        self.gate.set()

    def run(self, **kw):
        self.calls.append(kw)
        self.gate.wait(30)
        return {"ok": True, "down_mbps": 20.0, "up_mbps": 5.0, "ping_ms": 3.0,
                "bytes_rx": 1000, "bytes_tx": 500, "server": kw["server"],
                "lease": kw["lease"], "trigger": kw["trigger"], "mode": kw["mode"]}


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def rig(tmp_path):
    cfg = load_config(None, env={})
    cfg.intervals.start_delay_min = cfg.intervals.start_delay_max = 0.0
    spool = Spool(str(tmp_path / "q"), 10 ** 7, 86400.0)
    rt = Runtime(cfg, SCHOOL, DEVICE, {}, spool)
    t = threading.Thread(target=rt.run, daemon=True)
    t.start()
    fam = Family()
    wall, mono = Clock(NOW), Clock(100.0)
    h = CommandHandler(rt, fam, str(tmp_path / "st"), clock=wall, monotonic=mono)
    yield rt, spool, fam, h, wall, mono
    fam.gate.set()
    rt.request_stop()
    t.join(10)
    spool.close()


def _queued(spool):
    """The speedtest messages in the spool, decoded as the collector would."""
    return [decode(r.topic, r.payload).payload for r in spool.peek(0, 100)
            if r.topic.endswith("/speedtest")]


def test_a_grant_runs_once_and_is_queued(rig):
    rt, spool, fam, h, wall, mono = rig
    assert h(grant()) == "started"
    wait_for(lambda: rt.queued.get("speedtest") == 1, 20, "the result queued")
    assert fam.calls == [{"server": "http://10.0.0.1/speedtest/upload.php",
                          "budget": 50_000_000, "mode": "short", "trigger": "slot",
                          "lease": "L1"}]
    (msg,) = _queued(spool)
    assert msg["lease"] == "L1" and msg["ok"] is True and msg["down_mbps"] == 20.0
    assert h(grant()) == "replayed"  # the same id again (a re-send, a duplicate delivery)
    assert h.refused["replayed"] == 1 and h.started == 1


def test_refusals_are_counted(rig):
    rt, spool, fam, h, wall, mono = rig
    assert h({"cmd": "reboot", "v": 1, "ts": NOW}) == "unknown"
    assert h("not a dict") == "unknown"  # type: ignore[arg-type]
    assert h(grant("B1", mode="huge")) == "invalid"
    assert h(grant("B2", budget=-1)) == "invalid"
    g = grant("B3")
    del g["exp"]
    assert h(g) == "invalid"
    assert h(grant("E1", exp=NOW - 1)) == "expired"  # by the PC's clock
    assert h.refused == {"invalid": 3, "unknown": 2, "replayed": 0, "expired": 1,
                         "busy": 0, "disabled": 0}
    assert fam.calls == []


def test_busy_while_a_test_runs(rig):
    rt, spool, fam, h, wall, mono = rig
    fam.gate.clear()
    assert h(grant("A")) == "started"
    wait_for(lambda: fam.calls, 10, "the test started")
    assert h(grant("B")) == "busy"
    fam.gate.set()
    wait_for(lambda: rt.queued.get("speedtest") == 1, 20, "the first result")
    wait_for(lambda: not rt.busy("speedtest"), 10, "the worker free")
    assert h(grant("C")) == "started"
    wait_for(lambda: rt.queued.get("speedtest") == 2, 20, "the second result")
    assert [c["lease"] for c in fam.calls] == ["A", "C"]


def test_ttl_counts_from_arrival_on_the_agents_own_clock(rig):
    """A PC whose clock is a year behind: ``exp`` looks far away, but the grant waited on the
    slow worker longer than its ttl: not run."""
    rt, spool, fam, h, wall, mono = rig
    wall.t = NOW - 365 * 86400
    block = threading.Event()

    class Busy:
        def collect(self):
            block.wait(30)
            return None

    assert rt.run_now("security", Busy())  # the slow worker is busy with a scan
    assert h(grant("T1", ttl=60)) == "started"
    mono.t += 61  # the scan took longer than the ttl
    block.set()
    wait_for(lambda: h.refused["expired"] == 1, 20, "refused at its start")
    assert fam.calls == []


def test_link_down_reports_without_testing(rig):
    rt, spool, fam, h, wall, mono = rig
    rt._latest["probe"] = (time.monotonic(), {"gw_ok": True, "dom_ok": False})
    assert h(grant("D1")) == "started"
    wait_for(lambda: rt.queued.get("speedtest") == 1, 20, "the result queued")
    assert fam.calls == []
    (msg,) = _queued(spool)
    assert msg["ok"] is False and msg["reason"] == "link_down" and msg["lease"] == "D1"


def test_seen_ids_survive_restart_and_corruption(tmp_path, rig):
    rt, spool, fam, h, wall, mono = rig
    state = tmp_path / "st2"
    h1 = CommandHandler(rt, fam, str(state), clock=wall, monotonic=mono)
    assert h1(grant("P1", exp=NOW - 5)) == "expired"  # refused, but the id is used up
    h2 = CommandHandler(rt, fam, str(state), clock=wall, monotonic=mono)
    assert h2(grant("P1")) == "replayed"
    (state / SEEN_FILE).write_text("{not json")
    h3 = CommandHandler(rt, fam, str(state), clock=wall, monotonic=mono)
    assert h3.seen.ids == [] and (state / (SEEN_FILE + ".corrupt")).exists()
    for i in range(250):
        h3.seen.add("x%d" % i)
    kept = json.loads((state / SEEN_FILE).read_text())["ids"]
    assert len(kept) == 200 and kept[-1] == "x249"


def test_disabled(tmp_path, rig):
    rt, spool, fam, h, wall, mono = rig
    off = CommandHandler(rt, fam, str(tmp_path / "st3"), enabled=False, clock=wall,
                         monotonic=mono)
    assert off(grant("Z")) == "disabled"
