"""A school's connectivity as the API shows it: its status with the evidence (what the
evaluator stored in ``connectivity_schools``), its test lease, data budget and router; its
tests, days and probe hours for the charts; the status counts of the summary, the overview
and the organisation tree; and the province's ISP comparison.

Reads what others write (decisions 2–4 of issue 10): a school without a
``connectivity_schools`` row is ``insufficient`` (no counted test), and every figure the
store does not have is None, never 0. Times are UTC epoch seconds (the API renders)."""
import datetime as _dt
import statistics
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Set, Tuple

from sqlalchemy import Connection, select

from ..connectivity.text import (
    CHECK_TITLES,
    DIRECTION_TEXT,
    EVIDENCE_TEXT,
    REFUSAL_TEXT,
    SNMP_ERROR_TEXT,
    STATUS_LABELS,
    STATUSES,
    TEST_FAILURE_TEXT,
    code_text,
    reason_text,
)
from ..store import school_state
from ..store.schema import (
    connectivity_school_days,
    connectivity_schools,
    device_latest,
    link_probe_hours,
    link_tests,
    schools,
)
from ..text import label, sort_key
from .scope import school_filter

#: Worst first (``sort=connectivity``).
SORT_ORDER = STATUSES
#: The statuses ``baseline=connectivity`` lists and ``below_baseline.connectivity`` counts:
#: a school without a counted test is not said to be below (it is ``insufficient``).
NOT_MEETING = ("below", "improve")
NO_DATA = "insufficient"
#: ``?days=`` of the school's history.
HISTORY_DAYS = (7, 30, 90)
#: At most this many tests in one history (four a day for 90 days is 360).
MAX_TESTS = 2000
#: A "counted test in 7 days" of the ISP comparison.
RECENT_DAYS = 7
#: Below this share of the contracted speed a school is "below contract" (Giga Meter).
CONTRACT_SHARE = 0.8
LEASE_KEY = "speedtest.lease"
BUDGET_KEY = "speedtest.budget"
PLAN_KEY = "speedtest.plan"


def evaluated(conn: Connection) -> bool:
    """True once the evaluator has judged any school (before: the counts are None)."""
    return conn.execute(select(connectivity_schools.c.school_code).limit(1)).first() \
        is not None


def school_statuses(conn: Connection, visible: Optional[FrozenSet[str]]) -> Dict[str, str]:
    """School code -> connectivity status, for the schools of ``visible`` with a row (one
    query for the whole province)."""
    return {r.school_code: r.status for r in conn.execute(
        select(connectivity_schools.c.school_code, connectivity_schools.c.status)
        .where(school_filter(connectivity_schools.c.school_code, visible)))}


def status_of(statuses: Mapping[str, str], code: str) -> str:
    st = statuses.get(code, NO_DATA)
    return st if st in SORT_ORDER else NO_DATA


def status_brief(status: Optional[str], lang: str) -> Dict[str, Any]:
    st = status if status in SORT_ORDER else NO_DATA
    text = label(STATUS_LABELS, st, lang)
    return {"status": st, "label": text, "status_label": text}


def tally(statuses: Mapping[str, str], codes: Iterable[str]) -> Dict[str, int]:
    """{status: n} over ``codes`` (a school without a row counts as insufficient)."""
    out = {s: 0 for s in SORT_ORDER}
    for code in codes:
        out[status_of(statuses, code)] += 1
    return out


def fill_note(note: Dict[str, Any], by_status: Optional[Mapping[str, int]],
              is_evaluated: bool) -> Dict[str, Any]:
    """``below_baseline``'s connectivity part: the count of schools below (improve, below)
    and the counts by status once the evaluator judged any school; None before."""
    if is_evaluated and by_status is not None:
        note["connectivity"] = sum(n for s, n in by_status.items() if s in NOT_MEETING)
        note["connectivity_by_status"] = dict(by_status)
        note["connectivity_evaluated"] = True
    else:
        note["connectivity"] = None
        note["connectivity_by_status"] = None
        note["connectivity_evaluated"] = False
    return note


