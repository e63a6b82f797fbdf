"""Linux inventory from a fake /sys, /proc and /etc written into tmp_path, and from the
real machine."""
import os
import platform
import socket
import time
from collections import namedtuple

import psutil
import pytest
from schoolmon.agent import __version__
from schoolmon.agent.config import load_config
from schoolmon.agent.families import build_families
from schoolmon.agent.families.inventory import InventoryFamily
from schoolmon.protocol import encode, envelope, validate

Addr = namedtuple("Addr", "family address netmask broadcast ptp")
Stats = namedtuple("Stats", "isup duplex speed mtu flags")

OS_RELEASE = """PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
# a comment
"""

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i3-10100 CPU @ 3.60GHz
cpu MHz\t\t: 3600.000

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i3-10100 CPU @ 3.60GHz
"""

# Two default routes (Ethernet metric 100, Wi-Fi metric 600), a LAN route, a down route.
ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t01140A0A\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t00140A0A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
eth1\t00000000\t FE01A8C0\t0002\t0\t0\t1\t00000000\t0\t0\t0
"""


def _write(root, rel, text):
    path = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


def _block(root, name, sectors, rotational=None, removable="0", model=None, serial=None):
    base = "sys/block/%s/" % name
    _write(root, base + "size", "%d\n" % sectors)
    _write(root, base + "removable", removable + "\n")
    if rotational is not None:
        _write(root, base + "queue/rotational", rotational + "\n")
    if model is not None:
        _write(root, base + "device/model", model)
    if serial is not None:
        _write(root, base + "device/serial", serial)


@pytest.fixture
def tree(tmp_path, monkeypatch):
    root = tmp_path
    _write(root, "etc/os-release", OS_RELEASE)
    _write(root, "proc/sys/kernel/hostname", "pc-lab1-05\n")
    _write(root, "proc/sys/kernel/osrelease", "5.15.0-101-generic\n")
    _write(root, "proc/meminfo", "MemTotal:        7990260 kB\nMemFree:  123 kB\n")
    _write(root, "proc/stat", "cpu  1 2 3 4\nbtime 1763769600\nprocesses 42\n")
    _write(root, "proc/cpuinfo", CPUINFO)
    _write(root, "proc/net/route", ROUTE)
    _write(root, "sys/class/dmi/id/sys_vendor", "LENOVO\n")
    _write(root, "sys/class/dmi/id/product_name", "11DAS0BN00\n")
    # product_serial is root-only on real systems: absent here → left out
    _write(root, "sys/class/dmi/id/board_vendor", "LENOVO\n")
    _block(root, "sda", 976773168, "1", model="WDC WD5000AAKX-0")
    _block(root, "nvme0n1", 488397168, "0", model="Samsung SSD 970 EVO Plus 250GB        \n",
           serial="S4EUNX0N812345K     \n")
    _block(root, "sdb", 30031872, "1", removable="1", model="Cruzer Blade")  # USB stick
    _block(root, "mmcblk0", 0, "0")  # card reader, no card
    for virtual in ("loop0", "loop7", "ram0", "zram0", "dm-0", "sr0", "md127"):
        _block(root, virtual, 2048, "1")
    for nic in ("eth0", "wlan0"):
        os.makedirs(os.path.join(str(root), "sys/class/net", nic, "device"))
    for virtual in ("docker0", "veth1a2b3c", "tun0", "bond0"):
        os.makedirs(os.path.join(str(root), "sys/class/net", virtual))

    link = psutil.AF_LINK
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {
        "lo": [Addr(socket.AF_INET, "127.0.0.1", "255.0.0.0", None, None),
               Addr(link, "00:00:00:00:00:00", None, None, None)],
        "eth0": [Addr(socket.AF_INET, "10.10.20.57", "255.255.255.0", "10.10.20.255", None),
                 Addr(socket.AF_INET6, "2001:ee0:4f1:1::57", "ffff:ffff:ffff:ffff::", None,
                      None),
                 Addr(socket.AF_INET6, "fe80::7e57:58ff:fe1e:2a3b%eth0", "ffff:ffff:ffff:ffff::",
                      None, None),
                 Addr(link, "7C:57:58:1E:2A:3B", None, "ff:ff:ff:ff:ff:ff", None)],
        "wlan0": [Addr(link, "a0:80:69:5b:c4:12", None, None, None)],
        "docker0": [Addr(socket.AF_INET, "172.17.0.1", "255.255.0.0", None, None)],
        "veth1a2b3c": [Addr(link, "fa:16:3e:00:00:01", None, None, None)],
        "tun0": [Addr(socket.AF_INET, "10.8.0.6", "255.255.255.0", None, "10.8.0.5")],
        "bond0": [Addr(link, "ba:d0:00:00:00:01", None, None, None)],  # no address: noise
    })
    monkeypatch.setattr(psutil, "net_if_stats", lambda: {
        "lo": Stats(True, 0, 0, 65536, "up,loopback,running"),
        "eth0": Stats(True, 2, 1000, 1500, "up,broadcast,running,multicast"),
        "wlan0": Stats(False, 0, 0, 1500, "broadcast,multicast"),
        "docker0": Stats(True, 0, 0, 1500, "up"),
        "tun0": Stats(True, 0, 10, 1500, "up,pointopoint,running"),
        "bond0": Stats(False, 0, 0, 1500, "broadcast,master"),
    })
    return root


