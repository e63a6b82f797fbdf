"""Windows inventory from PowerShell outputs recorded in the shapes real machines give
(tests/agent/fixtures/windows/README.md says where each shape comes from)."""
import os
import socket
import time

import psutil
import pytest
from schoolmon.agent import __version__
from schoolmon.agent.families.inventory import InventoryFamily
from schoolmon.agent.families.inventory_windows import map_windows, reader
from schoolmon.agent.runner import CommandResult, CommandTimeout, RecordedRunner, command_key
from schoolmon.agent.windows.cim import POWERSHELL
from schoolmon.protocol import encode, envelope, validate

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "windows")
MODERN_SCRIPT = reader().modern
LEGACY_SCRIPT = reader().legacy_script


def _family(recordings, room="P.Tin 1"):
    runner = RecordedRunner(recordings, root=FIXTURES)
    return InventoryFamily("lab", room, runner=runner, platform_name="win32"), runner


def _common(room="P.Tin 1"):
    """What every OS gets from psutil/platform (this machine's values in a test)."""
    import platform
    out = {"hostname": socket.gethostname(), "boot_ts": int(psutil.boot_time()),
           "role": "lab", "agent": __version__, "python": platform.python_version()}
    if room:
        out["room"] = room
    return out


def _valid(inv):
    msg = envelope("inventory", inv, 7, time.time())
    validate("inventory", msg)
    assert len(encode(msg)) < 4096


def test_windows_10_22h2_pro_single_objects():
    fam, runner = _family({"inventory-cim": "win10-22h2-pro.json"})
    inv = fam.collect()
    expected = dict(_common(), **{
        "os_name": "Windows", "os_version": "10", "os_build": "19045.4170",
        "os_edition": "Pro", "os_display": "22H2", "kernel": "10.0.19045", "arch": "AMD64",
        "cpu_model": "Intel(R) Core(TM) i3-4150 CPU @ 3.50GHz", "cpu_cores": 2,
        "cpu_threads": 4, "ram": 8461709312, "vendor": "Dell Inc.", "model": "OptiPlex 3020",
        "serial": "5KQ4W32",
        "disks": [{"model": "KINGSTON SA400S37240G", "size": 240054796800, "kind": "ssd",
                   "serial": "50026B7784A1B2C3"}],
        "nics": [{"if": "Ethernet", "mac": "d4:be:d9:3a:5c:11", "ipv4": ["192.168.10.23"],
                  "speed": 1000, "up": True}],
        "gateway": "192.168.10.1",
    })
    assert inv == expected
    assert runner.calls == ["inventory-cim"]  # ONE PowerShell call
    assert fam.cim.legacy is False
    _valid(inv)


def test_windows_11_23h2_education_lists():
    fam, _ = _family({"inventory-cim": "win11-23h2-education.json"}, room="")
    inv = fam.collect()
    expected = dict(_common(room=""), **{
        # build 22631 ≥ 22000 ⇒ 11, although the registry ProductName says "Windows 10"
        "os_name": "Windows", "os_version": "11", "os_build": "22631.3296",
        "os_edition": "Education", "os_display": "23H2", "kernel": "10.0.22631",
        "arch": "AMD64", "cpu_model": "Intel(R) Core(TM) i5-10500 CPU @ 3.10GHz",
        "cpu_cores": 6, "cpu_threads": 12, "ram": 17017356288, "vendor": "HP",
        "model": "HP ProDesk 400 G7 Microtower PC", "serial": "4CE0461XYZ",
        # sorted; the USB stick (Removable Media, BusType 7) is left out
        "disks": [
            {"model": "SAMSUNG MZVLB512HBJQ-000H1", "size": 512105932800, "kind": "ssd",
             "serial": "0025_3881_91B0_4A12."},
            {"model": "ST1000DM010-2EP102", "size": 1000202273280, "kind": "hdd",
             "serial": "ZN1F2ABC"},
        ],
        "nics": [
            {"if": "Bluetooth Network Connection", "mac": "a0:80:69:5b:c4:16", "speed": 3,
             "up": False},
            {"if": "Ethernet", "mac": "7c:57:58:1e:2a:3b", "ipv4": ["10.20.1.57"],
             "ipv6": ["2402:800:6314:1a2b:5d1:9c3e:2f4a:8b71"], "speed": 1000, "up": True},
            {"if": "Wi-Fi", "mac": "a0:80:69:5b:c4:12", "ipv4": ["192.168.1.105"],
             "speed": 866, "up": True},
        ],
        # lowest IPConnectionMetric wins (Ethernet 25 < Wi-Fi 35)
        "gateway": "10.20.1.1",
    })
    assert inv == expected
    _valid(inv)


