"""What an alert rule can test: the conditions ``rules.toml`` names, and the facts they read.

A condition is a plain function ``(facts, params) -> findings``: each :class:`Finding` is one
subject (a device, a school, a part of the collector) for which the condition holds now,
with its evidence (the values the message templates show) and, when the data says so, since
when. The engine decides what a finding means over time (``for``, ``clear_for``, windows,
scope, roles, dependencies, silences): conditions only look at the present.

The facts (:class:`Facts`) are read from the state store in a few whole-table queries per
pass (or per changed school), never per subject: a province is 3,000 schools and 50,000
devices (bench/alert_eval.py). The table :data:`CONDITIONS` is the one list of conditions;
a rules file naming another is refused at start.
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Set, Tuple

import orjson
from sqlalchemy import Connection, Text, false, or_, select, true, type_coerce

from ..store.bulk import raw_cursor
from ..store.schema import (
    attt_devices,
    attt_schools,
    attt_state,
    connectivity_schools,
    device_latest,
    devices,
    org_units,
    schools,
)

DEVICE, SCHOOL, COLLECTOR = "device", "school", "collector"
ROLES = ("lab", "office", "server", "router")
#: Placeholders every template may use (filled by the engine, not the condition).
COMMON_PLACEHOLDERS = ("school_name", "school_code", "area_name", "device_name", "device_id",
                       "since", "duration")
#: ``attt_state`` key prefix under which the notifications engineer's sender keeps each
#: channel's health ({"ok": bool, "since": ts, "error": str}).
NOTIFY_HEALTH_PREFIX = "notify.health."


@dataclass(frozen=True)
class DeviceFacts:
    id: str
    school_code: str
    role: Optional[str]
    name: str
    online: bool
    online_changed_at: Optional[float]
    offline_reason: Optional[str]
    last_seen: Optional[float]


@dataclass(frozen=True)
class SchoolFacts:
    code: str
    name: str
    area_code: Optional[str]
    area_name: Optional[str]


@dataclass(frozen=True)
class CollectorStats:
    """What the service knows of itself, injected each pass (in-process figures)."""

    #: seconds messages have waited with nothing acknowledged (0: flowing or idle)
    ingest_stalled_s: float = 0.0
    ingest_pending: int = 0
    #: None: no time-series store configured
    timeseries_ok: Optional[bool] = None


@dataclass(frozen=True)
class Facts:
    now: float
    schools: Mapping[str, SchoolFacts]
    devices: Mapping[str, DeviceFacts]
    by_school: Mapping[str, Tuple[DeviceFacts, ...]]
    #: (device id, kind) -> (ts, {field: value}) of device_latest: the fields the conditions
    #: read of kinds health, security, router and probe
    latest: Mapping[Tuple[str, str], Tuple[float, Any]]
    #: device id -> {check id: [state, since]} from the ATTT evaluator (devices where a
    #: watched check fails)
    attt_checks: Mapping[str, Mapping[str, Any]]
    #: school code -> (status, since) of each baseline's evaluator
    attt_status: Mapping[str, Tuple[str, float]]
    connectivity_status: Mapping[str, Tuple[str, float]]
    #: channel -> {"ok", "since", "error"}
    channels: Mapping[str, Mapping[str, Any]]
    stats: CollectorStats
    #: the schools this pass looks at (None: every school, and the collector's rules too)
    only: Optional[Set[str]] = None


@dataclass(frozen=True)
class Finding:
    subject: str
    school_code: Optional[str] = None
    device_id: Optional[str] = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    #: when the condition began, by the data (None: the evaluator's first sight of it)
    since: Optional[float] = None


@dataclass(frozen=True)
class ConditionSpec:
    run: Callable[[Facts, Mapping[str, Any]], Iterable[Finding]]
    subject: str  # DEVICE | SCHOOL | COLLECTOR
    #: parameters with their defaults (a rules file may set only these, of the same type)
    params: Mapping[str, Any]
    #: evidence keys the templates may name (besides COMMON_PLACEHOLDERS)
    placeholders: Tuple[str, ...]
    doc: str


#: The fields of each kind of latest message the conditions read, with their type.
_LATEST_FIELDS: Dict[str, Tuple[Tuple[str, str], ...]] = {
    "health": (("disks", "json"), ("temp", "float")),
    "security": (("reboot_pending", "bool"),),
    "router": (("wan_up", "bool"), ("gw_ok", "bool")),
    "probe": (("dom_ok", "bool"), ("intl_ok", "bool")),
}


def _fetch(conn: Connection, stmt: Any) -> List[Tuple[Any, ...]]:
    """The rows of ``stmt`` as plain tuples through the driver's own cursor: a full pass
    reads 250,000 rows, and SQLAlchemy's per-row result processing was a third of the
    pass (docs/benchmarks.md). Values come as the driver gives them (SQLite: booleans as
    0/1); the parameters are school codes and kinds, rendered as SQL literals."""
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cur = raw_cursor(conn)
    try:
        cur.execute(sql)
        return cur.fetchall()
    finally:
        cur.close()


def _json_list(text: Any) -> Any:
    if text is None:
        return None
    try:
        got = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return got if isinstance(got, list) else None


def load_facts(conn: Connection, now: float, stats: Optional[CollectorStats] = None,
               only: Optional[Set[str]] = None, checks: Iterable[str] = ("av_on",)
               ) -> Facts:
    """Every fact the conditions read, for the whole province or the schools ``only``;
    ``checks``: the ATTT checks whose failures are read."""
    sch = select(schools.c.code, schools.c.name, org_units.c.code.label("area_code"),
                 org_units.c.name.label("area_name")).select_from(
        schools.outerjoin(org_units, org_units.c.id == schools.c.org_unit_id))
    if only is not None:
        sch = sch.where(schools.c.code.in_(sorted(only)))
    school_rows = {r.code: SchoolFacts(r.code, r.name, r.area_code, r.area_name)
                   for r in conn.execute(sch)}
    dq = select(devices.c.id, devices.c.school_code, devices.c.role, devices.c.hostname,
                devices.c.online, devices.c.online_changed_at, devices.c.offline_reason,
                devices.c.last_seen).where(devices.c.state != "retired")
    if only is not None:
        dq = dq.where(devices.c.school_code.in_(sorted(only)))
    devs: Dict[str, DeviceFacts] = {}
    by_school: Dict[str, List[DeviceFacts]] = {}
    for did, code, role, host, online, changed, reason, seen in _fetch(conn, dq):
        d = DeviceFacts(did, code, role, host or did, bool(online), changed, reason, seen)
        devs[did] = d
        by_school.setdefault(code, []).append(d)
    # Only the few fields the conditions read, taken out of each payload by the database
    # (JSON paths on SQLite and PostgreSQL alike): decoding 50,000 whole security payloads
    # in Python was most of a pass (docs/benchmarks.md).
    latest: Dict[Tuple[str, str], Tuple[float, Any]] = {}
    pl = device_latest.c.payload
    for kind, fields in _LATEST_FIELDS.items():
        # a list comes as its JSON text, decoded by orjson (5× the standard library's)
        cols = [pl[name].as_float() if how == "float" else pl[name].as_boolean()
                if how == "bool" else pl[name].as_string() for name, how in fields]
        lq = select(device_latest.c.device_id, device_latest.c.ts, *cols).where(
            device_latest.c.kind == kind)
        if kind == "security":  # only the PCs that wait for a reboot matter
            lq = lq.where(pl["reboot_pending"].as_boolean() == true())
        if only is not None:
            lq = lq.where(device_latest.c.device_id.in_(sorted(devs)))
        for r in _fetch(conn, lq):
            if r[0] in devs:
                latest[(r[0], kind)] = (float(r[1]), {
                    name: (_json_list(r[2 + i]) if how == "json" else r[2 + i])
                    for i, (name, how) in enumerate(fields)})
    # The ATTT checks' states are text (OrJSON): only rows where a watched check failed are
    # decoded, found by the text orjson writes (``"av_on":["fail",``; compact, no spaces).
    as_text = type_coerce(attt_devices.c.states, Text)  # the pattern is no JSON value
    aq = select(attt_devices.c.device_id, attt_devices.c.states).where(or_(
        false(), *[as_text.like('%%"%s":["fail"%%' % c) for c in checks]))
    if only is not None:
        aq = aq.where(attt_devices.c.school_code.in_(sorted(only)))
    attt = {r.device_id: r.states or {} for r in conn.execute(aq)}

    def statuses(table: Any) -> Dict[str, Tuple[str, float]]:
        q = select(table.c.school_code, table.c.status, table.c.since)
        if only is not None:
            q = q.where(table.c.school_code.in_(sorted(only)))
        return {r.school_code: (r.status, float(r.since)) for r in conn.execute(q)}

    channels: Dict[str, Mapping[str, Any]] = {}
    if only is None:
        for key, value in conn.execute(select(attt_state.c.key, attt_state.c.value).where(
                attt_state.c.key.like(NOTIFY_HEALTH_PREFIX + "%"))):
            if isinstance(value, dict):
                channels[key[len(NOTIFY_HEALTH_PREFIX):]] = value
    return Facts(now, school_rows, devs, {k: tuple(v) for k, v in by_school.items()}, latest,
                 attt, statuses(attt_schools), statuses(connectivity_schools), channels,
                 stats or CollectorStats(), only)


# --- the conditions ---------------------------------------------------------------------

def _device_finding(d: DeviceFacts, since: Optional[float], **evidence: Any) -> Finding:
    return Finding("device:" + d.id, d.school_code, d.id, evidence, since)


def device_offline(f: Facts, p: Mapping[str, Any]) -> Iterator[Finding]:
    """The device is offline now (status, Last Will, or its heartbeat timed out).

    A router is heard only through a PC's poll: when it timed out while no PC of its school
    is online, its silence says nothing about the router (the lab is switched off at night,
    in Tết), so it is no finding. A poll that answered nothing (reported down) still is."""
    online_pcs = {d.school_code for d in f.devices.values()
                  if d.online and d.role != "router"}
    for d in f.devices.values():
        if d.role == "router" and d.offline_reason == "timeout" \
                and d.school_code not in online_pcs:
            continue
        if not d.online and d.last_seen is not None:
            yield _device_finding(d, d.online_changed_at or d.last_seen,
                                  reason=d.offline_reason, role=d.role)


def _offline_since(d: DeviceFacts) -> float:
    """When the device went quiet: its Last Will or ``offline`` status when it said so, its
    last message when its heartbeat timed out (a router's timeout comes 46 min after its
    last poll: "offline since 10:46" for a school silent since 10:00 would mislead)."""
    if d.offline_reason == "timeout" and d.last_seen is not None:
        return d.last_seen
    return d.online_changed_at or d.last_seen or 0.0


def school_offline(f: Facts, p: Mapping[str, Any]) -> Iterator[Finding]:
    """Every device of the school, its router too, is offline (and it has one at least)."""
    for code, devs in f.by_school.items():
        seen = [d for d in devs if d.last_seen is not None]
        if seen and not any(d.online for d in seen):
            since = max(_offline_since(d) for d in seen)
            yield Finding("school:" + code, code, None, {"devices": len(seen)}, since)


def _truthy(payload: Any, key: str) -> Optional[bool]:
    if isinstance(payload, dict) and payload.get(key) is not None:
        return bool(payload.get(key))
    return None


def school_internet_down(f: Facts, p: Mapping[str, Any]) -> Iterator[Finding]:
    """PCs of the school are online but its Internet is not: the router (answering) says its
    WAN link is down, or the latest light probe of every online PC that probed lately reached
    neither the domestic nor the international target. Reads the latest probe per PC, not
    ``link_probe_hours``: an hour's counts mix the minutes before and after an outage."""
    max_age = float(p["probe_max_age_s"])
    for code, devs in f.by_school.items():
        pcs = [d for d in devs if d.role != "router" and d.online]
        if len(pcs) < int(p["min_online_pcs"]):
            continue
        router = next((d for d in devs if d.role == "router"), None)
        if router is not None and router.online:
            got = f.latest.get((router.id, "router"))
            if got is not None and _truthy(got[1], "wan_up") is False:
                yield Finding("school:" + code, code, None,
                              {"cause": "wan_down", "online_pcs": len(pcs)}, got[0])
                continue
        probed = ok = 0
        first_fail: Optional[float] = None
        for d in pcs:
            got = f.latest.get((d.id, "probe"))
            if got is None or f.now - got[0] > max_age:
                continue
            dom, intl = _truthy(got[1], "dom_ok"), _truthy(got[1], "intl_ok")
            if dom is None and intl is None:
                continue
            probed += 1
            if dom or intl:
                ok += 1
            else:
                first_fail = got[0] if first_fail is None else min(first_fail, got[0])
        if probed >= min(int(p["min_probes"]), len(pcs)) and probed and ok == 0:
            yield Finding("school:" + code, code, None,
                          {"cause": "probes_failed", "online_pcs": len(pcs),
                           "probes": probed, "probes_ok_pct": 0.0}, first_fail)


