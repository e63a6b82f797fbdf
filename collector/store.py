"""The state store: registry look-ups, duplicate detection, liveness and rollups.

``StateStore.prepare(batch) -> Plan`` decides in memory (from a cache of the schools and
devices tables) what is new, duplicate or refused; ``commit(plan) -> [Event]`` writes it in
ONE transaction with executemany-style statements and only then updates the cache. See
``collector/state.py`` for the seam and docs/state-store.md for the design.

Rules:

- unknown school → rejected ``unknown_school``; a known device under another school →
  rejected ``topic_mismatch`` (a reason of protocol.REASONS); an unknown device of a known school → registered
  ``pending`` on commit and its data kept.
- Data messages (every kind but ``status``) are new or duplicate by (device, seq): per device
  a high-water mark ``last_seq`` and a bounded list of missing ranges below it. A seq above
  the mark is new (the skipped numbers become missing: loss, ``Plan.gaps``); a seq in a
  missing range is a late arrival (accepted, loss reduced, ``Plan.filled``); anything else
  at or below the mark is a duplicate. A jump of more than ``MAX_JUMP`` is not counted as
  loss (event ``seq_jump``).
- ``status`` messages take no seq of their own (they carry the last one given out): they are
  always accepted and drive online/offline. A status ``online`` whose seq is below the
  mark although it is newer (``ts``) than the newest data message means the device's
  counter was reset (state lost): the mark follows it and a ``seq_reset`` event is logged.
- Online: status ``online``, or a fresh data message (``ts`` within the heartbeat timeout of
  its receipt). Offline: status ``offline`` (orderly stop or Last Will) at once, or no fresh
  message for ``3 × hb + 60`` s (``sweep``).

Threading: ``prepare``/``commit`` pairs are meant to run one batch at a time (prepare the
next batch after the previous commit); ``sweep`` and ``maintain`` may run in other threads.
A plan that is never committed leaves no trace: call ``prepare`` again.
"""
import json
import logging
import re
import threading
import time
from operator import attrgetter
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Engine,
    Float,
    Integer,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    or_,
    select,
    update,
)

from . import db
from .db import ROLLUP_METRICS, devices, events, org_units, rollup_1h, rollup_5m, schools
from .registry import school_tags
from .state import Accepted, Event, Plan, Received

log = logging.getLogger(__name__)

#: Missing ranges remembered per device; the oldest are forgotten (stay counted as lost).
MAX_MISSING_RANGES = 64
#: A seq jump larger than this is a counter jump, not loss (an agent queue holds 7 days).
MAX_JUMP = 1_000_000
#: How often (s) an unknown school makes the store re-read the schools table (imports made
#: by another process become visible without a restart).
SCHOOL_REFRESH = 5.0
BUCKET_5M = 300
BUCKET_1H = 3600

_DEVICE_COLS = ("school_code", "role", "room", "state", "first_seen", "last_seen", "online",
                "online_changed_at", "offline_reason", "hb", "hostname", "os", "agent",
                "last_seq", "last_ts", "missing", "lost_total", "duplicates_total",
                "received_total", "resets", "rev")


class _Bulk:
    """A statement compiled once and run without SQLAlchemy's per-row parameter processing
    (the dominant cost for 5,000-row batches). SQLite: the DB-API's executemany. PostgreSQL:
    one ``INSERT ... SELECT FROM unnest(array, array, ...)`` per call (one statement and
    one round trip; arrays adapt in C). Values must be ready for the driver: JSON as text.
    Rows of one call must not repeat a conflict key (ON CONFLICT may touch a row once)."""

    def __init__(self, stmt: Any, engine: Engine, table: Any) -> None:
        compiled = stmt.compile(dialect=engine.dialect)
        self.sql = compiled.string
        if compiled.positional:
            self.keys: List[str] = list(compiled.positiontup or ())
            self._pg = False
            return
        # "INSERT INTO t (a, b) VALUES (%(a)s::VARCHAR, %(b)s) ON CONFLICT ...": keep the
        # head and the ON CONFLICT tail, replace the VALUES tuple by a SELECT over unnest.
        self._pg = True
        sql = self.sql
        i = sql.index(" VALUES (")
        j = sql.index(")", sql.index(" VALUES (") + 9)
        while sql[j + 1:j + 2] not in (" ", ""):  # a ")" inside a cast, e.g. VARCHAR(16)
            j = sql.index(")", j + 1)
        self.keys = re.findall(r"%\((\w+)\)s", sql[i:j + 1])
        arrays, picks = [], []
        for k in self.keys:
            t = table.c[k].type
            if isinstance(t, JSON):
                arrays.append("%b::text[]")
                picks.append("u.%s::json" % k)
                continue
            if isinstance(t, Boolean):
                arr = "bool"
            elif isinstance(t, Integer):  # BigInteger included
                arr = "int8"
            elif isinstance(t, Float):
                arr = "float8"
            else:
                arr = "text"
            arrays.append("%%b::%s[]" % arr)
            picks.append("u.%s" % k)
        self.sql = "%s SELECT %s FROM unnest(%s) AS u(%s)%s" % (
            sql[:i], ", ".join(picks), ", ".join(arrays), ", ".join(self.keys), sql[j + 1:])

    def _exec(self, conn: Connection, tuples: List[Tuple[Any, ...]]) -> None:
        if not self._pg:
            conn.exec_driver_sql(self.sql, tuples)
            return
        columns = [list(c) for c in zip(*tuples)]
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(self.sql, columns)
        finally:
            cur.close()

    def run_objects(self, conn: Connection, objs: Sequence[Any],
                    rename: Optional[Dict[str, str]] = None) -> None:
        """Rows from objects' attributes (column ``c`` from attribute ``rename.get(c, c)``)."""
        if objs:
            rename = rename or {}
            get = attrgetter(*[rename.get(k, k) for k in self.keys])
            self._exec(conn, [get(o) for o in objs])

    def run_tuples(self, conn: Connection, rows: List[Tuple[Any, ...]]) -> None:
        """Rows as tuples already in ``self.keys`` order (no per-row conversion)."""
        if rows:
            self._exec(conn, rows)

    def run(self, conn: Connection, rows: Sequence[Dict[str, Any]]) -> None:
        if rows:
            keys = self.keys
            self._exec(conn, [tuple([r[k] for k in keys]) for r in rows])


