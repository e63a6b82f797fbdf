"""Fleet counts for the caller's units (``GET /api/v1/summary``) and the overview page's
data (``GET /api/v1/overview``)."""
import heapq
import logging
import threading
import time
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from sqlalchemy import Connection, Engine, func, select

from ..alerting.calendar import Calendar
from ..store.schema import devices, org_units, rollup_1h, schools
from ..text import DEFAULT_TIMEZONE, sort_key, utc_offset
from . import connectivity as conn_read
from .counts import NO_DEVICES, device_groups, reused, school_counts
from .devices import DEVICE_STATES, DEVICE_STATUSES
from .hours import off_hours_at
from .posture import NOT_MEETING, counts_note, evaluated, school_statuses, tally
from .schools import SCHOOL_STATUSES
from .scope import Scope, resolve_scope, school_filter

log = logging.getLogger(__name__)


def summary(conn: Connection, scope: Scope, now: Optional[float] = None,
            visible: Optional[FrozenSet[str]] = None,
            schools_by_status: Optional[Dict[str, int]] = None,
            attt_statuses: Optional[Dict[str, str]] = None,
            link_statuses: Optional[Dict[str, str]] = None,
            calendar: Optional[Calendar] = None,
            off_hours: Optional[int] = None) -> Dict[str, Any]:
    """Fleet counts: schools by status, devices by status / state / role, and the
    baselines (``None`` before their evaluator's first judgement, never a made-up 0). The overview
    passes ``visible`` (the resolved scope), the schools it has counted and the ATTT
    and connectivity statuses it has read already (3,000 rows: read once per request, not
    twice), and the devices it found off hours. Statuses at ``now`` on ``calendar``
    (read/hours.py): devices offline outside their hours are ``off_hours``, not offline."""
    now = time.time() if now is None else now
    if visible is None:
        visible = resolve_scope(conn, scope)
    codes = list(conn.execute(select(schools.c.code)
                              .where(school_filter(schools.c.code, visible))).scalars())
    if schools_by_status is None or off_hours is None:
        counts = school_counts(conn, visible, now)
        hours = off_hours_at(conn, calendar, now, visible)
        schools_by_status = {s: 0 for s in SCHOOL_STATUSES}
        off_hours = 0
        for code in codes:
            c = counts.get(code, NO_DEVICES)
            excused = hours.excused(c, code)
            off_hours += excused
            schools_by_status[hours.school_status(c.online, c.n, excused)] += 1
    by_status = schools_by_status
    n_schools = sum(by_status.values())

    dev_status = {s: 0 for s in DEVICE_STATUSES}
    dev_state = {s: 0 for s in DEVICE_STATES}
    dev_role: Dict[str, int] = {}
    total = 0
    seen_24h = 0  # one pass over the devices: heard in the last 24 h counted with the rest
    for g in device_groups(conn, visible, now):
        total += g.n
        seen_24h += g.recent
        st = "online" if g.online else ("unknown" if g.never else "offline")
        dev_status[st] += g.n
        dev_state[g.state or "pending"] = dev_state.get(g.state or "pending", 0) + g.n
        role = g.role or "unknown"
        dev_role[role] = dev_role.get(role, 0) + g.n
    # the same devices, some offline ones off hours (counted per school above)
    dev_status["offline"] -= off_hours
    dev_status["off_hours"] += off_hours
    return {
        "now": now,
        "schools": {
            "total": n_schools,
            "by_status": by_status,
            "offline": by_status["offline"],
            "partial": by_status["partial"],
            "off_hours": by_status["off_hours"],
        },
        "devices": {
            "total": total,
            "by_status": dev_status,
            "by_state": dev_state,
            "by_role": dict(sorted(dev_role.items())),
            "seen_24h": seen_24h,
        },
        "below_baseline": conn_read.fill_note(
            counts_note(tally(school_statuses(conn, visible)
                              if attt_statuses is None else attt_statuses, codes),
                        evaluated(conn)),
            conn_read.tally(conn_read.school_statuses(conn, visible)
                            if link_statuses is None else link_statuses, codes),
            conn_read.evaluated(conn)),
    }


