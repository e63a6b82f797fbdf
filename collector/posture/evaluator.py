"""The ATTT evaluator: judges devices whose security or inventory message is new, then
their schools, and stores the results (a thread of the collector service, like the
liveness sweep; ``run_once`` is one pass).

Incremental: it reads ``device_latest`` rows of kind ``security`` / ``inventory`` received
after its watermark (less :data:`OVERLAP` seconds, for rows committed late by a busy
ingest) whose ``ts`` is not the one it judged last (``attt_devices.reported_at`` /
``inventory_ts``), so a message is judged once however often the overlap reads it. It judges
everything again when the rules' hash (baseline file, OS table, code version) differs from
the stored one, and once per local day (the 7-day silence rule, signature and patch ages).
Nothing is added to the ingest path: the evaluator only reads what ingest stored.

Two collectors on one store: on PostgreSQL a pass holds an advisory lock (the other skips
that pass); on either back end the school rows are changed by compare-and-set on ``rev``,
so each change of status is one event (``attt_status_changed``), and device rows are
upserts of the same values.
"""
import datetime as _dt
import logging
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

from sqlalchemy import Connection, Engine, case, delete, func, or_, select, text, update
from zoneinfo import ZoneInfo

from ..state import Event
from ..store.events import insert_events
from ..store.schema import (
    attt_devices,
    attt_school_days,
    attt_schools,
    attt_state,
    device_latest,
    devices,
    dialect_insert,
    schools,
)
from .rules import DeviceInput, PcSummary, Rules, evaluate_device, evaluate_school, is_pc

log = logging.getLogger("schoolmon.collector.posture")

#: Seconds the watermark is read back: rows ingest committed after a later one.
OVERLAP = 120.0
#: Devices judged per transaction (and between two looks at a busy ingest).
CHUNK = 1000
#: PostgreSQL advisory lock key of a pass ("attteval" in ASCII).
LOCK_ID = 0x617474746576616C
EVENT_KIND = "attt_status_changed"
#: Longest wait, seconds, for a busy ingest between two chunks of a pass.
BUSY_WAIT = 30.0
KINDS = ("security", "inventory")


class RunStats(NamedTuple):
    full: bool
    devices: int
    schools: int
    changed_schools: int
    seconds: float
    skipped: bool = False


