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
    #: (school, device, seq, payload, ts, received_at) -> [(sink, row tuple)]: rows the
    #: store writes in the batch's transaction besides the device's own (``store/sinks.py``
    #: names the sinks: ``link_tests``, ``link_probe_hours``); None: none
    rows: Optional[Callable[[str, str, int, Payload, float, float],
                            List[Tuple[str, Tuple[Any, ...]]]]] = None
    #: school -> id of the device the message speaks for (``router.{school}``): that device
    #: is registered, takes ``device_columns`` and ``reported_state``, the latest message and
    #: the time series; the sender keeps only the seq bookkeeping. None: the sender itself
    proxy: Optional[Callable[[str], str]] = None


#: A kind without a family of its own: stored as the latest of its kind, nothing more.
PLAIN = CollectorFamily("")
