"""The bounded on-disk store-and-forward queue, and the ``seq`` counter.

Every data message is put here first, takes the next ``seq`` as it is queued, and is
deleted only when the broker acknowledged it (PUBACK). The transport replays what is
left, in ``seq`` order, after every (re)connect; so a message is lost only when the queue
itself has to drop it, and every such drop is counted (``q_drop``, persisted).

Storage: one SQLite file (stdlib, atomic transactions, detects corruption) in
``queue.dir``, plus a tiny state file (``state.json``, written atomically by rename)
mirroring the last ``seq`` given out, the drop count and the number of queued messages.
The counter therefore survives a restart *and* a corrupted queue file: on start the
agent takes the highest ``seq`` either of them knows.

Bounds: ``max_bytes`` of messages (topic + payload) and ``max_age`` seconds; the oldest
go first. Faults never stop the agent:

- corrupted file (at start or while running): logged, moved aside
  (``queue.db.corrupt-<time>``), a new queue is started; what it held is counted as
  dropped;
- disk full (SQLite FULL, ENOSPC): the oldest messages are dropped (counted), the file
  gives the space back to the file system (incremental vacuum) and the write is retried;
  if even an empty queue file cannot take the message, the queue goes on in memory until
  the next start (a message is dropped and counted only if memory cannot take it);
- a queue that cannot be opened at all, a full disk at start included: an in-memory queue
  until the next start; the state file is retried with every message, so the agent
  starts and reports whatever the disk does.

Thread safety: one lock around the connection (the runtime puts, the transport reads
and acknowledges).
"""
import errno
import json
import logging
import os
import sqlite3
import threading
import time
from typing import Callable, List, NamedTuple, Optional, Sequence

from .files import write_atomic

log = logging.getLogger("schoolmon.agent.spool")

DB_NAME = "queue.db"
STATE_NAME = "state.json"


class Row(NamedTuple):
    seq: int
    topic: str
    payload: bytes
    retain: bool


class _Full(Exception):
    """The file system (or SQLite) ran out of space."""


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "full" in text or "no space" in text
    return False