def baseline_listing(b: Any, lang: str) -> Dict[str, Any]:
    """The connectivity baseline in force (``baseline.describe``) in ``lang``: each check's
    title, the status a failing school gets (with its label) and its citation."""
    from ..connectivity.baseline import describe
    out = describe(b)
    for c in out["checks"]:
        pair = CHECK_TITLES.get(c["id"], (c["id"], c["id"]))
        c["title"] = pair[1] if lang == "en" else pair[0]
        c["effect_label"] = label(STATUS_LABELS, c["effect"], lang)
    return out


def labels(lang: str) -> Dict[str, Optional[str]]:
    return {code: label(STATUS_LABELS, code, lang) for code in SORT_ORDER}


def _dict(v: Any) -> Dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _direction(r: Mapping[str, Any], detail: Mapping[str, Any]) -> Optional[str]:
    """Download or upload, for a ``below_contract`` reason: the reason's own ``dir`` when
    the evaluator wrote one, else the week's (or day's) median its value is."""
    if r.get("dir") in ("down", "up"):
        return r["dir"]
    for part in ("week", "day"):
        fig = detail.get(part)
        if isinstance(fig, dict):
            for d in ("down", "up"):
                if fig.get(d + "_mbps") is not None and fig.get(d + "_mbps") == r.get("value"):
                    return d
    return None


def _reasons(raw: Any, lang: str, detail: Optional[Mapping[str, Any]] = None
             ) -> List[Dict[str, Any]]:
    detail = detail or {}
    th = _dict(detail.get("thresholds"))
    contracted = _dict(detail.get("contracted"))
    out = []
    for r in raw if isinstance(raw, list) else []:
        if not isinstance(r, dict) or not isinstance(r.get("code"), str):
            continue
        item = {"code": r["code"], "value": r.get("value"), "limit": r.get("limit")}
        extra: Dict[str, Any] = {}
        if r["code"] == "below_contract":
            d = _direction(r, detail)
            pair = DIRECTION_TEXT[d]
            item["dir"] = d
            extra = {"dir": pair[1] if lang == "en" else pair[0], "pct": th.get("contract_pct"),
                     "contract": contracted.get(d + "_mbps") if d else None}
        item["text"] = reason_text(r["code"], r.get("value"), r.get("limit"), lang, extra)
        out.append(item)
    return out


def evidence(detail: Mapping[str, Any], lang: str) -> List[Dict[str, Any]]:
    """The checks the school-week passed, with the figure and the threshold (a Đạt school
    shows why: "Trung vị tải xuống 145 Mbit/s ≥ 20 Mbit/s"); a check that failed is a
    reason instead, a figure not measured is left out."""
    week = _dict(detail.get("week"))
    th = _dict(detail.get("thresholds"))
    if not week:
        return []
    c = _dict(detail.get("contracted"))
    down, up = _number(week.get("down_mbps")), _number(week.get("up_mbps"))
    checks: List[Tuple[str, Optional[float], Any, bool]] = []
    need = _number(th.get("required_down_mbps")) or _number(th.get("good_down_mbps"))
    if down is not None and need is not None:
        checks.append(("down", down, need, down >= need))
    if up is not None and _number(th.get("good_up_mbps")) is not None:
        checks.append(("up", up, th["good_up_mbps"], up >= th["good_up_mbps"]))
    cd, pct_min = _number(c.get("down_mbps")), _number(th.get("contract_pct"))
    if down is not None and cd and pct_min:
        share = round(100.0 * down / cd, 1)
        checks.append(("contract", share, pct_min, share >= pct_min))
    ping, max_ping = _number(week.get("ping_ms")), _number(th.get("max_ping_ms"))
    if ping is not None and max_ping is not None:
        checks.append(("ping", ping, max_ping, ping <= max_ping))
    up_pct, min_up = _number(week.get("uptime_pct")), _number(th.get("min_uptime_pct"))
    if up_pct is not None and min_up is not None:
        checks.append(("uptime", up_pct, min_up, up_pct >= min_up))
    intl, min_intl = _number(week.get("intl_ok_pct")), _number(th.get("min_intl_ok_pct"))
    if intl is not None and min_intl is not None:
        checks.append(("intl", intl, min_intl, intl >= min_intl))
    out = [{"code": code, "value": v, "limit": lim,
            "text": reason_text(code, v, lim, lang, table=EVIDENCE_TEXT)}
           for code, v, lim, passed in checks if passed]
    if week.get("tests"):
        out.append({"code": "tests", "value": week["tests"], "limit": week.get("days"),
                    "text": reason_text("tests", week["tests"], week.get("days"), lang,
                                        table=EVIDENCE_TEXT)})
    return out


