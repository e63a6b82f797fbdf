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
import ipaddress
import logging
import os
import socket
import struct
import sys
from typing import Any, Callable, Dict, List, NamedTuple, Optional

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
_ARPHRD_LOOPBACK = 772


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
    return linux_link(best[1], best[2], sys_root)


def linux_link(iface: str, gateway: str = "", sys_root: str = "/sys") -> Route:
    """What /sys/class/net/<iface>/ says of an interface: wired or not, its speed."""
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
        elif arp == str(_ARPHRD_LOOPBACK):
            wired = None  # this PC itself: no link at all
        elif arp and arp.isdigit():
            wired = False  # ppp, a modem's raw IP
    speed = _read(os.path.join(net, "speed"))
    mbps = int(speed) if speed and speed.lstrip("-").isdigit() and int(speed) > 0 else None
    return Route(iface, gateway, wired, mbps)


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


# --- the route to one host (the speed test's server) -------------------------------------

def local_address(host: str, port: int) -> Optional[str]:
    """The local address the OS would send from to ``host`` (``ip route get``, on every
    OS): connect() on a UDP socket picks the route and sends nothing. The name was just
    resolved by the test that used it, so getaddrinfo answers from the cache."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        return None
    for family, kind, proto, _, addr in infos:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.connect(addr)
                return str(sock.getsockname()[0]).split("%", 1)[0]
        except OSError:
            continue
    return None


def interface_of(address: str, addrs: Optional[Dict[str, Any]] = None) -> Optional[str]:
    """The interface holding ``address`` (psutil's ``net_if_addrs``)."""
    if addrs is None:
        import psutil

        addrs = psutil.net_if_addrs()
    for name, items in addrs.items():
        for a in items:
            if str(getattr(a, "address", "")).split("%", 1)[0] == address:
                return name
    return None


def route_to(host: str, port: int, runner: Any = None, platform_name: Optional[str] = None,
             default: Optional[Callable[[], Optional[Route]]] = None,
             sys_root: str = "/sys", addrs: Optional[Dict[str, Any]] = None,
             stats: Optional[Dict[str, Any]] = None) -> Optional[Route]:
    """The interface this PC reaches ``host`` through, or None when unknown. A loopback
    target is the loopback interface, neither wired nor not. When it is the default
    route's interface that route's facts are used (Windows: the one PowerShell call);
    otherwise Linux reads /sys, elsewhere psutil's link speed (wired unknown)."""
    platform_name = platform_name or sys.platform
    local = local_address(host, port)
    if not local:
        return None
    try:
        name = interface_of(local, addrs)
    except Exception:  # noqa: BLE001 - psutil missing or failing: the name is unknown
        log.debug("interfaces unknown", exc_info=True)
        name = None
    if name is None:
        return None
    if ipaddress.ip_address(local).is_loopback:
        return Route(name, "", None, None)
    via = (default or (lambda: default_route(runner, platform_name=platform_name)))()
    if via is not None and via.iface == name:
        return via
    if platform_name.startswith("linux"):
        return linux_link(name, "", sys_root)
    try:
        if stats is None:
            import psutil

            stats = psutil.net_if_stats()
        speed = getattr(stats.get(name), "speed", 0) or None
    except Exception:  # noqa: BLE001
        speed = None
    return Route(name, "", None, speed)
