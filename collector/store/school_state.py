"""Per-school state other parts keep between processes (speed-test leases, data budgets
...): one JSON value per (school, key) with a version, changed by compare-and-set so two
collectors never both grant, e.g., the same school's speed-test lease.

    value, version = read(conn, school, key)        # (None, 0) when absent
    new = compare_and_set(conn, school, key, value, version)   # None: someone was first
"""
import time
from typing import Any, NamedTuple, Optional

from sqlalchemy import Connection, select, update

from .schema import dialect_insert, school_state

#: The version of an entry that does not exist yet.
ABSENT = 0


class SchoolState(NamedTuple):
    value: Any
    #: +1 on every write; ABSENT (0) when there is no entry
    version: int


def read(conn: Connection, school: str, key: str) -> SchoolState:
    """The entry (value, version); (None, ABSENT) when there is none."""
    row = conn.execute(select(school_state.c.value, school_state.c.rev).where(
        school_state.c.school_code == school, school_state.c.key == key)).first()
    return SchoolState(row.value, int(row.rev)) if row else SchoolState(None, ABSENT)


def compare_and_set(conn: Connection, school: str, key: str, value: Any,
                    version: int) -> Optional[int]:
    """Store ``value`` if the entry still has ``version`` (ABSENT: must not exist yet);
    returns the new version, or None when another writer changed it first (read again)."""
    now = time.time()
    if version == ABSENT:
        ins = dialect_insert(conn, school_state).values(
            school_code=school, key=key, value=value, updated_at=now, rev=1)
        got = conn.execute(ins.on_conflict_do_nothing(index_elements=["school_code", "key"])
                           .returning(school_state.c.rev)).first()
        return 1 if got is not None else None
    res = conn.execute(update(school_state).where(
        school_state.c.school_code == school, school_state.c.key == key,
        school_state.c.rev == version).values(value=value, updated_at=now, rev=version + 1))
    return version + 1 if res.rowcount == 1 else None


def write(conn: Connection, school: str, key: str, value: Any) -> int:
    """Store ``value`` whatever the entry holds (last writer wins); returns the new version."""
    now = time.time()
    ins = dialect_insert(conn, school_state).values(
        school_code=school, key=key, value=value, updated_at=now, rev=1)
    conn.execute(ins.on_conflict_do_update(
        index_elements=["school_code", "key"],
        set_={"value": ins.excluded.value, "updated_at": now, "rev": school_state.c.rev + 1}))
    return read(conn, school, key).version


__all__ = ["SchoolState", "ABSENT", "read", "compare_and_set", "write"]
