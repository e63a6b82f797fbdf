"""The ``inventory`` family on Linux: files under ``/sys``, ``/proc`` and ``/etc`` (the roots
are parameters so tests point them at fixture trees) plus psutil for the NICs."""
import os
import platform
import re
import socket
import struct
from typing import Any, Dict, List, Optional, Tuple

import psutil

from .netif import if_addrs, if_stats
from .values import clean, disk_key, put, read_text, to_int

# Block devices that are not physical disks (loop = snaps/images, dm/md = layers on top of
# real disks, sr = optical, zram/ram = memory).
_SKIP_BLOCK = ("loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd")
# Linux interfaces that come and go with containers and VMs: listing them would make the
# inventory "change" every time a container starts.
_SKIP_NIC = ("veth", "docker", "br-", "virbr", "vnet", "ifb", "cali", "flannel", "cni")


def collect_linux(sys_root: str, proc_root: str, etc_root: str) -> Dict[str, Any]:
    """The Linux fields of an inventory (the caller adds what every OS has)."""
    out: Dict[str, Any] = {}
    host = read_text(os.path.join(proc_root, "sys/kernel/hostname"))
    if host and host.strip():
        out["hostname"] = host.strip()
    out["os_name"] = "Linux"
    rel = os_release(etc_root)
    put(out, "os_version", rel.get("VERSION_ID"))
    put(out, "os_edition", rel.get("PRETTY_NAME") or rel.get("NAME"))
    put(out, "os_display", rel.get("VERSION_CODENAME"))
    kernel = read_text(os.path.join(proc_root, "sys/kernel/osrelease"))
    kernel = kernel.strip() if kernel else platform.release()
    put(out, "kernel", kernel)
    put(out, "os_build", kernel)
    put(out, "arch", platform.machine())
    meminfo = read_text(os.path.join(proc_root, "meminfo"))
    m = re.search(r"^MemTotal:\s+(\d+)\s*kB", meminfo or "", re.M)
    if m:
        out["ram"] = int(m.group(1)) * 1024
    stat = read_text(os.path.join(proc_root, "stat"))
    m = re.search(r"^btime\s+(\d+)", stat or "", re.M)
    if m:
        out["boot_ts"] = int(m.group(1))
    put(out, "cpu_model", _cpu_model(read_text(os.path.join(proc_root, "cpuinfo"))))
    dmi = os.path.join(sys_root, "class/dmi/id")
    for key, name in (("vendor", "sys_vendor"), ("model", "product_name"),
                      ("serial", "product_serial")):
        put(out, key, clean(read_text(os.path.join(dmi, name))))
    put(out, "disks", _linux_disks(sys_root))
    put(out, "nics", _linux_nics(sys_root))
    put(out, "gateway", _default_gateway(read_text(os.path.join(proc_root, "net/route"))))
    return out


def _linux_nics(sys_root: str) -> List[Dict[str, Any]]:
    try:
        addrs = if_addrs(sys_root)
        stats = if_stats(sys_root)
    except Exception:
        return []
    net_dir = os.path.join(sys_root, "class/net")
    have_sys = os.path.isdir(net_dir)
    nics = []
    for name in sorted(addrs):
        st = stats.get(name)
        flags = getattr(st, "flags", "") or ""
        if name == "lo" or "loopback" in flags.split(",") or name.startswith(_SKIP_NIC):
            continue
        nic = _nic_from_psutil(name, addrs[name], st)
        # virtual interfaces without an address (bonds' slaves, tunnels down) are noise
        physical = not have_sys or os.path.exists(os.path.join(net_dir, name, "device"))
        if not physical and "ipv4" not in nic and "ipv6" not in nic:
            continue
        nics.append(nic)
    return nics


def os_release(etc_root: str) -> Dict[str, str]:
    text = read_text(os.path.join(etc_root, "os-release"))
    if text is None:  # the spec's fallback location
        text = read_text(os.path.join(etc_root, "../usr/lib/os-release")) or ""
    out = {}
    for line in text.splitlines():
        if "=" not in line or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def _cpu_model(cpuinfo: Optional[str]) -> Optional[str]:
    if not cpuinfo:
        return None
    # x86: "model name"; ARM boards: "Model" (Raspberry Pi) or "Hardware"/"Processor"
    for key in ("model name", "Model", "Hardware", "Processor", "cpu model"):
        m = re.search(r"^%s\s*:\s*(.+)$" % re.escape(key), cpuinfo, re.M)
        if m and clean(m.group(1)):
            return clean(m.group(1))
    return None


def _linux_disks(sys_root: str) -> List[Dict[str, Any]]:
    block = os.path.join(sys_root, "block")
    try:
        names = os.listdir(block)
    except OSError:
        return []
    disks = []
    for name in names:
        if name.startswith(_SKIP_BLOCK):
            continue
        base = os.path.join(block, name)
        if (read_text(os.path.join(base, "removable")) or "0").strip() == "1":
            continue  # USB sticks and card readers come and go
        sectors = to_int(read_text(os.path.join(base, "size")))
        if not sectors:  # empty card reader slot, detached device
            continue
        disk: Dict[str, Any] = {"size": sectors * 512}  # sysfs counts 512-byte sectors
        rot = (read_text(os.path.join(base, "queue/rotational")) or "").strip()
        if rot in ("0", "1"):
            disk["kind"] = "hdd" if rot == "1" else "ssd"
        put(disk, "model", clean(read_text(os.path.join(base, "device/model"))))
        put(disk, "serial", clean(read_text(os.path.join(base, "device/serial"))))
        disks.append(disk)
    return sorted(disks, key=disk_key)



def _default_gateway(route: Optional[str]) -> Optional[str]:
    """The default IPv4 route with the lowest metric from /proc/net/route (hex, host
    byte order: little-endian on every PC we meet)."""
    best: Optional[Tuple[int, str]] = None
    for line in (route or "").splitlines()[1:]:
        f = line.split()
        if len(f) < 8 or f[1] != "00000000" or f[7] != "00000000":
            continue
        flags = int(f[3], 16)
        if not flags & 0x1 or not flags & 0x2:  # RTF_UP and RTF_GATEWAY
            continue
        gw = socket.inet_ntoa(struct.pack("<L", int(f[2], 16)))
        metric = int(f[6])
        if best is None or metric < best[0]:
            best = (metric, gw)
    return best[1] if best else None


def _nic_from_psutil(name: str, addrs: Any, st: Any) -> Dict[str, Any]:
    nic: Dict[str, Any] = {"if": name}
    ipv4, ipv6 = set(), set()
    for a in addrs:
        if a.family == psutil.AF_LINK:
            mac = (a.address or "").replace("-", ":").lower()
            if mac and mac != "00:00:00:00:00:00":
                nic["mac"] = mac
        elif a.family == socket.AF_INET:
            ipv4.add(a.address)
        elif a.family == socket.AF_INET6:
            ip = a.address.split("%", 1)[0]
            if not ip.lower().startswith("fe80:"):
                ipv6.add(ip)
    put(nic, "ipv4", sorted(ipv4))
    put(nic, "ipv6", sorted(ipv6))
    if st is not None:
        if st.speed and st.speed > 0:
            nic["speed"] = int(st.speed)
        nic["up"] = bool(st.isup)
    return nic


