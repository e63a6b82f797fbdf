"""Retention of the connectivity tables (``link_tests``, ``link_probe_hours``,
``connectivity_school_days``), run by the store's maintenance after the rollups
(``StateStore.maintain``).

Deleted in batches of ``BATCH`` rows, one short transaction each: a first prune on a
store that kept years would otherwise hold SQLite's write lock (and PostgreSQL's row locks
and WAL) for as long as it takes, stalling ingest behind it. Each batch picks the oldest
rows by their key (``LIMIT``), so every statement is bounded; the loop stops when a batch
comes back short, and after ``MAX_BATCHES`` (the rest goes at the next maintenance run).
"""
import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

from sqlalchemy import Engine, delete, select, tuple_
from zoneinfo import ZoneInfo

from .schema import connectivity_school_days, link_probe_hours, link_tests

#: Rows per delete statement.
BATCH = 5000
#: Batches per table and maintenance run (at most 250,000 rows a run, a few seconds).
MAX_BATCHES = 50


@dataclass(frozen=True)
class Keep:
    """Days of each connectivity table kept (``store.*_days``)."""

    #: a school year and more: the yearly report reads a whole school year of tests
    link_tests_days: int = 400
    link_probe_hours_days: int = 90
    connectivity_history_days: int = 730


def prune_connectivity(engine: Engine, keep: Keep, now: Optional[float] = None,
                       timezone: str = "Asia/Ho_Chi_Minh", batch: int = BATCH,
                       max_batches: int = MAX_BATCHES) -> Dict[str, int]:
    """Delete what is past its retention; rows deleted per table."""
    now = time.time() if now is None else now
    t, p, d = link_tests, link_probe_hours, connectivity_school_days
    cut_tests = now - keep.link_tests_days * 86400
    cut_hours = now - keep.link_probe_hours_days * 86400
    # the day column is the province's local date: the first day kept is the local date
    # of the cut
    cut_day = dt.datetime.fromtimestamp(now - keep.connectivity_history_days * 86400,
                                        ZoneInfo(timezone)).date().isoformat()
    jobs: Any = (
        ("pruned_link_tests",
         lambda n: delete(t).where(t.c.id.in_(
             select(t.c.id).where(t.c.ts < cut_tests).order_by(t.c.id).limit(n)
             .scalar_subquery()))),
        ("pruned_probe_hours",
         lambda n: delete(p).where(tuple_(p.c.school_code, p.c.hour_start).in_(
             select(p.c.school_code, p.c.hour_start).where(p.c.hour_start < cut_hours)
             .order_by(p.c.hour_start).limit(n)))),
        ("pruned_school_days",
         lambda n: delete(d).where(tuple_(d.c.school_code, d.c.day).in_(
             select(d.c.school_code, d.c.day).where(d.c.day < cut_day)
             .order_by(d.c.day).limit(n)))),
    )
    out: Dict[str, int] = {}
    for name, statement in jobs:
        out[name] = 0
        for _ in range(max_batches):
            with engine.begin() as conn:
                gone = int(conn.execute(statement(batch)).rowcount or 0)
            out[name] += gone
            if gone < batch:
                break
    return out


__all__ = ["Keep", "prune_connectivity", "BATCH", "MAX_BATCHES"]
