"""``router``: the school router, polled by one agent of the school. The message speaks for
the device ``router.{school}`` (role ``router``): registered with the first message, online
while the gateway ping or SNMP answers (else offline, reason ``unreachable``), its latest
message and time series ``router`` under it, its WAN rates in its rollups (``rx``/``tx``,
for the device page's WAN chart); the polling agent keeps the seq bookkeeping."""
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ..line_protocol import Body
from .health import ROLLUP_METRICS
from .spec import CollectorFamily

if TYPE_CHECKING:
    from ..store.devices import DeviceState

NUMERIC = ("gw_ms", "uptime_s", "wan_mbps", "rx_bps", "tx_bps", "rx_util_pct", "tx_util_pct")
FLAGS = ("gw_ok", "snmp_ok", "wan_up", "rebooted")
#: hb of a router device until the service sets ``connectivity.router_hb``
DEFAULT_HB = 900


def router_id(school: str) -> str:
    return "router." + school


def line_bodies(p: Dict[str, Any], ts: int) -> List[Body]:
    f = []
    for k in FLAGS:
        v = p.get(k)
        if v is not None:
            f.append("%s=%d" % (k, bool(v)))
    for k in NUMERIC:
        v = p.get(k)
        if v is not None:
            f.append("%s=%r" % (k, float(v)))
    return [("router", " " + ",".join(f) + " %d" % ts)] if f else []


def device_columns(st: "DeviceState", p: Dict[str, Any]) -> None:
    st.role = "router"
    if p.get("name"):
        st.hostname = str(p["name"])[:255]
    os_ = " ".join(str(p[k]) for k in ("model", "firmware") if p.get(k))
    if os_:
        st.os = os_[:255]


def reported_state(p: Dict[str, Any]) -> Tuple[bool, Optional[str]]:
    if p.get("gw_ok") or p.get("snmp_ok"):
        return True, None
    return False, "unreachable"


#: Where the WAN rates go among the rollup metrics: ``rx`` / ``tx`` are bytes per second
#: received / sent (``health.ROLLUP_METRICS``), for a router through its WAN interface.
_RX, _TX = list(ROLLUP_METRICS).index("rx"), list(ROLLUP_METRICS).index("tx")
_BLANK: List[Optional[float]] = [None] * len(ROLLUP_METRICS)


def rollup_values(p: Dict[str, Any]) -> List[Optional[float]]:
    """The router's rollup metrics (``ROLLUP_METRICS`` order): its WAN rates, bit/s as
    polled, kept as bytes/s like every device's rx/tx, so the device page's charts draw
    the router's WAN from the rollups (the time series need not be there). A poll
    without rates (first poll, a reboot, SNMP down) counts with no value."""
    out = list(_BLANK)
    for i, k in ((_RX, "rx_bps"), (_TX, "tx_bps")):
        v = p.get(k)
        if v is not None:
            out[i] = float(v) / 8.0
    return out


FAMILY = CollectorFamily("router", line_bodies=line_bodies, device_columns=device_columns,
                         rollup_values=rollup_values, reported_state=reported_state,
                         proxy=router_id)