def test_failure_label(reason: Any, lang: str) -> Optional[str]:
    """A failed test's ``reason`` in words (``timeout`` → "quá thời gian")."""
    return code_text(TEST_FAILURE_TEXT, reason, lang)


def refusal_label(refused: Any, lang: str) -> Optional[str]:
    """Why a result is not counted, in words (``unknown_lease`` → …)."""
    return code_text(REFUSAL_TEXT, refused, lang)


def _number(v: Any) -> Optional[float]:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def lease_of(conn: Connection, code: str, now: float) -> Dict[str, Any]:
    """The school's test lease (who holds it, until when) and its next planned test, from
    school_state (written by the scheduler)."""
    lease = school_state.read(conn, code, LEASE_KEY).value
    plan = school_state.read(conn, code, PLAN_KEY).value
    out: Dict[str, Any] = {"held": False, "holder": None, "id": None, "expires": None,
                           "granted_at": None,
                           "trigger": None, "mode": None, "next_planned": None}
    if isinstance(lease, dict):
        exp = _number(lease.get("exp"))
        held = lease.get("released_at") is None and lease.get("expired_at") is None \
            and exp is not None and exp > now
        out.update(held=held, holder=lease.get("device") if held else None,
                   id=lease.get("id") if held else None,
                   expires=exp if held else None, granted_at=_number(lease.get("granted_at")),
                   trigger=lease.get("trigger"), mode=lease.get("mode"),
                   last_holder=lease.get("device"))
    if isinstance(plan, dict) and isinstance(plan.get("slots"), dict):
        done = {str(d) for d in plan.get("done") or []}
        planned = [float(t) for k, t in plan["slots"].items()
                   if _number(t) is not None and float(t) > now and str(k) not in done]
        out["next_planned"] = min(planned) if planned else None
    return out


def budget_of(conn: Connection, code: str) -> Optional[Dict[str, Any]]:
    """This month's data used by the school's tests against its budget; None before any."""
    b = school_state.read(conn, code, BUDGET_KEY).value
    if not isinstance(b, dict):
        return None
    used, limit = _number(b.get("bytes")), _number(b.get("limit"))
    return {"month": b.get("month"), "used": used, "limit": limit,
            "tests": b.get("tests"),
            "used_pct": round(100.0 * used / limit, 1) if used is not None and limit else None}


