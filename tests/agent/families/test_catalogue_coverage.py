"""Hold the code to the catalogue (as Datadog's integrations hold metrics to metadata.csv):
every field a family emits is described in protocol/catalogue.py, every catalogue field is
emitted by some machine the tests can stand for, and docs/protocol.md is the catalogue's
current rendering."""
import os
import shutil
import tempfile
import time
from collections import namedtuple
from pathlib import Path

import psutil
from schoolmon.agent.config import load_config
from schoolmon.agent.families import build_families
from schoolmon.agent.families.health import HealthFamily
from schoolmon.agent.families.inventory import InventoryFamily
from schoolmon.agent.families.security import SecurityFamily
from schoolmon.agent.runner import CommandResult, RecordedRunner
from schoolmon.protocol import envelope, validate
from schoolmon.protocol.catalogue import FAMILIES
from schoolmon.protocol.docs import render

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
WINDOWS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "windows")
SECURITY_FIXTURES = os.path.join(WINDOWS, "security")
# Added by the agent's core (queue state), not by the family.
CORE_FIELDS = {"health": {"q", "q_drop"}, "inventory": set(), "security": set()}
# Windows security recordings (tests/agent/fixtures/windows/security): between them every
# Windows field; the Linux scanner's fixtures add theirs.
_WU = {"security-wu-search": "wu-search-ok.txt"}
SECURITY_WINDOWS = (
    dict(_WU, **{"security-cim": "win11-24h2-proedu-defender.json"}),
    dict(_WU, **{"security-cim": "win10-22h2-kaspersky-defender-passive.json"}),
    dict(_WU, **{"security-cim": "win10-22h2-bkav-reboot-pending.json"}),
    dict(_WU, **{"security-cim": "win10-22h2-lab-deep-freeze.json",
                 "C:\\Windows\\SysWOW64\\DFC.exe get /ISFROZEN": CommandResult(1, "", "")}),
    dict(_WU, **{"security-cim": CommandResult(1, "", ""), "security-wmi": "win7-sp1-pro.txt",
                 "netsh advfirewall show allprofiles state": "netsh-allprofiles-en.txt"}),
)


def _unknown(fields, payload, path=""):
    """Names in payload (recursively into lists of objects) the catalogue does not know."""
    known = {f.name: f for f in fields}
    bad = []
    for key, value in payload.items():
        f = known.get(key)
        if f is None:
            bad.append(path + key)
        elif f.type == "objects":
            for item in value:
                bad.extend(_unknown(f.items, item, path + key + "[]."))
    return bad


def _emitted():
    cfg = load_config(None, env={"SCHOOLMON_AGENT_ROOM": "P1"})
    fams = build_families(cfg)
    time.sleep(0.2)
    out = [(kind, fam.collect()) for kind, fam in sorted(fams.items())]
    for recordings in ({"inventory-cim": "win11-23h2-education.json"},
                       {"inventory-cim": "win10-22h2-pro.json"},
                       {"inventory-cim": CommandResult(1, "", ""),
                        "inventory-wmi": "win7-sp1-pro.txt"}):
        win = InventoryFamily("lab", "P1", platform_name="win32",
                              runner=RecordedRunner(recordings, root=WINDOWS))
        out.append(("inventory", win.collect()))
    for recordings in SECURITY_WINDOWS:
        fam = SecurityFamily(RecordedRunner(recordings, root=SECURITY_FIXTURES),
                             platform_name="win32")
        fam.collect()  # starts the background update search
        assert fam._scanner.search.wait(30)
        out.append(("security", fam.collect()))
    out.extend(("security", payload) for payload in _linux_security())
    return out


def _linux_security():
    """The security family on each Linux fixture box (tests/agent/fixtures/linux/security)."""
    from .test_security_linux import BOXES, Box

    tmp = tempfile.mkdtemp()
    try:
        for name in BOXES:
            box = Box(name, Path(tmp))
            yield SecurityFamily(runner=box.runner, root=box.root,
                                 platform_name="linux").collect()
    finally:
        shutil.rmtree(tmp)


