"""The connectivity evaluator: judges schools from their speed tests (``link_tests``, the
counted ones: ``refused IS NULL``) and light probes (``link_probe_hours``, school hours
only) against the connectivity baseline, and stores the result (``connectivity_schools``,
``connectivity_school_days``; one ``connectivity_status_changed`` event per change). A
thread of the collector service runs it after each ATTT pass; ``run_once`` is one pass.

How a school is judged (docs/connectivity.md, "The connectivity baseline"):

- ``insufficient`` (Không đủ dữ liệu): no counted test in ``window.recent_days`` (7), or
  no successful one in the school-week and fewer than ``fail_after`` failures in a row
  (``no_successful_test``: a failure under ``fail_after`` is never a reason).
- ``below`` (Không đạt): ``failures.fail_after`` (3) consecutive failed tests, or the
  school-week's median download under ``download.bad_mbps`` (1).
- ``improve`` (Cần cải thiện): any other reason: the week's median download under the
  school's required speed (20 Mbps, or 50 kbps per student above 400), upload under
  ``upload.good_mbps``, either under ``contract.min_pct`` % of the contracted speed, the
  median ping above ``latency.max_ping_ms``, uptime (successful probes of
  ``uptime.target`` / attempts in school hours) under ``uptime.min_pct``, the
  international target answering under ``international.min_ok_pct`` % of probes, or a
  high spread of the week's downloads while their median passes (``high_variability``).
- ``meets`` (Đạt) otherwise.

The school-week is the last ``window.week_days`` (5) school days with data (tests or
probes) within ``window.lookback_days``; the school-day is the latest of them. Each day
row of ``connectivity_school_days`` is judged the same way on that day alone.

Incremental: a pass judges the schools with tests received since its watermark (less
``OVERLAP``), once an hour the schools with probes in the hour that closed, the schools
never judged, and every school once per local day and when the baseline file changes.
Probes that arrive late (an agent's queue) are seen by the next daily pass.

Local days and school hours use the province time zone's UTC offset at the time of the
pass (Asia/Ho_Chi_Minh has no daylight saving time), so the database can group probe
hours by local day without a time-zone table. The hours probes count in come from the
baseline file (``school_hours``: its own window); which days are school days also asks the
school calendar (collector/alerting/calendar.py): a holiday, a break or a school's flood
closure is no school day, so a link silent on Tết does not count against the school.
"""
import datetime as _dt
import logging
import statistics
import time
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple

from sqlalchemy import Connection, Engine, bindparam, func, select, text, update
from zoneinfo import ZoneInfo

from ..state import Event
from ..store.events import insert_events
from ..store.schema import (
    attt_state,
    connectivity_school_days,
    connectivity_schools,
    dialect_insert,
    link_probe_hours,
    link_tests,
    org_units,
    schools,
)
from .baseline import ConnectivityBaseline

log = logging.getLogger("schoolmon.collector.connectivity")

EVENT_KIND = "connectivity_status_changed"
STATUSES = ("meets", "improve", "below", "insufficient")
#: Seconds the tests' watermark is read back (rows committed late by a busy ingest).
OVERLAP = 120.0
#: Schools judged per transaction (and between two looks at a busy ingest).
CHUNK = 500
#: Longest wait, seconds, for a busy ingest between two chunks of a pass.
BUSY_WAIT = 30.0
#: PostgreSQL advisory lock key of a pass ("conneval" in ASCII).
LOCK_ID = 0x636F6E6E6576616C
#: The evaluator's own state: a row of ``attt_state`` (one JSON value per key).
STATE_KEY = "connectivity"
_TARGETS = ("gw", "dns", "dom", "intl")
_EPOCH = _dt.date(1970, 1, 1)


class RunStats(NamedTuple):
    full: bool
    schools: int
    changed_schools: int
    seconds: float
    skipped: bool = False


class SchoolHours(NamedTuple):
    """Which local days and hours are school time: ISO weekdays (1 = Monday) and hours
    [start, end) from the baseline, and the school calendar's school days (None: weekdays
    only)."""
    days: Tuple[int, ...]
    start: int
    end: int
    calendar: Any = None

    def is_school_day(self, day_index: int, school: Optional[str] = None,
                      area: Optional[str] = None) -> bool:
        if (day_index + 3) % 7 + 1 not in self.days:  # 1970-01-01 (day 0) was a Thursday
            return False
        if self.calendar is None:
            return True
        day = _EPOCH_DAY + _dt.timedelta(days=day_index)  # a local day's index: its date
        return bool(self.calendar.is_school_day(day, school, area))


