"""Per-interface state and addresses that survive an interface name that is not UTF-8.

psutil.net_if_stats() encodes every name strictly and psutil.net_if_addrs() decodes them
strictly: one interface named with a byte that is not UTF-8 (Python's own functions hand
it over as a lone surrogate, ``'eth\\udcff'``) makes them raise for all interfaces. On
Linux the same facts are read here per name (sysfs, /proc/net/if_inet6, one ioctl for the
IPv4 address); the names stay as Python gives them and become valid text where every
message is built (agent/message.py)."""
import os
import socket
import struct
import sys
from typing import Any, Dict, List, NamedTuple, Optional

import psutil

# <linux/if.h> flag bits, named as psutil names them
_FLAGS = ((0x1, "up"), (0x2, "broadcast"), (0x8, "loopback"), (0x10, "pointopoint"),
          (0x40, "running"), (0x1000, "multicast"))


class IfStats(NamedTuple):
    """The fields of psutil's snicstats the families read."""
    isup: bool
    duplex: int
    speed: int
    mtu: int
    flags: str


def if_stats(sys_root: str = "/sys") -> Dict[str, IfStats]:
    """psutil.net_if_stats(), or on Linux when that fails on a name, the same from sysfs."""
    try:
        return {name: IfStats(s.isup, int(s.duplex), s.speed, s.mtu, getattr(s, "flags", ""))
                for name, s in psutil.net_if_stats().items()}
    except UnicodeError:
        if not sys.platform.startswith("linux"):
            return {}
        return _sysfs_stats(os.path.join(sys_root, "class/net"))


def _sysfs_stats(net_dir: str) -> Dict[str, IfStats]:
    try:
        names = os.listdir(net_dir)
    except OSError:
        return {}
    out = {}
    for name in names:
        bits = _read_int(os.path.join(net_dir, name, "flags"), 16)
        if bits is None:
            continue
        # sysfs flags lack IFF_RUNNING: the kernel derives it from the carrier, as here
        # (psutil calls an interface up when it is running)
        running = bool(bits & 0x1) and _read_int(os.path.join(net_dir, name, "carrier"),
                                                 10) == 1
        flags = ",".join(word for bit, word in _FLAGS
                         if bits & bit or (bit == 0x40 and running))
        speed = _read_int(os.path.join(net_dir, name, "speed"), 10) or 0
        mtu = _read_int(os.path.join(net_dir, name, "mtu"), 10) or 0
        out[name] = IfStats(running, 0, max(speed, 0), mtu, flags)
    return out


def _read_int(path: str, base: int) -> Optional[int]:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return int(fh.read().strip(), base)
    except (OSError, ValueError):  # speed of a link without carrier: EINVAL
        return None


class IfAddr(NamedTuple):
    """The fields of psutil's snicaddr the families read."""
    family: int
    address: str
    netmask: Optional[str] = None
    broadcast: Optional[str] = None
    ptp: Optional[str] = None


def if_addrs(sys_root: str = "/sys", proc_root: str = "/proc") -> Dict[str, List[Any]]:
    """psutil.net_if_addrs(), or on Linux when that fails on a name, the MAC from sysfs,
    the IPv6 addresses from /proc/net/if_inet6 and the (primary) IPv4 address by ioctl."""
    try:
        return dict(psutil.net_if_addrs())
    except UnicodeError:
        if not sys.platform.startswith("linux"):
            return {}
    net_dir = os.path.join(sys_root, "class/net")
    try:
        names = os.listdir(net_dir)
    except OSError:
        return {}
    out: Dict[str, List[Any]] = {name: [] for name in names}
    for name in names:
        try:
            with open(os.path.join(net_dir, name, "address"), encoding="ascii") as fh:
                mac = fh.read().strip()
            if mac:
                out[name].append(IfAddr(psutil.AF_LINK, mac))
        except (OSError, ValueError):
            pass
        ipv4 = _ipv4_of(name)
        if ipv4:
            out[name].append(IfAddr(socket.AF_INET, ipv4))
    try:
        with open(os.path.join(proc_root, "net/if_inet6"), "rb") as fh:
            for line in fh:
                f = line.split()
                name = os.fsdecode(f[5]) if len(f) >= 6 else ""
                if name in out and len(f[0]) == 32:
                    packed = bytes.fromhex(f[0].decode("ascii"))
                    out[name].append(IfAddr(socket.AF_INET6,
                                            socket.inet_ntop(socket.AF_INET6, packed)))
    except (OSError, ValueError):
        pass
    return out


def _ipv4_of(name: str) -> Optional[str]:
    import fcntl  # Linux only

    SIOCGIFADDR = 0x8915
    raw = os.fsencode(name)[:15]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            res = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", raw))
    except OSError:  # no IPv4 address (EADDRNOTAVAIL)
        return None
    return socket.inet_ntoa(res[20:24])