Temp = namedtuple("Temp", "label current high critical")
Fan = namedtuple("Fan", "label current")
Batt = namedtuple("Batt", "percent secsleft power_plugged")
Nic = namedtuple("Nic", "bytes_sent bytes_recv packets_sent packets_recv errin errout dropin "
                 "dropout")
Disk = namedtuple("Disk", "read_count write_count read_bytes write_bytes")
Stats = namedtuple("Stats", "isup duplex speed mtu flags")
Part = namedtuple("Part", "device mountpoint fstype opts")
Usage = namedtuple("Usage", "total used free percent")
Swap = namedtuple("Swap", "total used free percent sin sout")


def _well_equipped_pc(monkeypatch):
    """psutil answering everything a laptop with sensors, swap, a disk and a NIC has."""
    monkeypatch.setattr(psutil, "sensors_temperatures",
                        lambda: {"coretemp": [Temp("Package id 0", 51.0, 80.0, 100.0)]},
                        raising=False)
    monkeypatch.setattr(psutil, "sensors_fans", lambda: {"thinkpad": [Fan("", 2100)]},
                        raising=False)
    monkeypatch.setattr(psutil, "sensors_battery", lambda: Batt(80.0, 3600, True),
                        raising=False)
    monkeypatch.setattr(psutil, "swap_memory",
                        lambda: Swap(1000, 100, 900, 10.0, 0, 0))
    counter = {"n": 0}

    def net(pernic=True, nowrap=True):
        counter["n"] += 1000
        return {"eth0": Nic(counter["n"], counter["n"], 1, 1, 0, 0, 0, 0)}

    monkeypatch.setattr(psutil, "net_io_counters", net)
    monkeypatch.setattr(psutil, "net_if_stats",
                        lambda: {"eth0": Stats(True, 2, 1000, 1500, "up,running")})
    monkeypatch.setattr(psutil, "disk_io_counters",
                        lambda perdisk=True, nowrap=True: {"sda": Disk(1, 1, 4096, 4096)})
    monkeypatch.setattr(psutil, "disk_partitions",
                        lambda all=False: [Part("/dev/sda1", "/", "ext4", "rw")])
    monkeypatch.setattr(psutil, "disk_usage", lambda path: Usage(1000, 400, 600, 40.0))


def _paths(payload, prefix=""):
    out = set()
    for key, value in payload.items():
        out.add(prefix + key)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                out |= _paths(item, prefix + key + "[].")
    return out


def test_every_emitted_field_is_in_the_catalogue():
    for kind, payload in _emitted():
        assert _unknown(FAMILIES[kind].fields, payload) == [], kind
        validate(kind, envelope(kind, payload, 1, time.time()))


def test_every_catalogue_field_is_emitted(monkeypatch):
    emitted = {kind: set() for kind in CORE_FIELDS}
    for kind, payload in _emitted():
        emitted.setdefault(kind, set()).update(_paths(payload))
    _well_equipped_pc(monkeypatch)
    emitted["health"] |= _paths(HealthFamily().collect())
    for kind, core in CORE_FIELDS.items():
        expected = set()
        for f in FAMILIES[kind].fields:
            if f.name in core:
                continue
            expected.add(f.name)
            expected |= {"%s[].%s" % (f.name, sub.name) for sub in f.items or ()}
        assert expected - emitted[kind] == set(), "%s: never emitted" % kind


def test_required_fields_are_always_there():
    for kind, payload in _emitted():
        for f in FAMILIES[kind].fields:
            if f.required:
                assert f.name in payload, "%s.%s" % (kind, f.name)


def test_docs_protocol_md_is_generated_from_the_catalogue():
    with open(os.path.join(ROOT, "docs", "protocol.md"), encoding="utf-8") as fh:
        assert fh.read() == render(), ("docs/protocol.md is stale: run "
                                       "`python -m schoolmon.protocol.docs > docs/protocol.md`")
