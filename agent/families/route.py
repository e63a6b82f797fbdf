"""The default route: which interface this PC reaches the Internet through, its gateway,
whether it is wired, and its link speed. The probe reports it with every probe; the speed
test with every test (a Wi-Fi or 3G link explains a slow result).

Linux: /proc/net/route (the lowest-metric default route) and /sys/class/net/<if>/
(``wireless``/``phy80211`` or DEVTYPE wlan/wwan: not wired; ``speed`` in Mbit/s). Windows:
one PowerShell call through agent/windows/cim.py: MSFT_NetRoute / MSFT_NetIPInterface /
MSFT_NetAdapter (Windows 8+, root/StandardCimv2), else Win32_IP4RouteTable /
Win32_NetworkAdapter with MSNdis_PhysicalMediumType (Windows 7). The medium is a number,
not a localised name, so a Vietnamese Windows answers as an English one.
"""
import logging
import os
import socket
import struct
import sys
from typing import Any, Dict, List, NamedTuple, Optional

from ..windows.cim import CimReader, Query, as_list

log = logging.getLogger(__name__)


class Route(NamedTuple):
    #: interface name (``if`` in the messages; a Python keyword here)
    iface: str
    gateway: str
    #: None: the OS does not say
    wired: Optional[bool]
    link_mbps: Optional[int]

    def fields(self) -> Dict[str, Any]:
        """The catalogue's ``if``/``wired``/``link_mbps`` (probe and speedtest)."""
        out: Dict[str, Any] = {"if": self.iface}
        if self.wired is not None:
            out["wired"] = self.wired
        if self.link_mbps:
            out["link_mbps"] = self.link_mbps
        return out


_RTF_UP, _RTF_GATEWAY = 0x1, 0x2
# ARPHRD_ETHER; ppp (512), raw IP of a wwan modem (519) and tunnels are not wired Ethernet
_ARPHRD_ETHER = 1


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:  # speed of a link without carrier: EINVAL
        return None


def linux_route(proc_root: str = "/proc", sys_root: str = "/sys") -> Optional[Route]:
    text = _read(os.path.join(proc_root, "net", "route"))
    if not text:
        return None
    best = None
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8:
            continue
        try:
            dest, gw, flags, metric, mask = (int(cols[1], 16), int(cols[2], 16),
                                             int(cols[3], 16), int(cols[6]), int(cols[7], 16))
        except ValueError:
            continue
        if dest or mask or not flags & _RTF_UP:
            continue
        if best is None or metric < best[0]:
            # the kernel writes the address in host byte order (little-endian on x86/ARM)
            gateway = socket.inet_ntoa(struct.pack("<I", gw)) if flags & _RTF_GATEWAY else ""
            best = (metric, cols[0], gateway)
    if best is None:
        return None
    iface = best[1]
    net = os.path.join(sys_root, "class", "net", iface)
    uevent = _read(os.path.join(net, "uevent")) or ""
    devtype = ""
    for line in uevent.splitlines():
        if line.startswith("DEVTYPE="):
            devtype = line[8:]
    wired: Optional[bool] = None
    if (os.path.isdir(os.path.join(net, "wireless")) or os.path.exists(os.path.join(
            net, "phy80211")) or devtype in ("wlan", "wwan")):
        wired = False
    else:
        arp = _read(os.path.join(net, "type"))
        if arp == str(_ARPHRD_ETHER):
            # backed by a device: a NIC; a bridge or veth says nothing about the link
            wired = True if os.path.exists(os.path.join(net, "device")) else None
        elif arp and arp.isdigit():
            wired = False  # ppp, a modem's raw IP
    speed = _read(os.path.join(net, "speed"))
    mbps = int(speed) if speed and speed.lstrip("-").isdigit() and int(speed) > 0 else None
    return Route(iface, best[2], wired, mbps)


# NDIS_PHYSICAL_MEDIUM: 14 = 802.3 (Ethernet); 1 = wireless LAN, 9 = native 802.11,
# 8 = wireless WAN (3G/4G mobile broadband); 0 = unspecified (virtual, RNDIS modems)
_WIRED_MEDIUM = {14: True, 1: False, 8: False, 9: False, 10: False, 12: False}