def _status_rule(table: str) -> Callable[[Facts, Mapping[str, Any]], Iterator[Finding]]:
    def run(f: Facts, p: Mapping[str, Any]) -> Iterator[Finding]:
        got: Mapping[str, Tuple[str, float]] = getattr(f, table)
        wanted = set(p["statuses"])
        for code, (status, since) in got.items():
            if status in wanted and code in f.schools:
                yield Finding("school:" + code, code, None, {"status": status}, since)
    return run


def device_av_off(f: Facts, p: Mapping[str, Any]) -> Iterator[Finding]:
    """The ATTT evaluator judged the baseline's ``av_on`` check failed (no real-time
    anti-malware): the baseline knows which roles and OS it covers."""
    check = str(p["check"])
    for did, states in f.attt_checks.items():
        st = states.get(check)
        d = f.devices.get(did)
        if d is not None and st and st[0] == "fail":
            yield _device_finding(d, float(st[1]) if len(st) > 1 and st[1] else None,
                                  role=d.role)


def _fresh(f: Facts, did: str, kind: str, max_age: float) -> Optional[Tuple[float, Any]]:
    got = f.latest.get((did, kind))
    if got is None or f.now - got[0] > max_age or not isinstance(got[1], dict):
        return None
    return got


def device_disk_full(f: Facts, p: Mapping[str, Any]) -> Iterator[Finding]:
    """The fullest fixed volume of the latest health message (at most ``max_age_s`` old)
    is above ``pct``."""
    for d in f.devices.values():
        got = _fresh(f, d.id, "health", float(p["max_age_s"]))
        if got is None:
            continue
        disks = got[1].get("disks") or []
        worst = max((x for x in disks if isinstance(x, dict) and x.get("pct") is not None),
                    key=lambda x: float(x["pct"]), default=None)
        if worst is not None and float(worst["pct"]) > float(p["pct"]):
            yield _device_finding(d, None, disk_pct=float(worst["pct"]),
                                  mnt=worst.get("mnt"), threshold_pct=float(p["pct"]))


