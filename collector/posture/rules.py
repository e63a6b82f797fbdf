"""Judging one device against the baseline, and one school by the school rule: plain
functions over payloads and summaries, no database (the evaluator feeds and stores them).

Check states: ``pass``, ``warn`` (within tolerance: counts as passing), ``fail``,
``unknown`` (never a pass: a field not reported, a PC silent too long, no report at all),
``na`` (not applicable: role or OS not covered, or a frozen reboot-restore PC for a check
with ``when_frozen = "na"``). The evidence is kept as data (a code and its values) and put
into words when shown (:func:`schoolmon.collector.posture.evidence.render`).
"""
import datetime as _dt
import functools
import re
from typing import Any, Dict, Iterable, Mapping, NamedTuple, Optional, Tuple

from ..baseline import Baseline, Check, OsTable, Unknown, judge
from ..baseline.conditions import NOW

STATES = ("pass", "warn", "fail", "unknown", "na")
#: Worst first: what a device's ``worst`` shows.
WORST_ORDER = ("fail", "unknown", "warn", "pass", "na")
#: States that count as passing for the school rule.
PASSING = frozenset(("pass", "warn", "na"))
#: School statuses of the contract, worst first (``sort=attt``).
SCHOOL_STATUSES = ("below", "insufficient", "improve", "meets", "no_pcs")
#: A school whose evaluator never ran.
NOT_EVALUATED = "not_evaluated"
#: Schools "not meeting" the baseline.
NOT_MEETING = ("improve", "below", "insufficient")
GATES = ("coverage", "office_critical", "all_critical", "critical_high")
#: The PCs the coverage gate names (ids) when they did not report in the window.
MAX_MISSING = 100
PC_ROLES = ("lab", "office", "server")


class Rules(NamedTuple):
    """What an evaluation judges by: the baseline and the OS table."""
    baseline: Baseline
    os_table: OsTable

    @property
    def hash(self) -> str:
        import hashlib
        return hashlib.sha256(("%s/%s/%d" % (self.baseline.hash, self.os_table.hash,
                                             RULES_VERSION)).encode()).hexdigest()


#: Bump when the meaning of a stored result changes: every device is judged again.
RULES_VERSION = 2


class DeviceInput(NamedTuple):
    id: str
    school: str
    role: Optional[str]
    security: Optional[Mapping[str, Any]]
    #: ts of the security message (the device's clock, or the receive time when skewed)
    security_ts: Optional[float]
    inventory: Optional[Mapping[str, Any]]


def os_family(d: DeviceInput) -> Optional[str]:
    fam = (d.security or {}).get("os_family")
    if fam:
        return str(fam)
    name = str((d.inventory or {}).get("os_name") or "").lower()
    if "windows" in name:
        return "windows"
    if "linux" in name:
        return "linux"
    return None


def _reasons(security: Mapping[str, Any]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for u in security.get("unknown") or ():
        if isinstance(u, dict) and u.get("field"):
            out.setdefault(str(u["field"]), str(u.get("reason") or ""))
    return out


_PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)(?:\|[a-z_]+)?\}")


@functools.lru_cache(maxsize=1024)
def _fields_shown(fields: Tuple[str, ...], templates: Tuple[str, ...]) -> Tuple[str, ...]:
    out = list(fields)
    for text in templates:
        for name in _PLACEHOLDER.findall(text):
            if name not in out:
                out.append(name)
    return tuple(out)


def _shown_fields(c: Check) -> Tuple[str, ...]:
    """The fields a check's conditions read and those its evidence sentences show
    (``{av_name}``, ``{os_end}``): the values kept with its state."""
    return _fields_shown(c.fields, c.templates)


def _does_not_apply(c: Check, env: Mapping[str, Any]) -> bool:
    """True when the check's ``applies_if`` is false on this PC (unknown: it applies)."""
    if c.applies_if is None:
        return False
    try:
        return not c.applies_if.run(env)
    except Unknown:
        return False


def _judge_check(c: Check, env: Mapping[str, Any], reasons: Mapping[str, str]
                 ) -> Tuple[str, Optional[Dict[str, Any]]]:
    """(state, evidence): the evidence is None when the values themselves are it."""
    try:
        if c.passes.run(env):
            return "pass", None
        if c.warn is not None and c.warn.run(env):
            return "warn", None
        return "fail", None
    except Unknown as exc:
        ev: Dict[str, Any] = {"code": "unknown", "field": exc.field}
        if exc.field in reasons:
            ev["reason"] = reasons[exc.field]
        elif exc.field in ("?", "age_days", "len", "lower"):
            ev["code"] = "bad_value"
        return "unknown", ev


