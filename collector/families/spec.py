"""The shape of a collector family (see ``collector/families/__init__.py``)."""
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from ..line_protocol import Body

Payload = Dict[str, Any]


class CollectorFamily(NamedTuple):
    """One kind's behaviour on the collector: module-level functions, no per-message object."""

    kind: str
    #: True: data messages with a seq of their own (duplicates are dropped by (device, seq));
    #: False: the message carries the last seq given out (``status``) and is always taken
    sequenced: bool = True
    #: (payload, ts) -> line bodies for the time series; None: no time series
    line_bodies: Optional[Callable[[Payload, int], List[Body]]] = None
    #: (device state, payload) -> None: sets the device columns this kind carries
    device_columns: Optional[Callable[[Any, Payload], None]] = None
    #: payload -> values of the rollup metrics (``health.ROLLUP_METRICS`` order, None:
    #: not sent); None: the kind feeds no rollup
    rollup_values: Optional[Callable[[Payload], List[Optional[float]]]] = None
    #: payload -> (online, offline reason) when the message says the device's state
    #: (``status``); None: the kind says nothing about it (freshness decides)
    reported_state: Optional[Callable[[Payload], Tuple[bool, Optional[str]]]] = None


#: A kind without a family of its own: stored as the latest of its kind, nothing more.
PLAIN = CollectorFamily("")