ROUTE = CimReader("route", (
    Query("route", "MSFT_NetRoute", ("InterfaceIndex", "InterfaceAlias", "NextHop",
                                     "RouteMetric"),
          namespace="root/StandardCimv2", where="DestinationPrefix='0.0.0.0/0'"),
    Query("ipif", "MSFT_NetIPInterface", ("InterfaceIndex", "InterfaceMetric"),
          namespace="root/StandardCimv2", where="AddressFamily=2"),
    Query("adapter", "MSFT_NetAdapter", ("InterfaceIndex", "Name", "InterfaceDescription",
                                         "NdisPhysicalMedium", "Speed"),
          namespace="root/StandardCimv2"),
    # Windows 7 (no root/StandardCimv2)
    Query("route7", "Win32_IP4RouteTable", ("InterfaceIndex", "NextHop", "Metric1"),
          where="Destination='0.0.0.0'"),
    Query("nic7", "Win32_NetworkAdapter", ("InterfaceIndex", "NetConnectionID", "Name",
                                           "Speed"), where="NetEnabled=true"),
    Query("medium7", "MSNdis_PhysicalMediumType", ("InstanceName", "NdisPhysicalMediumType"),
          namespace="root/wmi"),
), timeout=30.0)


def _int(value: Any) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def windows_route(doc: Dict[str, Any]) -> Optional[Route]:
    """The answer of ROUTE's scripts → the default route (or None: no default route)."""
    metrics = {_int(i.get("InterfaceIndex")): _int(i.get("InterfaceMetric")) or 0
               for i in as_list(doc.get("ipif"))}
    routes: List[Any] = []
    for r in as_list(doc.get("route")):  # Windows 8+: route metric + interface metric
        idx = _int(r.get("InterfaceIndex"))
        routes.append(((_int(r.get("RouteMetric")) or 0) + metrics.get(idx, 0), idx,
                       r.get("NextHop") or "", r.get("InterfaceAlias") or ""))
    for r in as_list(doc.get("route7")):  # Windows 7: Metric1 already includes both
        routes.append((_int(r.get("Metric1")) or 0, _int(r.get("InterfaceIndex")),
                       r.get("NextHop") or "", ""))
    if not routes:
        return None
    _, idx, gateway, alias = min(routes, key=lambda r: r[0])
    if gateway in ("0.0.0.0", "::"):
        gateway = ""  # on-link (a PPP dial-up link has no next hop)
    for a in as_list(doc.get("adapter")):
        if _int(a.get("InterfaceIndex")) == idx:
            medium = _int(a.get("NdisPhysicalMedium"))
            bps = _int(a.get("Speed"))
            return Route(a.get("Name") or alias, gateway, _WIRED_MEDIUM.get(medium or 0),
                         bps // 10 ** 6 if bps else None)
    for n in as_list(doc.get("nic7")):
        if _int(n.get("InterfaceIndex")) == idx:
            wired = None
            for m in as_list(doc.get("medium7")):
                if m.get("InstanceName") == n.get("Name"):
                    wired = _WIRED_MEDIUM.get(_int(m.get("NdisPhysicalMediumType")) or 0)
            bps = _int(n.get("Speed"))
            # Win32_NetworkAdapter.Speed of a disconnected or virtual adapter is 2^63-1
            mbps = bps // 10 ** 6 if bps and bps < 10 ** 13 else None
            return Route(n.get("NetConnectionID") or n.get("Name") or alias, gateway, wired,
                         mbps)
    # a route without an adapter (a dial-up PPP link is hidden from both): name only
    return Route(alias, gateway, None, None)


def default_route(runner: Any = None, proc_root: str = "/proc", sys_root: str = "/sys",
                  platform_name: Optional[str] = None) -> Optional[Route]:
    """The default route now, or None when there is none (or the OS would not say)."""
    platform_name = platform_name or sys.platform
    if platform_name.startswith("win"):
        if runner is None:
            from ..runner import SubprocessRunner

            runner = SubprocessRunner()
        doc = ROUTE.read(runner)
        return windows_route(doc) if doc else None
    if platform_name.startswith("linux"):
        return linux_route(proc_root, sys_root)
    return None