def device_cpu_hot(f: Facts, p: Mapping[str, Any]) -> Iterator[Finding]:
    """The highest CPU temperature of the latest health message is above ``celsius``."""
    for d in f.devices.values():
        got = _fresh(f, d.id, "health", float(p["max_age_s"]))
        temp = got[1].get("temp") if got is not None else None
        if temp is not None and float(temp) > float(p["celsius"]):
            yield _device_finding(d, None, temp=float(temp), threshold_c=float(p["celsius"]))


def device_reboot_pending(f: Facts, p: Mapping[str, Any]) -> Iterator[Finding]:
    """The latest security message says a reboot is needed to finish updates. How long
    it has been so is the rule's ``for`` (e.g. 7 days), counted from the first report."""
    for d in f.devices.values():
        got = f.latest.get((d.id, "security"))
        if got is not None and _truthy(got[1], "reboot_pending"):
            yield _device_finding(d, None, role=d.role)


def agent_silent(f: Facts, p: Mapping[str, Any]) -> Iterator[Finding]:
    """A PC's agent has sent nothing for more than ``days`` (its checks are unknown)."""
    limit = float(p["days"]) * 86400.0
    for d in f.devices.values():
        if d.role != "router" and d.last_seen is not None and f.now - d.last_seen > limit:
            # whole days: the evidence (and so the row) changes once a day, not every pass
            yield _device_finding(d, d.last_seen,
                                  silent_days=int((f.now - d.last_seen) // 86400.0),
                                  role=d.role)


def ingest_stalled(f: Facts, p: Mapping[str, Any]) -> Iterator[Finding]:
    """Messages wait and nothing was acknowledged for ``after_s`` seconds."""
    if f.only is None and f.stats.ingest_stalled_s >= float(p["after_s"]):
        yield Finding("collector:ingest", None, None,
                      {"stalled_s": f.stats.ingest_stalled_s,
                       "pending": f.stats.ingest_pending},
                      f.now - f.stats.ingest_stalled_s)


def timeseries_failing(f: Facts, p: Mapping[str, Any]) -> Iterator[Finding]:
    """The time-series store (InfluxDB / VictoriaMetrics) refuses or cannot be reached."""
    if f.only is None and f.stats.timeseries_ok is False:
        yield Finding("collector:timeseries", None, None, {})


def notify_channel_failing(f: Facts, p: Mapping[str, Any]) -> Iterator[Finding]:
    """A notification channel's sender says it fails (``attt_state`` key
    ``notify.health.<channel>``)."""
    if f.only is not None:
        return
    for channel, h in sorted(f.channels.items()):
        if h.get("ok") is False:
            since = h.get("since")
            yield Finding("collector:notify." + channel, None, None,
                          {"channel": channel, "error": str(h.get("error") or "")[:300]},
                          float(since) if isinstance(since, (int, float)) else None)


CONDITIONS: Dict[str, ConditionSpec] = {
    "device_offline": ConditionSpec(device_offline, DEVICE, {}, ("reason", "role"),
                                    device_offline.__doc__ or ""),
    "school_offline": ConditionSpec(school_offline, SCHOOL, {}, ("devices",),
                                    school_offline.__doc__ or ""),
    "school_internet_down": ConditionSpec(
        school_internet_down, SCHOOL,
        {"min_online_pcs": 1, "min_probes": 2, "probe_max_age_s": 900.0},
        ("cause", "online_pcs", "probes", "probes_ok_pct"),
        school_internet_down.__doc__ or ""),
    "below_connectivity": ConditionSpec(
        _status_rule("connectivity_status"), SCHOOL, {"statuses": ["below"]}, ("status",),
        "The connectivity evaluator judges the school in one of ``statuses``."),
    "below_attt": ConditionSpec(
        _status_rule("attt_status"), SCHOOL, {"statuses": ["below"]}, ("status",),
        "The ATTT evaluator judges the school in one of ``statuses``."),
    "device_av_off": ConditionSpec(device_av_off, DEVICE, {"check": "av_on"}, ("role",),
                                   device_av_off.__doc__ or ""),
    "device_disk_full": ConditionSpec(device_disk_full, DEVICE,
                                      {"pct": 95.0, "max_age_s": 86400.0},
                                      ("disk_pct", "mnt", "threshold_pct"),
                                      device_disk_full.__doc__ or ""),
    "device_cpu_hot": ConditionSpec(device_cpu_hot, DEVICE,
                                    {"celsius": 90.0, "max_age_s": 3600.0},
                                    ("temp", "threshold_c"), device_cpu_hot.__doc__ or ""),
    "device_reboot_pending": ConditionSpec(device_reboot_pending, DEVICE, {}, ("role",),
                                           device_reboot_pending.__doc__ or ""),
    "agent_silent": ConditionSpec(agent_silent, DEVICE, {"days": 7.0},
                                  ("silent_days", "role"), agent_silent.__doc__ or ""),
    "ingest_stalled": ConditionSpec(ingest_stalled, COLLECTOR, {"after_s": 120.0},
                                    ("stalled_s", "pending"), ingest_stalled.__doc__ or ""),
    "timeseries_failing": ConditionSpec(timeseries_failing, COLLECTOR, {}, (),
                                        timeseries_failing.__doc__ or ""),
    "notify_channel_failing": ConditionSpec(notify_channel_failing, COLLECTOR, {},
                                            ("channel", "error"),
                                            notify_channel_failing.__doc__ or ""),
}

__all__ = ["CONDITIONS", "ConditionSpec", "Facts", "Finding", "DeviceFacts", "SchoolFacts",
           "CollectorStats", "load_facts", "DEVICE", "SCHOOL", "COLLECTOR", "ROLES",
           "COMMON_PLACEHOLDERS", "NOTIFY_HEALTH_PREFIX"]
