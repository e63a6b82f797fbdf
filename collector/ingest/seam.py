"""What ingest needs from the parts it writes to: the seam as typing Protocols (the flow
itself is described in ``collector/state.py``). The state store, the time-series writers
and the test fakes satisfy them structurally; nothing inherits from them."""
import threading
from typing import Callable, List, Optional, Protocol, Sequence

from sqlalchemy import Engine

from ..state import Event, Plan, Received


class Store(Protocol):
    """The state store as ingest uses it."""

    def prepare(self, batch: List[Received]) -> Plan:
        """Decide, in memory, what in ``batch`` is new, duplicate or refused."""

    def commit(self, plan: Plan, before_commit: Optional[Callable[[], None]] = None
               ) -> Optional[List[Event]]:
        """Write ``plan`` in one transaction; call ``before_commit()`` last, before the
        transaction commits, and commit nothing if it raises."""


class StoreWithEngine(Store, Protocol):
    """A store whose database also holds the dead letters (the real StateStore)."""

    engine: Engine


class TimeSeries(Protocol):
    """A time-series writer (InfluxTimeSeries, NullTimeSeries)."""

    enabled: bool

    def write_lines(self, lines: Sequence[str], stop: Optional[threading.Event] = None) -> int:
        """Write every line, retrying outages until ``stop``; raise TimeSeriesRefused for
        lines refused for what they are, TimeSeriesUnavailable when stopped."""

    def ready(self) -> Optional[bool]:
        """Whether the server answers (None: not configured)."""

    def close(self) -> None: ...
