"""Exactly one collector process evaluates (and routes) alerts: a leader lock.

    leader = Leader(engine, "alerting")
    if leader.acquire():      # cheap when already held: one ``SELECT 1`` on its connection
        evaluate(...); route(...)
    leader.release()          # at stop

On PostgreSQL the lock is ``pg_try_advisory_lock`` taken on a dedicated connection and held
as long as that connection lives. Chosen over a lease row with compare-and-set because it
needs no clock: a lease expires by time, and the collectors' clocks (or one clock that
jumps) would decide who leads; the advisory lock is released by the server the moment the
holder's session ends (process killed, connection lost), and no two sessions can hold it.
A leader whose connection broke learns it at its next ``acquire()`` (the ``SELECT 1``
fails) and competes again. On SQLite the store is one file of one process: that process
leads.
"""
import hashlib
import logging
from typing import Optional

from sqlalchemy import Connection, Engine, text

log = logging.getLogger("schoolmon.collector.alerting")


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name`` (PostgreSQL's bigint)."""
    n = int.from_bytes(hashlib.sha256(("schoolmon:" + name).encode()).digest()[:8], "big")
    return n - (1 << 64) if n >= (1 << 63) else n


class Leader:
    """The leader lock ``name`` on ``engine``'s store (see the module's doc)."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.key = lock_key(name)
        self._conn: Optional[Connection] = None

    @property
    def trivial(self) -> bool:
        return self.engine.dialect.name != "postgresql"

    def held(self) -> bool:
        """True while this process holds the lock (as last seen; ``acquire`` checks)."""
        return self.trivial or self._conn is not None

    def acquire(self) -> bool:
        """Take the lock, or confirm it is still held; False when another process holds it."""
        if self.trivial:
            return True
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except Exception:
                log.warning("leader lock %r: its connection was lost; competing again",
                            self.name)
                self._drop()
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                    {"k": self.key}).scalar())
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        log.info("leader lock %r taken", self.name)
        return True

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()  # the session ends: the server frees the lock
            except Exception:
                pass

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self._conn.close()
        except Exception:
            self._drop()
        self._conn = None


__all__ = ["Leader", "lock_key"]
