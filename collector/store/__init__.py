"""The collector's state store (SQLite or PostgreSQL), by concern:

- ``schema``: tables and engine set-up; ``migrate``: Alembic revisions (``migrations/``);
- ``bulk``: statements run over many rows at once;
- ``devices``: one device's row in memory and the (device, seq) rules;
- ``writer``: ``StateStore`` — prepare (decide in memory) and commit (one transaction);
- ``liveness``: online/offline, the sweep, ``school_status``;
- ``rollups``: 5-minute and hourly rollups, retention (``maintain``);
- ``events``: state changes other parts consume;
- ``registry``: organisation units, schools, device approval;
- ``school_state``: per-school compare-and-set state (leases, budgets);
- ``schools_import``: the CSV/XLSX school file.

What a message kind means comes from ``collector/families``. See docs/state-store.md.
"""
from .devices import MAX_JUMP, MAX_MISSING_RANGES, DeviceState
from .liveness import school_status
from .writer import SCHOOL_REFRESH, StateStore

__all__ = ["StateStore", "DeviceState", "school_status", "MAX_JUMP", "MAX_MISSING_RANGES",
           "SCHOOL_REFRESH"]
