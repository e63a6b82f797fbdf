"""A plausible past for the simulated province, written before the live simulation starts
(the demo): the charts of a fresh demo would otherwise show one point.

For every device of a ``Province``, over the last ``days`` days (default 30):

- **When it was on**: lab PCs Monday–Saturday in school hours (about 07:00–17:00
  Asia/Ho_Chi_Minh, a little different every day, some days not used), office PCs the same
  (Saturday mornings only), servers and routers always. Devices of the ``offline`` profile
  went away at a moment of the past (``offline_since``): most days ago (some more than 3,
  so "offline for more than 3 days" finds them), a router of a router-down school a few
  hours ago.
- **Rollups**: 5-minute rollups for the last ``five_min_days`` days, hourly rollups for
  every day (the recent hours aggregated from the 5-minute rows, as ``rollups.maintain``
  builds them); values follow the device's profile as the live health payloads do
  (``payloads.health_fields``: busy, slow, old, nearly full disk).
- **Status history**: ``device_online`` / ``device_offline`` events for every switch-on
  and switch-off, and for the devices that went away their row (``last_seen``,
  ``status_since``, reason ``lost``) with their last inventory, health and security.
- **ATTT history** (``write_attt_history``): each school's ATTT status of every past day,
  judged by the collector's own rules (``posture.evaluate_device`` / ``evaluate_school``)
  on the facts its PCs reported by that day's end (``simulate.posture``: stories such as a
  lab re-imaged without antivirus make a trend), the school's current status with the day
  it began, and an ``attt_status_changed`` event for each change, as the evaluator would
  have written them. Today is the live evaluator's.

Deterministic: the values of a device's day come from (seed, device, day) only, so a
restart writes the same rows; rollups and device rows are inserted "if absent" and the
history's events replaced, so writing twice leaves the store as writing once.
"""
import random
import time
import zlib
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from schoolmon.protocol import envelope
from sqlalchemy import Connection, Engine, Table, and_, bindparam, delete, func, select

from ..families.inventory import os_summary
from ..families.router import DEFAULT_HB as ROUTER_HB
from ..families.router import router_id
from ..posture.rules import DeviceInput, PcSummary, Rules, evaluate_device, evaluate_school, is_pc, states_of
from ..state import Event
from ..store.bulk import BulkStatement, raw_cursor, to_json
from ..store.events import insert_events
from ..store.rollups import BUCKET_1H, BUCKET_5M
from ..store.schema import (
    ROLLUP_METRICS,
    attt_devices,
    attt_school_days,
    attt_schools,
    attt_state,
    device_latest,
    devices,
    dialect_insert,
    events,
    link_probe_hours,
    link_tests,
    rollup_1h,
    rollup_5m,
)
from ..text import DEFAULT_TIMEZONE, utc_offset
from .fixture import Province, SimDevice
from .link import (
    LinkProfile,
    dead_router_at,
    deal_links,
    probe_shares,
    router_fields,
    router_state,
    speedtest_fields,
    story_start,
)
from .payloads import health_fields, inventory_fields
from .posture import security_fields

HISTORY_DAYS = 30
#: 5-minute rollups are written for this many days (the device page's 24 h charts read
#: them; older ranges read hourly rollups). Seven days would fill the school page's 7-day
#: chart, which reads 5-minute rollups, but triple the rows and the time to write them.
FIVE_MIN_DAYS = 2
DAY = 86400
#: Health messages per 5-minute bucket of a device that was on (hb 60 s).
PER_BUCKET = BUCKET_5M // 60
#: ``device_offline`` details, as JSON text for the bulk insert.
LOST, SHUTDOWN = to_json({"reason": "lost"}), to_json({"reason": "shutdown"})
#: The events this module writes (and replaces on a second run).
HISTORY_EVENT_KINDS = ("device_online", "device_offline")


@dataclass
class HistoryStats:
    """What ``write_history`` wrote (rows built, whether new or already there)."""

    days: int = 0
    devices: int = 0
    rows_5m: int = 0
    rows_1h: int = 0
    events: int = 0
    gone: int = 0
    seconds: float = 0.0


def _rng(seed: int, *parts: Any) -> random.Random:
    return random.Random("%d|%s" % (seed, "|".join(str(p) for p in parts)))


def offline_since(province: Province, now: float, seed: int = 1) -> Dict[str, float]:
    """When each device of the ``offline`` profile went away (UTC epoch s): a router of a
    router-down school 2–20 hours ago, other devices 0.5–14 days ago (about half more than
    3 days). Anchored to the start of today (UTC), so a restart the same day agrees.
    A PC silent for more than 7 days leaves its school without enough security reports
    (Không đủ dữ liệu): only the schools planned so (``posture``) have PCs away that long."""
    anchor = int(now) // DAY * DAY
    out: Dict[str, float] = {}
    for d in province.devices:
        if d.online:
            continue
        r = _rng(seed, "gone", d.id)
        if d.role == "router":
            ago = r.uniform(2, 20) * 3600.0
        elif r.random() < 0.5:
            longest = 14 if province.plans.get(d.school) == "insufficient" else 6.6
            ago = r.uniform(3.2, longest) * DAY
        else:
            ago = r.uniform(0.5, 2.8) * DAY
        out[d.id] = min(anchor - ago, now - 3600.0)  # at least an hour before now
    return out


