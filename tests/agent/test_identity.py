"""Device identity: readable, stable, kept, valid as a topic level / client id; and
``collect`` printing exactly what would be published."""
import json
import os
import subprocess

import psutil
from schoolmon.agent import identity
from schoolmon.agent.identity import ID_FILE, clean_part, device_id, machine_key, make_id
from schoolmon.agent.runner import CommandResult
from schoolmon.protocol import decode
from schoolmon.protocol.topics import valid_id

from .agenthelp import AGENT


def test_readable_and_valid():
    v = make_id("79000101", "LAB1-PC07", "k3x9q")
    assert v == "79000101-lab1-pc07-k3x9q"
    assert valid_id(v)


def test_odd_hostnames_are_sanitised():
    for host in ("PC Phòng Máy 1!", "pc/../#+", "WIN-7.school.local", "-", "", "x" * 300,
                 "máy-tính"):
        v = make_id("79000101", host, "abcde")
        assert valid_id(v), (host, v)
        assert v.startswith("79000101-") and v.endswith("-abcde")
        assert len(v) <= 64
    assert make_id("79000101", "WIN-7.school.local", "abcde") == "79000101-win-7-abcde"
    assert clean_part("PC Phòng Máy 1!") == "pc-ph-ng-m-y-1"


def test_stable_suffix_from_machine_id_and_kept(tmp_path):
    a = device_id("79000101", str(tmp_path / "a"), hostname="pc1", key_source=lambda: "m-1")
    b = device_id("79000101", str(tmp_path / "b"), hostname="pc1", key_source=lambda: "m-1")
    c = device_id("79000101", str(tmp_path / "c"), hostname="pc1", key_source=lambda: "m-2")
    assert a == b != c
    assert 4 <= len(a.rsplit("-", 1)[1]) <= 6
    # kept: a later host rename does not change the id
    assert device_id("79000101", str(tmp_path / "a"), hostname="renamed",
                     key_source=lambda: "m-1") == a
    assert (tmp_path / "a" / ID_FILE).read_text().strip() == a


def test_random_suffix_when_no_machine_id_is_kept(tmp_path):
    a = device_id("79000101", str(tmp_path), hostname="pc1", key_source=lambda: None)
    assert valid_id(a)
    assert device_id("79000101", str(tmp_path), hostname="pc1", key_source=lambda: None) == a


def test_configured_id_wins_and_collect_writes_nothing(tmp_path):
    assert device_id("79000101", str(tmp_path), configured="my-pc") == "my-pc"
    v = device_id("79000101", str(tmp_path / "s"), hostname="pc", key_source=lambda: "k",
                  persist=False)
    assert valid_id(v) and not (tmp_path / "s").exists()


def test_corrupt_kept_id_is_replaced(tmp_path):
    (tmp_path / ID_FILE).write_text("not/valid#\n")
    v = device_id("79000101", str(tmp_path), hostname="pc", key_source=lambda: "k")
    assert valid_id(v) and v.startswith("79000101-pc-")


def test_linux_machine_id_file(tmp_path):
    f = tmp_path / "machine-id"
    f.write_text("0123456789abcdef0123456789abcdef\n")
    assert machine_key(files=(str(tmp_path / "none"), str(f))) == \
        "0123456789abcdef0123456789abcdef"


def test_windows_machine_guid_through_the_runner_seam(monkeypatch):
    calls = []

    class Recorded:
        def run(self, argv, timeout):
            calls.append(argv)
            return CommandResult(0, "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Cryptography"
                                    "\r\n    MachineGuid    REG_SZ    "
                                    "6F1D2C3B-AAAA-4BBB-8CCC-0123456789AB\r\n\r\n", "")

    monkeypatch.setattr(identity.sys, "platform", "win32")
    assert machine_key(Recorded()) == "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"
    assert calls and calls[0][0] == "reg"


def _collect(tmp_path, *args):
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[agent]\nschool = "79000101"\nstate_dir = "%s"\n' % (tmp_path / "st"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    return subprocess.run([AGENT, "collect", "--config", str(cfg)] + list(args),
                          capture_output=True, text=True, timeout=60, env=env)


def test_collect_prints_valid_messages(tmp_path):
    r = _collect(tmp_path, "--family", "health", "--family", "inventory")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [line["topic"].rsplit("/", 1)[1] for line in lines] == ["health", "inventory"]
    for line in lines:
        raw = json.dumps(line["payload"]).encode()
        msg = decode(line["topic"], raw)
        assert msg.school == "79000101"
        assert valid_id(msg.device)
    health = lines[0]["payload"]
    assert health["cpu_n"] == psutil.cpu_count()
    assert abs(health["mem_pct"] - psutil.virtual_memory().percent) < 10
    assert not (tmp_path / "st").exists(), "collect must not write state"


def test_collect_default_families_and_unknown(tmp_path):
    r = _collect(tmp_path)
    assert r.returncode == 0, r.stderr
    kinds = [json.loads(x)["topic"].rsplit("/", 1)[1] for x in r.stdout.splitlines()]
    assert "health" in kinds and "inventory" in kinds and "status" in kinds
    assert "speedtest" not in kinds
    r = _collect(tmp_path, "--family", "bogus")
    assert r.returncode == 2 and "bogus" in r.stderr
    r = _collect(tmp_path, "--family", "router")  # built only with router.host
    assert r.returncode == 2 and "not available" in r.stderr
    assert "security" in kinds


def test_collect_runs_without_any_config(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    env["SCHOOLMON_AGENT_STATE_DIR"] = str(tmp_path / "st")
    r = subprocess.run([AGENT, "collect", "--family", "status"], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout)
    assert line["payload"]["state"] == "online"