def _json(value: Any) -> Optional[str]:
    if value is None:
        return None
    if not value:
        return "[]" if isinstance(value, list) else "{}"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class DeviceState:
    """One devices row in memory."""

    __slots__ = ("id",) + _DEVICE_COLS

    def __init__(self, id: str, school_code: str, **kw: Any) -> None:
        self.id = id
        self.school_code = school_code
        self.role: Optional[str] = None
        self.room: Optional[str] = None
        self.state = "pending"
        self.first_seen: Optional[float] = None
        self.last_seen: Optional[float] = None
        self.online = False
        self.online_changed_at: Optional[float] = None
        self.offline_reason: Optional[str] = None
        self.hb: Optional[int] = None
        self.hostname: Optional[str] = None
        self.os: Optional[str] = None
        self.agent: Optional[str] = None
        self.last_seq: Optional[int] = None
        self.last_ts: Optional[float] = None
        self.missing: List[List[int]] = []
        self.lost_total = 0
        self.duplicates_total = 0
        self.received_total = 0
        self.resets = 0
        self.rev = 0
        for k, v in kw.items():
            setattr(self, k, v)

    def copy(self) -> "DeviceState":  # replaced below by a generated straight-line version
        c = DeviceState.__new__(DeviceState)
        for k in self.__slots__:
            setattr(c, k, getattr(self, k))
        c.missing = [list(r) for r in self.missing]
        return c

    @property
    def missing_json(self) -> Optional[str]:
        return _json(self.missing)

    def row(self) -> Dict[str, Any]:
        d = {k: getattr(self, k) for k in _DEVICE_COLS}
        d["id"] = self.id
        return d

    def db_row(self) -> Dict[str, Any]:
        """row() ready for the driver (JSON as text)."""
        d = self.row()
        d["missing"] = _json(self.missing)
        return d


def _state_from_row(m: Dict[str, Any]) -> DeviceState:
    m = dict(m)
    did = m.pop("id")
    m["missing"] = [list(x) for x in (m.get("missing") or [])]
    for k in ("lost_total", "duplicates_total", "received_total", "resets", "rev"):
        m[k] = m.get(k) or 0
    m["online"] = bool(m["online"])
    return DeviceState(did, **m)


def _make_copy() -> Any:
    # prepare() copies every device it touches: a straight-line copy is several times
    # faster than a getattr/setattr loop (this is on the 10,000 msg/s path).
    lines = ["def copy(self):", "    c = _new(DeviceState)"]
    for k in DeviceState.__slots__:
        if k == "missing":
            lines.append("    c.missing = [r[:] for r in self.missing] if self.missing else []")
        else:
            lines.append("    c.%s = self.%s" % (k, k))
    lines.append("    return c")
    ns: Dict[str, Any] = {"_new": object.__new__, "DeviceState": DeviceState}
    exec("\n".join(lines), ns)
    return ns["copy"]


DeviceState.copy = _make_copy()  # type: ignore[method-assign]


def school_status(online: int, total: int) -> str:
    """online | partial | offline | no_devices (pending devices count: they report)."""
    if total == 0:
        return "no_devices"
    if online >= total:
        return "online"
    return "offline" if online == 0 else "partial"


