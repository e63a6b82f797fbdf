"""``status``: online / offline (orderly stop or Last Will), the heartbeat interval and the
agent version. Takes no seq of its own (it carries the last one given out); drives the
device's liveness; time series ``status`` (field ``online``)."""
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ..line_protocol import Body
from .spec import CollectorFamily

if TYPE_CHECKING:
    from ..store.devices import DeviceState


def line_bodies(payload: Dict[str, Any], ts: int) -> List[Body]:
    state = payload.get("state")
    if state in ("online", "offline"):
        return [("status", " online=%d %d" % (state == "online", ts))]
    return []


def device_columns(st: "DeviceState", p: Dict[str, Any]) -> None:
    if p.get("hb"):
        st.hb = int(p["hb"])
    if p.get("agent"):
        st.agent = str(p["agent"])[:32]


def reported_state(p: Dict[str, Any]) -> Tuple[bool, Optional[str]]:
    if p["state"] == "online":
        return True, None
    return False, p.get("reason") or "lost"


FAMILY = CollectorFamily("status", sequenced=False, line_bodies=line_bodies,
                         device_columns=device_columns, reported_state=reported_state)
