"""The ATTT posture as the API shows it: a device's checks, a school's status with its
gates, checklist and 30-day history, and the status counts of the summary, the overview
and the organisation tree. Reads what the evaluator (``collector/posture``) stored; a
school without a row is ``not_evaluated``.

Texts come out in the caller's language (titles and hints from the baseline file,
everything else from ``collector/text.py``); times as UTC epoch seconds (the API renders)."""
import datetime as _dt
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional

from sqlalchemy import Connection, select

from ..baseline import Baseline, describe, rule_dict
from ..posture.evidence import os_support_sentence, render, unknown_hint
from ..posture.rules import (
    NOT_EVALUATED,
    NOT_MEETING,
    PASSING,
    SCHOOL_STATUSES,
    STATES,
    device_summary,
    is_pc,
)
from ..store.schema import attt_devices, attt_school_days, attt_schools, attt_state, devices
from ..text import (
    ATTT_STATUS_LABELS,
    CHECK_STATE_LABELS,
    DEVICE_SUMMARY_LABELS,
    GATE_LABELS,
    OS_FAMILY_LABELS,
    OS_SUPPORT_LABELS,
    SEVERITY_LABELS,
    UNKNOWN_HINTS,
    label,
    sort_key,
)
from .scope import school_filter

#: Worst first, for ``sort=attt``: below, insufficient, improve, meets, no_pcs, then not
#: evaluated.
SORT_ORDER = SCHOOL_STATUSES + (NOT_EVALUATED,)
#: The non-passing devices listed under each check of a school.
MAX_CHECK_DEVICES = 100
HISTORY_DAYS = 30
ATTT_FILTERS = ("fail", "unknown", "pass")
OS_SUPPORT_FILTERS = ("unsupported", "esu", "supported", "unknown")


def evaluated(conn: Connection) -> bool:
    """True once the evaluator has finished a pass on this store."""
    return conn.execute(select(attt_state.c.key).where(attt_state.c.key == "run")).first() \
        is not None


def school_statuses(conn: Connection, visible: Optional[FrozenSet[str]]) -> Dict[str, str]:
    """School code -> ATTT status, for the schools of ``visible`` that were evaluated."""
    return {r.school_code: r.status for r in conn.execute(
        select(attt_schools.c.school_code, attt_schools.c.status)
        .where(school_filter(attt_schools.c.school_code, visible)))}


def status_brief(status: Optional[str], lang: str) -> Dict[str, Any]:
    st = status or NOT_EVALUATED
    return {"status": st, "label": label(ATTT_STATUS_LABELS, st, lang),
            "status_label": label(ATTT_STATUS_LABELS, st, lang)}


def counts_note(by_status: Optional[Mapping[str, int]], is_evaluated: bool) -> Dict[str, Any]:
    """``below_baseline`` of a count: connectivity not evaluated (issue 10); security the
    number of schools not meeting the ATTT baseline once the evaluator ran."""
    note: Dict[str, Any] = {"connectivity": None, "connectivity_evaluated": False,
                            "security": None, "attt_by_status": None,
                            "evaluated": bool(is_evaluated)}
    if is_evaluated and by_status is not None:
        note["attt_by_status"] = dict(by_status)
        note["security"] = sum(n for s, n in by_status.items() if s in NOT_MEETING)
        note["status"] = "evaluated"
    else:
        note["status"] = NOT_EVALUATED
    return note


def tally(statuses: Mapping[str, str], codes: Iterable[str]) -> Dict[str, int]:
    """{status: n} over ``codes`` (a school without a row counts as not_evaluated)."""
    out = {s: 0 for s in SORT_ORDER}
    for code in codes:
        st = statuses.get(code, NOT_EVALUATED)
        out[st] = out.get(st, 0) + 1
    return out


def _check_texts(b: Baseline, lang: str) -> Dict[str, Dict[str, Any]]:
    return {c.id: {"title": c.title.get(lang) or c.title["vi"],
                   "hint": c.hint.get(lang) or c.hint["vi"], "citation": c.citation,
                   "check": c} for c in b.checks}