class Evaluator:
    """``run_once(now)`` judges what changed; ``state()`` what the store holds."""

    def __init__(self, engine: Engine, rules: Rules, timezone: str = "Asia/Ho_Chi_Minh",
                 busy: Optional[Callable[[], bool]] = None) -> None:
        self.engine = engine
        self.rules = rules
        self.tz = ZoneInfo(timezone)
        #: True while the process has more urgent work (ingest with a backlog): a pass
        #: waits between chunks (at most BUSY_WAIT s each), since it shares the GIL and,
        #: on SQLite, the one writer with ingest
        self.busy = busy

    def _yield(self) -> None:
        if self.busy is None:
            return
        deadline = time.monotonic() + BUSY_WAIT
        while self.busy() and time.monotonic() < deadline:
            time.sleep(0.05)

    # ------------------------------------------------------------------ state
    def state(self, conn: Optional[Connection] = None) -> Dict[str, Any]:
        def read(c: Connection) -> Dict[str, Any]:
            row = c.execute(select(attt_state.c.value).where(attt_state.c.key == "run")).first()
            return dict(row.value) if row and isinstance(row.value, dict) else {}
        if conn is not None:
            return read(conn)
        with self.engine.connect() as c:
            return read(c)

    def _save_state(self, conn: Connection, value: Dict[str, Any], now: float) -> None:
        ins = dialect_insert(conn, attt_state).values(key="run", value=value, updated_at=now,
                                                     rev=1)
        conn.execute(ins.on_conflict_do_update(
            index_elements=["key"], set_={"value": ins.excluded.value, "updated_at": now,
                                          "rev": attt_state.c.rev + 1}))

    def local_day(self, now: float) -> str:
        return _dt.datetime.fromtimestamp(now, self.tz).date().isoformat()

    # ------------------------------------------------------------------ one pass
    def run_once(self, now: Optional[float] = None, full: bool = False
                 ) -> Tuple[RunStats, List[Event]]:
        """One pass; returns its figures and the events it stored."""
        now = time.time() if now is None else now
        t0 = time.perf_counter()
        lock = None
        if self.engine.dialect.name == "postgresql":
            lock = self.engine.connect()
            if not lock.execute(text("SELECT pg_try_advisory_lock(%d)" % LOCK_ID)).scalar():
                lock.close()
                return RunStats(False, 0, 0, 0, 0.0, skipped=True), []
        try:
            return self._run(now, full, t0)
        finally:
            if lock is not None:
                lock.execute(text("SELECT pg_advisory_unlock(%d)" % LOCK_ID))
                lock.commit()
                lock.close()

    def _run(self, now: float, full: bool, t0: float) -> Tuple[RunStats, List[Event]]:
        rules_hash = self.rules.hash
        today = self.local_day(now)
        with self.engine.connect() as conn:
            st = self.state(conn)
            full = (full or st.get("rules_hash") != rules_hash or st.get("full_day") != today
                    or st.get("watermark") is None)
            mark = conn.execute(select(func.max(device_latest.c.received_at))
                                .where(device_latest.c.kind.in_(KINDS))).scalar()
            if full:
                ids = list(conn.execute(select(devices.c.id).where(
                    devices.c.state != "retired")).scalars())
                school_codes: Set[str] = set(conn.execute(select(schools.c.code)).scalars())
            else:
                # rows received since the watermark (less the overlap) whose message is not
                # the one judged last: the overlap costs a comparison, not a judgement
                since = float(st["watermark"]) - OVERLAP
                dl, a = device_latest.c, attt_devices.c
                judged_ts = case((dl.kind == "security", a.reported_at),
                                 else_=a.inventory_ts)
                ids = list(conn.execute(
                    select(dl.device_id).select_from(device_latest.outerjoin(
                        attt_devices, a.device_id == dl.device_id))
                    .where(dl.kind.in_(KINDS), dl.received_at > since,
                           or_(judged_ts.is_(None), judged_ts != dl.ts))
                    .distinct()).scalars())
                # (a device that never sent inventory nor security is judged by the daily
                # full pass: the agent sends its inventory at start)
                school_codes = set()
                # retired since their last judgement: out of the school's PCs
                gone = conn.execute(select(attt_devices.c.device_id, attt_devices.c.school_code)
                                    .join(devices, devices.c.id == attt_devices.c.device_id)
                                    .where(devices.c.state == "retired")).all()
                if gone:
                    with self.engine.begin() as w:
                        w.execute(delete(attt_devices).where(
                            attt_devices.c.device_id.in_([g.device_id for g in gone])))
                    school_codes.update(g.school_code for g in gone)
                # schools never judged (new in the registry)
                school_codes.update(conn.execute(select(schools.c.code).where(
                    schools.c.code.not_in(select(attt_schools.c.school_code)))).scalars())
        ids = sorted(set(ids))
        memo: Dict[Any, Any] = {}
        for i in range(0, len(ids), CHUNK):
            self._yield()
            school_codes |= self._judge_devices(ids[i:i + CHUNK], now, memo)
        if full:
            with self.engine.begin() as w:  # devices retired or removed since: not PCs now
                w.execute(delete(attt_devices).where(attt_devices.c.device_id.in_(
                    select(devices.c.id).where(devices.c.state == "retired"))))
        events: List[Event] = []
        codes = sorted(school_codes)
        for i in range(0, len(codes), CHUNK):
            self._yield()
            events += self._judge_schools(codes[i:i + CHUNK], now, today)
        with self.engine.begin() as conn:
            value = dict(self.state(conn))
            if mark is not None:
                value["watermark"] = max(float(mark), float(value.get("watermark") or 0.0))
            elif value.get("watermark") is None:
                value["watermark"] = 0.0
            value["rules_hash"] = rules_hash
            if full:
                value["full_day"] = today
                value["full_at"] = now
            value["last_at"] = now
            self._save_state(conn, value, now)
        return RunStats(full, len(ids), len(codes), len(events),
                        time.perf_counter() - t0), events

    # ------------------------------------------------------------------ devices
    def _judge_devices(self, ids: Sequence[str], now: float, memo: Dict[Any, Any]
                       ) -> Set[str]:
        """Judge ``ids`` and store them; returns the schools they are (and were) in."""
        schools_touched: Set[str] = set()
        with self.engine.begin() as conn:
            rows = {r.id: r for r in conn.execute(
                select(devices.c.id, devices.c.school_code, devices.c.role, devices.c.state)
                .where(devices.c.id.in_(ids)))}
            latest: Dict[Tuple[str, str], Any] = {}
            for r in conn.execute(select(device_latest.c.device_id, device_latest.c.kind,
                                         device_latest.c.ts, device_latest.c.payload)
                                  .where(device_latest.c.device_id.in_(ids),
                                         device_latest.c.kind.in_(KINDS))):
                latest[(r.device_id, r.kind)] = r
            old = {r.device_id: r for r in conn.execute(
                select(attt_devices.c.device_id, attt_devices.c.school_code,
                       attt_devices.c.states).where(attt_devices.c.device_id.in_(ids)))}
            out: List[Dict[str, Any]] = []
            for did in ids:
                row = rows.get(did)
                if row is None or row.state == "retired":
                    continue
                sec = latest.get((did, "security"))
                inv = latest.get((did, "inventory"))
                inv_payload = inv.payload if inv is not None and isinstance(inv.payload, dict) \
                    else None
                role = row.role or (inv_payload or {}).get("role")
                d = DeviceInput(did, row.school_code, role,
                                sec.payload if sec is not None and isinstance(sec.payload, dict)
                                else None, float(sec.ts) if sec is not None else None,
                                inv_payload)
                result = evaluate_device(self.rules, d, now, memo=memo)
                prev = old.get(did)
                prev_states = (prev.states or {}) if prev else {}
                for cid, c in result["checks"].items():
                    p = prev_states.get(cid)
                    if p and p[0] == c["state"]:
                        c["since"] = p[1]
                        first = len(p) > 2 and bool(p[2])
                    else:
                        # a change seen now; or the check's first judgement, when the state
                        # may have begun long before (``since_first``)
                        c["since"] = now
                        first = not p
                    if first:
                        c["since_first"] = True
                result["role"] = role
                schools_touched.add(row.school_code)
                if prev is not None and prev.school_code != row.school_code:
                    schools_touched.add(prev.school_code)
                out.append({"device_id": did, "school_code": row.school_code,
                            "evaluated_at": now, "reported_at": result["reported_at"],
                            "inventory_ts": float(inv.ts) if inv is not None else None,
                            "stale": result["stale"], "worst": result["worst"],
                            "fail_n": result["counts"]["fail"],
                            "unknown_n": result["counts"]["unknown"],
                            "os_status": result["os_support"]["status"],
                            "crit_ok": result["crit_ok"],
                            "crit_high_ok": result["crit_high_ok"],
                            "states": {cid: [c["state"], c["since"]] + (
                                [1] if c.get("since_first") else [])
                                for cid, c in result["checks"].items()},
                            "result": result})
            if out:
                ins = dialect_insert(conn, attt_devices)
                cols = ("school_code", "evaluated_at", "reported_at", "inventory_ts", "stale",
                        "worst",
                        "fail_n", "unknown_n", "os_status", "crit_ok", "crit_high_ok",
                        "states", "result")
                conn.execute(ins.on_conflict_do_update(
                    index_elements=["device_id"],
                    set_={c: getattr(ins.excluded, c) for c in cols}), out)
        return schools_touched

    # ------------------------------------------------------------------ schools
    def _judge_schools(self, codes: Sequence[str], now: float, today: str) -> List[Event]:
        events: List[Event] = []
        with self.engine.begin() as conn:
            pcs: Dict[str, List[PcSummary]] = {c: [] for c in codes}
            for r in conn.execute(
                    select(attt_devices.c.device_id, attt_devices.c.school_code,
                           attt_devices.c.reported_at,
                           attt_devices.c.states, devices.c.role, attt_devices.c.crit_ok,
                           attt_devices.c.crit_high_ok)
                    .join(devices, devices.c.id == attt_devices.c.device_id)
                    .where(attt_devices.c.school_code.in_(codes),
                           devices.c.school_code == attt_devices.c.school_code,
                           devices.c.state != "retired")):
                if not is_pc(r.role) or r.school_code not in pcs:
                    continue
                pcs[r.school_code].append(PcSummary(
                    r.role, r.reported_at, bool(r.crit_ok), bool(r.crit_high_ok),
                    {cid: st[0] for cid, st in (r.states or {}).items()}, r.device_id))
            stored = {r.school_code: r for r in conn.execute(
                select(attt_schools).where(attt_schools.c.school_code.in_(codes)))}
            days: List[Dict[str, Any]] = []
            for code in codes:
                judged = evaluate_school(self.rules, pcs[code], now)
                status, detail = judged["status"], judged["detail"]
                prev = stored.get(code)
                if prev is None:
                    # the status may have begun before this first judgement: said so
                    detail["since_first"] = True
                    ins = dialect_insert(conn, attt_schools).values(
                        school_code=code, status=status, since=now, evaluated_at=now,
                        detail=detail, rev=1)
                    got = conn.execute(ins.on_conflict_do_nothing(
                        index_elements=["school_code"]).returning(attt_schools.c.rev)).first()
                    if got is None:  # another collector was first: it owns this change
                        continue
                    events.append(Event(now, EVENT_KIND, code, None,
                                        {"from": "not_evaluated", "to": status}))
                else:
                    changed = prev.status != status
                    if not changed and isinstance(prev.detail, dict) \
                            and prev.detail.get("since_first"):
                        detail["since_first"] = True
                    res = conn.execute(update(attt_schools).where(
                        attt_schools.c.school_code == code, attt_schools.c.rev == prev.rev)
                        .values(status=status, since=now if changed else prev.since,
                                evaluated_at=now, detail=detail, rev=prev.rev + 1))
                    if res.rowcount != 1:
                        continue
                    if changed:
                        events.append(Event(now, EVENT_KIND, code, None,
                                            {"from": prev.status, "to": status}))
                days.append({"school_code": code, "day": today, "status": status,
                             "evaluated_at": now})
            if days:
                ins = dialect_insert(conn, attt_school_days)
                conn.execute(ins.on_conflict_do_update(
                    index_elements=["school_code", "day"],
                    set_={"status": ins.excluded.status,
                          "evaluated_at": ins.excluded.evaluated_at}), days)
            insert_events(conn, events)
        return events


def rules_from_config(cfg: Any) -> Rules:
    """The baseline and OS table of ``cfg.baseline`` (absent: the shipped files);
    BaselineError / ConfigError when a file cannot be used."""
    from ..baseline import load_baseline, load_os_table
    section = getattr(cfg, "baseline", None)
    return Rules(load_baseline(getattr(section, "attt_file", "") or None),
                 load_os_table(getattr(section, "os_support_file", "") or None))


__all__ = ["Evaluator", "RunStats", "rules_from_config", "EVENT_KIND", "OVERLAP", "CHUNK"]
