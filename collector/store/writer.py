"""The transactional writer: ``StateStore.prepare(batch) -> Plan`` decides in memory (from a
cache of the schools and devices tables) what is new, duplicate or refused;
``commit(plan) -> [Event]`` writes it in ONE transaction with bulk statements and only
then updates the cache. See ``collector/state.py`` for the seam and docs/state-store.md.

Rules (the per-kind parts come from ``collector/families``):

- unknown school → rejected ``unknown_school``; a known device under another school →
  rejected ``topic_mismatch`` (reasons of protocol.REASONS); an unknown device of a known
  school → registered ``pending`` on commit and its data kept.
- Sequenced messages (every family but ``status``) are new or duplicate by (device, seq)
  (``devices.check_seq``).
- A message that reports the device's state (``status``) takes no seq of its own: always
  accepted, drives online/offline. An ``online`` whose seq is below the mark although it is
  newer (``ts``) than the newest data message means the device's counter was reset (state
  lost): the mark follows it and a ``seq_reset`` event is logged.
- A skewed message (``Received.skew``: ts far in the future or past) is stored, but its
  ``ts`` never becomes the device's ``last_ts``, nor triggers a reset: a clock gone wrong
  cannot steer the device's bookkeeping.
- Liveness: ``liveness.py``; rollups and retention: ``rollups.py``.

Threading: ``prepare``/``commit`` pairs are meant to run one batch at a time (prepare the
next batch after the previous commit); ``sweep`` and ``maintain`` may run in other threads.
A plan that is never committed leaves no trace: call ``prepare`` again.
"""
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from sqlalchemy import Connection, Engine, bindparam, select, update

from ..families import FAMILIES, PLAIN
from ..state import Accepted, Event, Plan, Received
from . import liveness, retention, rollups
from .bulk import BulkStatement, raw_cursor, to_json
from .devices import DEVICE_COLS, RESET_MIN_LATER, DeviceState, check_seq, state_from_row
from .events import insert_events
from .liveness import heartbeat_timeout, school_events
from .registry import school_tags
from .rollups import BUCKET_1H, BUCKET_5M, ROLLUP_BLANK, add_to_rollup
from .schema import create_all, device_latest, devices, dialect_insert, make_engine
from .sinks import COUNTED, Sinks, add_row, finish

log = logging.getLogger("schoolmon.collector.store")

#: How often (s) an unknown school makes the store re-read the schools table (imports made
#: by another process become visible without a restart).
SCHOOL_REFRESH = 5.0


