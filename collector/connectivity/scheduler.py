"""Who tests when: each school's test plan for the day, the lease granted at its moments,
and the results that give the lease back (docs/connectivity.md "Who tests when").

Per school and school day (Mon–Sat, local time, and a school day on the school calendar:
no test is planned on a holiday, in a break or on a school's closure) a plan in
school_state ``speedtest.plan``:
one random moment inside each ``connectivity.slots`` slot, plus ``boot`` (a random moment
within ``connectivity.boot_window`` after the school first had an eligible device that day:
an active one online, from the ``device_online`` event, an approval seen between two
passes or, after a restart, the devices table and the audit log's approvals). A moment
that comes grants the school's lease (``leases.grant``) to the best online device and
sends it the ``speedtest`` command; what happened is appended to the plan's ``done``, so
a restart neither plans again nor tests twice.

Several collectors on one store: every write is a compare-and-set (the plan and the
lease change in one transaction, the plan's version last), so two schedulers running the
same pass grant once. Each pass reads every plan and lease (two queries) and works only
on the schools with something due: a singleton scheduler (ROADMAP: several collectors)
would only save those reads.
"""
import datetime as dt
import logging
import random
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from sqlalchemy import Connection, Engine, func, select, update
from zoneinfo import ZoneInfo

from ..state import Event
from ..store import school_state
from ..store.schema import (
    attt_state,
    audit_log,
    device_latest,
    devices,
    dialect_insert,
    link_tests,
    org_units,
    schools,
)
from . import leases
from .leases import LEASE_KEY, PLAN_KEY, Settings

log = logging.getLogger("schoolmon.collector.connectivity")

#: Local weekdays with school (Monday = 0 ... Saturday = 5).
SCHOOL_DAYS = frozenset(range(6))

#: A probe older than this says nothing about the link now (two probe intervals and a half).
PROBE_FRESH = 750.0

#: Where the result cursor (the last link_tests id looked at) is kept: attt_state is the
#: store's generic key/value table (school_state needs a school).
CURSOR_KEY = "speedtest.results"

#: Results looked at per pass.
RESULT_BATCH = 1000

#: Order of roles for the test: office PCs, then servers, then lab PCs (then unknown).
ROLE_RANK = {"office": 0, "server": 1, "lab": 2}

#: Why a result does not count (link_tests.refused).
RESULT_REFUSALS = ("unknown_lease", "not_holder", "expired")


def parse_slot(text: str) -> Tuple[int, int]:
    """``"08:00-12:00"`` -> (480, 720) minutes after local midnight; ValueError if wrong."""
    try:
        a, b = str(text).split("-")
        start = [int(x) for x in a.strip().split(":")]
        end = [int(x) for x in b.strip().split(":")]
        lo, hi = start[0] * 60 + start[1], end[0] * 60 + end[1]
    except (ValueError, IndexError):
        raise ValueError("khung giờ phải là HH:MM-HH:MM / a slot must be HH:MM-HH:MM, got "
                         "%r" % (text,)) from None
    if not (0 <= lo < hi <= 24 * 60):
        raise ValueError("khung giờ phải bắt đầu trước khi kết thúc / a slot must start "
                         "before it ends, within one day, got %r" % (text,))
    return lo, hi


def link_down(probe: Dict[str, Any]) -> bool:
    """One probe says the link is down: the gateway did not answer, or none of the targets
    past it (DNS, domestic, international) did."""
    if probe.get("gw_ok") is False:
        return True
    past = [probe.get(k) for k in ("dns_ok", "dom_ok", "intl_ok") if probe.get(k) is not None]
    return bool(past) and not any(past)


def test_server_url(cfg: Any) -> str:
    """The server in the grants: ``connectivity.test_server``; ``auto``: this collector's
    own ``/speedtest/upload.php`` at ``api.listen``."""
    value = str(cfg.connectivity.test_server).strip()
    if value != "auto":
        return value
    import socket

    host, _, port = str(cfg.api.listen).rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    if ":" in host:
        host = "[%s]" % host
    return "http://%s:%s/speedtest/upload.php" % (host, port)