def device_security(conn: Connection, device_id: str, b: Baseline, lang: str
                    ) -> Optional[Dict[str, Any]]:
    """The ``security`` of ``GET /api/v1/devices/{id}``; None before its first judgement."""
    row = conn.execute(select(attt_devices).where(attt_devices.c.device_id == device_id)) \
        .first()
    if row is None or not isinstance(row.result, dict):
        return None
    res = row.result
    texts = _check_texts(b, lang)
    fam = res.get("os_family")
    checks = []
    for cid, c in res.get("checks", {}).items():
        t = texts.get(cid)
        check = t["check"] if t else None
        sev = c.get("severity")
        # an unknown check: how to make the fact known, not the remedy of a failure
        how = unknown_hint(c)
        hint = label(UNKNOWN_HINTS, how, lang) if how else (
            _pick(check.hint_for(fam), lang) if check else None)
        checks.append({
            "id": cid, "title": t["title"] if t else cid, "severity": sev,
            "severity_label": label(SEVERITY_LABELS, sev, lang), "state": c["state"],
            "state_label": label(CHECK_STATE_LABELS, c["state"], lang),
            "evidence": render(check, c, row.evaluated_at, lang, fam),
            "values": c.get("values") or {}, "since": c.get("since"),
            "since_first_evaluation": bool(c.get("since_first")),
            "hint": hint, "hint_kind": "unknown" if how else "remedy", "hint_code": how,
            "citation": check.citation_for(fam) if check else None})
    os_support = dict(res.get("os_support") or {})
    os_label = os_support.get("label")
    os_support["label"] = (os_label.get(lang) or os_label.get("vi")) if isinstance(
        os_label, dict) else label(OS_SUPPORT_LABELS, os_support.get("status"), lang)
    os_support["status_label"] = label(OS_SUPPORT_LABELS, os_support.get("status"), lang)
    os_support["text"] = os_support_sentence(os_support.get("status"), os_support.get("end"),
                                             lang)
    frozen_checks = [{"id": k["id"], "title": k["title"]} for k in checks
                     if (res["checks"][k["id"]].get("ev") or {}).get("code") == "frozen"]
    applicable = bool(res.get("applicable", True))
    return {"evaluated_at": row.evaluated_at, "reported_at": row.reported_at,
            "stale": bool(row.stale) and applicable, "applicable": applicable,
            "never_reported": applicable and row.reported_at is None,
            "os_family": fam, "os_family_label": label(OS_FAMILY_LABELS, fam, lang),
            "frozen": bool(res.get("frozen")),
            "freeze_product": res.get("freeze_product"), "frozen_checks": frozen_checks,
            "worst": row.worst,
            "worst_label": label(CHECK_STATE_LABELS, row.worst, lang),
            "counts": {s: int((res.get("counts") or {}).get(s, 0)) for s in STATES},
            **summary_of(res.get("checks") or {}, lang),
            "os_support": os_support, "checks": checks}


def _pick(texts: Mapping[str, str], lang: str) -> str:
    return texts.get(lang) or texts["vi"]


def summary_of(checks: Mapping[str, Mapping[str, Any]], lang: str) -> Dict[str, Any]:
    """``summary`` (fail, unknown, findings, pass, na), ``summary_label`` ("Đạt tiêu chí bắt
    buộc · 1 tiêu chí cần khắc phục") and the counts behind them, from stored check results
    (``posture.rules.device_summary``)."""
    s = device_summary(checks)
    code = s["summary"]
    n = {"fail": s["required_fail"], "unknown": s["required_unknown"]}.get(code, 0)
    parts = [(label(DEVICE_SUMMARY_LABELS, code, lang) or code).replace("{n}", str(n))]
    if code == "findings":
        for key in ("other_fail", "other_unknown"):
            if s[key]:
                parts.append((label(DEVICE_SUMMARY_LABELS, key, lang) or key)
                             .replace("{n}", str(s[key])))
    s["summary_label"] = " · ".join(parts)
    return s