_EPOCH_DAY = _dt.date(1970, 1, 1)


class Agg(NamedTuple):
    """A school-day's or school-week's figures."""
    tests: int
    down: List[float]
    up: List[float]
    ping: List[float]
    probes: Dict[str, float]
    bytes: int


def _median(xs: Sequence[float]) -> Optional[float]:
    return float(statistics.median(xs)) if xs else None


def _pct(ok: float, n: float) -> Optional[float]:
    return round(100.0 * ok / n, 2) if n else None


def _mean_ms(p: Dict[str, float], t: str) -> Optional[float]:
    ok = p.get(t + "_ok", 0)
    return round(p.get(t + "_ms", 0.0) / ok, 1) if ok else None


def spread(xs: Sequence[float]) -> Optional[float]:
    """(p75 - p25) / median: how far a week's tests scatter around their median."""
    if len(xs) < 2:
        return None
    m = statistics.median(xs)
    if m <= 0:
        return None
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return round((q[2] - q[0]) / m, 3)


def figures(a: Optional[Agg], b: ConnectivityBaseline) -> Optional[Dict[str, Any]]:
    """The ``day`` / ``week`` dict of the detail (shared decision 3) of an aggregate."""
    if a is None:
        return None
    p = a.probes
    r = lambda x: None if x is None else round(x, 2)  # noqa: E731
    return {"tests": a.tests, "down_mbps": r(_median(a.down)), "up_mbps": r(_median(a.up)),
            "ping_ms": r(_median(a.ping)),
            "uptime_pct": _pct(p.get(b.uptime_target + "_ok", 0),
                               p.get(b.uptime_target + "_n", 0)),
            "intl_ok_pct": _pct(p.get("intl_ok", 0), p.get("intl_n", 0)),
            "gw_ms": _mean_ms(p, "gw"), "dom_ms": _mean_ms(p, "dom"),
            "intl_ms": _mean_ms(p, "intl"), "bytes": a.bytes, "spread": spread(a.down)}


def judge(b: ConnectivityBaseline, fig: Optional[Dict[str, Any]], consecutive: int,
          recent: bool, students: Optional[int],
          contracted: Tuple[Optional[float], Optional[float]]
          ) -> Tuple[str, List[Dict[str, Any]]]:
    """(status, reasons) of a school-week (or one school-day) — pure, no database."""
    if not recent:
        return "insufficient", [{"code": "no_recent_test", "value": None,
                                 "limit": b.recent_days}]
    reasons: List[Dict[str, Any]] = []
    below = False

    def why(code: str, value: Any, limit: Any) -> None:
        reasons.append({"code": code, "value": value, "limit": limit})
    if consecutive >= b.fail_after:
        why("tests_failing", consecutive, b.fail_after)
        below = True
    fig = fig or {}
    down, up = fig.get("down_mbps"), fig.get("up_mbps")
    required = b.required_down_mbps(students)
    if down is None:
        if not below:
            # Tests ran, none succeeded, fewer than fail_after in a row: no speed to judge,
            # and failures under fail_after are never a reason (one failed test must not
            # lower a school): not enough data, whatever else the probes say.
            return "insufficient", [{"code": "no_successful_test", "value": consecutive,
                                     "limit": b.fail_after}]
    elif down < b.bad_down_mbps:
        why("down_below_bad", down, b.bad_down_mbps)
        below = True
    elif down < required:
        why("down_below_good", down, required)
    if up is not None and up < b.good_up_mbps:
        why("up_below_good", up, b.good_up_mbps)
    if b.contract_pct:
        for got, c in ((down, contracted[0]), (up, contracted[1])):
            if got is not None and c:
                limit = round(c * b.contract_pct / 100.0, 2)
                if got < limit:
                    why("below_contract", got, limit)
    ping = fig.get("ping_ms")
    if ping is not None and ping > b.max_ping_ms:
        why("ping_high", ping, b.max_ping_ms)
    uptime = fig.get("uptime_pct")
    if uptime is not None and uptime < b.min_uptime_pct:
        why("uptime_low", uptime, b.min_uptime_pct)
    intl = fig.get("intl_ok_pct")
    if intl is not None and intl < b.min_intl_ok_pct:
        why("intl_unreachable", intl, b.min_intl_ok_pct)
    s = fig.get("spread")
    if (s is not None and down is not None and down >= required and s > b.max_spread_ratio
            and fig.get("ok_tests", 0) >= b.spread_min_tests):
        why("high_variability", s, b.max_spread_ratio)
    return ("below" if below else "improve" if reasons else "meets"), reasons