def _fam(root, room="Phòng máy 1"):
    r = str(root)
    return InventoryFamily("lab", room, sys_root=os.path.join(r, "sys"),
                           proc_root=os.path.join(r, "proc"), etc_root=os.path.join(r, "etc"),
                           platform_name="linux")


def test_linux_inventory_from_fixture_tree(tree):
    inv = _fam(tree).collect()
    assert inv == {
        "hostname": "pc-lab1-05", "role": "lab", "room": "Phòng máy 1",
        "os_name": "Linux", "os_version": "22.04", "os_edition": "Ubuntu 22.04.4 LTS",
        "os_display": "jammy", "os_build": "5.15.0-101-generic",
        "kernel": "5.15.0-101-generic", "arch": platform.machine(),
        "cpu_model": "Intel(R) Core(TM) i3-10100 CPU @ 3.60GHz",
        "cpu_cores": psutil.cpu_count(logical=False), "cpu_threads": psutil.cpu_count(),
        "ram": 7990260 * 1024, "boot_ts": 1763769600,
        "vendor": "LENOVO", "model": "11DAS0BN00",
        # sorted by model; USB stick, empty card reader and virtual devices left out
        "disks": [
            {"model": "Samsung SSD 970 EVO Plus 250GB", "size": 488397168 * 512,
             "kind": "ssd", "serial": "S4EUNX0N812345K"},
            {"model": "WDC WD5000AAKX-0", "size": 976773168 * 512, "kind": "hdd"},
        ],
        # lo, docker0, veth* and the address-less bond0 left out; link-local IPv6 left out
        "nics": [
            {"if": "eth0", "mac": "7c:57:58:1e:2a:3b", "ipv4": ["10.10.20.57"],
             "ipv6": ["2001:ee0:4f1:1::57"], "speed": 1000, "up": True},
            {"if": "tun0", "ipv4": ["10.8.0.6"], "speed": 10, "up": True},
            {"if": "wlan0", "mac": "a0:80:69:5b:c4:12", "up": False},
        ],
        "gateway": "10.10.20.1",  # the default route with the lowest metric
        "agent": __version__, "python": platform.python_version(),
    }
    msg = envelope("inventory", inv, 3, time.time())
    validate("inventory", msg)


def test_placeholders_and_unreadable_files_are_left_out(tree):
    _write(tree, "sys/class/dmi/id/sys_vendor", "To be filled by O.E.M.\n")
    _write(tree, "sys/class/dmi/id/product_name", "Default string\n")
    _write(tree, "sys/class/dmi/id/product_serial", "System Serial Number\n")
    os.remove(os.path.join(str(tree), "etc/os-release"))
    os.remove(os.path.join(str(tree), "proc/net/route"))
    _write(tree, "proc/cpuinfo", "processor : 0\n")
    inv = _fam(tree, room="").collect()
    for key in ("vendor", "model", "serial", "os_version", "os_edition", "gateway",
                "cpu_model", "room"):
        assert key not in inv, key
    assert inv["os_name"] == "Linux"


def test_serial_is_read_when_readable(tree):
    _write(tree, "sys/class/dmi/id/product_serial", "PC1ABCDE\n")
    assert _fam(tree).collect()["serial"] == "PC1ABCDE"


def test_arm_board_cpu_model(tree):
    _write(tree, "proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 108.00\n\n"
           "Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n")
    assert _fam(tree).collect()["cpu_model"] == "Raspberry Pi 4 Model B Rev 1.4"


def test_empty_roots_never_raise(tmp_path):
    fam = InventoryFamily("office", sys_root=str(tmp_path / "nosys"),
                          proc_root=str(tmp_path / "noproc"), etc_root=str(tmp_path / "noetc"),
                          platform_name="linux")
    inv = fam.collect()
    assert inv["hostname"] == socket.gethostname()
    assert "disks" not in inv
    validate("inventory", envelope("inventory", inv, 1, time.time()))


def test_real_machine_inventory_validates_and_is_stable():
    fam = InventoryFamily("lab", "P1")
    first = fam.collect()
    msg = envelope("inventory", first, 1, time.time())
    validate("inventory", msg)
    assert len(encode(msg)) < 8192
    assert first["os_name"] == ("Windows" if os.name == "nt" else "Linux")
    assert first["cpu_threads"] == psutil.cpu_count()
    assert first["ram"] == psutil.virtual_memory().total
    assert abs(first["boot_ts"] - psutil.boot_time()) <= 1
    # equality is how the core detects a change: two reads in a row are identical
    assert fam.collect() == first


def test_build_families():
    fams = build_families(load_config(None, env={"SCHOOLMON_AGENT_ROOM": "P1"}))
    # router: no router.host
    assert sorted(fams) == ["health", "inventory", "probe", "security", "speedtest"]
    for kind, fam in fams.items():
        if kind == "speedtest":  # a bandwidth test: tests/agent/test_speedtest.py
            continue
        validate(kind, envelope(kind, fam.collect(), 1, time.time()))
    assert fams["inventory"].collect()["room"] == "P1"


def test_linux_never_imports_the_windows_modules():
    """The agent's memory budget: what only Windows needs stays out of a Linux agent."""
    import subprocess
    import sys
    code = ("import sys\n"
            "from schoolmon.agent.families.inventory import InventoryFamily\n"
            "InventoryFamily('lab', platform_name='linux').collect()\n"
            "print(sorted(m for m in sys.modules if m.startswith('schoolmon.agent.windows')"
            " or m.endswith('inventory_windows')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"