def _on_spans(d: SimDevice, day_start: int, weekday: int, r: random.Random
              ) -> List[Tuple[int, int]]:
    """[start, end) UTC seconds the device was on during the local day at ``day_start``
    (``weekday`` 0 = Monday)."""
    if d.role in ("router", "server"):
        return [(day_start, day_start + DAY)]
    if weekday == 6:  # Sunday
        return []
    if d.role == "lab" and r.random() < 0.12:  # a day without Tin học lessons
        return []
    on = 7 * 3600 + r.randint(0, 9) * BUCKET_5M
    off = (11 * 3600 + r.randint(0, 6) * BUCKET_5M) if weekday == 5 else (
        16 * 3600 + r.randint(0, 12) * BUCKET_5M)
    if d.role == "lab" and weekday != 5 and r.random() < 0.4:  # off over the lunch break
        noon, back = 11 * 3600 + 1800, 13 * 3600 + r.randint(0, 6) * BUCKET_5M
        return [(day_start + on, day_start + noon), (day_start + back, day_start + off)]
    return [(day_start + on, day_start + off)]


#: Health payloads per device and day the buckets' values are drawn from (as the live
#: simulation draws its messages from a few templates).
VARIANTS = 4


def _day_metrics(d: SimDevice, r: random.Random, disk_pct: float) -> List[List[Optional[float]]]:
    """A day's few sets of ROLLUP_METRICS values, from the live payloads' profile ranges."""
    out = []
    for _ in range(VARIANTS):
        f = health_fields(d, r, 0)
        values = {"cpu_pct": f["cpu_pct"], "mem_pct": f["mem_pct"], "swap_pct": f["swap_pct"],
                  "disk_pct": disk_pct, "temp": f.get("temp"),
                  "rx": float(sum(n["rx"] for n in f["nics"])),
                  "tx": float(sum(n["tx"] for n in f["nics"]))}
        out.append([values[m] for m in ROLLUP_METRICS])
    return out


def _agg(values: List[Optional[float]], n: int, r: random.Random) -> List[Any]:
    """A rollup's columns after (device, bucket): n, then per metric count, min, max, sum."""
    out: List[Any] = [n]
    spread = r.uniform(0.02, 0.25)  # how much the bucket's messages differed
    for v in values:
        if v is None:
            out += [0, None, None, None]
        else:
            out += [n, max(0.0, v - v * spread), v + v * spread, v * n]
    return out


def _merge_hour(rows: List[Tuple[Any, ...]]) -> List[Any]:
    """The hourly rollup of 5-minute rows (as ``rollups.maintain`` builds it)."""
    out: List[Any] = [sum(r[2] for r in rows)]
    for j in range(3, 3 + 4 * len(ROLLUP_METRICS), 4):
        have = [r for r in rows if r[j]]
        if not have:
            out += [0, None, None, None]
            continue
        out += [sum(r[j] for r in have), min(r[j + 1] for r in have),
                max(r[j + 2] for r in have), sum(r[j + 3] for r in have)]
    return out


