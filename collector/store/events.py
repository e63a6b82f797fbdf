"""Events: state changes other parts consume (alerting comes later), kept in ``events``.

Kinds: device_registered | device_online | device_offline | device_moved | seq_reset |
seq_jump | school_status | attt_status_changed (see docs/state-store.md).

``device_hello`` (an ``online`` status from a device already online) is dispatched to the
service's callbacks but never stored here: it is no change of state.
"""
from typing import Sequence

from sqlalchemy import Connection

from ..state import Event
from .schema import events


def insert_events(conn: Connection, evs: Sequence[Event]) -> None:
    if evs:
        conn.execute(events.insert(), [{"ts": e.ts, "kind": e.kind, "school": e.school,
                                        "device": e.device, "detail": e.detail}
                                       for e in evs])
