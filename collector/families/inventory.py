"""``inventory``: what the device is. Sets the device's role, room, host name, OS summary
and agent version; no time series, no rollup."""
from typing import TYPE_CHECKING, Any, Dict, List

from .spec import CollectorFamily

if TYPE_CHECKING:
    from ..store.devices import DeviceState


def os_summary(p: Dict[str, Any]) -> str:
    """E.g. "Windows 10 Pro 22H2", "Ubuntu 20.04.6 LTS": the OS fields without repeating one
    inside another. On Linux the distribution's own name (os-release PRETTY_NAME, the
    edition) says it all: "Linux 20.04" is left out when the edition holds the version."""
    name, edition = p.get("os_name"), p.get("os_edition")
    if edition and str(name or "").lower() == "linux":
        parts = [edition, p.get("os_version"), p.get("os_display")]
    else:
        parts = [name, p.get("os_version"), edition, p.get("os_display")]
    out: List[str] = []
    for x in parts:
        if not x:
            continue
        x = str(x)
        if any(x in o for o in out):
            continue
        # a part inside this one ("OpenWrt" in "OpenWrt 21.02") gives way to it
        out = [o for o in out if o not in x] + [x]
    return " ".join(out)[:255]


def device_columns(st: "DeviceState", p: Dict[str, Any]) -> None:
    st.role = p.get("role") or st.role
    st.room = p.get("room") or st.room
    st.hostname = p.get("hostname") or st.hostname
    st.os = os_summary(p) or st.os
    st.agent = p.get("agent") or st.agent


FAMILY = CollectorFamily("inventory", device_columns=device_columns)