def approved_since(conn: Connection, since: float, now: float) -> Dict[str, float]:
    """device id -> its latest approval in [since, now], from the audit log (a device's
    ``device_approve``; a school's ``school_approve`` names the devices it approved)."""
    rows = conn.execute(select(audit_log.c.action, audit_log.c.target, audit_log.c.detail,
                               audit_log.c.ts)
                        .where(audit_log.c.action.in_(("device_approve", "school_approve")),
                               audit_log.c.ts >= since, audit_log.c.ts <= now))
    out: Dict[str, float] = {}
    for r in rows:
        ids = [r.target] if r.action == "device_approve" else \
            list((r.detail or {}).get("devices") or [])
        for did in ids:
            if did:
                out[str(did)] = max(out.get(str(did), 0.0), float(r.ts))
    return out


class _Lost(Exception):
    """Another collector wrote the plan between our read and our write."""


Send = Callable[[str, str, Dict[str, Any], float], bool]


class Scheduler:
    """The plans, leases and results of every school; ``run_once(now)`` is one pass."""

    def __init__(self, engine: Engine, settings: Settings, slots: List[str],
                 boot_window: float, send: Send, metrics: Any = None,
                 clock: Callable[[], float] = time.time,
                 rng: Optional[random.Random] = None, calendar: Any = None) -> None:
        self.engine = engine
        #: the school calendar (alerting/calendar.py); None: every Mon–Sat is a school day
        self.calendar = calendar
        self._no_school_day: Optional[Tuple[str, Callable[[str], bool]]] = None
        self.s = settings
        self.slots = [parse_slot(x) for x in slots]
        self.boot_window = float(boot_window)
        self.send = send
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        self.zone = ZoneInfo(settings.timezone)
        self._online: List[Event] = []
        self._hellos: List[Event] = []
        #: schools with an eligible device at the last pass, and when (None: no pass yet)
        self._eligible: Optional[Set[str]] = None
        self._last_pass: Optional[float] = None
        self._lock = threading.Lock()
        self.wake = threading.Event()

    # ------------------------------------------------------------------ events
    def on_event(self, ev: Event) -> None:
        """CollectorService.on_event: a ``device_online`` is kept for the next pass (the
        boot test; the grant sent again to a holder that came back); a ``device_hello``
        (an ``online`` from a device the store had online already: it reconnected, or it
        was seeded online before it ever subscribed) only for the grant sent again — it
        says nothing about when the school's PCs came on."""
        if ev.kind in ("device_online", "device_hello") and ev.device:
            with self._lock:
                (self._online if ev.kind == "device_online" else self._hellos).append(ev)
            self.wake.set()

    # ------------------------------------------------------------------ the pass
    def run_once(self, now: Optional[float] = None) -> Dict[str, int]:
        """One pass: online events, expired leases, plans, due tests, new results."""
        now = self.clock() if now is None else now
        stats = {"granted": 0, "expired": 0, "resent": 0, "skipped": 0, "results": 0}
        with self._lock:
            online, self._online = self._online, []
            hellos, self._hellos = self._hellos, []
        with self.engine.connect() as conn:
            plans = self._all(conn, PLAN_KEY)
            held = self._all(conn, LEASE_KEY)
        for school, (lease, _v) in held.items():
            if lease and lease.get("released_at") is None and lease.get("expired_at") is None \
                    and float(lease["exp"]) <= now:
                with self.engine.begin() as conn:
                    if leases.expire(conn, school, now) is not None:
                        stats["expired"] += 1
                        self._count("leases_expired")
                        log.info("speed-test lease of %s at %s expired without a result",
                                 lease.get("device"), school)
        stats["resent"] = self._resend(online + hellos, held, now)
        day, day_start = self._day(now)
        eligible = self._online_schools(day_start, now)
        before, last = self._eligible, self._last_pass
        self._eligible, self._last_pass = set(eligible), now
        no_school = self._no_school(day)
        if day is not None:
            # The boot test follows the first moment the school had an eligible (active,
            # online) device today. A PC approved hours after it came online has its
            # online_changed_at from while it was pending: from that, its boot moment
            # had long passed and the day had no boot test. So a school that had no
            # eligible device at the last pass became eligible since then (an approval,
            # or its first PC coming on). After a restart (no last pass) the devices
            # table is all there is; a pending PC's device_online plans nothing.
            boot_at: Dict[str, float] = {}
            for ev in online:
                if ev.school in eligible:
                    boot_at.setdefault(ev.school, now)
            for school, first in eligible.items():
                if before is not None and last is not None and school not in before:
                    first = max(first, min(last, now))
                boot_at.setdefault(school, first)
            for school, first in boot_at.items():
                if no_school(school):  # a holiday or a closure there: no test today
                    continue
                plans[school] = self._ensure_plan(school, plans.get(school), day, day_start,
                                                  first, now)
        for school, (plan, _version) in plans.items():
            if not plan or plan.get("day") != day or no_school(school):
                continue
            lease = held.get(school, (None, 0))[0]
            if leases.held(lease, now):
                continue
            for key, _at, end in self._due(plan, day_start, now):
                outcome = self._attempt(school, key, end, now)
                if outcome == "granted":
                    stats["granted"] += 1
                    break  # one test at a time: the next waits for the lease
                if outcome in ("skipped", "missed"):
                    stats["skipped"] += 1
                    continue
                break  # waiting: no device yet, or another collector holds it
        stats["results"] = self.process_results(now)
        return stats

    def _count(self, name: str, **labels: str) -> None:
        if self.metrics is not None:
            getattr(self.metrics, name).inc(**labels)

    @staticmethod
    def _all(conn: Connection, key: str) -> Dict[str, Tuple[Any, int]]:
        from ..store.schema import school_state as ss
        rows = conn.execute(select(ss.c.school_code, ss.c.value, ss.c.rev).where(ss.c.key == key))
        return {r.school_code: (r.value, int(r.rev)) for r in rows}

    def _no_school(self, day: Optional[str]) -> Callable[[str], bool]:
        """A test school → True when ``day`` is no school day there on the calendar."""
        cal = self.calendar
        if day is None or cal is None or cal.always_open:
            return lambda school: False
        hit = self._no_school_day
        if hit is not None and hit[0] == day:  # schools' areas read once a day, not a pass
            return hit[1]
        date = dt.date.fromisoformat(day)
        with self.engine.connect() as conn:
            areas = {r.code: r.area for r in conn.execute(
                select(schools.c.code, org_units.c.code.label("area")).select_from(
                    schools.outerjoin(org_units, org_units.c.id == schools.c.org_unit_id)))}

        def no_school(school: str) -> bool:
            return not cal.is_school_day(date, school, areas.get(school))
        self._no_school_day = (day, no_school)
        return no_school

    def _day(self, now: float) -> Tuple[Optional[str], float]:
        """(today's local date if a school day else None, local midnight as epoch)."""
        local = dt.datetime.fromtimestamp(now, self.zone)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        day = local.date().isoformat() if local.weekday() in SCHOOL_DAYS else None
        return day, start.timestamp()

    def _online_schools(self, day_start: float, now: float) -> Dict[str, float]:
        """Schools with an active device online, and when the first of them became
        eligible (before ``day_start``: online since before today). Not the router: it is
        on day and night and says nothing about when the school's PCs came on.

        A device is eligible from when it came online, or from its approval today if that
        came later: a PC that came on while pending has its ``online_changed_at`` from
        then. The approval's time is the audit log's (``device_approve``,
        ``school_approve``: every approval, API or CLI, writes one), so an approval made
        while no collector ran still gives the school its boot test after it."""
        eligible = (devices.c.state == "active", devices.c.online.is_(True),
                    devices.c.role.is_distinct_from("router"))
        q = (select(devices.c.school_code, func.min(devices.c.online_changed_at))
             .where(*eligible).group_by(devices.c.school_code))
        with self.engine.connect() as conn:
            # min(..., now): a clock behind the devices' (tests, a skewed host) is no future
            out = {r[0]: min(float(r[1] if r[1] is not None else day_start), now)
                   for r in conn.execute(q)}
            approved = approved_since(conn, day_start, now)
            if approved:
                # only the schools with an approval today: read their devices one by one
                firsts: Dict[str, float] = {}
                rows = conn.execute(select(devices.c.school_code, devices.c.id,
                                           devices.c.online_changed_at)
                                    .where(*eligible, devices.c.id.in_(sorted(approved))))
                touched = {r.school_code for r in rows}
                if touched:
                    rows = conn.execute(select(devices.c.school_code, devices.c.id,
                                               devices.c.online_changed_at)
                                        .where(*eligible,
                                               devices.c.school_code.in_(sorted(touched))))
                    for r in rows:
                        since = float(r.online_changed_at if r.online_changed_at is not None
                                      else day_start)
                        since = max(since, approved.get(r.id, since))
                        firsts[r.school_code] = min(firsts.get(r.school_code, since), since)
                    out.update({school: min(at, now) for school, at in firsts.items()})
        return out

    def _ensure_plan(self, school: str, entry: Optional[Tuple[Any, int]], day: str,
                     day_start: float, first_online: float, now: float) -> Tuple[Any, int]:
        """Today's plan for ``school`` (made now if absent or of another day), with its
        boot moment set once the school's first agent came online today."""
        plan, version = entry if entry else (None, school_state.ABSENT)
        if plan and plan.get("day") == day and (plan.get("boot") is not None or any(
                d.get("slot") == "boot" for d in plan.get("done") or [])):
            return plan, version
        if not plan or plan.get("day") != day:
            plan = {"day": day, "boot": None, "slots": {}, "done": []}
            for i, (lo, hi) in enumerate(self.slots):
                a = day_start + lo * 60
                b = max(a, day_start + hi * 60 - self.s.test_timeout - self.s.lease_margin)
                plan["slots"][str(i)] = round(self.rng.uniform(a, b), 1)
        else:
            plan = dict(plan)
        if first_online < day_start:
            # Online since before today (a server left on): there is no power-on today.
            plan["done"] = list(plan.get("done") or []) + [
                {"slot": "boot", "at": now, "skipped": "online_overnight"}]
        else:
            plan["boot"] = round(first_online + self.rng.uniform(0, self.boot_window), 1)
        with self.engine.begin() as conn:
            got = school_state.compare_and_set(conn, school, PLAN_KEY, plan, version)
        if got is None:  # another collector planned first: take its plan
            with self.engine.connect() as conn:
                return tuple(school_state.read(conn, school, PLAN_KEY))  # type: ignore
        return plan, got

    def _due(self, plan: Dict[str, Any], day_start: float,
             now: float) -> List[Tuple[str, float, float]]:
        """(key, moment, end) of the plan's moments that have come and are not done."""
        done = {d.get("slot") for d in plan.get("done") or []}
        out = []
        if plan.get("boot") is not None and "boot" not in done and plan["boot"] <= now:
            out.append(("boot", float(plan["boot"]), float(plan["boot"]) + self.boot_window))
        for key, at in sorted((plan.get("slots") or {}).items(), key=lambda kv: kv[1]):
            if key not in done and at is not None and at <= now:
                end = day_start + self.slots[int(key)][1] * 60 if int(key) < len(self.slots) \
                    else float(at)
                out.append((key, float(at), end))
        return out

    def _attempt(self, school: str, key: str, end: float, now: float) -> str:
        """Grant the lease for one due moment: "granted", "skipped" (recorded: link down,
        budget), "missed" (its slot ended untested), "wait" (no device yet, or another
        collector was first)."""
        try:
            return self._attempt_once(school, key, end, now)
        except _Lost:
            return "wait"

    def _attempt_once(self, school: str, key: str, end: float, now: float) -> str:
        grant_msg = None
        with self.engine.begin() as conn:
            plan, version = school_state.read(conn, school, PLAN_KEY)
            if not plan or any(d.get("slot") == key for d in plan.get("done") or []):
                return "wait"
            record: Dict[str, Any] = {"slot": key, "at": now}
            if now >= end:
                record["skipped"] = "missed"
            elif self._link_down(conn, school, now):
                record["skipped"] = "link_down"
            else:
                device = self.choose_device(conn, school, now)
                if device is None:
                    return "wait"
                got = leases.grant(conn, school, device, now, self.s,
                                   trigger="boot" if key == "boot" else "slot")
                if got.refused == "held":
                    self._count("leases_refused", reason="held")
                    return "wait"
                if got.refused == "budget":
                    self._count("leases_refused", reason="budget")
                    record.update(skipped="budget", used=got.used, limit=got.limit,
                                  expected=got.expected)
                else:
                    assert got.lease is not None
                    record.update(device=device, lease=got.lease["id"])
                    grant_msg = got.lease
            new_plan = dict(plan, done=list(plan.get("done") or []) + [record])
            if school_state.compare_and_set(conn, school, PLAN_KEY, new_plan, version) is None:
                raise _Lost()  # another collector changed the plan first: undo the lease
        if grant_msg is None:
            log.info("speed test %s of %s skipped: %s", key, school, record["skipped"])
            return "missed" if record["skipped"] == "missed" else "skipped"
        self._count("leases_granted")
        self.send_grant(school, grant_msg, now)
        return "granted"

    def send_grant(self, school: str, lease: Dict[str, Any], now: float) -> bool:
        fields = {"id": lease["id"], "exp": float(lease["exp"]),
                  "ttl": max(1.0, round(float(lease["exp"]) - now, 1)),
                  "server": lease.get("server") or "", "budget": int(lease["budget"]),
                  "mode": lease["mode"], "trigger": lease.get("trigger") or "slot"}
        return self.send(school, lease["device"], fields, now)

    def _resend(self, online: List[Event], held: Dict[str, Tuple[Any, int]],
                now: float) -> int:
        """A holder that came back online gets its grant again (the agent ignores an id it
        has seen); an expired or released lease is never sent."""
        sent = 0
        seen: Set[Tuple[str, str]] = set()
        for ev in online:
            lease = held.get(ev.school, (None, 0))[0]
            if (ev.school, ev.device) in seen or not leases.held(lease, now) \
                    or lease.get("device") != ev.device:
                continue
            seen.add((ev.school, str(ev.device)))
            if self.send_grant(ev.school, lease, now):
                sent += 1
        return sent

    # ------------------------------------------------------------------ choices
    def _probes(self, conn: Connection, school: str) -> Dict[str, Tuple[float, Dict[str, Any]]]:
        rows = conn.execute(select(device_latest.c.device_id, device_latest.c.received_at,
                                   device_latest.c.payload)
                            .join(devices, devices.c.id == device_latest.c.device_id)
                            .where(devices.c.school_code == school,
                                   device_latest.c.kind == "probe"))
        return {r.device_id: (float(r.received_at), r.payload or {}) for r in rows}

    def _link_down(self, conn: Connection, school: str, now: float) -> bool:
        """The school's fresh probes all say the link is down (no fresh probe: not known,
        so the test runs and says for itself)."""
        fresh = [p for at, p in self._probes(conn, school).values()
                 if now - at <= PROBE_FRESH]
        return bool(fresh) and all(link_down(p) for p in fresh)

    def choose_device(self, conn: Connection, school: str, now: float) -> Optional[str]:
        """The device to test from: active and online, never the router; never on Wi-Fi
        (latest probe ``wired`` false) while a wired one is online; the designated test PC
        first, then office PCs, servers, lab PCs; a device whose lease expired unreported
        today last."""
        rows = conn.execute(select(devices.c.id, devices.c.role).where(
            devices.c.school_code == school, devices.c.state == "active",
            devices.c.online.is_(True))).all()
        rows = [r for r in rows if r.role != "router"]
        if not rows:
            return None
        probes = self._probes(conn, school)
        lease = school_state.read(conn, school, LEASE_KEY).value or {}
        failed = {x.get("device") for x in ([lease] + list(lease.get("recent") or []))
                  if x.get("expired_at") is not None or x.get("ended") == "expired"}

        def wired(dev: str) -> Optional[bool]:
            p = probes.get(dev)
            return None if p is None else p[1].get("wired")

        if any(wired(r.id) is True for r in rows):
            rows = [r for r in rows if wired(r.id) is not False]

        def rank(r: Any) -> Tuple[Any, ...]:
            p = probes.get(r.id, (0.0, {}))[1]
            w = wired(r.id)
            return (r.id in failed, p.get("tester") is not True,
                    0 if w is True else 1 if w is None else 2, ROLE_RANK.get(r.role or "", 3),
                    self.rng.random())

        return str(min(rows, key=rank).id)

    # ------------------------------------------------------------------ results
    def process_results(self, now: float) -> int:
        """Look at link_tests rows stored since the last pass: a result under the current
        lease from its holder releases it; one whose lease is unknown, another device's,
        or that ran after the lease's expiry is refused (``link_tests.refused``). The
        month's budget entry of each school is rewritten. Returns rows looked at."""
        with self.engine.connect() as conn:
            row = conn.execute(select(attt_state.c.value).where(
                attt_state.c.key == CURSOR_KEY)).first()
            cursor = int((row.value or {}).get("id", 0)) if row else 0
            rows = conn.execute(select(link_tests).where(link_tests.c.id > cursor)
                                .order_by(link_tests.c.id).limit(RESULT_BATCH)).all()
        if not rows:
            return 0
        touched: Set[str] = set()
        for r in rows:
            touched.add(r.school_code)
            if r.lease is None:
                continue
            with self.engine.begin() as conn:
                lease = school_state.read(conn, r.school_code, LEASE_KEY).value
                found = leases.find(lease, r.lease)
                why = None
                if found is None:
                    why = "unknown_lease"
                elif found.get("device") != r.device_id:
                    why = "not_holder"
                elif float(r.ts) > float(found["exp"]):
                    why = "expired"
                if why is not None:
                    if r.refused is None:
                        conn.execute(update(link_tests).where(link_tests.c.id == r.id,
                                                              link_tests.c.refused.is_(None))
                                     .values(refused=why))
                        self._count("results_refused", reason=why)
                        log.warning("speed-test result %s/%s refused: %s", r.device_id,
                                    r.seq, why)
                    continue
                if leases.release(conn, r.school_code, r.lease, r.device_id, now):
                    self._count("leases_released")
        with self.engine.begin() as conn:
            for school in sorted(touched):
                leases.update_budget(conn, school, now, self.s)
            value = {"id": int(rows[-1].id)}
            ins = dialect_insert(conn, attt_state).values(key=CURSOR_KEY, value=value,
                                                          updated_at=now, rev=1)
            conn.execute(ins.on_conflict_do_update(
                index_elements=["key"],
                set_={"value": value, "updated_at": now, "rev": attt_state.c.rev + 1}))
        return len(rows)

    # ------------------------------------------------------------------ the thread
    def loop(self, stop: threading.Event, interval: float) -> None:
        """Run passes every ``interval`` seconds (sooner on a device_online) until stop."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("speed-test scheduling pass failed")
            self.wake.wait(interval)
            self.wake.clear()


__all__ = ["Scheduler", "parse_slot", "link_down", "test_server_url", "SCHOOL_DAYS",
           "RESULT_REFUSALS", "CURSOR_KEY"]