class Evaluator:
    """``run_once(now)`` judges the schools whose data changed; ``state()`` the pass's
    bookkeeping."""

    def __init__(self, engine: Engine, baseline: ConnectivityBaseline,
                 timezone: str = "Asia/Ho_Chi_Minh",
                 busy: Optional[Callable[[], bool]] = None,
                 hours: Optional[SchoolHours] = None, calendar: Any = None) -> None:
        self.engine = engine
        self.baseline = baseline
        self.tz = ZoneInfo(timezone)
        self.busy = busy
        self.hours = hours or SchoolHours(baseline.school_days, *baseline.hours, calendar)

    def _yield(self) -> None:
        if self.busy is None:
            return
        deadline = time.monotonic() + BUSY_WAIT
        while self.busy() and time.monotonic() < deadline:
            time.sleep(0.05)

    def offset(self, now: float) -> int:
        off = _dt.datetime.fromtimestamp(now, self.tz).utcoffset()
        return int(off.total_seconds()) if off else 0

    def state(self, conn: Optional[Connection] = None) -> Dict[str, Any]:
        def read(c: Connection) -> Dict[str, Any]:
            row = c.execute(select(attt_state.c.value)
                            .where(attt_state.c.key == STATE_KEY)).first()
            return dict(row.value) if row and isinstance(row.value, dict) else {}
        if conn is not None:
            return read(conn)
        with self.engine.connect() as c:
            return read(c)

    def _save_state(self, conn: Connection, value: Dict[str, Any], now: float) -> None:
        ins = dialect_insert(conn, attt_state).values(key=STATE_KEY, value=value,
                                                     updated_at=now, rev=1)
        conn.execute(ins.on_conflict_do_update(
            index_elements=["key"], set_={"value": ins.excluded.value, "updated_at": now,
                                          "rev": attt_state.c.rev + 1}))

    # ------------------------------------------------------------------ one pass
    def run_once(self, now: Optional[float] = None, full: bool = False
                 ) -> Tuple[RunStats, List[Event]]:
        now = time.time() if now is None else now
        t0 = time.perf_counter()
        lock = None
        if self.engine.dialect.name == "postgresql":
            lock = self.engine.connect()
            if not lock.execute(text("SELECT pg_try_advisory_lock(%d)" % LOCK_ID)).scalar():
                lock.close()
                return RunStats(False, 0, 0, 0.0, skipped=True), []
        try:
            return self._run(now, full, t0)
        finally:
            if lock is not None:
                lock.execute(text("SELECT pg_advisory_unlock(%d)" % LOCK_ID))
                lock.commit()
                lock.close()

    def _run(self, now: float, full: bool, t0: float) -> Tuple[RunStats, List[Event]]:
        off = self.offset(now)
        today = (_EPOCH + _dt.timedelta(days=int(now + off) // 86400)).isoformat()
        hour_now = int(now) // 3600 * 3600
        with self.engine.connect() as conn:
            st = self.state(conn)
            full = (full or st.get("baseline_hash") != self.baseline.hash
                    or st.get("full_day") != today or st.get("watermark") is None)
            mark = conn.execute(select(func.max(link_tests.c.received_at))).scalar()
            if full:
                codes = set(conn.execute(select(schools.c.code)).scalars())
            else:
                since = float(st["watermark"]) - OVERLAP
                codes = set(conn.execute(select(link_tests.c.school_code).where(
                    link_tests.c.received_at > since).distinct()).scalars())
                probe_mark = int(st.get("probe_mark") or hour_now)
                if hour_now > probe_mark:  # an hour closed: the schools that probed in it
                    codes.update(conn.execute(select(link_probe_hours.c.school_code).where(
                        link_probe_hours.c.hour_start >= probe_mark - 3600).distinct())
                        .scalars())
                codes.update(conn.execute(select(schools.c.code).where(schools.c.code.not_in(
                    select(connectivity_schools.c.school_code)))).scalars())
        events: List[Event] = []
        ordered = sorted(codes)
        for i in range(0, len(ordered), CHUNK):
            self._yield()
            events += self._judge_schools(ordered[i:i + CHUNK], now, off)
        with self.engine.begin() as conn:
            value = dict(self.state(conn))
            if mark is not None:
                value["watermark"] = max(float(mark), float(value.get("watermark") or 0.0))
            elif value.get("watermark") is None:
                value["watermark"] = 0.0
            value["probe_mark"] = hour_now
            value["baseline_hash"] = self.baseline.hash
            if full:
                value["full_day"] = today
                value["full_at"] = now
            value["last_at"] = now
            self._save_state(conn, value, now)
        return RunStats(full, len(ordered), len(events), time.perf_counter() - t0), events

    # ------------------------------------------------------------------ reading
    def _probe_days(self, conn: Connection, codes: Sequence[str], start: int, off: int
                    ) -> Dict[str, Dict[int, Dict[str, float]]]:
        """school -> local day index -> summed probe counts, school hours only (grouped by
        the database: one row per school-day)."""
        h = self.hours
        cols = ["n"] + [t + s for t in _TARGETS for s in ("_n", "_ok", "_ms")]
        sql = text(
            "SELECT school_code, (hour_start + :off) / 86400 AS d, %s FROM link_probe_hours "
            "WHERE school_code IN :codes AND hour_start >= :start "
            "AND ((hour_start + :off) %% 86400) / 3600 >= :h0 "
            "AND ((hour_start + :off) %% 86400) / 3600 < :h1 "
            "AND (((hour_start + :off) / 86400) + 3) %% 7 + 1 IN :days "
            "GROUP BY school_code, (hour_start + :off) / 86400"
            % ", ".join("SUM(%s)" % c for c in cols)
        ).bindparams(bindparam("codes", expanding=True), bindparam("days", expanding=True))
        out: Dict[str, Dict[int, Dict[str, float]]] = {}
        for row in conn.execute(sql, {"off": off, "codes": list(codes), "start": start,
                                      "h0": h.start, "h1": h.end, "days": list(h.days)}):
            out.setdefault(row[0], {})[int(row[1])] = dict(zip(cols, row[2:]))
        return out

    def _judge_schools(self, codes: Sequence[str], now: float, off: int) -> List[Event]:
        b = self.baseline
        today_idx = int(now + off) // 86400
        start_idx = today_idx - b.lookback_days + 1
        start = start_idx * 86400 - off
        recent_from = now - b.recent_days * 86400
        events: List[Event] = []
        with self.engine.begin() as conn:
            info = {r.code: r for r in conn.execute(
                select(schools.c.code, schools.c.students, schools.c.contracted_down_mbps,
                       schools.c.contracted_up_mbps, org_units.c.code.label("area"))
                .select_from(schools.outerjoin(org_units,
                                               org_units.c.id == schools.c.org_unit_id))
                .where(schools.c.code.in_(codes)))}
            t = link_tests.c
            #: school -> [(ts, ok, down, up, ping, bytes, device, reason)] oldest first
            tests: Dict[str, List[Tuple[Any, ...]]] = {}
            for code, ts, ok, down, up, ping, rx, tx, dev, reason in conn.execute(
                    select(t.school_code, t.ts, t.ok, t.down_mbps, t.up_mbps, t.ping_ms,
                           t.bytes_rx, t.bytes_tx, t.device_id, t.reason)
                    .where(t.school_code.in_(codes), t.ts >= start, t.ts <= now + 300,
                           t.refused.is_(None)).order_by(t.school_code, t.ts)):
                got = tests.get(code)
                if got is None:
                    got = tests[code] = []
                got.append((ts, ok, down, up, ping, (rx or 0) + (tx or 0), dev, reason))
            probes = self._probe_days(conn, codes, start, off)
            stored = {r.school_code: r for r in conn.execute(
                select(connectivity_schools).where(
                    connectivity_schools.c.school_code.in_(codes)))}
            days_rows: List[Dict[str, Any]] = []
            judged: List[Tuple[str, str, Dict[str, Any]]] = []
            for code in codes:
                s = info.get(code)
                if s is None:
                    continue
                status, detail, day_rows = self._judge_one(
                    code, s, tests.get(code, []), probes.get(code, {}), now, off,
                    recent_from)
                days_rows += day_rows
                judged.append((code, status, detail))
            events += self._store(conn, judged, stored, now)
            if days_rows:
                ins = dialect_insert(conn, connectivity_school_days)
                conn.execute(ins.on_conflict_do_update(
                    index_elements=["school_code", "day"],
                    set_={c: getattr(ins.excluded, c) for c in (
                        "status", "tests", "down_mbps", "up_mbps", "ping_ms", "uptime_pct",
                        "bytes", "evaluated_at")}), days_rows)
            insert_events(conn, events)
        return events

    def _judge_one(self, code: str, s: Any, tests: List[Any],
                   probes: Dict[int, Dict[str, float]], now: float, off: int,
                   recent_from: float
                   ) -> Tuple[str, Dict[str, Any], List[Dict[str, Any]]]:
        b = self.baseline
        by_day: Dict[int, List[Any]] = {}
        for r in tests:
            by_day.setdefault(int(r[0] + off) // 86400, []).append(r)
        school_days = sorted(d for d in set(by_day) | set(probes)
                             if self.hours.is_school_day(d, code, s.area))
        week_idx = school_days[-b.week_days:]
        contracted = (s.contracted_down_mbps, s.contracted_up_mbps)

        def agg(days: Iterable[int]) -> Agg:
            a = Agg(0, [], [], [], {}, 0)
            n = 0
            by = 0
            for d in days:
                for _ts, ok, down, up, ping, moved, _dev, _why in by_day.get(d, ()):
                    n += 1
                    by += moved
                    if ok:
                        if down is not None:
                            a.down.append(down)
                        if up is not None:
                            a.up.append(up)
                        if ping is not None:
                            a.ping.append(ping)
                for k, v in probes.get(d, {}).items():
                    a.probes[k] = a.probes.get(k, 0) + (v or 0)
            return a._replace(tests=n, bytes=by)

        def fig(days: List[int]) -> Optional[Dict[str, Any]]:
            if not days:
                return None
            a = agg(days)
            f = figures(a, b)
            assert f is not None
            f["ok_tests"] = len(a.down)
            return f

        def failures(rs: Sequence[Any]) -> int:
            n = 0
            for r in reversed(rs):
                if r[1]:
                    break
                n += 1
            return n

        consecutive = failures(tests)
        recent = bool(tests) and tests[-1][0] >= recent_from
        week = fig(week_idx)
        status, reasons = judge(b, week, consecutive, recent, s.students, contracted)
        day_rows: List[Dict[str, Any]] = []
        day_fig = None
        for d in week_idx:
            f = fig([d])
            assert f is not None
            date = (_EPOCH + _dt.timedelta(days=d)).isoformat()
            f["date"] = date
            ds, _ = judge(b, f, failures(by_day.get(d, [])), bool(by_day.get(d)),
                          s.students, contracted)
            day_rows.append({"school_code": code, "day": date, "status": ds,
                             "tests": f["tests"], "down_mbps": f["down_mbps"],
                             "up_mbps": f["up_mbps"], "ping_ms": f["ping_ms"],
                             "uptime_pct": f["uptime_pct"], "bytes": f["bytes"],
                             "evaluated_at": now})
            day_fig = f
        if week is not None:
            week["days"] = len(week_idx)
            week["date"] = day_fig["date"] if day_fig else None
        last = tests[-1] if tests else None
        detail = {
            "thresholds": b.thresholds(s.students),
            "contracted": {"down_mbps": contracted[0], "up_mbps": contracted[1]},
            "day": day_fig, "week": week, "consecutive_failures": consecutive,
            "last_test": None if last is None else {
                "ts": last[0], "ok": bool(last[1]), "down_mbps": last[2], "up_mbps": last[3],
                "ping_ms": last[4], "reason": last[7], "device": last[6]},
            "reasons": reasons}
        return status, detail, day_rows

    def _store(self, conn: Connection, judged: List[Tuple[str, str, Dict[str, Any]]],
               stored: Dict[str, Any], now: float) -> List[Event]:
        """Compare-and-set the schools' rows (on ``rev``); the events of the changes.
        Schools judged for the first time: one INSERT ... ON CONFLICT DO NOTHING RETURNING
        (a school another collector inserted first is its change, not ours); unchanged
        statuses: one executemany (a lost compare-and-set loses only a repeat of the same
        status); changed ones one by one (the event only if our update won)."""
        t = connectivity_schools
        events: List[Event] = []
        first: List[Dict[str, Any]] = [
            {"school_code": c, "status": st, "since": now, "evaluated_at": now, "detail": d,
             "rev": 1} for c, st, d in judged if c not in stored]
        if first:
            ins = dialect_insert(conn, t).on_conflict_do_nothing(index_elements=["school_code"])
            won: Set[str] = set()
            for i in range(0, len(first), 1000):
                won.update(conn.execute(ins.returning(t.c.school_code),
                                        first[i:i + 1000]).scalars())
            events += [Event(now, EVENT_KIND, r["school_code"], None,
                             {"from": "not_evaluated", "to": r["status"]})
                       for r in first if r["school_code"] in won]
        cas = (update(t).where(t.c.school_code == bindparam("b_code"),
                               t.c.rev == bindparam("b_rev"))
               .values(status=bindparam("b_status"), since=bindparam("b_since"),
                       evaluated_at=now, detail=bindparam("b_detail"),
                       rev=bindparam("b_rev") + 1))
        same = []
        for code, status, detail in judged:
            prev = stored.get(code)
            if prev is None:
                continue
            row = {"b_code": code, "b_rev": prev.rev, "b_status": status, "b_detail": detail,
                   "b_since": prev.since if prev.status == status else now}
            if prev.status == status:
                same.append(row)
            elif conn.execute(cas, row).rowcount == 1:
                events.append(Event(now, EVENT_KIND, code, None,
                                    {"from": prev.status, "to": status}))
        if same:
            conn.execute(cas, same)
        return events


def status_counts(conn: Connection, school_codes: Optional[Iterable[str]] = None
                  ) -> Dict[str, int]:
    """Schools per connectivity status (every status present, 0 included) among
    ``school_codes`` (None: all); a school never judged counts as ``insufficient``."""
    out = {s: 0 for s in STATUSES}
    t = connectivity_schools.c
    q = select(t.status, func.count()).group_by(t.status)
    n_all: Optional[int] = None
    if school_codes is not None:
        codes = list(school_codes)
        n_all = len(codes)
        got: Dict[str, int] = {}
        for i in range(0, len(codes), 10000):
            for status, n in conn.execute(q.where(t.school_code.in_(codes[i:i + 10000]))):
                got[status] = got.get(status, 0) + n
    else:
        got = {s: int(n) for s, n in conn.execute(q)}
        n_all = conn.execute(select(func.count()).select_from(schools)).scalar() or 0
    for status, n in got.items():
        out[status] = out.get(status, 0) + int(n)
    out["insufficient"] += max(0, n_all - sum(got.values()))
    return out


def evaluator_from_config(cfg: Any, engine: Engine,
                          busy: Optional[Callable[[], bool]] = None,
                          calendar: Any = None) -> Evaluator:
    """The evaluator of ``cfg`` (BaselineError when the baseline file cannot be used) on
    the school ``calendar`` (None: the one ``alerting.calendar_file`` names)."""
    from ..alerting.calendar import calendar_from_config
    from .baseline import from_config
    province = getattr(cfg, "province", None)
    return Evaluator(engine, from_config(cfg), getattr(province, "timezone",
                                                       "Asia/Ho_Chi_Minh"), busy=busy,
                     calendar=calendar if calendar is not None else calendar_from_config(cfg))


__all__ = ["Evaluator", "RunStats", "SchoolHours", "judge", "figures", "status_counts",
           "evaluator_from_config", "EVENT_KIND", "STATUSES", "spread"]