def device_briefs(conn: Connection, ids: Iterable[str], lang: str
                  ) -> Dict[str, Dict[str, Any]]:
    """``attt`` of each listed device that was judged: worst state, failing and unknown,
    and its ``summary`` (a PC failing only medium or low checks is told apart from one
    failing a check the school rule counts)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    out: Dict[str, Dict[str, Any]] = {}
    for r in conn.execute(select(attt_devices.c.device_id, attt_devices.c.worst,
                                 attt_devices.c.fail_n, attt_devices.c.unknown_n,
                                 attt_devices.c.os_status, attt_devices.c.result)
                          .where(attt_devices.c.device_id.in_(wanted))):
        brief = {"worst": r.worst, "worst_label": label(CHECK_STATE_LABELS, r.worst, lang),
                 "fail": int(r.fail_n), "unknown": int(r.unknown_n),
                 "os_support": r.os_status}
        checks = (r.result or {}).get("checks") if isinstance(r.result, dict) else None
        brief.update(summary_of(checks or {}, lang))
        out[r.device_id] = brief
    return out


def device_filter(attt: Optional[str], os_support: Optional[str]) -> List[Any]:
    """WHERE clauses on ``devices.id`` for the device list's ``attt`` / ``os_support``."""
    a = attt_devices.c
    conds: List[Any] = []
    if attt == "fail":
        conds.append(devices.c.id.in_(select(a.device_id).where(a.fail_n > 0)))
    elif attt == "unknown":
        conds.append(devices.c.id.in_(select(a.device_id).where(a.unknown_n > 0)))
    elif attt == "pass":
        conds.append(devices.c.id.in_(select(a.device_id).where(a.fail_n == 0,
                                                                a.unknown_n == 0)))
    if os_support is not None:
        conds.append(devices.c.id.in_(select(a.device_id).where(a.os_status == os_support)))
    return conds


def school_attt(conn: Connection, code: str, b: Baseline, lang: str, tz: str,
                now: float) -> Dict[str, Any]:
    """The ``attt`` of ``GET /api/v1/schools/{code}``."""
    row = conn.execute(select(attt_schools).where(attt_schools.c.school_code == code)).first()
    out: Dict[str, Any] = status_brief(row.status if row else None, lang)
    texts = _check_texts(b, lang)
    if row is None:
        out.update(since=None, since_first_evaluation=False, evaluated_at=None, coverage=None,
                   gates=[], checks=[], history=[])
        return out
    detail = row.detail if isinstance(row.detail, dict) else {}
    cov = dict(detail.get("coverage") or {})
    # the non-passing PCs of each check, from the school's device results
    failing: Dict[str, List[Dict[str, Any]]] = {c.id: [] for c in b.checks}
    pcs: Dict[str, Any] = {}
    for r in conn.execute(select(attt_devices.c.device_id, attt_devices.c.result,
                                 attt_devices.c.evaluated_at, attt_devices.c.reported_at,
                                 devices.c.hostname, devices.c.role)
                          .join(devices, devices.c.id == attt_devices.c.device_id)
                          .where(attt_devices.c.school_code == code,
                                 devices.c.state != "retired")):
        pcs[r.device_id] = r
        for cid, c in ((r.result or {}).get("checks") or {}).items():
            if c.get("state") in PASSING or cid not in failing:
                continue
            t = texts.get(cid)
            failing[cid].append({
                "id": r.device_id, "hostname": r.hostname, "role": r.role,
                "state": c["state"], "state_label": label(CHECK_STATE_LABELS, c["state"], lang),
                "evidence": render(t["check"] if t else None, c, r.evaluated_at, lang,
                                   (r.result or {}).get("os_family"))})
    gates = []
    for g in detail.get("gates") or []:
        text = label(GATE_LABELS, g["id"], lang) or g["id"]
        gate = dict(g, label=text.replace("{days}", "%g" % float(cov.get("days") or 7)))
        if g["id"] == "coverage" and "missing" in g:
            # the PCs that did not report in the window (as judged), each for a link
            gate["missing"] = sorted(
                (_missing_pc(pcs[m]) for m in g["missing"] if m in pcs and is_pc(pcs[m].role)),
                key=lambda d: (sort_key(d["hostname"] or ""), d["id"]))
        gates.append(gate)
    per_check = detail.get("checks") or {}
    checks = []
    for c in b.checks:
        counts = {s: int((per_check.get(c.id) or {}).get(s, 0)) for s in STATES}
        devs = sorted(failing[c.id], key=lambda d: (d["state"] != "fail",
                                                    sort_key(d["hostname"] or ""), d["id"]))
        checks.append(dict(
            {"id": c.id, "title": texts[c.id]["title"], "severity": c.severity,
             "severity_label": label(SEVERITY_LABELS, c.severity, lang),
             "hint": texts[c.id]["hint"], "citation": c.citation,
             "by_os": _by_os(c, lang)},
            **counts, devices=devs[:MAX_CHECK_DEVICES], devices_total=len(devs)))
    start = (_dt.datetime.fromtimestamp(now, _dt.timezone.utc)
             - _dt.timedelta(days=HISTORY_DAYS)).date().isoformat()
    history = [{"day": h.day, "status": h.status,
                "status_label": label(ATTT_STATUS_LABELS, h.status, lang)}
               for h in conn.execute(select(attt_school_days.c.day, attt_school_days.c.status)
                                     .where(attt_school_days.c.school_code == code,
                                            attt_school_days.c.day > start)
                                     .order_by(attt_school_days.c.day))]
    out.update(since=row.since, since_first_evaluation=bool(detail.get("since_first")),
               evaluated_at=row.evaluated_at, coverage=cov, gates=gates, checks=checks,
               history=history)
    return out