_OS_KEYS = ("os_name", "os_version", "os_build", "os_edition", "os_display")


def evaluate_device(rules: Rules, d: DeviceInput, now: float,
                    silence_days: Optional[float] = None,
                    memo: Optional[Dict[Any, Any]] = None) -> Dict[str, Any]:
    """The device's result: ``checks`` {id: {state, severity, [ev], [values]}}, ``worst``,
    ``counts``, the OS support, staleness and the two flags the school rule reads
    (``crit_ok``: every critical check passes; ``crit_high_ok``: every critical and high).
    ``memo``: a dict kept over one pass: a province has a few dozen distinct OS, so each is
    looked up in the OS table once."""
    b = rules.baseline
    silence = b.rule.coverage_days if silence_days is None else silence_days
    sec = d.security
    inv = d.inventory or {}
    fam = os_family(d)
    today = _dt.datetime.fromtimestamp(now, _dt.timezone.utc).date()
    key = (today, (sec or {}).get("os_id"), (sec or {}).get("esu")) + tuple(
        inv.get(k) for k in _OS_KEYS)
    support = memo.get(key) if memo is not None else None
    if support is None:
        support = judge(rules.os_table, sec or {}, inv, today)
        if memo is not None:
            memo[key] = support
    stale = sec is None or d.security_ts is None or now - d.security_ts > silence * 86400
    frozen = bool(sec and sec.get("frozen") is True)
    env: Dict[str, Any] = {}
    reasons: Dict[str, str] = {}
    if sec is not None and not stale:
        env.update(inv)
        env.update(sec)
        env["os_support_status"] = support.status
        env["os_end"] = support.end
        env["os_supported"] = (None if support.status == "unknown"
                               else support.status in ("supported", "esu"))
        env[NOW] = now
        reasons = _reasons(sec)
        if support.status == "unknown":
            # in the table but ESU not reported (Windows 10 past its end), or not in it
            reasons.setdefault("os_supported", (reasons.get("esu") or "esu_unknown")
                               if support.end else "os_unknown")
    checks: Dict[str, Dict[str, Any]] = {}
    counts = {s: 0 for s in STATES}
    crit_ok = crit_high_ok = True
    for c in b.checks:
        sev = c.severity_for(d.role)
        values: Optional[Dict[str, Any]] = None
        ev: Optional[Dict[str, Any]]
        if d.role is not None and d.role not in c.roles:
            state, ev = "na", {"code": "na_role", "role": d.role}
        elif fam is not None and fam not in c.os:
            state, ev = "na", {"code": "na_os", "os": fam}
        elif sec is None:
            state, ev = "unknown", {"code": "no_report"}
        elif stale:
            state, ev = "unknown", {"code": "stale", "days": silence}
        elif frozen and c.when_frozen == "na":
            state, ev = "na", {"code": "frozen", "product": sec.get("freeze_product")}
        elif _does_not_apply(c, env):
            # e.g. signatures on a PC without a protecting antivirus: one cause, one failure
            state, ev = "na", {"code": "na_if"}
            values = {f: env[f] for f in _shown_fields(c) if f in env and env[f] is not None}
        else:
            state, ev = _judge_check(c, env, reasons)
            values = {f: env[f] for f in _shown_fields(c) if f in env and env[f] is not None}
        # kept small (50,000 of these are written per full pass): "ev" only when the
        # values are not the evidence, "values" only when there are some
        entry: Dict[str, Any] = {"state": state, "severity": sev}
        if ev is not None:
            entry["ev"] = ev
        if values:
            entry["values"] = values
        checks[c.id] = entry
        counts[state] += 1
        if state not in PASSING:
            if sev == "critical":
                crit_ok = crit_high_ok = False
            elif sev == "high":
                crit_high_ok = False
    worst = next((s for s in WORST_ORDER if counts[s]), "na")
    # no check applies (a router): nothing to report, so never silent nor missing a report
    applicable = counts["na"] < len(b.checks)
    return {"checks": checks, "counts": counts, "worst": worst,
            "reported_at": d.security_ts, "stale": stale and applicable,
            "applicable": applicable, "never_reported": sec is None and applicable,
            "os_family": fam, "frozen": frozen,
            "freeze_product": (sec or {}).get("freeze_product"),
            "os_support": {"status": support.status, "end": support.end,
                           "label": support.label},
            "crit_ok": crit_ok, "crit_high_ok": crit_high_ok}


class PcSummary(NamedTuple):
    """What the school rule reads of one PC."""
    role: Optional[str]
    reported_at: Optional[float]
    crit_ok: bool
    crit_high_ok: bool
    states: Mapping[str, str]
    #: the device's id: the coverage gate names the PCs that did not report
    id: Optional[str] = None