#: Overview: how many of the worst schools, and how many days of trend.
WORST_SCHOOLS = 10
#: Why a school needs attention (``worst_schools[].reasons``), most urgent first: its
#: devices all offline, some offline, its Internet link Không đạt, then its ATTT status —
#: Không đạt, Không đủ dữ liệu, Cần cải thiện —, then its link Cần cải thiện. The labels
#: are text.ATTENTION_LABELS.
ATTENTION_REASONS = ("offline", "partial", "link_below", "attt_below", "attt_insufficient",
                     "attt_improve", "link_improve")
_CONNECTIVITY_RANK = {"offline": 0, "partial": 1}
_ATTT_RANK = {"below": 0, "insufficient": 1, "improve": 2}
#: The Internet link's status (the connectivity evaluator's), ranked among the reasons.
_LINK_RANK = {"below": 2, "improve": 6}
TREND_DAYS = 30
#: Trend counts of finished days, by (store, scope, day start): a past day's count cannot
#: change once its hourly rollups are built, so each is computed once per process.
_TREND_CACHE: Dict[Tuple[str, Optional[FrozenSet[str]], int], int] = {}
_TREND_CACHE_MAX = 20000
_TREND_LOCK = threading.Lock()


def _link(path: str, **params: Any) -> Dict[str, Any]:
    """Where a count's list is: the route and the filter parameters it takes."""
    return {"path": path, "params": {k: v for k, v in params.items() if v is not None}}