def _timeout(hb: Optional[int], default_hb: int) -> float:
    return 3 * (hb or default_hb) + 60


def _health_values(p: Dict[str, Any]) -> List[Optional[float]]:
    """The rollup metrics of one health payload, in ``ROLLUP_METRICS`` order (None: not
    sent). Plain code: this runs for every message."""
    g = p.get
    cpu, mem, swap, temp = g("cpu_pct"), g("mem_pct"), g("swap_pct"), g("temp")
    disk = rx = tx = None
    disks = g("disks")
    if disks:
        disk = disks[0]["pct"]
        for d in disks:
            if d["pct"] > disk:
                disk = d["pct"]
    nics = g("nics")
    if nics:
        rx = tx = 0
        for n in nics:
            rx += n["rx"]
            tx += n["tx"]
    return [None if x is None else float(x) for x in (cpu, mem, swap, disk, temp, rx, tx)]


# _health_values gives the metrics in this order; db.ROLLUP_METRICS must agree (checked here).
_HEALTH_VALUE_ORDER = ("cpu_pct", "mem_pct", "swap_pct", "disk_pct", "temp", "rx", "tx")
if tuple(ROLLUP_METRICS) != _HEALTH_VALUE_ORDER:  # pragma: no cover - a programming error
    raise RuntimeError("store._health_values is out of step with db.ROLLUP_METRICS")


#: A 5-minute rollup being built: [n, then per metric of ROLLUP_METRICS: count, min, max,
#: sum] — the columns of ``rollup_5m`` after (device_id, bucket_start), in table order.
_ROLLUP_BLANK = [0] + [0, None, None, None] * len(ROLLUP_METRICS)


def _add_to_rollup(agg: List[Any], values: List[Optional[float]]) -> None:
    agg[0] += 1
    j = 1
    for v in values:
        if v is not None:
            if agg[j]:
                agg[j] += 1
                if v < agg[j + 1]:
                    agg[j + 1] = v
                if v > agg[j + 2]:
                    agg[j + 2] = v
                agg[j + 3] += v
            else:
                agg[j] = 1
                agg[j + 1] = agg[j + 2] = agg[j + 3] = v
        j += 4


def _os_summary(p: Dict[str, Any]) -> str:
    parts = [p.get("os_name"), p.get("os_version"), p.get("os_edition"), p.get("os_display")]
    out: List[str] = []
    for x in parts:
        if x and x not in out and not any(x in o for o in out):
            out.append(str(x))
    return " ".join(out)[:255]


def _remove_from_ranges(ranges: List[List[int]], seq: int) -> bool:
    """Remove seq from the sorted ranges; True if it was there."""
    for i, (lo, hi) in enumerate(ranges):
        if seq < lo:
            return False
        if seq <= hi:
            if lo == hi:
                del ranges[i]
            elif seq == lo:
                ranges[i] = [lo + 1, hi]
            elif seq == hi:
                ranges[i] = [lo, hi - 1]
            else:
                ranges[i:i + 1] = [[lo, seq - 1], [seq + 1, hi]]
            return True
    return False


