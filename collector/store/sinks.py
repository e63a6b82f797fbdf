"""Rows a family adds to a batch besides the device's own (``CollectorFamily.rows``), by
sink name, written by ``StateStore.commit`` in the batch's transaction with one bulk
statement per sink:

- ``link_tests``: one row per speed test, ``LINK_TEST_COLS`` order; a (device, seq) stored
  before stores nothing (``ON CONFLICT DO NOTHING``).
- ``link_probe_hours``: counts per (school, UTC hour), ``PROBE_HOUR_COLS`` order; the rows of
  a batch are summed in memory first (one row per school-hour), then added to the stored
  row (``ON CONFLICT DO UPDATE SET n = n + excluded.n ...``, SQLite and PostgreSQL alike).
- ``implausible``: not a table: (check,) counted in ``Plan.refused`` for the metric
  ``schoolmon_link_tests_implausible_total``.
"""
from typing import Any, Dict, List, Tuple

from sqlalchemy import Engine

from .bulk import BulkStatement
from .schema import dialect_insert, link_probe_hours, link_tests

LINK_TEST_COLS = ("school_code", "device_id", "seq", "ts", "received_at", "lease", "ok",
                  "reason", "trigger", "mode", "down_mbps", "up_mbps", "ping_ms", "jitter_ms",
                  "bytes_rx", "bytes_tx", "server", "isp", "wired", "refused")
PROBE_HOUR_COLS = ("school_code", "hour_start", "n") + tuple(
    t + s for t in ("gw", "dns", "dom", "intl") for s in ("_n", "_ok", "_ms"))
#: The sinks whose rows are summed per key (the first ``k`` columns) before writing.
SUMMED = {"link_probe_hours": 2}
#: Sinks that are counts for ``Plan.refused``, not tables.
COUNTED = ("implausible",)


class Sinks:
    """The compiled statements of the sinks, for one engine."""

    def __init__(self, engine: Engine) -> None:
        ins = dialect_insert(engine, link_tests)
        self.statements: Dict[str, BulkStatement] = {
            "link_tests": BulkStatement(ins.values({c: None for c in LINK_TEST_COLS})
                                        .on_conflict_do_nothing(
                                            index_elements=["device_id", "seq"]),
                                        engine, link_tests)}
        ins = dialect_insert(engine, link_probe_hours)
        t = link_probe_hours.c
        self.statements["link_probe_hours"] = BulkStatement(
            ins.values({c: None for c in PROBE_HOUR_COLS}).on_conflict_do_update(
                index_elements=["school_code", "hour_start"],
                set_={c: t[c] + ins.excluded[c] for c in PROBE_HOUR_COLS[2:]}),
            engine, link_probe_hours)
        for name, cols in (("link_tests", LINK_TEST_COLS),
                           ("link_probe_hours", PROBE_HOUR_COLS)):
            # the rows are tuples in COLS order: the compiled statement must agree
            if tuple(self.statements[name].keys) != cols:  # pragma: no cover
                raise RuntimeError("sink %s: columns %r" % (name, self.statements[name].keys))

    def write(self, conn: Any, rows: Dict[str, List[Tuple[Any, ...]]]) -> None:
        for name, got in rows.items():
            st = self.statements.get(name)
            if st is not None and got:
                st.run_tuples(conn, got)


def add_row(acc: Dict[str, Any], sink: str, row: Tuple[Any, ...]) -> None:
    """Collect one row of ``sink`` into ``acc`` (summing the summed sinks by key)."""
    k = SUMMED.get(sink)
    if k is None:
        acc.setdefault(sink, []).append(row)
        return
    keyed = acc.setdefault(sink, {})
    key = row[:k]
    cur = keyed.get(key)
    if cur is None:
        keyed[key] = list(row)
    else:
        for i in range(k, len(row)):
            cur[i] += row[i]


def finish(acc: Dict[str, Any]) -> Dict[str, List[Tuple[Any, ...]]]:
    """The rows to write, per sink (summed sinks: one row per key)."""
    out: Dict[str, List[Tuple[Any, ...]]] = {}
    for sink, got in acc.items():
        if sink in COUNTED:
            continue
        out[sink] = [tuple(r) for r in got.values()] if isinstance(got, dict) else got
    return out