class Spool:
    def __init__(self, folder: str, max_bytes: int = 20 * 1024 * 1024,
                 max_age: float = 7 * 86400.0, clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.clock = clock
        self.db_path = os.path.join(folder, DB_NAME)
        self.state_path = os.path.join(folder, STATE_NAME)
        self._lock = threading.RLock()
        self._db: Optional[sqlite3.Connection] = None
        self._memory = False
        self.seq = 0          # last seq given out
        self.dropped = 0      # q_drop
        self.count = 0        # messages waiting
        self.bytes = 0        # their bytes (topic + payload)
        self.corruptions = 0  # files moved aside since this process started
        self._open()

    # --- opening and recovering -----------------------------------------------------

    def _open(self) -> None:
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as exc:
            log.error("queue folder %s cannot be created (%s): keeping the queue in memory "
                      "until the next start", self.folder, exc)
        state = self._read_state()
        self.seq = max(self.seq, int(state.get("seq", 0)))
        self.dropped = max(self.dropped, int(state.get("q_drop", 0)))
        try:
            self._connect(self.db_path)
        except sqlite3.DatabaseError as exc:
            if _is_full(exc):
                self._fallback_memory(exc)
            else:
                self._move_aside(exc, lost=int(state.get("pending", 0)))
                try:
                    self._connect(self.db_path)
                except (sqlite3.DatabaseError, OSError) as exc2:
                    self._fallback_memory(exc2)
        except OSError as exc:
            self._fallback_memory(exc)
        # A full disk must not stop the agent from starting (a service manager restarting
        # it would loop): the state file is written again with every message.
        self._safe_state()

    def _connect(self, path: str) -> None:
        db = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
        try:
            # PERSIST keeps the journal file's blocks allocated between transactions, so
            # a full disk still leaves room to delete old rows.
            db.execute("PRAGMA journal_mode=PERSIST").fetchall()
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            check = db.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise sqlite3.DatabaseError("quick_check: %s" % (check[0] if check else "?"))
            db.execute("CREATE TABLE IF NOT EXISTS msgs (seq INTEGER PRIMARY KEY, "
                       "topic TEXT NOT NULL, payload BLOB NOT NULL, retain INTEGER NOT NULL, "
                       "queued REAL NOT NULL, size INTEGER NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER)")
            meta = dict(db.execute("SELECT k, v FROM meta").fetchall())
            top = db.execute("SELECT MAX(seq) FROM msgs").fetchone()[0] or 0
        except BaseException:
            db.close()
            raise
        self._db = db
        self.seq = max(self.seq, int(meta.get("seq", 0)), int(top))
        self.dropped = max(self.dropped, int(meta.get("q_drop", 0)))
        self._recount()

    def _fallback_memory(self, exc: BaseException) -> None:
        log.error("queue %s cannot be opened (%s): keeping the queue in memory until the "
                  "next start", self.db_path, exc)
        self._memory = True
        self._connect(":memory:")

    def _move_aside(self, exc: BaseException, lost: int) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = "%s.corrupt-%s" % (self.db_path, stamp)
        log.error("queue file %s is corrupted (%s): moved aside to %s, starting a new queue "
                  "(%d queued messages counted as dropped)", self.db_path, exc, target, lost)
        self.corruptions += 1
        self.dropped += lost
        for suffix in ("", "-journal", "-wal", "-shm"):
            src = self.db_path + suffix
            if os.path.exists(src):
                try:
                    os.replace(src, target + suffix)
                except OSError:
                    try:
                        os.unlink(src)
                    except OSError as exc2:
                        log.error("cannot remove %s: %s", src, exc2)

    def _recover(self, exc: BaseException) -> None:
        """The open file turned out corrupted while running."""
        lost = self.count
        self._close_db()
        if self._memory:
            log.error("in-memory queue failed (%s): starting it again", exc)
            self.dropped += lost
            self._connect(":memory:")
        else:
            self._move_aside(exc, lost)
            try:
                self._connect(self.db_path)
            except (sqlite3.DatabaseError, OSError) as exc2:
                self._fallback_memory(exc2)
        self.count = self.bytes = 0
        self._recount()
        self._write_state()

    # --- the state file ---------------------------------------------------------------

    def _read_state(self) -> dict:
        try:
            with open(self.state_path, encoding="utf-8") as fh:
                data = json.load(fh)
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("queue state file %s unreadable (%s): using the queue's own "
                        "counters", self.state_path, exc)
            return {}

    def _write_state(self) -> bool:
        data = json.dumps({"seq": self.seq, "q_drop": self.dropped, "pending": self.count})
        try:
            write_atomic(self.state_path, data)
            return True
        except OSError as exc:
            if _is_full(exc):
                raise _Full(str(exc)) from None
            log.warning("cannot write %s: %s", self.state_path, exc)
            return False

    # --- bookkeeping ------------------------------------------------------------------

    def _recount(self) -> None:
        assert self._db is not None
        n, b = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM msgs").fetchone()
        self.count, self.bytes = int(n), int(b)

    def _save_meta(self) -> None:
        assert self._db is not None
        self._db.executemany("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)",
                             (("seq", self.seq), ("q_drop", self.dropped)))

    def _drop_oldest(self, n: int, why: str, disk_full: bool = False) -> int:
        """Delete the n oldest messages (counted as dropped) and give the space back.
        On a full disk the rollback journal itself has no room to grow: that one delete
        runs with the journal in memory (a crash during it could corrupt the file, which
        the next start detects and moves aside)."""
        assert self._db is not None
        rows = self._db.execute("SELECT seq FROM msgs ORDER BY seq LIMIT ?", (n,)).fetchall()
        if not rows:
            return 0
        if disk_full:
            self._db.execute("PRAGMA journal_mode=MEMORY").fetchall()
            try:
                return self._drop_rows(rows, why)
            finally:
                try:
                    self._db.execute("PRAGMA journal_mode=PERSIST").fetchall()
                except sqlite3.Error:
                    pass
        return self._drop_rows(rows, why)

    def _drop_rows(self, rows: list, why: str) -> int:
        assert self._db is not None
        last = rows[-1][0]
        before = self.dropped
        self._db.execute("BEGIN IMMEDIATE")
        try:
            n, b = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM msgs "
                                    "WHERE seq <= ?", (last,)).fetchone()
            self._db.execute("DELETE FROM msgs WHERE seq <= ?", (last,))
            self.dropped += len(rows)
            self._save_meta()
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            self.dropped = before
            raise
        self.count -= int(n)
        self.bytes -= int(b)
        try:
            self._db.execute("PRAGMA incremental_vacuum").fetchall()
        except sqlite3.Error:
            pass
        log.warning("queue: dropped the %d oldest message(s) (%s); %d dropped in all",
                    len(rows), why, self.dropped)
        return len(rows)

    def _rollback(self) -> None:
        try:
            assert self._db is not None
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _enforce_bounds(self) -> None:
        assert self._db is not None
        cutoff = self.clock() - self.max_age
        oldest = self._db.execute("SELECT queued FROM msgs ORDER BY seq LIMIT 1").fetchone()
        # Rows are queued in seq order, so only look further when the oldest is too old.
        old = 0
        if oldest is not None and oldest[0] < cutoff:
            old = self._db.execute("SELECT COUNT(*) FROM msgs WHERE queued < ?",
                                   (cutoff,)).fetchone()[0]
        if old:
            self._drop_oldest(old, "older than %.0f days" % (self.max_age / 86400))
        if self.bytes > self.max_bytes:
            excess = self.bytes - self.max_bytes
            n, freed = 0, 0
            for (size,) in self._db.execute("SELECT size FROM msgs ORDER BY seq"):
                n += 1
                freed += size
                if freed >= excess:
                    break
            self._drop_oldest(n, "over %d bytes" % self.max_bytes)

    # --- the interface ----------------------------------------------------------------

    def put(self, topic: str, build: Callable[[int], bytes], retain: bool = False) -> int:
        """Queue one message: ``build(seq)`` makes its payload with the next ``seq``.
        Returns the seq. Never raises for storage faults (they are logged and counted);
        an exception from ``build`` propagates and no seq is used."""
        with self._lock:
            seq = self.seq + 1
            payload = build(seq)
            self.seq = seq
            size = len(payload) + len(topic.encode("utf-8"))
            if self._memory:  # dropping queued messages frees no disk for the state file
                self._safe_state()
            else:
                self._with_space(lambda: self._write_state(), "state file")
            stored = self._with_space(lambda: self._insert(seq, topic, payload, retain, size),
                                      "message %d" % seq)
            if not stored and not self._memory and self.count == 0:
                # The disk is full and even an empty queue file cannot grow: keep
                # reporting from memory until the next start rather than drop everything.
                self._close_db()
                self._fallback_memory(_Full("no room for message %d in an empty queue file"
                                            % seq))
                stored = self._with_space(
                    lambda: self._insert(seq, topic, payload, retain, size),
                    "message %d" % seq)
            if not stored:
                self.dropped += 1
                log.error("queue: no room even in an empty queue, message seq %d dropped",
                          seq)
            else:
                try:
                    self._enforce_bounds()
                except sqlite3.DatabaseError as exc:
                    if not _is_full(exc):
                        self._recover(exc)
            self._safe_state()
            return seq

    def _insert(self, seq: int, topic: str, payload: bytes, retain: bool, size: int) -> None:
        assert self._db is not None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("INSERT INTO msgs (seq, topic, payload, retain, queued, size) "
                             "VALUES (?, ?, ?, ?, ?, ?)",
                             (seq, topic, sqlite3.Binary(payload), int(retain), self.clock(),
                              size))
            self._save_meta()
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self.count += 1
        self.bytes += size

    def _safe_state(self) -> None:
        try:
            self._write_state()
        except _Full:
            pass

    def _with_space(self, action: Callable[[], object], what: str) -> bool:
        """Run ``action``; on a full disk drop the oldest messages and retry; on a
        corrupted file start a new one and retry. False when nothing could make room."""
        recovered = False
        while True:
            try:
                action()
                return True
            except (_Full, OSError, sqlite3.DatabaseError) as exc:
                if isinstance(exc, _Full) or _is_full(exc):
                    n = max(1, self.count // 10)
                    try:
                        if self._drop_oldest(n, "disk full writing %s" % what,
                                             disk_full=True):
                            continue
                    except sqlite3.DatabaseError as exc2:
                        if not _is_full(exc2):
                            exc = exc2
                        else:
                            return False
                    else:
                        return False
                if isinstance(exc, sqlite3.DatabaseError) and not recovered:
                    recovered = True
                    self._recover(exc)
                    continue
                log.error("queue: cannot store %s: %s", what, exc)
                return False

    def peek(self, after: int = 0, limit: int = 10) -> List[Row]:
        """The oldest queued messages with seq > ``after``, in seq order."""
        with self._lock:
            for attempt in (0, 1):
                try:
                    assert self._db is not None
                    rows = self._db.execute(
                        "SELECT seq, topic, payload, retain FROM msgs WHERE seq > ? "
                        "ORDER BY seq LIMIT ?", (after, limit)).fetchall()
                    return [Row(int(s), t, bytes(p), bool(r)) for s, t, p, r in rows]
                except sqlite3.DatabaseError as exc:
                    if attempt or _is_full(exc):
                        log.error("queue: cannot read: %s", exc)
                        return []
                    self._recover(exc)
            return []

    def ack(self, seqs: Sequence[int]) -> None:
        """The broker has these: delete them."""
        if not seqs:
            return
        with self._lock:
            for attempt in (0, 1):
                try:
                    assert self._db is not None
                    gone_n, gone_b = 0, 0
                    self._db.execute("BEGIN IMMEDIATE")
                    try:
                        for i in range(0, len(seqs), 500):  # SQLite's variable limit
                            chunk = list(seqs[i:i + 500])
                            marks = ",".join("?" * len(chunk))
                            n, b = self._db.execute(
                                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM msgs WHERE seq "
                                "IN (%s)" % marks, chunk).fetchone()
                            self._db.execute("DELETE FROM msgs WHERE seq IN (%s)" % marks, chunk)
                            gone_n += int(n)
                            gone_b += int(b)
                        self._db.execute("COMMIT")
                    except BaseException:
                        self._rollback()
                        raise
                    self.count -= gone_n
                    self.bytes -= gone_b
                    self._safe_state()
                    return
                except sqlite3.DatabaseError as exc:
                    if _is_full(exc):
                        # A delete that cannot journal: leave the rows, they are resent
                        # (the collector ignores a repeated seq).
                        log.warning("queue: cannot delete acknowledged messages: %s", exc)
                        return
                    if attempt:
                        log.error("queue: cannot delete acknowledged messages: %s", exc)
                        return
                    self._recover(exc)

    def discard(self, seqs: Sequence[int], why: str) -> None:
        """Delete messages that will never be delivered (the broker refused them), counted
        as dropped so the collector sees the loss."""
        if not seqs:
            return
        with self._lock:
            before = self.count
            self.ack(seqs)
            gone = before - self.count
            if gone:
                self.dropped += gone
                log.warning("queue: %d message(s) dropped: %s", gone, why)
                try:
                    assert self._db is not None
                    self._save_meta()
                except sqlite3.Error:
                    pass
                self._safe_state()

    def expire(self) -> None:
        """Apply the age bound now (the runtime calls this now and then)."""
        with self._lock:
            try:
                self._enforce_bounds()
                self._safe_state()
            except sqlite3.DatabaseError as exc:
                if not _is_full(exc):
                    self._recover(exc)

    def check(self) -> None:
        """Probe the file (cheap); a corrupted one is moved aside now rather than at the
        next write."""
        with self._lock:
            try:
                assert self._db is not None
                self._db.execute("SELECT COUNT(*) FROM msgs").fetchone()
            except sqlite3.DatabaseError as exc:
                if not _is_full(exc):
                    self._recover(exc)

    def close(self) -> None:
        with self._lock:
            self._safe_state()
            self._close_db()

    def _close_db(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None


def read_last_seq(folder: str) -> int:
    """The last seq given out, read without opening (or creating) the queue."""
    best = 0
    try:
        with open(os.path.join(folder, STATE_NAME), encoding="utf-8") as fh:
            best = int(json.load(fh).get("seq", 0))
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    db = os.path.join(folder, DB_NAME)
    if os.path.exists(db):
        try:
            con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
            try:
                for q in ("SELECT v FROM meta WHERE k = 'seq'", "SELECT MAX(seq) FROM msgs"):
                    row = con.execute(q).fetchone()
                    if row and row[0]:
                        best = max(best, int(row[0]))
            finally:
                con.close()
        except sqlite3.Error:
            pass
    return best