class StateStore:
    """The collector's state store over one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, default_hb: int = 60, rollup_5m_days: int = 30,
                 rollup_1h_days: int = 365, create: bool = True) -> None:
        self.engine = engine
        self.default_hb = default_hb
        self.rollup_5m_days = rollup_5m_days
        self.rollup_1h_days = rollup_1h_days
        self._pg = engine.dialect.name == "postgresql"
        self._lock = threading.RLock()
        if create:
            db.create_all(engine)
        self._schools: Dict[str, Tuple[str, str]] = {}
        self._schools_loaded = 0.0
        self._devices: Dict[str, DeviceState] = {}
        self._by_school: Dict[str, Set[str]] = {}
        self._build_statements()
        self.reload()

    @classmethod
    def from_config(cls, cfg: Any, engine: Optional[Engine] = None) -> "StateStore":
        """From the collector config (store.url, store.rollup_*_days, liveness.default_interval)."""
        return cls(engine or db.make_engine(cfg.store.url),
                   default_hb=cfg.liveness.default_interval,
                   rollup_5m_days=cfg.store.rollup_5m_days,
                   rollup_1h_days=cfg.store.rollup_1h_days)

    # --- cache ------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read schools and devices from the database (e.g. after an import)."""
        with self._lock, self.engine.connect() as conn:
            self._schools = school_tags(conn)
            self._schools_loaded = time.monotonic()
            devs: Dict[str, DeviceState] = {}
            by_school: Dict[str, Set[str]] = {}
            for r in conn.execute(select(devices)):
                m = dict(r._mapping)
                did = m["id"]
                st = _state_from_row(m)
                devs[did] = st
                by_school.setdefault(st.school_code, set()).add(did)
            self._devices = devs
            self._by_school = by_school

    def reload_schools(self) -> None:
        with self._lock, self.engine.connect() as conn:
            self._schools = school_tags(conn)
            self._schools_loaded = time.monotonic()

    def device(self, device_id: str) -> Optional[DeviceState]:
        """A copy of the cached state of one device (None if unknown)."""
        with self._lock:
            st = self._devices.get(device_id)
            return st.copy() if st else None

    def known_school(self, code: str) -> bool:
        return code in self._schools

    # --- prepare ----------------------------------------------------------------------

    def prepare(self, batch: Sequence[Received]) -> Plan:
        """Decide, without writing, what in ``batch`` is new, duplicate or refused."""
        plan = Plan()
        work: Dict[str, DeviceState] = {}
        #: device -> [(received_at, online, reason)] in batch order
        transitions: Dict[str, List[Tuple[float, bool, Optional[str]]]] = {}
        seq_events: List[Event] = []
        latest: Dict[Tuple[str, str], Received] = {}
        #: (device, 5-minute bucket) -> _ROLLUP_BLANK filled in
        rollups: Dict[Tuple[str, int], List[Any]] = {}
        with self._lock:
            if (any(r.message.school not in self._schools for r in batch)
                    and time.monotonic() - self._schools_loaded > SCHOOL_REFRESH):
                self.reload_schools()
            schools_ = self._schools
            cache = self._devices
            for r in batch:
                m = r.message
                place = schools_.get(m.school)
                if place is None:
                    plan.rejected.append((r, "unknown_school"))
                    continue
                st = work.get(m.device)
                if st is None:
                    cached = cache.get(m.device)
                    if cached is None:
                        st = DeviceState(m.device, m.school, first_seen=r.received_at)
                        plan.new_devices.append(m.device)
                    else:
                        st = cached.copy()
                    work[m.device] = st
                if st.school_code != m.school:
                    if st.state != "pending":
                        plan.rejected.append((r, "topic_mismatch"))
                        continue
                    # A pending device may still move (a corrected agent config): follow it.
                    seq_events.append(Event(r.received_at, "device_moved", m.school, m.device,
                                            {"from": st.school_code, "to": m.school}))
                    st.school_code = m.school
                timeout = _timeout(st.hb, self.default_hb)
                if m.kind == "status":
                    p = m.payload
                    if p.get("hb"):
                        st.hb = int(p["hb"])
                    if p.get("agent"):
                        st.agent = str(p["agent"])[:32]
                    if p["state"] == "online":
                        if (st.last_seq is not None and m.seq < st.last_seq
                                and st.last_ts is not None and m.ts > st.last_ts):
                            seq_events.append(Event(r.received_at, "seq_reset", m.school, m.device,
                                                    {"from": st.last_seq, "to": m.seq}))
                            st.last_seq = m.seq
                            st.missing = []
                            st.resets += 1
                        st.last_seen = max(st.last_seen or 0.0, r.received_at)
                        transitions.setdefault(m.device, []).append((r.received_at, True, None))
                    else:
                        transitions.setdefault(m.device, []).append(
                            (r.received_at, False, p.get("reason") or "lost"))
                else:
                    if not self._check_seq(st, m.seq, plan, seq_events, r):
                        st.duplicates_total += 1
                        plan.duplicates += 1
                        continue
                    st.received_total += 1
                    if st.last_ts is None or m.ts > st.last_ts:
                        st.last_ts = m.ts
                    if r.received_at - m.ts <= timeout:
                        st.last_seen = max(st.last_seen or 0.0, r.received_at)
                        transitions.setdefault(m.device, []).append((r.received_at, True, None))
                    if m.kind == "inventory":
                        p = m.payload
                        st.role = p.get("role") or st.role
                        st.room = p.get("room") or st.room
                        st.hostname = p.get("hostname") or st.hostname
                        st.os = _os_summary(p) or st.os
                        st.agent = p.get("agent") or st.agent
                    elif m.kind == "health":
                        key = (m.device, int(r.ts) // BUCKET_5M * BUCKET_5M)
                        agg = rollups.get(key)
                        if agg is None:
                            agg = rollups[key] = _ROLLUP_BLANK[:]
                        _add_to_rollup(agg, _health_values(m.payload))
                lk = (m.device, m.kind)
                prev = latest.get(lk)
                if prev is None or r.ts >= prev.ts:
                    latest[lk] = r
                plan.accepted.append(Accepted(r, {
                    "province": place[0], "area": place[1], "school": m.school,
                    "device": m.device, "role": st.role or "unknown"}))
        plan.private.update(work=work, transitions=transitions, seq_events=seq_events,
                            latest=latest, rollups=rollups, batch=batch)
        return plan

    def _check_seq(self, st: DeviceState, seq: int, plan: Plan, evs: List[Event],
                   r: Received) -> bool:
        """True if (device, seq) is new; updates the mark and missing ranges of ``st``."""
        mark = st.last_seq
        if mark is None:
            st.last_seq = seq
            return True
        if seq > mark:
            gap = seq - mark - 1
            if gap > MAX_JUMP:
                evs.append(Event(r.received_at, "seq_jump", st.school_code, st.id,
                                 {"from": mark, "to": seq}))
            elif gap > 0:
                st.missing.append([mark + 1, seq - 1])
                if len(st.missing) > MAX_MISSING_RANGES:
                    del st.missing[: len(st.missing) - MAX_MISSING_RANGES]
                st.lost_total += gap
                plan.gaps[st.id] = plan.gaps.get(st.id, 0) + gap
            st.last_seq = seq
            return True
        if st.missing and _remove_from_ranges(st.missing, seq):
            st.lost_total -= 1
            plan.filled[st.id] = plan.filled.get(st.id, 0) + 1
            return True
        return False

    # --- commit -----------------------------------------------------------------------

    def _build_statements(self) -> None:
        d = self.engine
        ins = db.dialect_insert(d, devices)
        self._st_devices = _Bulk(ins.on_conflict_do_update(
            index_elements=["id"], set_={c: ins.excluded[c] for c in _DEVICE_COLS}), d, devices)
        ins = db.dialect_insert(d, db.device_latest)
        t = db.device_latest
        self._st_latest = _Bulk(ins.on_conflict_do_update(
            index_elements=["device_id", "kind"],
            set_={c: ins.excluded[c] for c in ("ts", "seq", "received_at", "skew", "payload")},
            where=ins.excluded.ts >= t.c.ts), d, t)
        least = func.least if self._pg else func.min
        greatest = func.greatest if self._pg else func.max
        ins = db.dialect_insert(d, rollup_5m)
        t = rollup_5m
        ex = ins.excluded
        set_: Dict[str, Any] = {"n": t.c.n + ex.n}
        for m in ROLLUP_METRICS:
            mn, mx, sm, cn = m + "_min", m + "_max", m + "_sum", m + "_n"
            set_[cn] = t.c[cn] + ex[cn]
            set_[mn] = least(func.coalesce(t.c[mn], ex[mn]), func.coalesce(ex[mn], t.c[mn]))
            set_[mx] = greatest(func.coalesce(t.c[mx], ex[mx]), func.coalesce(ex[mx], t.c[mx]))
            set_[sm] = case((t.c[sm].is_(None), ex[sm]), (ex[sm].is_(None), t.c[sm]),
                            else_=t.c[sm] + ex[sm])
        self._st_rollup = _Bulk(ins.on_conflict_do_update(
            index_elements=["device_id", "bucket_start"], set_=set_), d, rollup_5m)
        # prepare() builds rollup rows as (device_id, bucket_start, *agg): table order
        if self._st_rollup.keys != [c.name for c in rollup_5m.c]:  # pragma: no cover
            raise RuntimeError("rollup_5m upsert does not take its columns in table order")
        ins = db.dialect_insert(d, db.rollup_dirty)
        self._st_dirty = ins.on_conflict_do_nothing(index_elements=["bucket_start"])
        self._st_offline = (update(devices).where(devices.c.id == bindparam("b_id"))
                            .values(online=False, online_changed_at=bindparam("b_at"),
                                    offline_reason=bindparam("b_reason"),
                                    rev=bindparam("b_rev")))

    def commit(self, plan: Plan, before_commit: Optional[Callable[[], None]] = None
               ) -> List[Event]:
        """Write a prepared plan in one transaction; update the cache; return the events.
        ``before_commit()`` runs last inside the transaction (ingest waits there for the
        batch's time-series write): if it raises, nothing is committed.

        Before writing, the rows of the devices in the plan are read (and on PostgreSQL
        locked, ``FOR UPDATE``): if another process (a second collector, ``device approve``)
        changed one since this store cached it (``rev``), the store re-reads those rows and
        prepares the batch again inside the same transaction, so the decision about every
        (device, seq) is made on the row as committed. ``plan`` is then updated in place
        (accepted, duplicates, gaps ...) to what was actually written."""
        if not plan.private.get("work"):
            if before_commit is not None:
                before_commit()
            return list(plan.private.get("seq_events", []))  # type: ignore[call-overload]
        with self._lock:
            with self.engine.begin() as conn:
                for _attempt in range(3):
                    work: Dict[str, DeviceState] = plan.private["work"]  # type: ignore[assignment]
                    stale = self._stale(conn, work)
                    if not stale:
                        break
                    log.info("state store: %d device row(s) changed by another process; "
                             "re-reading them", len(stale))
                    self._refresh(conn, stale)
                    fresh = self.prepare(plan.private["batch"])  # type: ignore[arg-type]
                    for f in ("accepted", "duplicates", "rejected", "new_devices", "gaps",
                              "filled", "private"):
                        setattr(plan, f, getattr(fresh, f))
                evs, work = self._write(conn, plan)
                if before_commit is not None:
                    before_commit()
            cache = self._devices
            for did, st in work.items():
                old = cache.get(did)
                if old is not None and old.school_code != st.school_code:
                    self._by_school.get(old.school_code, set()).discard(did)
                cache[did] = st
                self._by_school.setdefault(st.school_code, set()).add(did)
        return evs

    def _fetch_revs(self, conn: Connection, ids: List[str]) -> Dict[str, int]:
        """rev of each existing row among ``ids`` (PostgreSQL: locked until commit)."""
        out: Dict[str, int] = {}
        if not ids:
            return out
        if self._pg:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cur.execute("SELECT id, rev FROM devices WHERE id = ANY(%b::text[]) "
                            "ORDER BY id FOR UPDATE", [ids])
                for did, rev in cur.fetchall():
                    out[did] = rev or 0
            finally:
                cur.close()
            return out
        for i in range(0, len(ids), 10000):
            chunk = ids[i:i + 10000]
            sql = "SELECT id, rev FROM devices WHERE id IN (%s)" % ",".join("?" * len(chunk))
            for did, rev in conn.exec_driver_sql(sql, tuple(chunk)):
                out[did] = rev or 0
        return out

    def _stale(self, conn: Connection, work: Dict[str, DeviceState]) -> List[str]:
        """Devices whose row differs from the cached copy the plan was made from."""
        revs = self._fetch_revs(conn, list(work))
        cache = self._devices
        stale = []
        for did in work:
            cur = cache.get(did)
            db_rev = revs.get(did)
            if (cur is None) != (db_rev is None) or (cur is not None and cur.rev != db_rev):
                stale.append(did)
        return stale

    def _refresh(self, conn: Connection, ids: List[str]) -> None:
        """Re-read these devices' rows into the cache (in the caller's transaction)."""
        found = set()
        for i in range(0, len(ids), 1000):
            for r in conn.execute(select(devices).where(devices.c.id.in_(ids[i:i + 1000]))):
                st = _state_from_row(dict(r._mapping))
                found.add(st.id)
                old = self._devices.get(st.id)
                if old is not None and old.school_code != st.school_code:
                    self._by_school.get(old.school_code, set()).discard(st.id)
                self._devices[st.id] = st
                self._by_school.setdefault(st.school_code, set()).add(st.id)
        for did in set(ids) - found:
            old = self._devices.pop(did, None)
            if old is not None:
                self._by_school.get(old.school_code, set()).discard(did)

    def _write(self, conn: Connection, plan: Plan) -> Tuple[List[Event], Dict[str, DeviceState]]:
        work: Dict[str, DeviceState] = plan.private.get("work", {})  # type: ignore[assignment]
        transitions = plan.private.get("transitions", {})
        latest = plan.private.get("latest", {})
        rollups = plan.private.get("rollups", {})
        evs: List[Event] = list(plan.private.get("seq_events", []))  # type: ignore[call-overload]
        cache = self._devices
        new_ids = set(plan.new_devices)
        touched_schools: Set[str] = set()
        for did, st in work.items():
            cur = cache.get(did)
            if cur is not None and cur.school_code != st.school_code:  # a pending device moved
                touched_schools.update((cur.school_code, st.school_code))
            if cur is None and did in new_ids:
                evs.append(Event(st.first_seen or time.time(), "device_registered",
                                 st.school_code, did, {"state": st.state}))
            # Replay the batch's liveness transitions on the *current* state: a sweep
            # may have run since prepare().
            online = cur.online if cur is not None else False
            changed_at = cur.online_changed_at if cur is not None else None
            reason = cur.offline_reason if cur is not None else None
            for at, up, why in transitions.get(did, ()):  # type: ignore[attr-defined]
                if up != online:
                    online = up
                    changed_at = at
                    reason = None if up else why
                    evs.append(Event(at, "device_online" if up else "device_offline",
                                     st.school_code, did, {} if up else {"reason": why}))
                    touched_schools.add(st.school_code)
                elif not up and why != reason:
                    reason = why
            st.online, st.online_changed_at, st.offline_reason = online, changed_at, reason
            st.rev = (cur.rev if cur is not None else 0) + 1
            if did in new_ids:
                touched_schools.add(st.school_code)
        evs.extend(self._school_events(touched_schools, work, time.time()))
        latest_rows = [{"device_id": did, "kind": kind, "ts": r.ts, "seq": r.message.seq,
                        "received_at": r.received_at, "skew": r.skew,
                        "payload": (_json(r.message.payload) if r.raw is None
                                    else r.raw.decode("utf-8"))}
                       for (did, kind), r in latest.items()]  # type: ignore[attr-defined]
        rollup_rows = [(did, bucket, *agg)
                       for (did, bucket), agg in rollups.items()]  # type: ignore[attr-defined]
        hours = {bucket // BUCKET_1H * BUCKET_1H for _did, bucket in rollups}
        self._st_devices.run_objects(conn, list(work.values()), {"missing": "missing_json"})
        self._st_latest.run(conn, latest_rows)
        if rollup_rows:
            self._st_rollup.run_tuples(conn, rollup_rows)
            conn.execute(self._st_dirty, [{"bucket_start": h} for h in sorted(hours)])
        self._insert_events(conn, evs)
        return evs, work

    @staticmethod
    def _insert_events(conn: Connection, evs: Sequence[Event]) -> None:
        if evs:
            conn.execute(events.insert(), [{"ts": e.ts, "kind": e.kind, "school": e.school,
                                            "device": e.device, "detail": e.detail}
                                           for e in evs])

    def _school_counts(self, school: str, overlay: Dict[str, DeviceState],
                       moved_in: Iterable[str] = ()) -> Tuple[int, int]:
        """(online, total) devices of a school, with ``overlay`` states replacing cached ones."""
        online = total = 0
        for did in set(self._by_school.get(school, ())).union(moved_in):
            st = overlay.get(did) or self._devices[did]
            if st.school_code == school:
                total += 1
                online += st.online
        return online, total

    def _school_events(self, touched: Iterable[str], overlay: Dict[str, DeviceState],
                       now: float) -> List[Event]:
        in_overlay: Dict[str, List[str]] = {}
        for did, st in overlay.items():
            in_overlay.setdefault(st.school_code, []).append(did)
        out = []
        for school in touched:
            before = school_status(*self._school_counts(school, {}))
            online, total = self._school_counts(school, overlay, in_overlay.get(school, ()))
            after = school_status(online, total)
            if after != before:
                out.append(Event(now, "school_status", school, None,
                                 {"status": after, "previous": before, "online": online,
                                  "total": total}))
        return out

    # --- liveness sweep ---------------------------------------------------------------

    def sweep(self, now: Optional[float] = None) -> List[Event]:
        """Mark devices offline whose last fresh message is older than 3 × hb + 60 s.

        Candidates are re-checked against their rows first (another process may have heard
        from them: ``rev``), so a sweep never undoes what another collector stored."""
        now = time.time() if now is None else now
        with self._lock:
            def due(st: DeviceState) -> bool:
                return st.online and now - (st.last_seen or 0.0) > _timeout(st.hb, self.default_hb)

            cands = [did for did, st in self._devices.items() if due(st)]
            if not cands:
                return []
            with self.engine.begin() as conn:
                stale = self._stale(conn, {d: self._devices[d] for d in cands})
                if stale:
                    self._refresh(conn, stale)
                overlay: Dict[str, DeviceState] = {}
                evs: List[Event] = []
                for did in cands:
                    st = self._devices.get(did)
                    if st is None or not due(st):
                        continue
                    c = st.copy()
                    c.online, c.online_changed_at, c.offline_reason = False, now, "timeout"
                    c.rev = st.rev + 1
                    overlay[did] = c
                    evs.append(Event(now, "device_offline", c.school_code, did,
                                     {"reason": "timeout", "last_seen": st.last_seen}))
                if not overlay:
                    return []
                evs.extend(self._school_events({s.school_code for s in overlay.values()},
                                               overlay, now))
                conn.execute(self._st_offline, [{"b_id": did, "b_at": now,
                                                 "b_reason": "timeout", "b_rev": c.rev}
                                                for did, c in overlay.items()])
                self._insert_events(conn, evs)
            self._devices.update(overlay)
        return evs

    # --- rollups ----------------------------------------------------------------------

    def maintain(self, now: Optional[float] = None) -> Dict[str, int]:
        """Build hourly rollups for every hour whose 5-minute rollups changed, then prune
        5-minute rollups, hourly rollups and events past their retention. Idempotent."""
        now = time.time() if now is None else now
        r5, r1, dirty = rollup_5m, rollup_1h, db.rollup_dirty
        out = {"hours": 0, "pruned_5m": 0, "pruned_1h": 0, "pruned_events": 0}
        with self.engine.begin() as conn:
            hours = set(conn.execute(select(dirty.c.bucket_start)).scalars())
            out["hours"] = len(hours)
            if hours:
                # Also the two most recent hours: a commit racing this transaction may have
                # found its hour already marked dirty just before we cleared the mark.
                cur_hour = int(now) // BUCKET_1H * BUCKET_1H
                hours.update((cur_hour, cur_hour - BUCKET_1H))
            hours = sorted(hours)
            if hours:
                conn.execute(delete(dirty).where(dirty.c.bucket_start.in_(hours)))
                least = func.min
                hour = r5.c.bucket_start - r5.c.bucket_start % literal_column(str(BUCKET_1H))
                cols = [r5.c.device_id, hour.label("bucket_start"), func.sum(r5.c.n)]
                names = ["device_id", "bucket_start", "n"]
                for m in ROLLUP_METRICS:
                    cols += [func.sum(r5.c[m + "_n"]), least(r5.c[m + "_min"]),
                             func.max(r5.c[m + "_max"]), func.sum(r5.c[m + "_sum"])]
                    names += [m + "_n", m + "_min", m + "_max", m + "_sum"]
                for i in range(0, len(hours), 200):
                    chunk = hours[i:i + 200]
                    conds = [r5.c.bucket_start.between(h, h + BUCKET_1H - 1) for h in chunk]
                    sel = select(*cols).where(or_(*conds)).group_by(r5.c.device_id, hour)
                    ins = db.dialect_insert(conn, r1).from_select(names, sel)
                    ins = ins.on_conflict_do_update(
                        index_elements=["device_id", "bucket_start"],
                        set_={c: ins.excluded[c] for c in names[2:]})
                    conn.execute(ins)
            cut5 = now - self.rollup_5m_days * 86400
            cut1 = now - self.rollup_1h_days * 86400
            out["pruned_5m"] = conn.execute(delete(r5).where(r5.c.bucket_start < cut5)).rowcount
            out["pruned_1h"] = conn.execute(delete(r1).where(r1.c.bucket_start < cut1)).rowcount
            out["pruned_events"] = conn.execute(delete(events).where(events.c.ts < cut1)).rowcount
        return out


# --- liveness rollups for the API (stateless: read the database) ---------------------------

def school_liveness(conn: Connection, school_codes: Optional[Iterable[str]] = None
                    ) -> Dict[str, Dict[str, Any]]:
    """Per school: devices ``online``, ``offline``, ``pending``, ``total`` and ``status``
    (online | partial | offline | no_devices). Schools without devices are included.
    ``school_codes`` limits the answer (API scoping); None = every school."""
    q = select(schools.c.code).select_from(schools)
    dq = (select(devices.c.school_code, func.count().label("total"),
                 func.sum(case((devices.c.online, 1), else_=0)).label("online"),
                 func.sum(case((devices.c.state == "pending", 1), else_=0)).label("pending"))
          .group_by(devices.c.school_code))
    if school_codes is not None:
        codes = list(school_codes)
        q = q.where(schools.c.code.in_(codes))
        dq = dq.where(devices.c.school_code.in_(codes))
    out = {c: {"online": 0, "offline": 0, "pending": 0, "total": 0, "status": "no_devices"}
           for c in conn.execute(q).scalars()}
    for r in conn.execute(dq):
        if r.school_code not in out:
            continue
        online, total = int(r.online or 0), int(r.total)
        out[r.school_code] = {"online": online, "offline": total - online,
                              "pending": int(r.pending or 0), "total": total,
                              "status": school_status(online, total)}
    return out


def org_liveness(conn: Connection, unit_ids: Optional[Iterable[int]] = None
                 ) -> Dict[int, Dict[str, Any]]:
    """Per organisation unit (province, area ...): device counts (online, offline, pending,
    total) and school counts by status (``schools``: {online, partial, offline,
    no_devices, total}) over every school below it. ``unit_ids`` limits the answer to
    those units and their descendants; None = every unit."""
    units = {r.id: r.parent_id for r in conn.execute(select(org_units.c.id,
                                                            org_units.c.parent_id))}
    if unit_ids is not None:
        from .registry import descendant_units
        keep = descendant_units(conn, unit_ids)
    else:
        keep = set(units)

    def blank() -> Dict[str, Any]:
        return {"online": 0, "offline": 0, "pending": 0, "total": 0,
                "schools": {"online": 0, "partial": 0, "offline": 0, "no_devices": 0,
                            "total": 0}}

    out = {u: blank() for u in keep}
    placed = dict(conn.execute(select(schools.c.code, schools.c.org_unit_id)).all())
    for code, live in school_liveness(conn).items():
        u: Optional[int] = placed.get(code)
        seen: Set[int] = set()
        while u is not None and u not in seen:
            seen.add(u)
            if u in out:
                o = out[u]
                for k in ("online", "offline", "pending", "total"):
                    o[k] += live[k]
                o["schools"][live["status"]] += 1
                o["schools"]["total"] += 1
            u = units.get(u)
    return out


__all__ = ["StateStore", "DeviceState", "school_status", "school_liveness", "org_liveness",
           "MAX_JUMP", "MAX_MISSING_RANGES"]