class StateStore:
    """The collector's state store over one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, default_hb: int = 60, rollup_5m_days: int = 30,
                 rollup_1h_days: int = 365, create: bool = True, router_hb: int = 900,
                 keep: Optional[retention.Keep] = None,
                 timezone: str = "Asia/Ho_Chi_Minh") -> None:
        self.engine = engine
        self.default_hb = default_hb
        #: hb of the router devices (``connectivity.router_hb``): no router says its interval
        self.router_hb = router_hb
        self.rollup_5m_days = rollup_5m_days
        self.rollup_1h_days = rollup_1h_days
        #: days of the connectivity tables kept (``store.*_days``), and the province's
        #: timezone (connectivity_school_days.day is its local date)
        self.keep = keep or retention.Keep()
        self.timezone = timezone
        self._pg = engine.dialect.name == "postgresql"
        self.lock = threading.RLock()
        if create:
            create_all(engine)
        self._schools: Dict[str, Tuple[str, str]] = {}
        self._schools_loaded = 0.0
        self.devices_cache: Dict[str, DeviceState] = {}
        self.devices_by_school: Dict[str, Set[str]] = {}
        self._build_statements()
        self.reload()

    @classmethod
    def from_config(cls, cfg: Any, engine: Optional[Engine] = None) -> "StateStore":
        """From the collector config (store.url, store.rollup_*_days, liveness.default_interval)."""
        return cls(engine or make_engine(cfg.store.url),
                   default_hb=cfg.liveness.default_interval,
                   rollup_5m_days=cfg.store.rollup_5m_days,
                   rollup_1h_days=cfg.store.rollup_1h_days,
                   router_hb=int(getattr(getattr(cfg, "connectivity", None), "router_hb", 900)),
                   keep=retention.Keep(
                       link_tests_days=cfg.store.link_tests_days,
                       link_probe_hours_days=cfg.store.link_probe_hours_days,
                       connectivity_history_days=cfg.store.connectivity_history_days),
                   timezone=getattr(getattr(cfg, "province", None), "timezone",
                                    "Asia/Ho_Chi_Minh"))

    # --- cache ------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read schools and devices from the database (e.g. after an import)."""
        with self.lock, self.engine.connect() as conn:
            self._schools = school_tags(conn)
            self._schools_loaded = time.monotonic()
            devs: Dict[str, DeviceState] = {}
            by_school: Dict[str, Set[str]] = {}
            for r in conn.execute(select(devices)):
                m = dict(r._mapping)
                did = m["id"]
                st = state_from_row(m)
                devs[did] = st
                by_school.setdefault(st.school_code, set()).add(did)
            self.devices_cache = devs
            self.devices_by_school = by_school

    def reload_schools(self) -> None:
        with self.lock, self.engine.connect() as conn:
            self._schools = school_tags(conn)
            self._schools_loaded = time.monotonic()

    def device(self, device_id: str) -> Optional[DeviceState]:
        """A copy of the cached state of one device (None if unknown)."""
        with self.lock:
            st = self.devices_cache.get(device_id)
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
        #: (received_at, device) of every ``online`` status, a transition or not
        hellos: List[Tuple[float, str]] = []
        latest: Dict[Tuple[str, str], Received] = {}
        #: (device, 5-minute bucket) -> ROLLUP_BLANK filled in
        aggs: Dict[Tuple[str, int], List[Any]] = {}
        #: sink -> rows the families add (``sinks.py``)
        extra: Dict[str, Any] = {}
        families = FAMILIES
        with self.lock:
            if (any(r.message.school not in self._schools for r in batch)
                    and time.monotonic() - self._schools_loaded > SCHOOL_REFRESH):
                self.reload_schools()
            schools_ = self._schools
            cache = self.devices_cache
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
                fam = families.get(m.kind, PLAIN)
                p = m.payload
                skewed = r.skew is not None
                if not fam.sequenced:
                    if fam.device_columns is not None:
                        fam.device_columns(st, p)
                    up, why = fam.reported_state(p) if fam.reported_state else (True, None)
                    if up:
                        if (st.last_seq is not None and m.seq < st.last_seq and not skewed
                                and st.last_ts is not None
                                and m.ts > st.last_ts + RESET_MIN_LATER):
                            seq_events.append(Event(r.received_at, "seq_reset", m.school, m.device,
                                                    {"from": st.last_seq, "to": m.seq}))
                            st.last_seq = m.seq
                            st.missing = []
                            st.seq_jump = None
                            st.resets += 1
                        st.last_seen = max(st.last_seen or 0.0, r.received_at)
                        if fam.reported_state is not None:
                            hellos.append((r.received_at, m.device))
                    transitions.setdefault(m.device, []).append((r.received_at, up, why))
                else:
                    if not check_seq(st, m.seq, plan, seq_events, r):
                        st.duplicates_total += 1
                        plan.duplicates += 1
                        continue
                    st.received_total += 1
                    if fam.device_columns is not None and fam.proxy is None:
                        fam.device_columns(st, p)
                    if not skewed and (st.last_ts is None or m.ts > st.last_ts):
                        st.last_ts = m.ts
                    if r.received_at - m.ts <= heartbeat_timeout(st.hb, self.default_hb):
                        st.last_seen = max(st.last_seen or 0.0, r.received_at)
                        transitions.setdefault(m.device, []).append((r.received_at, True, None))
                    values = fam.rollup_values
                    if values is not None:
                        # a proxy family's figures are the proxied device's (the router's
                        # WAN, not its poller's NICs)
                        owner = m.device if fam.proxy is None else fam.proxy(m.school)
                        key = (owner, int(r.ts) // BUCKET_5M * BUCKET_5M)
                        agg = aggs.get(key)
                        if agg is None:
                            agg = aggs[key] = ROLLUP_BLANK[:]
                        add_to_rollup(agg, values(p))
                    if fam.rows is not None:
                        for sink, row in fam.rows(m.school, m.device, m.seq, p, r.ts,
                                                  r.received_at):
                            if sink in COUNTED:
                                plan.refused[row[0]] = plan.refused.get(row[0], 0) + 1
                            else:
                                add_row(extra, sink, row)
                    if fam.proxy is not None:
                        st = self._proxy(fam, r, st, work, plan, transitions)
                lk = (st.id, m.kind)
                prev = latest.get(lk)
                if prev is None or r.ts >= prev.ts:
                    latest[lk] = r
                plan.accepted.append(Accepted(r, {
                    "province": place[0], "area": place[1], "school": m.school,
                    "device": st.id, "role": st.role or "unknown"}))
        plan.private.update(work=work, transitions=transitions, seq_events=seq_events,
                            hellos=hellos, latest=latest, rollups=aggs, batch=batch, extra=extra)
        return plan

    def _proxy(self, fam: Any, r: Received, sender: DeviceState, work: Dict[str, DeviceState],
               plan: Plan, transitions: Dict[str, List[Tuple[float, bool, Optional[str]]]]
               ) -> DeviceState:
        """The device a ``proxy`` family's message speaks for (``router.{school}``), in
        ``work``: registered with the first message (active when the sender is), its
        columns and liveness from the message. The sender's seq bookkeeping is done."""
        m = r.message
        pid = fam.proxy(m.school)
        st = work.get(pid)
        if st is None:
            cached = self.devices_cache.get(pid)
            if cached is None:
                st = DeviceState(pid, m.school, first_seen=r.received_at)
                st.state = "active" if sender.state == "active" else "pending"
                plan.new_devices.append(pid)
            else:
                st = cached.copy()
            work[pid] = st
        if st.state == "pending" and sender.state == "active":
            st.state = "active"  # the poller was approved since: its router with it
        st.hb = self.router_hb
        st.received_total += 1
        if fam.device_columns is not None:
            fam.device_columns(st, m.payload)
        if r.skew is None and (st.last_ts is None or m.ts > st.last_ts):
            st.last_ts = m.ts
        if r.received_at - m.ts <= heartbeat_timeout(st.hb, self.default_hb):
            # a fresh poll says the router's state; a late one (an agent queue) says nothing
            st.last_seen = max(st.last_seen or 0.0, r.received_at)
            up, why = fam.reported_state(m.payload) if fam.reported_state else (True, None)
            transitions.setdefault(pid, []).append((r.received_at, up, why))
        return st

    # --- commit -----------------------------------------------------------------------

    def _build_statements(self) -> None:
        d = self.engine
        ins = dialect_insert(d, devices)
        self._st_devices = BulkStatement(ins.on_conflict_do_update(
            index_elements=["id"], set_={c: ins.excluded[c] for c in DEVICE_COLS}), d, devices)
        ins = dialect_insert(d, device_latest)
        t = device_latest
        self._st_latest = BulkStatement(ins.on_conflict_do_update(
            index_elements=["device_id", "kind"],
            set_={c: ins.excluded[c] for c in ("ts", "seq", "received_at", "skew", "payload")},
            where=ins.excluded.ts >= t.c.ts), d, t)
        self._st_rollup = rollups.rollup_upsert(d)
        self._st_dirty = rollups.mark_dirty_hours(d)
        self._sinks = Sinks(d)
        self.offline_statement = (update(devices).where(devices.c.id == bindparam("b_id"))
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
            return list(plan.private.get("seq_events", []))
        with self.lock:
            with self.engine.begin() as conn:
                for _attempt in range(3):
                    work: Dict[str, DeviceState] = plan.private["work"]
                    stale = self.stale_devices(conn, work)
                    if not stale:
                        break
                    log.info("state store: %d device row(s) changed by another process; "
                             "re-reading them", len(stale))
                    self.refresh_devices(conn, stale)
                    fresh = self.prepare(plan.private["batch"])
                    for f in ("accepted", "duplicates", "rejected", "new_devices", "gaps",
                              "filled", "refused", "private"):
                        setattr(plan, f, getattr(fresh, f))
                evs, work = self._write(conn, plan)
                if before_commit is not None:
                    before_commit()
            cache = self.devices_cache
            for did, st in work.items():
                old = cache.get(did)
                if old is not None and old.school_code != st.school_code:
                    self.devices_by_school.get(old.school_code, set()).discard(did)
                cache[did] = st
                self.devices_by_school.setdefault(st.school_code, set()).add(did)
        return evs

    def _fetch_revs(self, conn: Connection, ids: List[str]) -> Dict[str, int]:
        """rev of each existing row among ``ids`` (PostgreSQL: locked until commit)."""
        out: Dict[str, int] = {}
        if not ids:
            return out
        if self._pg:
            cur = raw_cursor(conn)
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

    def _lock_new_devices(self, conn: Connection, ids: List[str]) -> None:
        """PostgreSQL: a transaction-scoped advisory lock per device this store has no row
        for. ``FOR UPDATE`` cannot lock a row that does not exist yet, so two collectors
        seeing a device's first messages at once would both insert it, the later upsert
        overwriting the other's bookkeeping (a seq stored by one and counted missing by the
        other). With the lock the second waits for the first's commit, then finds the row
        and prepares again. Locks are taken in key order, before any row lock, so two
        writers cannot wait on each other."""
        if not ids:
            return
        cur = raw_cursor(conn)
        try:
            cur.execute("SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT "
                        "hashtextextended(x, 0) AS k FROM unnest(%b::text[]) AS x ORDER BY k) s",
                        [ids])
            cur.fetchall()
        finally:
            cur.close()

    def stale_devices(self, conn: Connection, work: Dict[str, DeviceState]) -> List[str]:
        """Devices whose row differs from the cached copy the plan was made from."""
        if self._pg:
            self._lock_new_devices(conn, [did for did in work if did not in self.devices_cache])
        revs = self._fetch_revs(conn, list(work))
        cache = self.devices_cache
        stale = []
        for did in work:
            cur = cache.get(did)
            db_rev = revs.get(did)
            if (cur is None) != (db_rev is None) or (cur is not None and cur.rev != db_rev):
                stale.append(did)
        return stale

    def refresh_devices(self, conn: Connection, ids: List[str]) -> None:
        """Re-read these devices' rows into the cache (in the caller's transaction)."""
        found = set()
        for i in range(0, len(ids), 1000):
            for r in conn.execute(select(devices).where(devices.c.id.in_(ids[i:i + 1000]))):
                st = state_from_row(dict(r._mapping))
                found.add(st.id)
                old = self.devices_cache.get(st.id)
                if old is not None and old.school_code != st.school_code:
                    self.devices_by_school.get(old.school_code, set()).discard(st.id)
                self.devices_cache[st.id] = st
                self.devices_by_school.setdefault(st.school_code, set()).add(st.id)
        for did in set(ids) - found:
            old = self.devices_cache.pop(did, None)
            if old is not None:
                self.devices_by_school.get(old.school_code, set()).discard(did)

    def _write(self, conn: Connection, plan: Plan) -> Tuple[List[Event], Dict[str, DeviceState]]:
        work: Dict[str, DeviceState] = plan.private.get("work", {})
        transitions = plan.private.get("transitions", {})
        latest = plan.private.get("latest", {})
        rollups = plan.private.get("rollups", {})
        evs: List[Event] = list(plan.private.get("seq_events", []))
        cache = self.devices_cache
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
            for at, up, why in transitions.get(did, ()):
                if changed_at is None and not up:
                    # first heard offline (a router that answers neither ping nor SNMP):
                    # offline since this message, not "since —"
                    changed_at, reason = at, why
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
        evs.extend(school_events(self.devices_cache, self.devices_by_school, touched_schools, work,
                                 time.time()))
        latest_rows = [{"device_id": did, "kind": kind, "ts": r.ts, "seq": r.message.seq,
                        "received_at": r.received_at, "skew": r.skew,
                        "payload": (to_json(r.message.payload) if r.raw is None
                                    else r.raw.decode("utf-8"))}
                       for (did, kind), r in latest.items()]
        rollup_rows = [(did, bucket, *agg)
                       for (did, bucket), agg in rollups.items()]
        hours = {bucket // BUCKET_1H * BUCKET_1H for _did, bucket in rollups}
        self._st_devices.run_objects(conn, list(work.values()), {"missing": "missing_json"})
        self._st_latest.run(conn, latest_rows)
        if rollup_rows:
            self._st_rollup.run_tuples(conn, rollup_rows)
            conn.execute(self._st_dirty, [{"bucket_start": h} for h in sorted(hours)])
        extra = plan.private.get("extra")
        if extra:
            self._sinks.write(conn, finish(extra))
        insert_events(conn, evs)
        # A device saying ``online`` that the store already had online (it reconnected
        # before the sweep noticed, or the store was seeded) makes no device_online: the
        # scheduler still needs to hear it, to send again a grant the device may have
        # missed while it was not subscribed. Dispatched, never stored (not a change).
        came_online = {e.device for e in evs if e.kind == "device_online"}
        hellos = {did: at for at, did in plan.private.get("hellos", ())
                  if did in work and did not in came_online}
        evs = evs + [Event(at, "device_hello", work[did].school_code, did, {})
                     for did, at in hellos.items()]
        return evs, work

    # --- liveness, rollups ------------------------------------------------------------

    def sweep(self, now: Optional[float] = None) -> List[Event]:
        """Mark devices offline that stopped reporting (``liveness.sweep``)."""
        return liveness.sweep(self, now)

    def maintain(self, now: Optional[float] = None) -> Dict[str, int]:
        """Hourly rollups and retention (``rollups.maintain``), then the connectivity
        tables' retention (``retention.prune_connectivity``, batched). Idempotent."""
        now = time.time() if now is None else now
        out = rollups.maintain(self.engine, self.rollup_5m_days, self.rollup_1h_days, now)
        out.update(retention.prune_connectivity(self.engine, self.keep, now, self.timezone))
        return out


__all__ = ["StateStore", "SCHOOL_REFRESH"]