def router_brief(payload: Any, ts: Optional[float], lang: str = "vi"
                 ) -> Optional[Dict[str, Any]]:
    """A router message, summarised: up (gateway or SNMP answered), uptime, WAN rates and
    utilisation, model; ``snmp_err_label``: why SNMP failed, in words. Figures the message
    lacks are None."""
    if not isinstance(payload, dict):
        return None
    p = payload

    def mbps(key: str) -> Optional[float]:
        v = _number(p.get(key))
        return round(v / 1e6, 2) if v is not None else None

    ifs = [{"name": i.get("name"), "index": i.get("index"), "up": i.get("up"),
            "mbps": i.get("mbps")} for i in p.get("ifs") or [] if isinstance(i, dict)]
    return {"ts": ts, "host": p.get("host"),
            "up": bool(p.get("gw_ok") or p.get("snmp_ok")),
            "gw_ok": p.get("gw_ok"), "gw_ms": p.get("gw_ms"), "snmp_ok": p.get("snmp_ok"),
            "snmp_err": p.get("snmp_err"),
            "snmp_err_label": code_text(SNMP_ERROR_TEXT, p.get("snmp_err"), lang),
            "uptime_s": p.get("uptime_s"),
            "rebooted": p.get("rebooted"), "model": p.get("model"),
            "firmware": p.get("firmware"), "name": p.get("name"), "descr": p.get("descr"),
            "wan_if": p.get("wan_if"), "wan_up": p.get("wan_up"),
            "wan_mbps": p.get("wan_mbps"), "rx_mbps": mbps("rx_bps"),
            "tx_mbps": mbps("tx_bps"), "rx_util_pct": p.get("rx_util_pct"),
            "tx_util_pct": p.get("tx_util_pct"), "counter_bits": p.get("counter_bits"),
            "interfaces": ifs}


def router_of(conn: Connection, code: str, lang: str = "vi") -> Optional[Dict[str, Any]]:
    """The latest ``router`` message of the school's router device (``router.{code}``)."""
    device_id = "router." + code
    row = conn.execute(select(device_latest.c.ts, device_latest.c.payload).where(
        device_latest.c.device_id == device_id, device_latest.c.kind == "router")).first()
    if row is None:
        return None
    brief = router_brief(row.payload, row.ts, lang)
    if brief is not None:
        brief["id"] = device_id
    return brief


def _contracted(detail: Mapping[str, Any], school: Any) -> Dict[str, Any]:
    c = detail.get("contracted") if isinstance(detail.get("contracted"), dict) else {}
    down = c.get("down_mbps") if c else None
    up = c.get("up_mbps") if c else None
    if school is not None:  # the registry's when the evaluator has not judged yet
        down = down if down is not None else school.contracted_down_mbps
        up = up if up is not None else school.contracted_up_mbps
    return {"down_mbps": down, "up_mbps": up}


def _school_row(conn: Connection, code: str) -> Any:
    return conn.execute(select(schools.c.contracted_down_mbps, schools.c.contracted_up_mbps)
                        .where(schools.c.code == code)).first()


def _last_test(lt: Any, lang: str) -> Optional[Dict[str, Any]]:
    if not isinstance(lt, dict):
        return None
    return dict(lt, reason_label=test_failure_label(lt.get("reason"), lang))


def school_connectivity(conn: Connection, code: str, lang: str, now: float
                        ) -> Dict[str, Any]:
    """The ``connectivity`` of ``GET /api/v1/schools/{code}``."""
    row = conn.execute(select(connectivity_schools)
                       .where(connectivity_schools.c.school_code == code)).first()
    detail: Dict[str, Any] = row.detail if row is not None and isinstance(row.detail, dict) \
        else {}
    out = status_brief(row.status if row is not None else None, lang)
    if row is None:
        reasons = _reasons([{"code": "no_recent_test", "value": None,
                             "limit": RECENT_DAYS}], lang)
    else:
        reasons = _reasons(detail.get("reasons"), lang, detail)
    out.update(
        evaluated=row is not None,
        since=row.since if row is not None else None,
        evaluated_at=row.evaluated_at if row is not None else None,
        reasons=reasons,
        thresholds=detail.get("thresholds") if isinstance(detail.get("thresholds"), dict)
        else None,
        contracted=_contracted(detail, _school_row(conn, code)),
        day=detail.get("day") if isinstance(detail.get("day"), dict) else None,
        week=detail.get("week") if isinstance(detail.get("week"), dict) else None,
        consecutive_failures=detail.get("consecutive_failures"),
        evidence=evidence(detail, lang),
        last_test=_last_test(detail.get("last_test"), lang),
        lease=lease_of(conn, code, now), budget=budget_of(conn, code),
        router=router_of(conn, code, lang))
    return out


