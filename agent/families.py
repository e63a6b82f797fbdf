"""The Collector protocol every message family of the agent follows (one method).

A family returns only its own fields (see protocol/catalogue.py); the agent's core adds
the envelope (v, ts, seq), sanitizes against the catalogue and publishes.
"""
from typing import Any, Dict

try:  # Protocol is in typing from 3.8
    from typing import Protocol
except ImportError:  # pragma: no cover
    Protocol = object  # type: ignore


class Family(Protocol):
    #: the MQTT kind this family publishes (``health``, ``inventory``...)
    kind: str

    def collect(self) -> Dict[str, Any]:
        """Measure now and return the family's fields. Must not raise for a missing sensor:
        leave the field out instead."""
        ...


def build_families(role: str, room: str = "", runner: Any = None) -> Dict[str, Family]:
    """The agent's message families by kind; the runtime calls exactly this. ``runner``
    is the command runner Windows inventory uses (a RecordedRunner in tests)."""
    # imported here: psutil is only needed once the agent actually measures
    from .health import HealthFamily
    from .inventory import InventoryFamily

    return {"health": HealthFamily(), "inventory": InventoryFamily(role, room, runner=runner)}