def build_history(province: Province, now: Optional[float] = None, days: int = HISTORY_DAYS,
                  five_min_days: int = FIVE_MIN_DAYS, seed: int = 1
                  ) -> Tuple[List[Tuple[Any, ...]], List[Tuple[Any, ...]], List[Dict[str, Any]],
                             Dict[str, float], Dict[str, Tuple[float, float]]]:
    """(5-minute rows, hourly rows, events, offline_since, last time on) of the
    province's past up to ``now`` (exclusive of the current 5-minute bucket, which the live
    simulation fills). Hourly rows may repeat a (device, hour) split by the 5-minute
    window: ``_dedupe``. "Last time on" is (from, until) of each device's last span on."""
    now = time.time() if now is None else now
    end = int(now) // BUCKET_5M * BUCKET_5M
    offset = utc_offset(now)
    today = (int(now) + offset) // DAY * DAY - offset  # local midnight, UTC seconds
    start = end - days * DAY
    five_from = end - five_min_days * DAY
    gone = offline_since(province, now, seed)
    last_on: Dict[str, Tuple[float, float]] = {}
    rows_5m: List[Tuple[Any, ...]] = []
    rows_1h: List[Tuple[Any, ...]] = []
    evs: List[Dict[str, Any]] = []
    for d in province.devices:
        until = min(end, int(gone[d.id]) // BUCKET_5M * BUCKET_5M) if d.id in gone else end
        disk = _rng(seed, "disk", d.id).uniform(92, 98) if d.profile == "slow" else \
            _rng(seed, "disk", d.id).uniform(20, 75)
        spans: List[Tuple[int, int, random.Random, List[List[Optional[float]]]]] = []
        for day in range(today - days * DAY, today + DAY, DAY):
            weekday = int((day + offset) // DAY + 3) % 7  # 1970-01-01 was a Thursday
            r = _rng(seed, "day", d.id, (day + offset) // DAY)
            disk = min(99.5, disk + r.uniform(0, 0.08))  # disks fill slowly
            pool = _day_metrics(d, r, round(disk, 1))
            for a, b in _on_spans(d, day, weekday, r):
                a, b = max(a, start), min(b, until)
                a, b = a - a % BUCKET_5M, b - b % BUCKET_5M
                if b > a:
                    spans.append((a, b, r, pool))
        # status history: one online/offline pair per time on (days that join, one span)
        joined: List[List[int]] = []
        for a, b, _r, _pool in spans:
            if joined and joined[-1][1] == a:
                joined[-1][1] = b
            else:
                joined.append([a, b])
        for i, (a, b) in enumerate(joined):
            evs.append({"ts": float(a), "kind": "device_online", "school": d.school,
                        "device": d.id, "detail": "{}"})
            last = d.id in gone and i == len(joined) - 1
            if b < end:
                evs.append({"ts": float(b), "kind": "device_offline", "school": d.school,
                            "device": d.id,
                            "detail": LOST if last else SHUTDOWN})
        if joined:
            last_on[d.id] = (float(joined[-1][0]), float(joined[-1][1]))
        # rollups: 5-minute rows in the recent window (and their hours), else hourly rows
        for a, b, r, pool in spans:
            pick = r.choice
            t = a
            while t < b:
                hour = t - t % BUCKET_1H
                if t >= five_from:
                    row = (d.id, t, *_agg(pick(pool), PER_BUCKET, r))
                    rows_5m.append(row)
                    rows_1h.append((d.id, hour, *row[2:]))
                    t += BUCKET_5M
                else:
                    stop = min(b, hour + BUCKET_1H, five_from)
                    rows_1h.append((d.id, hour, *_agg(pick(pool), (stop - t) // 60, r)))
                    t = stop
    for did, at in gone.items():  # never on in the window (not with these fixtures)
        last_on.setdefault(did, (at, at))
    return rows_5m, rows_1h, evs, gone, last_on


def _dedupe(rows: Iterable[Tuple[Any, ...]]) -> List[Tuple[Any, ...]]:
    """One row per (device, bucket): the parts of an hour (its 5-minute rows, the spans on
    in it) merged into one."""
    by: Dict[Tuple[str, int], List[Tuple[Any, ...]]] = {}
    for row in rows:
        by.setdefault((row[0], row[1]), []).append(row)
    return [rs[0] if len(rs) == 1 else (k[0], k[1], *_merge_hour(rs)) for k, rs in by.items()]


def awaiting_approval(d: SimDevice) -> bool:
    """About one device in 25 (by its id, the same every run) is new and still waits for a
    Sở officer's approval; the others were approved long ago, as in a running province."""
    return zlib.crc32(d.id.encode("utf-8")) % 25 == 0


def _device_rows(province: Province, spans: Dict[str, Tuple[float, float]],
                 gone: Dict[str, float], received: Dict[str, int], first_seen: float,
                 end: int, seed: int, now: float
                 ) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Every device's row as its past leaves it (``spans``: its last time on), and the
    latest inventory, health and security of the devices that went away (the live
    simulation brings the others' own), and the last security of the others, from before
    the live simulation starts (so the evaluator's first pass judges facts, not silence).
    A security scan runs every 6 h: a device that went away scanned within its last 6 hours
    on."""
    dev_rows, latest = [], []
    offset = utc_offset(now)
    for d in province.devices:
        inv = inventory_fields(d)
        on_from, on_until = spans.get(d.id, (first_seen, first_seen))
        still_on = d.id not in gone and on_until >= end
        seq = received.get(d.id, 0) + 1 if d.id in gone else None
        dev_rows.append({
            "id": d.id, "school_code": d.school, "role": d.role, "room": d.room or None,
            "state": "pending" if awaiting_approval(d) else "active",
            "first_seen": first_seen, "last_seen": on_until,
            "online": still_on, "online_changed_at": on_from if still_on else on_until,
            "offline_reason": None if still_on else "lost" if d.id in gone else "shutdown",
            "hb": d.hb, "hostname": d.hostname, "os": os_summary(inv), "agent": d.agent,
            # the live simulation's seqs start at 1: no mark for the devices it runs
            "last_seq": seq, "last_ts": on_until if seq else None, "missing": "[]",
            "lost_total": 0, "duplicates_total": 0, "received_total": received.get(d.id, 0),
            "resets": 0, "rev": 1, "seq_jump": None})
        if seq is None:  # not gone: the live simulation brings its own, but its last
            # inventory and security scan are from before the demo started (every 6 h,
            # school mornings): the evaluator's first pass judges those, not silence
            scan = _scan_before(d, now, offset, None, seed)
            facts = security_fields(d, scan, now)
            if facts is not None:
                for kind, fields in (("inventory", inv), ("security", facts)):
                    latest.append({"device_id": d.id, "kind": kind, "ts": scan, "seq": None,
                                   "received_at": scan, "skew": None,
                                   "payload": to_json(envelope(kind, fields, 0, scan))})
            continue
        at = on_until
        health = health_fields(d, _rng(seed, "last", d.id), int(at - first_seen) % (9 * DAY))
        last = [("inventory", inv, 1, at), ("health", health, seq, at)]
        scanned = _last_scan(d, on_from, at, seed)
        security = security_fields(d, scanned, now)
        if security is not None:
            last.append(("security", security, max(2, seq - 1), scanned))
        for kind, fields, s, ts in last:
            payload = envelope(kind, fields, s, ts)
            latest.append({"device_id": d.id, "kind": kind, "ts": ts, "seq": s,
                           "received_at": ts, "skew": None, "payload": to_json(payload)})
    return dev_rows, latest


def _last_scan(d: SimDevice, on_from: float, gone_at: float, seed: int) -> float:
    """The last security scan of a device that went away at ``gone_at`` (on since
    ``on_from``): the agent scans every 6 h."""
    return max(on_from, gone_at - _rng(seed, "scan", d.id).uniform(0, 6 * 3600))


def _copy_if_absent(conn: Connection, table: Table, rows: List[Tuple[Any, ...]]) -> None:
    """PostgreSQL: rows (in table column order) through COPY into a scratch table, then
    inserted where absent: COPY adapts rows in C, five times faster here than arrays."""
    scratch = "history_" + table.name
    cur = raw_cursor(conn)
    try:
        cur.execute("CREATE TEMP TABLE %s (LIKE %s) ON COMMIT DROP" % (scratch, table.name))
        with cur.copy("COPY %s FROM STDIN" % scratch) as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute("INSERT INTO %s SELECT * FROM %s ON CONFLICT (device_id, bucket_start) "
                    "DO NOTHING" % (table.name, scratch))
        cur.execute("DROP TABLE %s" % scratch)
    finally:
        cur.close()


def write_history(engine: Engine, province: Province, now: Optional[float] = None,
                  days: int = HISTORY_DAYS, five_min_days: int = FIVE_MIN_DAYS,
                  seed: int = 1) -> HistoryStats:
    """Write the province's past (see the module doc) into the state store at ``engine``
    (schema at head, schools registered), in bulk; idempotent."""
    t0 = time.monotonic()
    now = time.time() if now is None else now
    rows_5m, rows_1h, evs, gone, last_on = build_history(province, now, days, five_min_days,
                                                         seed)
    rows_1h = _dedupe(rows_1h)
    received: Dict[str, int] = {}
    for row in rows_1h:
        received[row[0]] = received.get(row[0], 0) + int(row[2])
    end = int(now) // BUCKET_5M * BUCKET_5M
    dev_rows, latest = _device_rows(province, last_on, gone, received,
                                    float(end - days * DAY), end, seed, now)
    ids: Set[str] = {d.id for d in province.devices}
    with engine.begin() as conn:
        for table, rows in ((rollup_5m, rows_5m), (rollup_1h, rows_1h)):
            if engine.dialect.name == "postgresql":
                _copy_if_absent(conn, table, rows)
                continue
            st = BulkStatement(dialect_insert(engine, table).on_conflict_do_nothing(
                index_elements=["device_id", "bucket_start"]), engine, table)
            if st.keys != [c.name for c in table.c]:  # pragma: no cover - programming error
                raise RuntimeError("%s insert does not take its columns in table order"
                                   % table.name)
            for i in range(0, len(rows), 20000):
                st.run_tuples(conn, rows[i:i + 20000])
        dev = BulkStatement(dialect_insert(engine, devices).on_conflict_do_nothing(
            index_elements=["id"]), engine, devices)
        dev.run(conn, dev_rows)
        lat = BulkStatement(dialect_insert(engine, device_latest).on_conflict_do_nothing(
            index_elements=["device_id", "kind"]), engine, device_latest)
        lat.run(conn, latest)
        # the history's events replace those of an earlier run (same moments, same rows)
        sorted_ids = sorted(ids)
        for i in range(0, len(sorted_ids), 500):
            conn.execute(delete(events).where(and_(
                events.c.device.in_(sorted_ids[i:i + 500]), events.c.ts < end,
                events.c.kind.in_(HISTORY_EVENT_KINDS))))
        ev = BulkStatement(events.insert().values(
            {k: bindparam(k) for k in ("ts", "kind", "school", "device", "detail")}),
            engine, events)
        ev.run(conn, evs)
    return HistoryStats(days=days, devices=len(province.devices), rows_5m=len(rows_5m),
                        rows_1h=len(rows_1h), events=len(evs), gone=len(gone),
                        seconds=time.monotonic() - t0)


#: The moment of a day the ATTT history judges (local time): the end of the school day.
ATTT_DAY_MOMENT = 16.5 * 3600
#: When lab and office PCs scanned on a school day (local time, the morning's first scan).
_DAY_SCAN = 9.5 * 3600


def _scan_before(d: SimDevice, moment: float, offset: int, gone_at: Optional[float],
                 seed: int) -> float:
    """When ``d`` last sent its security by ``moment``: servers scan around the clock, lab
    and office PCs on the mornings of school days (Monday to Saturday); a device that
    went away, its last scan before it went."""
    if gone_at is not None and gone_at <= moment:
        return _last_scan(d, gone_at - DAY, gone_at, seed)
    if d.role == "server":
        return moment - 3600
    local_day = (int(moment) + offset) // DAY
    for back in range(7):
        day = local_day - back
        if (day + 3) % 7 != 6:  # not a Sunday (1970-01-01 was a Thursday)
            at = day * DAY - offset + _DAY_SCAN
            if at <= moment:
                return at
    return moment - 7 * DAY  # pragma: no cover - every week has a school day


def build_attt_history(province: Province, rules: Rules, now: Optional[float] = None,
                       days: int = HISTORY_DAYS, seed: int = 1, tz: str = DEFAULT_TIMEZONE
                       ) -> Tuple[List[Dict[str, Any]], Dict[str, Dict[str, Any]], List[Event],
                                  Dict[str, Dict[str, Any]]]:
    """(day rows, each school's latest status with ``since`` and ``detail``, the
    ``attt_status_changed`` events, each PC's last judgement as an ``attt_devices`` row) of
    the ``days`` local days before today's. A PC's checks keep ``since`` as the evaluator
    does: the day its state began, or the history's first day with ``since_first`` (it may
    have begun before); a school's status likewise (``detail.since_first``)."""
    now = time.time() if now is None else now
    offset = utc_offset(now, tz)
    today = (int(now) + offset) // DAY
    gone = offline_since(province, now, seed)
    by_school: Dict[str, List[SimDevice]] = {}
    for d in province.devices:
        if is_pc(d.role):
            by_school.setdefault(d.school, []).append(d)
    rows: List[Dict[str, Any]] = []
    latest: Dict[str, Dict[str, Any]] = {}
    evs: List[Event] = []
    # per PC: {check: [state, since] (+ [1]: since the first evaluation)}, and its last row
    since: Dict[str, Dict[str, List[Any]]] = {}
    device_rows: Dict[str, Tuple[Dict[str, Any], float]] = {}
    for day in range(today - days, today):
        moment = float(day * DAY - offset + ATTT_DAY_MOMENT)
        iso = time.strftime("%Y-%m-%d", time.gmtime(day * DAY))
        for school in province.schools:
            pcs = []
            for d in by_school.get(school.code, []):
                scan = _scan_before(d, moment, offset, gone.get(d.id), seed)
                facts = security_fields(d, scan, now)
                judged = evaluate_device(rules, DeviceInput(
                    d.id, d.school, d.role, facts, scan if facts else None,
                    inventory_fields(d)), moment)
                pcs.append(PcSummary(d.role, judged["reported_at"], judged["crit_ok"],
                                     judged["crit_high_ok"], states_of(judged), d.id))
                device_rows[d.id] = (judged, moment)  # the last day's is kept
                _track_since(since.setdefault(d.id, {}), judged, moment)
            result = evaluate_school(rules, pcs, moment)
            status = result["status"]
            rows.append({"school_code": school.code, "day": iso, "status": status,
                         "evaluated_at": moment})
            prev = latest.get(school.code)
            if prev is None or prev["status"] != status:
                evs.append(Event(moment, "attt_status_changed", school.code, None, {
                    "from": prev["status"] if prev else "not_evaluated", "to": status}))
                latest[school.code] = {"status": status, "since": moment,
                                       "since_first": prev is None}
            detail = dict(result["detail"])
            if latest[school.code]["since_first"]:
                detail["since_first"] = True
            latest[school.code].update(evaluated_at=moment, detail=detail)
    for v in latest.values():
        v.pop("since_first", None)
    by_id = {d.id: d for d in province.devices}
    out = {did: _device_row(by_id[did], judged, since[did], at)
           for did, (judged, at) in device_rows.items()}
    return rows, latest, evs, out


def _track_since(states: Dict[str, List[Any]], judged: Dict[str, Any], moment: float) -> None:
    """One day's states of a PC: kept while unchanged, ``moment`` when changed."""
    for cid, c in judged["checks"].items():
        p = states.get(cid)
        if p is None:
            states[cid] = [c["state"], moment, 1]
        elif p[0] != c["state"]:
            states[cid] = [c["state"], moment]


def _device_row(d: SimDevice, judged: Dict[str, Any], states: Dict[str, List[Any]],
                at: float) -> Dict[str, Any]:
    """The ``attt_devices`` row of a PC's last judgement, with the history's since values."""
    result = dict(judged)
    result["checks"] = {}
    for cid, c in judged["checks"].items():
        c = dict(c)
        st = states.get(cid)
        if st is not None and st[0] == c["state"]:
            c["since"] = st[1]
            if len(st) > 2:
                c["since_first"] = True
        result["checks"][cid] = c
    result["role"] = d.role
    return {"device_id": d.id, "school_code": d.school, "evaluated_at": at,
            "reported_at": judged["reported_at"], "inventory_ts": None,
            "stale": judged["stale"], "worst": judged["worst"],
            "fail_n": judged["counts"]["fail"], "unknown_n": judged["counts"]["unknown"],
            "os_status": judged["os_support"]["status"], "crit_ok": judged["crit_ok"],
            "crit_high_ok": judged["crit_high_ok"],
            "states": {cid: st for cid, st in states.items()}, "result": result}


def write_attt_history(engine: Engine, province: Province, rules: Rules,
                       now: Optional[float] = None, days: int = HISTORY_DAYS, seed: int = 1,
                       tz: str = DEFAULT_TIMEZONE) -> int:
    """Write the ATTT history (see the module doc) into the store at ``engine``: day rows
    and the schools' status rows inserted where absent, the history's events replacing
    those of an earlier run; the number of day rows built. The live evaluator then goes on
    from there (a school whose status today differs gets its change and its event)."""
    rows, latest, evs, pcs = build_attt_history(province, rules, now, days, seed, tz)
    if not rows:
        return 0
    first = min(r["evaluated_at"] for r in rows)
    last = max(r["evaluated_at"] for r in rows)
    codes = sorted(latest)
    with engine.begin() as conn:
        day_ins = dialect_insert(engine, attt_school_days).on_conflict_do_nothing(
            index_elements=["school_code", "day"])
        conn.execute(day_ins, rows)
        school_ins = dialect_insert(engine, attt_schools).on_conflict_do_nothing(
            index_elements=["school_code"])
        conn.execute(school_ins, [dict(school_code=code, rev=1, **latest[code])
                                  for code in codes])
        # each PC's last judgement, with since when each check has been so: the live
        # evaluator keeps those while the state holds (a check is not "since the demo began")
        known = set(conn.execute(select(devices.c.id)).scalars())
        pc_rows = [r for did, r in sorted(pcs.items()) if did in known]
        if pc_rows:
            conn.execute(dialect_insert(engine, attt_devices).on_conflict_do_nothing(
                index_elements=["device_id"]), pc_rows)
        for i in range(0, len(codes), 500):
            conn.execute(delete(events).where(and_(
                events.c.kind == "attt_status_changed", events.c.school.in_(codes[i:i + 500]),
                events.c.ts >= first, events.c.ts <= last)))
        insert_events(conn, evs)
    return len(rows)


#: Seqs of the history's tests start here: above any seq the live simulation gives out,
#: so a live test never collides with a past one on (device, seq).
HISTORY_SEQ = 10 ** 12
#: Probes per PC per hour (the agent's default ``intervals.probe``, 300 s).
PROBES_PER_HOUR = 12


def _test_moments(r: random.Random, weekday: int) -> List[Tuple[str, float]]:
    """(trigger, local hour) of a school day's tests: one within 15 minutes of the first PC
    on (07:05-08:00), one at a random moment of each slot (08-12, 12-16, 16-20; Saturdays
    the morning only, PCs are off by 11:00; the evening slot only when a PC is still on,
    most days until about 17:00)."""
    out = [("boot", 7 + r.uniform(5, 45) / 60 + r.uniform(0, 15) / 60)]
    if weekday == 5:
        return out + [("slot", r.uniform(8, 10.9))]
    out += [("slot", r.uniform(8, 12)), ("slot", r.uniform(12, 16))]
    if r.random() < 0.75:
        out.append(("slot", r.uniform(16, 17)))
    return out


def build_link_history(province: Province, now: Optional[float] = None,
                       days: int = HISTORY_DAYS, seed: int = 1,
                       links: Optional[Dict[str, LinkProfile]] = None
                       ) -> Tuple[List[Dict[str, Any]], List[Tuple[Any, ...]],
                                  List[Dict[str, Any]]]:
    """(link_tests rows, link_probe_hours rows (tuples in column order), device_latest rows of the testers'
    ``router`` messages) of the ``days`` local days before today and today up to ``now``:
    the school days' tests per profile (``link``), the probes of the school hours
    (07:00-17:00, Saturdays to 11:00; whole UTC hours before the current one, which the
    live fleet fills)."""
    now = time.time() if now is None else now
    links = deal_links(province, seed) if links is None else links
    offset = utc_offset(now)
    today = (int(now) + offset) // DAY
    hour_now = int(now) // 3600 * 3600
    pcs: Dict[str, int] = {}
    for d in province.devices:
        if d.online and d.role != "router":
            pcs[d.school] = pcs.get(d.school, 0) + 1
    tests: List[Dict[str, Any]] = []
    hours: List[Tuple[Any, ...]] = []
    latest: List[Dict[str, Any]] = []
    seqs: Dict[str, int] = {}
    gone = {did: at for did, at in offline_since(province, now, seed).items()
            if "-router" in did}
    for s in province.schools:
        p = links[s.code]
        since = story_start(p, now)
        dead_at = dead_router_at(gone, s.code, now) if p.kind == "dead_router" \
            else None
        for day in range(today - days, today + 1):
            weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
            if weekday == 6:
                continue
            r = _rng(seed, "link", s.code, day)
            start = day * DAY - offset
            for j, (trigger, h) in enumerate(_test_moments(r, weekday)):
                at = start + h * 3600
                if p.tester is None or at >= now or (p.kind == "silent" and at >= since):
                    continue
                f = speedtest_fields(p, r, at, h, "short" if p.metered else "full",
                                failing=p.kind == "dead_router" and at >= since)
                seq = seqs[p.tester] = seqs.get(p.tester, HISTORY_SEQ) + 1
                ts = at + f["dur_s"]
                tests.append({
                    "school_code": s.code, "device_id": p.tester, "seq": seq, "ts": ts,
                    "received_at": ts + r.uniform(0.2, 2.0),
                    "lease": "sim-%s-%d-%d" % (s.code, day, j), "ok": f["ok"],
                    "reason": f.get("reason"), "trigger": trigger, "mode": f["mode"],
                    "down_mbps": f.get("down_mbps"), "up_mbps": f.get("up_mbps"),
                    "ping_ms": f.get("ping_ms"), "jitter_ms": f.get("jitter_ms"),
                    "bytes_rx": f["bytes_rx"], "bytes_tx": f["bytes_tx"],
                    "server": f["server"], "isp": s.isp, "wired": True, "refused": None})
            n_pcs = pcs.get(s.code, 0)
            rand = r.random
            for h in range(7, 11 if weekday == 5 else 17):
                at = start + h * 3600
                if not n_pcs or at >= hour_now:
                    continue
                n = max(1, round(n_pcs * (0.55 + 0.4 * rand()))) * PROBES_PER_HOUR
                row: List[Any] = [s.code, at, n]
                jitter = 0.8 + 0.45 * rand()  # how slow this hour was
                for share, ms in probe_shares(p, at + 1800, since, dead_at).values():
                    ok = int(n * share - (n * 0.005 * rand() if share < 1 else 0) + 0.5)
                    row += (n, ok, round(ok * ms * jitter, 1))
                hours.append(tuple(row))
        if p.tester is not None:
            at = float(now - 300)
            rr = _rng(seed, "router-last", s.code)
            fields = router_fields(p, router_state(p, now, seed), rr, at,
                                   ((at + offset) % DAY) / 3600.0,
                                   dead=dead_at is not None and at >= dead_at)
            latest.append({"device_id": router_id(s.code), "kind": "router", "ts": at,
                           "seq": None, "received_at": at, "skew": None,
                           "payload": to_json(envelope("router", fields, 0, at))})
    return tests, hours, latest


def build_router_rows(province: Province, now: Optional[float] = None,
                      days: int = HISTORY_DAYS, seed: int = 1, hb: int = ROUTER_HB,
                      links: Optional[Dict[str, LinkProfile]] = None
                      ) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """(devices rows, status events) of each school's router as the collector knows it:
    ``router.{school}`` (role ``router``), polled by the school's tester, online since the
    history's first day, or for the dead-router school offline (``unreachable``) since it
    died — so the pages say since when, from the first minute."""
    now = time.time() if now is None else now
    links = deal_links(province, seed) if links is None else links
    gone = {did: at for did, at in offline_since(province, now, seed).items()
            if "-router" in did}
    by_id = {d.id: d for d in province.devices}
    first = float(int(now) // BUCKET_5M * BUCKET_5M - days * DAY)
    last_poll = float(now - 300)
    rows: List[Dict[str, Any]] = []
    evs: List[Dict[str, Any]] = []
    for s in province.schools:
        p = links[s.code]
        if p.tester is None:
            continue
        rid = router_id(s.code)
        dead = dead_router_at(gone, s.code, now) if p.kind == "dead_router" else None
        model, _descr, firmware = p.router
        rows.append({
            "id": rid, "school_code": s.code, "role": "router", "room": None,
            "state": "pending" if awaiting_approval(by_id[p.tester]) else "active",
            "first_seen": first, "last_seen": last_poll, "online": dead is None,
            "online_changed_at": first if dead is None else dead,
            "offline_reason": None if dead is None else "unreachable", "hb": hb,
            "hostname": "router-%s" % s.code, "os": "%s %s" % (model, firmware),
            "agent": None, "last_seq": None, "last_ts": last_poll, "missing": "[]",
            "lost_total": 0, "duplicates_total": 0, "received_total": 0, "resets": 0,
            "rev": 1, "seq_jump": None})
        evs.append({"ts": first, "kind": "device_online", "school": s.code, "device": rid,
                    "detail": "{}"})
        if dead is not None:
            evs.append({"ts": dead, "kind": "device_offline", "school": s.code,
                        "device": rid, "detail": to_json({"reason": "unreachable"})})
    return rows, evs


def _results_cursor(conn: Connection) -> int:
    """The speed-test results processor's cursor (``scheduler.CURSOR_KEY``): the last
    link_tests id it looked at."""
    from ..connectivity.scheduler import CURSOR_KEY
    row = conn.execute(select(attt_state.c.value).where(attt_state.c.key == CURSOR_KEY)).first()
    return int((row.value or {}).get("id", 0)) if row else 0


def _set_results_cursor(conn: Connection, engine: Engine, last_id: int, now: float) -> None:
    from ..connectivity.scheduler import CURSOR_KEY
    value = {"id": last_id}
    ins = dialect_insert(engine, attt_state).values(key=CURSOR_KEY, value=value,
                                                    updated_at=now, rev=1)
    conn.execute(ins.on_conflict_do_update(index_elements=["key"], set_={
        "value": value, "updated_at": now, "rev": attt_state.c.rev + 1}))


def build_router_rollups(province: Province, now: Optional[float] = None,
                         days: int = HISTORY_DAYS, five_min_days: int = FIVE_MIN_DAYS,
                         seed: int = 1) -> Tuple[List[Tuple[Any, ...]], List[Tuple[Any, ...]]]:
    """(5-minute rows, hourly rows) of each school router's WAN rates (rollup columns
    ``rx``/``tx`` in bytes/s, as the ``router`` family's ``rollup_values`` keeps them), one
    poll per 5 minutes: the same day shape as the live polls (``link.router_fields``: busy
    07-17 local), nothing once the dead router died. Up to the current 5-minute bucket,
    which the live fleet fills; 5-minute rows only in the recent window."""
    now = time.time() if now is None else now
    links = deal_links(province, seed)
    end = int(now) // BUCKET_5M * BUCKET_5M
    start = end - days * DAY
    five_from = end - five_min_days * DAY
    offset = utc_offset(now)
    gone = {did: at for did, at in offline_since(province, now, seed).items()
            if "-router" in did}
    rx_j = 3 + 4 * list(ROLLUP_METRICS).index("rx")
    tx_j = 3 + 4 * list(ROLLUP_METRICS).index("tx")
    rows_5m: List[Tuple[Any, ...]] = []
    rows_1h: List[Tuple[Any, ...]] = []
    for s in province.schools:
        p = links[s.code]
        if p.tester is None:
            continue
        rid = router_id(s.code)
        dead = dead_router_at(gone, s.code, now) if p.kind == "dead_router" else None
        stop = end if dead is None else min(end, int(dead) // BUCKET_5M * BUCKET_5M)
        r = _rng(seed, "wan", s.code)

        def poll(t: int, n: int, r: random.Random = r, p: LinkProfile = p,
                 rid: str = rid) -> Tuple[Any, ...]:
            """A bucket at ``t`` of ``n`` polls (their spread as ``_agg`` draws it)."""
            hour = ((t + offset) % DAY) / 3600.0
            util = r.uniform(0.15, 0.6) if 7.0 <= hour < 17.0 else r.uniform(0.005, 0.04)
            rx = p.contract_down * 1e6 * util / 8.0
            tx = rx * r.uniform(0.15, 0.35)
            spread = r.uniform(0.02, 0.25) if n > 1 else 0.0
            row: List[Any] = [rid, t, n] + [0, None, None, None] * len(ROLLUP_METRICS)
            for j, v in ((rx_j, rx), (tx_j, tx)):
                row[j:j + 4] = [n, v * (1 - spread), v * (1 + spread), v * n]
            return tuple(row)

        # before the 5-minute window one row per hour (12 polls), after it per 5 minutes
        # and their hours merged, as the store's maintenance builds them
        split = min(stop, max(start, five_from // BUCKET_1H * BUCKET_1H))
        for t in range(start, split, BUCKET_1H):
            rows_1h.append(poll(t, min(12, (stop - t) // BUCKET_5M)))
        hour_rows: List[Tuple[Any, ...]] = []
        for t in range(split, stop, BUCKET_5M):
            row = poll(t, 1)
            rows_5m.append(row)
            hour_rows.append(row)
            if (t + BUCKET_5M) % BUCKET_1H == 0 or t + BUCKET_5M >= stop:
                rows_1h.append((rid, t // BUCKET_1H * BUCKET_1H, *_merge_hour(hour_rows)))
                hour_rows = []
    return rows_5m, rows_1h


def write_link_history(engine: Engine, province: Province, now: Optional[float] = None,
                       days: int = HISTORY_DAYS, seed: int = 1,
                       router_hb: int = ROUTER_HB) -> Tuple[int, int]:
    """Write the connectivity past (``build_link_history``) into the store at ``engine``
    (schema at head, schools registered, ``write_history`` done; before the collector
    runs): rows inserted where absent, so writing twice leaves the store as writing once.
    (tests, probe hours) written. The collector's evaluator judges them; nothing here
    writes a status. Each school's router is written as the collector registers it
    (``build_router_rows``), and the results processor's cursor moves past the history's
    tests when nothing before them waits (their leases were granted "in the past", not by
    this store: the processor would refuse them all as ``unknown_lease``).
    ``province``: the whole fixture (its own router devices tell the dead router)."""
    now = time.time() if now is None else now
    tests, hours, latest = build_link_history(province, now, days, seed)
    routers, router_events = build_router_rows(province, now, days, seed, router_hb)
    wan_5m, wan_1h = build_router_rollups(province, now, days, seed=seed)
    with engine.begin() as conn:
        for table, rows in ((rollup_5m, wan_5m), (rollup_1h, wan_1h)):
            st = BulkStatement(dialect_insert(engine, table).on_conflict_do_nothing(
                index_elements=["device_id", "bucket_start"]), engine, table)
            for i in range(0, len(rows), 20000):
                st.run_tuples(conn, rows[i:i + 20000])
        if routers:
            BulkStatement(dialect_insert(engine, devices).on_conflict_do_nothing(
                index_elements=["id"]), engine, devices).run(conn, routers)
            ids = [r["id"] for r in routers]
            for i in range(0, len(ids), 500):
                conn.execute(delete(events).where(and_(
                    events.c.device.in_(ids[i:i + 500]), events.c.ts < now,
                    events.c.kind.in_(HISTORY_EVENT_KINDS))))
            BulkStatement(events.insert().values(
                {k: bindparam(k) for k in ("ts", "kind", "school", "device", "detail")}),
                engine, events).run(conn, router_events)
        if tests:
            # Every row before the history already looked at by the results processor?
            # Then the history's rows are "as if" their tests ran under leases in the past:
            # the processor's cursor moves past them (it would refuse every one as
            # unknown_lease, their leases were never granted here). A live row still
            # waiting keeps the cursor where it is: nothing of the live fleet is skipped.
            looked = _results_cursor(conn)
            before = conn.execute(select(func.max(link_tests.c.id))).scalar() or 0
            cols = list(tests[0])
            BulkStatement(dialect_insert(engine, link_tests).values(
                {k: bindparam(k) for k in cols}).on_conflict_do_nothing(
                index_elements=["device_id", "seq"]), engine, link_tests).run(conn, tests)
            if looked >= before:
                after = conn.execute(select(func.max(link_tests.c.id))).scalar() or 0
                _set_results_cursor(conn, engine, int(after), now)
        st = BulkStatement(dialect_insert(engine, link_probe_hours).on_conflict_do_nothing(
            index_elements=["school_code", "hour_start"]), engine, link_probe_hours)
        if st.keys != [c.name for c in link_probe_hours.c]:  # pragma: no cover - a bug
            raise RuntimeError("link_probe_hours insert does not take its columns in order")
        for i in range(0, len(hours), 20000):
            st.run_tuples(conn, hours[i:i + 20000])
        known = set(conn.execute(select(devices.c.id)).scalars())
        latest = [row for row in latest if row["device_id"] in known]
        if latest:
            BulkStatement(dialect_insert(engine, device_latest).on_conflict_do_nothing(
                index_elements=["device_id", "kind"]), engine, device_latest).run(conn, latest)
    return len(tests), len(hours)


def live_province(province: Province) -> Province:
    """The province without the devices that went away in the past (``offline`` profile:
    ``write_history`` writes their rows; the live simulation would report them heard now)."""
    return Province(province.code, province.name, province.areas, province.schools,
                    [d for d in province.devices if d.online], province.plans)


__all__ = ["FIVE_MIN_DAYS", "HISTORY_DAYS", "HISTORY_SEQ", "HistoryStats",
           "build_attt_history", "build_history", "build_link_history", "build_router_rows",
           "live_province",
           "offline_since", "write_attt_history", "write_history", "write_link_history"]