def _local_date(ts: float, tz: str) -> str:
    from zoneinfo import ZoneInfo
    return _dt.datetime.fromtimestamp(ts, ZoneInfo(tz)).date().isoformat()


def _pct(ok: int, n: int) -> Optional[float]:
    return round(100.0 * ok / n, 1) if n else None


def _mean(total: float, n: int) -> Optional[float]:
    return round(total / n, 1) if n else None


def hour_row(r: Any) -> Dict[str, Any]:
    """One hour of probes: uptime = probes that reached the domestic target (the collector;
    the international one where no domestic target is configured) / probes that tried it;
    mean times of the successful probes."""
    uptime = _pct(r.dom_ok, r.dom_n) if r.dom_n else _pct(r.intl_ok, r.intl_n)
    return {"hour": float(r.hour_start), "n": int(r.n), "uptime_pct": uptime,
            "gw_ms": _mean(r.gw_ms, r.gw_ok), "dns_ms": _mean(r.dns_ms, r.dns_ok),
            "dom_ms": _mean(r.dom_ms, r.dom_ok), "intl_ms": _mean(r.intl_ms, r.intl_ok),
            "gw_ok_pct": _pct(r.gw_ok, r.gw_n), "intl_ok_pct": _pct(r.intl_ok, r.intl_n)}