def _by_os(c: Any, lang: str) -> Dict[str, Dict[str, Any]]:
    """What a check says differently on an OS family: {os: {hint, citation}} (the hint in
    the reader's language)."""
    out: Dict[str, Dict[str, Any]] = {}
    for fam, o in c.by_os.items():
        one: Dict[str, Any] = {}
        if "hint" in o:
            one["hint"] = _pick(o["hint"], lang)
        if "citation" in o:
            one["citation"] = o["citation"]
        if one:
            out[fam] = one
    return out


def _missing_pc(r: Any) -> Dict[str, Any]:
    return {"id": r.device_id, "hostname": r.hostname, "role": r.role,
            "reported_at": r.reported_at, "never_reported": r.reported_at is None}


def baselines(b: Baseline, os_rows: List[Dict[str, Any]], lang: str,
              connectivity: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """``GET /api/v1/baselines`` (``connectivity``: ``read.connectivity.baseline_listing``)."""
    checks = []
    for c in describe(b):
        checks.append({"id": c["id"], "title": c["title"].get(lang) or c["title"]["vi"],
                       "severity": c["severity"],
                       "severity_label": label(SEVERITY_LABELS, c["severity"], lang),
                       "severity_by_role": c["severity_by_role"], "roles": c["roles"],
                       "os": c["os"], "pass": c["pass"], "warn": c["warn"],
                       "when_frozen": c["when_frozen"], "applies_if": c["applies_if"],
                       "hint": c["hint"].get(lang) or c["hint"]["vi"],
                       "citation": c["citation"],
                       "by_os": {fam: dict(o, **({"hint": _pick(o["hint"], lang)}
                                                 if "hint" in o else {}))
                                 for fam, o in c["by_os"].items()}})
    return {"attt": {"source": b.source, "hash": b.hash, "checks": checks,
                     "school_rule": rule_dict(b.rule)},
            "os_support": [dict(e, label=e["label"].get(lang) or e["label"]["vi"])
                           for e in os_rows],
            "connectivity": connectivity}
