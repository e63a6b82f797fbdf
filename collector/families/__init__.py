"""What the collector does with each message kind, looked up by kind.

One module per kind (``health.py``, ``status.py``, ``inventory.py``) declares a
``CollectorFamily``: its line-protocol bodies, the device columns it updates, its rollup
values, whether it takes a seq of its own and whether it reports the device's state. The
store's ``prepare`` and the time-series builder read ``FAMILIES``; neither holds a branch
for a particular kind. A kind without an entry (``security`` ... until it gets
one) is kept as the device's latest message of that kind and nothing more: ``PLAIN``.

Adding a family: a module here with its spec, one entry in ``FAMILIES`` (see
docs/state-store.md, "Adding a message family on the collector").
"""
from typing import Dict

from . import health, inventory, probe, router, speedtest, status
from .spec import PLAIN, CollectorFamily, Payload

#: kind -> what the collector does with it.
FAMILIES: Dict[str, CollectorFamily] = {f.kind: f for f in (
    health.FAMILY, status.FAMILY, inventory.FAMILY, probe.FAMILY, speedtest.FAMILY,
    router.FAMILY)}


def family(kind: str) -> CollectorFamily:
    """The family of ``kind`` (``PLAIN`` for a kind without one)."""
    return FAMILIES.get(kind, PLAIN)


__all__ = ["CollectorFamily", "FAMILIES", "PLAIN", "family", "Payload"]