def school_history(conn: Connection, code: str, days: int, now: float, tz: str,
                   lang: str = "vi") -> Dict[str, Any]:
    """``GET /api/v1/schools/{code}/connectivity``: the tests, school days and probe hours
    of the last ``days`` days, oldest first, with the thresholds and contracted speeds."""
    start = now - days * 86400
    t = link_tests.c
    tests = [{"ts": r.ts, "device": r.device_id, "ok": bool(r.ok), "reason": r.reason,
              "reason_label": test_failure_label(r.reason, lang),
              "refused": r.refused, "refused_label": refusal_label(r.refused, lang),
              "counted": r.refused is None,
              "down_mbps": r.down_mbps, "up_mbps": r.up_mbps, "ping_ms": r.ping_ms,
              "jitter_ms": r.jitter_ms,
              "bytes": (None if r.bytes_rx is None and r.bytes_tx is None
                        else int(r.bytes_rx or 0) + int(r.bytes_tx or 0)),
              "server": r.server, "isp": r.isp, "wired": r.wired, "trigger": r.trigger,
              "mode": r.mode, "lease": r.lease}
             for r in conn.execute(select(link_tests).where(t.school_code == code,
                                                            t.ts >= start)
                                   .order_by(t.ts.desc()).limit(MAX_TESTS))]
    tests.reverse()
    d = connectivity_school_days.c
    day_rows = [{"day": r.day, "status": r.status, "tests": int(r.tests),
                 "down_mbps": r.down_mbps, "up_mbps": r.up_mbps, "ping_ms": r.ping_ms,
                 "uptime_pct": r.uptime_pct, "bytes": int(r.bytes)}
                for r in conn.execute(select(connectivity_school_days)
                                      .where(d.school_code == code,
                                             d.day >= _local_date(start, tz))
                                      .order_by(d.day))]
    hp = link_probe_hours.c
    hours = [hour_row(r) for r in conn.execute(
        select(link_probe_hours).where(hp.school_code == code,
                                       hp.hour_start >= int(start // 3600 * 3600))
        .order_by(hp.hour_start))]
    row = conn.execute(select(connectivity_schools.c.detail)
                       .where(connectivity_schools.c.school_code == code)).first()
    detail = row.detail if row is not None and isinstance(row.detail, dict) else {}
    return {"days": days, "from": start, "to": now, "tests": tests, "school_days": day_rows,
            "hours": hours,
            "thresholds": detail.get("thresholds") if isinstance(detail.get("thresholds"),
                                                                 dict) else None,
            "contracted": _contracted(detail, _school_row(conn, code))}


def _median(values: List[float]) -> Optional[float]:
    return round(statistics.median(values), 1) if values else None


def _share(part: int, whole: int) -> Optional[float]:
    return round(100.0 * part / whole, 1) if whole else None


def isp_comparison(conn: Connection, visible: Optional[FrozenSet[str]],
                   area_ids: Optional[Set[int]], now: float) -> Dict[str, Any]:
    """``GET /api/v1/connectivity/isps``: per ISP, per link type and per (ISP, link type),
    the schools, those with a counted test in 7 days, the medians of the school-week
    medians (download, upload, latency, uptime), the share meeting the baseline and the
    share below 80 % of the contracted download. Three queries whatever the size."""
    s = schools.c
    where = [school_filter(s.code, visible)]
    if area_ids is not None:
        where.append(s.org_unit_id.in_(sorted(area_ids)))
    rows = list(conn.execute(select(s.code, s.isp, s.link_type, s.contracted_down_mbps)
                             .where(*where)))
    codes = {r.code for r in rows}
    cs = connectivity_schools.c
    judged: Dict[str, Tuple[str, Dict[str, Any]]] = {}
    for r in conn.execute(select(cs.school_code, cs.status, cs.detail)
                          .where(school_filter(cs.school_code, visible))):
        if r.school_code in codes:
            week = (r.detail or {}).get("week") if isinstance(r.detail, dict) else None
            judged[r.school_code] = (r.status, week if isinstance(week, dict) else {})
    t = link_tests.c
    tested = set(conn.execute(select(t.school_code).distinct().where(
        t.ts >= now - RECENT_DAYS * 86400, t.refused.is_(None),
        school_filter(t.school_code, visible))).scalars())

    def group(*fields: str) -> List[Dict[str, Any]]:
        groups: Dict[Tuple[Any, ...], List[Any]] = {}
        for r in rows:
            groups.setdefault(tuple(getattr(r, f) or None for f in fields), []).append(r)
        out = []
        for key, members in groups.items():
            by = {st: 0 for st in SORT_ORDER}
            down: List[float] = []
            up: List[float] = []
            ping: List[float] = []
            uptime: List[float] = []
            with_contract = below_contract = 0
            for m in members:
                st, week = judged.get(m.code, (NO_DATA, {}))
                by[st if st in by else NO_DATA] += 1
                wd = _number(week.get("down_mbps"))
                for values, k in ((up, "up_mbps"), (ping, "ping_ms"), (uptime, "uptime_pct")):
                    v = _number(week.get(k))
                    if v is not None:
                        values.append(v)
                if wd is not None:
                    down.append(wd)
                    if m.contracted_down_mbps:
                        with_contract += 1
                        below_contract += wd < CONTRACT_SHARE * m.contracted_down_mbps
            n = len(members)
            out.append(dict(zip(fields, key), schools=n,
                            tested_7d=sum(1 for m in members if m.code in tested),
                            down_mbps=_median(down), up_mbps=_median(up),
                            ping_ms=_median(ping), uptime_pct=_median(uptime),
                            meets_pct=_share(by["meets"], n), by_status=by,
                            with_contract=with_contract,
                            below_contract_pct=_share(below_contract, with_contract)))
        # Vietnamese order; the schools whose ISP or link is not on file last
        out.sort(key=lambda g: tuple((g[f] is None, sort_key(g[f] or "")) for f in fields))
        return out

    return {"schools": len(rows),
            "by_isp": group("isp"), "by_link_type": group("link_type"),
            "by_isp_link": group("isp", "link_type"),
            "by_status": {st: sum(1 for r in rows if judged.get(r.code, (NO_DATA,))[0] == st)
                          for st in SORT_ORDER},
            "evaluated": bool(judged) or evaluated(conn)}