def _pct(part: int, whole: int) -> Optional[float]:
    return round(100.0 * part / whole, 1) if whole else None


def evaluate_school(rules: Rules, pcs: Iterable[PcSummary], now: float) -> Dict[str, Any]:
    """The school's ``status`` and its ``detail`` (coverage, gates, counts per check)."""
    r = rules.baseline.rule
    pcs = list(pcs)
    n = len(pcs)
    per_check = {c.id: {s: 0 for s in STATES} for c in rules.baseline.checks}
    for p in pcs:
        for cid, st in p.states.items():
            if cid in per_check and st in per_check[cid]:
                per_check[cid][st] += 1
    if n == 0:
        return {"status": "no_pcs", "detail": {
            "coverage": {"reporting": 0, "pcs": 0, "pct": None, "days": r.coverage_days},
            "gates": [], "checks": per_check}}
    cutoff = now - r.coverage_days * 86400
    missing = sorted(p.id or "" for p in pcs if p.reported_at is None or p.reported_at < cutoff)
    reporting = n - len(missing)
    office = [p for p in pcs if p.role == "office"]
    cov = _pct(reporting, n)
    office_pct = _pct(sum(1 for p in office if p.crit_ok), len(office))
    all_pct = _pct(sum(1 for p in pcs if p.crit_ok), n)
    ch_pct = _pct(sum(1 for p in pcs if p.crit_high_ok), n)

    def gate(gid: str, value: Optional[float], threshold: float) -> Dict[str, Any]:
        return {"id": gid, "value_pct": value, "threshold_pct": threshold,
                "ok": value is None or value >= threshold}

    coverage_gate = gate("coverage", cov, r.coverage_pct)
    # which PCs did not report (at most MAX_MISSING, by id): the page links them
    coverage_gate.update(missing=[m for m in missing if m][:MAX_MISSING],
                         missing_total=len(missing))
    gates = [coverage_gate,
             gate("office_critical", office_pct, r.office_critical_pct),
             gate("all_critical", all_pct, r.all_critical_pct),
             gate("critical_high", ch_pct, r.critical_high_pct)]
    ok = {g["id"]: g["ok"] for g in gates}
    if not ok["coverage"]:
        status = "insufficient"
    elif not (ok["office_critical"] and ok["all_critical"]):
        status = "below"
    elif not ok["critical_high"]:
        status = "improve"
    else:
        status = "meets"
    return {"status": status, "detail": {
        "coverage": {"reporting": reporting, "pcs": n, "pct": cov, "days": r.coverage_days},
        "gates": gates, "checks": per_check}}


#: Severities the school rule counts ("required": critical for Không đạt, high for Cần cải
#: thiện); medium and low checks never change a school's status.
REQUIRED_SEVERITIES = ("critical", "high")
#: A device's summary, worst first: ``fail`` (a required check fails), ``unknown`` (a
#: required check is unknown), ``findings`` (every required check passes; a medium or low
#: check fails or is unknown), ``pass``, ``na`` (no check applies: a router).
SUMMARIES = ("fail", "unknown", "findings", "pass", "na")


def device_summary(checks: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """What the lists show of one device: ``summary`` and the failing / unknown counts of
    the required (critical + high, as judged for its role) and the other checks."""
    n = {"required_fail": 0, "required_unknown": 0, "other_fail": 0, "other_unknown": 0}
    applicable = False
    for c in checks.values():
        st = c.get("state")
        if st != "na":
            applicable = True
        if st not in ("fail", "unknown"):
            continue
        group = "required" if c.get("severity") in REQUIRED_SEVERITIES else "other"
        n["%s_%s" % (group, st)] += 1
    if not applicable:
        summary = "na"
    elif n["required_fail"]:
        summary = "fail"
    elif n["required_unknown"]:
        summary = "unknown"
    elif n["other_fail"] or n["other_unknown"]:
        summary = "findings"
    else:
        summary = "pass"
    return dict(n, summary=summary)


def is_pc(role: Optional[str]) -> bool:
    """Routers are not PCs; a device that has not said its role yet counts as one."""
    return role is None or role in PC_ROLES


def states_of(result: Mapping[str, Any]) -> Dict[str, str]:
    return {cid: c["state"] for cid, c in result["checks"].items()}


__all__ = ["Rules", "DeviceInput", "PcSummary", "evaluate_device", "evaluate_school",
           "STATES", "WORST_ORDER", "PASSING", "SCHOOL_STATUSES", "NOT_EVALUATED",
           "NOT_MEETING", "GATES", "is_pc", "states_of", "os_family", "device_summary",
           "REQUIRED_SEVERITIES", "SUMMARIES", "MAX_MISSING"]
