"""The seam between ingest and the state store (interface; implemented by the store).

One batch of validated messages goes through ``prepare`` (decide, in memory, what is new,
duplicate or refused, and the tags each new message is stored under), then ``commit`` (one
transaction) with the time-series write running alongside — the transaction commits only
after that write succeeded — then the MQTT acknowledgements. A crash anywhere
before the acknowledgements makes the broker deliver the batch again; because ``prepare``
drops (device, seq) pairs already committed and time-series points are keyed by
(measurement, tags, ts), delivering twice changes nothing.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from schoolmon.protocol import Message


class Received(NamedTuple):
    """A message that passed the wire-format checks, as ingest hands it to the store."""

    message: Message
    #: collector clock when it arrived, Unix epoch seconds (UTC)
    received_at: float
    #: the time to store it under: ``message.ts``, or ``received_at`` when skewed
    ts: float
    #: None, "future" (ts too far ahead) or "too_old" (older than an agent queue holds)
    skew: Optional[str] = None
    #: the payload as received (valid JSON, UTF-8): stored as it is instead of serialising
    #: ``message.payload`` again; None to serialise it
    raw: Optional[bytes] = None


class Accepted(NamedTuple):
    """A new message and the tags its time series are stored under."""

    received: Received
    #: province, area, school, device, role (low cardinality; see docs/timeseries.md)
    tags: Dict[str, str]


class Event(NamedTuple):
    """A state change other parts consume (alerting comes later). Times in UTC epoch s."""

    ts: float
    #: device_registered | device_online | device_offline | school_status | device_moved |
    #: seq_reset | seq_jump (see docs/state-store.md); device_hello: an ``online`` from a
    #: device already online, dispatched only (never stored)
    kind: str
    school: str
    device: Optional[str]
    detail: Dict[str, object]


@dataclass
class Plan:
    accepted: List[Accepted] = field(default_factory=list)
    duplicates: int = 0
    #: refused by the registry: (Received, reason), reason one of protocol.REASONS
    rejected: List[Tuple["Received", str]] = field(default_factory=list)
    #: devices seen for the first time (registered as pending on commit)
    new_devices: List[str] = field(default_factory=list)
    #: sequence numbers found missing in this batch (loss), per device
    gaps: Dict[str, int] = field(default_factory=dict)
    #: late messages that filled an earlier gap (loss reduced by this much), per device
    filled: Dict[str, int] = field(default_factory=dict)
    #: results stored but refused (``link_tests.refused = 'implausible'``), per check
    refused: Dict[str, int] = field(default_factory=dict)
    #: store-private bookkeeping applied by commit()
    private: Dict[str, Any] = field(default_factory=dict)