@pytest.mark.parametrize("modern_fails", [
    CommandResult(1, "", ""),  # Get-CimInstance / ConvertTo-Json not found, errors silenced
    CommandResult(0, "", ""),  # same, but the host reports success with no output
    CommandResult(1, "", "The term 'Get-CimInstance' is not recognized as the name of a "
                         "cmdlet, function, script file, or operable program."),
])
def test_windows_7_sp1_through_the_powershell_2_fallback(modern_fails):
    fam, runner = _family({"inventory-cim": modern_fails, "inventory-wmi": "win7-sp1-pro.txt"})
    inv = fam.collect()
    expected = dict(_common(), **{
        "os_name": "Windows", "os_version": "7", "os_build": "7601",
        "os_edition": "Professional", "os_display": "SP1", "kernel": "6.1.7601",
        "arch": "AMD64", "cpu_model": "Intel(R) Pentium(R) CPU G630 @ 2.70GHz",
        "cpu_cores": 2, "cpu_threads": 2, "ram": 4183277568, "vendor": "Hewlett-Packard",
        "model": "HP Compaq 6200 Pro MT PC", "serial": "CZC2053JKL",
        # no MSFT_PhysicalDisk on Windows 7: kind unknown, left out. The first serial is
        # Windows 7's hex-of-byte-swapped form, decoded.
        "disks": [
            {"model": "OCZ-AGILITY3 ATA Device", "size": 120031511040,
             "serial": "OCZ-8980S7KQ320HXW85"},
            {"model": "ST500DM002-1BD142 ATA Device", "size": 500105249280,
             "serial": "Z3TAB12C"},
        ],
        "nics": [{"if": "Local Area Connection", "mac": "3c:d9:2b:0a:1b:2c",
                  "ipv4": ["192.168.1.15"], "speed": 100, "up": True}],
        "gateway": "192.168.1.1",
    })
    assert inv == expected
    assert runner.calls == ["inventory-cim", "inventory-wmi"]
    assert fam.cim.legacy is True
    # remembered: the next hourly check goes straight to the legacy script
    assert fam.collect() == expected
    assert runner.calls == ["inventory-cim", "inventory-wmi", "inventory-wmi"]
    _valid(inv)


def test_inventory_is_deterministic_for_change_detection():
    fam, _ = _family({"inventory-cim": "win11-23h2-education.json"})
    first = encode(fam.collect())
    assert encode(fam.collect()) == first


# -- failing runner: fields left out, never an exception ------------------------------------
FAILURES = {
    "timeout": CommandTimeout(POWERSHELL + ["x"], 90),
    "rc": CommandResult(1, "", "Get-CimInstance : Access denied"),
    "garbage": CommandResult(0, "Get-CimInstance : Invalid class\r\n{\"os\": ", ""),
    "not an object": CommandResult(0, "[1, 2, 3]", ""),
    "odd shapes": CommandResult(0, '{"os": "Windows", "disk": [1, "x"], "nic": {"Index": []}}',
                                ""),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_failing_powershell_leaves_fields_out(failure):
    rec = FAILURES[failure]
    fam, _ = _family({"inventory-cim": rec, "inventory-wmi": rec})
    inv = fam.collect()  # must not raise
    assert inv["os_name"] == "Windows"
    for key in ("os_version", "os_build", "disks", "vendor", "serial"):
        assert key not in inv
    _valid(inv)


def test_no_powershell_at_all():
    fam, runner = _family({})  # RecordedRunner: unknown command → rc 127
    inv = fam.collect()
    assert runner.calls == ["inventory-cim", "inventory-wmi"]
    assert set(inv) == set(_common()) | {"os_name", "cpu_cores", "cpu_threads", "ram"}
    _valid(inv)


def test_passing_fault_after_success_does_not_switch_to_legacy():
    fam, runner = _family({"inventory-cim": "win10-22h2-pro.json"})
    assert fam.collect()["os_version"] == "10"
    runner.recordings["inventory-cim"] = CommandTimeout(POWERSHELL, 90)
    inv = fam.collect()
    assert "os_version" not in inv
    assert runner.calls == ["inventory-cim", "inventory-cim"]
    assert fam.cim.legacy is False


# -- the seam's helpers ---------------------------------------------------------------------
def test_inventory_scripts_are_tagged():
    assert command_key(POWERSHELL + [MODERN_SCRIPT]) == "inventory-cim"
    assert command_key(POWERSHELL + [LEGACY_SCRIPT]) == "inventory-wmi"


@pytest.mark.parametrize("os_, reg, expected", [
    ({"Caption": "Microsoft Windows 8.1 Pro", "Version": "6.3.9600", "BuildNumber": "9600",
      "OSArchitecture": "32-bit", "ProductType": 1}, {"EditionID": "Professional"},
     {"os_version": "8.1", "os_build": "9600", "os_edition": "Pro", "arch": "x86"}),
    ({"Caption": "Microsoft Windows Server 2019 Standard", "Version": "10.0.17763",
      "BuildNumber": "17763", "OSArchitecture": "64-bit", "ProductType": 3},
     {"EditionID": "ServerStandard", "UBR": 5576, "ReleaseId": "1809"},
     {"os_version": "Server 2019", "os_build": "17763.5576", "os_edition": "Standard",
      "os_display": "1809", "arch": "AMD64"}),
    # localised OSArchitecture and Caption, no registry answer
    ({"Caption": "Microsoft Windows 10 Professionnel", "Version": "10.0.19045",
      "BuildNumber": "19045", "OSArchitecture": "64 bits", "ProductType": 1}, {},
     {"os_version": "10", "os_build": "19045", "os_edition": "Professionnel",
      "arch": "AMD64"}),
    ({"Caption": "Microsoft Windows 11 Pro", "Version": "10.0.26100", "BuildNumber": "26100",
      "OSArchitecture": "ARM 64-bit Processor", "ProductType": 1},
     {"EditionID": "Professional", "UBR": 2894, "DisplayVersion": "24H2"},
     {"os_version": "11", "os_build": "26100.2894", "os_edition": "Pro",
      "os_display": "24H2", "arch": "ARM64"}),
])
def test_windows_version_mapping(os_, reg, expected):
    out = map_windows({"os": os_, "reg": reg})
    assert {k: out.get(k) for k in expected} == expected