def _count_finished_days(conn: Connection, visible: Optional[FrozenSet[str]], store: str,
                         start: int, today: int, utc_offset: int) -> None:
    """Fill _TREND_CACHE with the finished days from ``start`` to ``today`` it lacks."""
    day = 86400
    todo = [t for t in range(start, today, day) if (store, visible, t) not in _TREND_CACHE]
    if not todo:
        return
    counts: Dict[int, int] = {}
    c = rollup_1h.c
    local_day = ((c.bucket_start + utc_offset) // day) * day - utc_offset
    where = [c.bucket_start >= min(todo), c.bucket_start < max(todo) + day]
    if visible is not None:
        where.append(c.device_id.in_(select(devices.c.id).where(
            school_filter(devices.c.school_code, visible))))
    for r in conn.execute(select(local_day.label("day"),
                                 func.count(func.distinct(c.device_id)).label("n"))
                          .where(*where).group_by(local_day)):
        counts[int(r.day)] = int(r.n)
    if len(_TREND_CACHE) > _TREND_CACHE_MAX:
        _TREND_CACHE.clear()
    for t in todo:
        _TREND_CACHE[(store, visible, t)] = counts.get(t, 0)


def trend(conn: Connection, visible: Optional[FrozenSet[str]], now: float, utc_offset: int,
          days: int = TREND_DAYS) -> Dict[str, Any]:
    """Distinct devices heard per local day over the last ``days`` days: finished days from
    the hourly rollups (devices that sent health that day; counted once per process, see
    _TREND_CACHE), today from ``devices.last_seen`` (devices heard since local midnight:
    cheap at any hour, where today's hourly rollups grow all day)."""
    day = 86400
    today = int((now + utc_offset) // day * day - utc_offset)
    start = today - (days - 1) * day
    store = str(conn.engine.url)
    if visible is None:  # the Sở's request during warm() waits for it, not count again
        with _TREND_LOCK:
            _count_finished_days(conn, visible, store, start, today, utc_offset)
    else:
        _count_finished_days(conn, visible, store, start, today, utc_offset)
    counts: Dict[int, int] = {}

    def heard_today(c: Connection, _at: float) -> int:
        return int(c.execute(select(func.count()).select_from(devices).where(
            school_filter(devices.c.school_code, visible), devices.c.last_seen >= today))
            .scalar_one())

    # today's count reads every device's last_seen: the province's is reused for a few
    # seconds like its other counts (see counts.reused)
    counts[today] = (reused(conn, ("heard_since", today), now, heard_today)
                     if visible is None else heard_today(conn, now))
    points = [{"ts": float(t), "n": counts.get(t, _TREND_CACHE.get((store, visible, t), 0))}
              for t in range(start, today + day, day)]
    return {"source": "rollup_1h, today devices.last_seen", "resolution": day,
            "points": points}


def warm(engine: Engine, tz: str = DEFAULT_TIMEZONE) -> threading.Thread:
    """Count the province's trend (its 30 finished days: seconds over a province's hourly
    rollups) and device counts in a background thread, so the first overview after a start
    does not pay for them; a request that comes first waits for the days, not count them
    twice. Call once at start; returns the (daemon) thread."""
    def run() -> None:
        now = time.time()
        try:
            with engine.connect() as conn:
                trend(conn, None, now, utc_offset(now, tz))
                school_counts(conn, None, now)
        except Exception:  # the first request counts instead; say why it is slow
            log.exception("warming the overview's trend failed")

    thread = threading.Thread(target=run, name="schoolmon-read-warm", daemon=True)
    thread.start()
    return thread


def overview(conn: Connection, scope: Scope, now: Optional[float] = None,
             utc_offset: int = 7 * 3600, calendar: Optional[Calendar] = None
             ) -> Dict[str, Any]:
    """The overview page: the summary's cards, each with the list it counts (``link``:
    route and filter parameters), the areas (schools, devices, % online, schools offline,
    worst first), the schools needing attention first (offline, partly offline, then not
    meeting the ATTT baseline: see ATTENTION_REASONS; each with its ``reasons``), devices
    heard in 24 h and the 30-day trend.
    ``utc_offset``: the province's offset in seconds (days are local days)."""
    now = time.time() if now is None else now
    visible = resolve_scope(conn, scope)
    schools_by_status = {s: 0 for s in SCHOOL_STATUSES}
    counts = school_counts(conn, visible, now)
    hours = off_hours_at(conn, calendar, now, visible)
    off_hours = 0
    q = (select(schools.c.code, schools.c.name, schools.c.level, schools.c.org_unit_id)
         .where(school_filter(schools.c.code, visible)))
    units = {r.id: r for r in conn.execute(select(org_units))}
    areas: Dict[int, Dict[str, Any]] = {}
    worst: List[Tuple[Any, ...]] = []
    statuses = school_statuses(conn, visible)
    link_statuses = conn_read.school_statuses(conn, visible)
    for r in conn.execute(q):
        c = counts.get(r.code, NO_DEVICES)
        n, on = c.n, c.online
        excused = hours.excused(c, r.code)
        off_hours += excused
        on_or_off_hours = on + excused  # off-hours PCs are not missing
        st = hours.school_status(on, n, excused)
        u = units.get(r.org_unit_id)
        a = areas.get(r.org_unit_id)
        if a is None:
            a = areas[r.org_unit_id] = {
                "id": r.org_unit_id, "code": u.code if u else None,
                "name": u.name if u else None, "schools": 0, "devices": 0, "online": 0,
                "off_hours": 0,
                "schools_by_status": {s: 0 for s in SCHOOL_STATUSES},
                "attt_below_baseline": 0,
                "connectivity_below_baseline": 0,
                "connectivity_by_status": {s: 0 for s in conn_read.SORT_ORDER}}
        a["schools"] += 1
        link_st = conn_read.status_of(link_statuses, r.code)
        a["connectivity_by_status"][link_st] += 1
        if link_st in conn_read.NOT_MEETING:
            a["connectivity_below_baseline"] += 1
        if statuses.get(r.code) in NOT_MEETING:
            a["attt_below_baseline"] += 1
        a["devices"] += n
        a["online"] += on
        a["off_hours"] += excused
        a["schools_by_status"][st] += 1
        schools_by_status[st] += 1
        # needing attention: offline, then partly offline, then not meeting the ATTT
        # baseline (worst status first); within a rank, a worse ATTT status, more devices
        # offline, a lower share online, then Vietnamese order
        attt_st = statuses.get(r.code)
        conn_rank = _CONNECTIVITY_RANK.get(st)
        attt_rank = _ATTT_RANK.get(attt_st or "")
        net_rank = _LINK_RANK.get(link_st)
        ranks = [x for x in (conn_rank, None if attt_rank is None else 3 + attt_rank,
                             net_rank) if x is not None]
        if ranks:
            worst.append((min(ranks), 3 if attt_rank is None else attt_rank,
                          9 if net_rank is None else net_rank, -(n - on_or_off_hours),
                          on_or_off_hours / n if n else 1.0, sort_key(r.name), r.code,
                          r, c, st, u, attt_st, link_st))
    body = summary(conn, scope, now, visible=visible, schools_by_status=schools_by_status,
                   attt_statuses=statuses, link_statuses=link_statuses,
                   off_hours=off_hours)
    dev = body["devices"]
    body["links"] = {
        "schools": _link("/api/v1/schools"),
        "schools_by_status": {s: _link("/api/v1/schools", status=s) for s in SCHOOL_STATUSES},
        "devices": _link("/api/v1/devices"),
        "devices_by_status": {s: _link("/api/v1/devices", status=s) for s in DEVICE_STATUSES},
        "devices_by_state": {s: _link("/api/v1/devices", state=s) for s in DEVICE_STATES},
        "devices_by_role": {r: _link("/api/v1/devices", role=r) for r in dev["by_role"]},
        "seen_24h": _link("/api/v1/devices", seen_hours=24),
        "below_baseline_security": _link("/api/v1/schools", baseline="attt"),
        "attt_by_status": {s: _link("/api/v1/schools", attt=s)
                           for s in (body["below_baseline"]["attt_by_status"] or {})},
        "devices_os_unsupported": _link("/api/v1/devices", os_support="unsupported"),
        "below_baseline_connectivity": _link("/api/v1/schools", baseline="connectivity"),
        "connectivity_by_status": {s: _link("/api/v1/schools", connectivity=s)
                                   for s in conn_read.SORT_ORDER},
    }
    rows = []
    for a in areas.values():
        a["offline"] = a["devices"] - a["online"] - a["off_hours"]
        a["online_pct"] = round(100.0 * a["online"] / a["devices"], 1) if a["devices"] else None
        a["schools_offline"] = a["schools_by_status"]["offline"]
        key = str(a["id"])
        a["links"] = {"schools": _link("/api/v1/schools", area=key),
                      "schools_offline": _link("/api/v1/schools", area=key, status="offline"),
                      "devices": _link("/api/v1/devices", area=key),
                      "devices_offline": _link("/api/v1/devices", area=key, status="offline"),
                      "schools_attt_below": _link("/api/v1/schools", area=key,
                                                  baseline="attt"),
                      "schools_connectivity_below": _link("/api/v1/schools", area=key,
                                                          baseline="connectivity")}
        rows.append(a)
    # worst first: the lowest share of devices online, then Vietnamese order
    rows.sort(key=lambda a: sort_key(a["name"] or ""))
    rows.sort(key=lambda a: (a["online_pct"] is None, a["online_pct"] or 0.0))
    # the first few of thousands: a heap, not a sort of every school's name key
    first = heapq.nsmallest(WORST_SCHOOLS, worst, key=lambda w: w[:7])
    body["areas"] = rows
    body["worst_schools"] = [
        {"code": r.code, "name": r.name, "level": r.level, "status": st,
         "area": {"id": r.org_unit_id, "name": u.name if u else None},
         "devices": {"total": c.n, "online": c.online,
                     "offline": c.n - c.online - hours.excused(c, r.code),
                     "off_hours": hours.excused(c, r.code)},
         "last_seen": c.last_seen, "link": _link("/api/v1/schools/" + r.code),
         "attt_status": attt_st, "connectivity_status": link_st,
         "reasons": ([st] if st in _CONNECTIVITY_RANK else [])
         + (["link_below"] if link_st == "below" else [])
         + (["attt_" + attt_st] if attt_st in _ATTT_RANK else [])
         + (["link_improve"] if link_st == "improve" else [])}
        for *_, r, c, st, u, attt_st, link_st in first]
    body["worst_schools_total"] = len(worst)  # how many need attention, shown or not
    body["links"]["worst_schools"] = _link("/api/v1/schools", sort="status")
    body["trend"] = trend(conn, visible, now, utc_offset)
    return body
