"""The read side of alerting: alerts with filters and paging, one alert with its history,
the open alerts counted by severity (overview, school and device pages), and the delivery
status of the notification channels (administrators).

What a person calls an alert's state is not one column: ``state`` (pending | firing |
resolved) is the evaluator's, an acknowledgement (``ack_at``) and a silence are people's.
:data:`HANDLING` names the combination the pages show — ``new`` (open, nobody on it),
``acknowledged``, ``silenced`` (a silence in force matches it), ``resolved`` — with the
order resolved > silenced > acknowledged > new. A silence counts from the moment it is
made: the active silences are matched here as well as through ``silenced_by`` (which the
evaluator sets on its next pass), so the page and the API agree at once.
"""
from types import SimpleNamespace
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Set

from sqlalchemy import Connection, and_, case, false, func, or_, select, true

from ..alerting.engine import problem_since
from ..notify.outbox import CHANNELS
from ..notify.text import error_text
from ..store.schema import (
    alert_events,
    alert_notifications,
    alerts,
    devices,
    notifications,
    org_units,
    schools,
    silences,
)
from .scope import school_filter

#: Alert severities, worst first (the rules file's ``severity``).
SEVERITIES = ("critical", "warning", "info")
#: What the ``state`` filter takes: the evaluator's states, the handling, and ``open`` (every
#: firing alert, whatever its handling; pending ones are ``pending``).
STATE_FILTERS = ("open", "new", "acknowledged", "silenced", "resolved", "pending", "firing")
HANDLING = ("new", "acknowledged", "silenced", "resolved")
#: ``kind``: what the alert is about — a school, one device, or the collector itself.
KINDS = ("school", "device", "collector")
MATCHERS = ("rule", "school_code", "area_code", "device_id")


def _active_silences(conn: Connection, now: float) -> List[Any]:
    return list(conn.execute(select(silences).where(
        silences.c.deleted_at.is_(None), silences.c.starts_at <= now,
        silences.c.ends_at > now).order_by(silences.c.id)))


def _silenced_clause(active: List[Any]) -> Any:
    """True for an alert an active silence matches (every non-NULL matcher equal)."""
    if not active:
        return false()
    # every comparison guarded by IS NOT NULL: a NULL column must make the clause false,
    # not NULL, or "NOT silenced" would drop the alerts without a device (SQL's NULL logic)
    parts: List[Any] = [and_(alerts.c.silenced_by.is_not(None),
                             alerts.c.silenced_by.in_([int(s.id) for s in active]))]
    for s in active:
        cond = [and_(alerts.c[col].is_not(None), alerts.c[col] == getattr(s, col))
                for col in MATCHERS if getattr(s, col) is not None]
        if cond:
            parts.append(and_(*cond))
    return or_(*parts)


def _state_clause(state: Optional[str], silenced: Any) -> Any:
    # open means firing: a pending alert has not met its ``for`` yet (a disk "full for 7
    # days" seen a minute ago), so it is listed apart (``pending``), never as open
    is_open = alerts.c.state == "firing"
    acked = alerts.c.ack_at.is_not(None)
    if state is None:
        return true()
    if state == "open":
        return is_open
    if state == "resolved":
        return alerts.c.state == "resolved"
    if state in ("pending", "firing"):
        return alerts.c.state == state
    if state == "silenced":
        return and_(is_open, silenced)
    if state == "acknowledged":
        return and_(is_open, acked, ~silenced)
    return and_(is_open, ~acked, ~silenced)  # new


def _kind_clause(kind: Optional[str]) -> Any:
    if kind == "device":
        return alerts.c.device_id.is_not(None)
    if kind == "school":
        return and_(alerts.c.device_id.is_(None), alerts.c.school_code.is_not(None))
    if kind == "collector":
        return and_(alerts.c.device_id.is_(None), alerts.c.school_code.is_(None))
    return true()


def _severity_rank() -> Any:
    return case({s: i for i, s in enumerate(SEVERITIES)}, value=alerts.c.severity,
                else_=len(SEVERITIES))


def _matchers(active: List[Any]) -> List[Dict[str, Any]]:
    """Each active silence as {column: value} of the matchers it has (read once per request:
    a Row's attribute access costs more than a dict's, and a page matches 50 × 50)."""
    out = []
    for sil in active:
        given = {c: getattr(sil, c) for c in MATCHERS if getattr(sil, c) is not None}
        if given:  # a silence always has one: actions.create_silence refuses one without
            out.append(given)
    return out


def _matches(given: Dict[str, Any], alert: Dict[str, Any]) -> bool:
    """Every matcher the silence has equals the alert's column (the evaluator's rule)."""
    return bool(given) and all(alert.get(c) == v for c, v in given.items())


def _handling(row: Any, silenced_ids: Set[int], given: List[Dict[str, Any]]) -> str:
    if row.state == "resolved":
        return "resolved"
    alert = {c: getattr(row, c) for c in MATCHERS}
    if (row.silenced_by is not None and int(row.silenced_by) in silenced_ids) or any(
            _matches(g, alert) for g in given):
        return "silenced"
    return "acknowledged" if row.ack_at is not None else "new"


def _pick(texts: Any, lang: str) -> Optional[str]:
    if isinstance(texts, dict):
        v = texts.get(lang) or texts.get("vi") or next(iter(texts.values()), None)
        return None if v is None else str(v)
    return None if texts is None else str(texts)


def _item(row: Any, lang: str, handling: str, names: Dict[str, Any]) -> Dict[str, Any]:
    value = row.value if isinstance(row.value, dict) else {}
    school = names["schools"].get(row.school_code) if row.school_code else None
    device = names["devices"].get(row.device_id) if row.device_id else None
    area = names["areas"].get(row.area_code) if row.area_code else None
    return {
        "id": int(row.id), "rule": row.rule, "subject": row.subject,
        "severity": row.severity, "state": row.state, "handling": handling,
        "kind": "device" if row.device_id else "school" if row.school_code else "collector",
        "title": _pick(value.get("title"), lang) or row.rule,
        "text": _pick(value.get("text"), lang),
        "evidence": value.get("evidence") or {},
        "school": None if not row.school_code else {
            "code": row.school_code,
            "name": school or value.get("school_name") or row.school_code},
        "device": None if not row.device_id else {
            "id": row.device_id,
            "name": device or value.get("device_name") or row.device_id},
        "area": None if not row.area_code else {"code": row.area_code,
                                                 "name": area or row.area_code},
        "began_at": problem_since(value, float(row.started_at)),
        "started_at": row.started_at, "fired_at": row.fired_at,
        "resolved_at": row.resolved_at, "evaluated_at": row.evaluated_at,
        "suppressed_by": None if row.suppressed_by is None else int(row.suppressed_by),
        "silenced_by": None if row.silenced_by is None else int(row.silenced_by),
        "ack": None if row.ack_at is None else {"by": row.ack_by, "ts": row.ack_at,
                                                "comment": row.ack_comment},
        "rev": int(row.rev),
    }


def _names(conn: Connection, rows: Iterable[Any]) -> Dict[str, Dict[str, Any]]:
    rows = list(rows)
    codes = sorted({r.school_code for r in rows if r.school_code})
    ids = sorted({r.device_id for r in rows if r.device_id})
    areas = sorted({r.area_code for r in rows if r.area_code})
    out: Dict[str, Dict[str, Any]] = {"schools": {}, "devices": {}, "areas": {}}
    if codes:
        out["schools"] = dict(conn.execute(select(schools.c.code, schools.c.name)
                                           .where(schools.c.code.in_(codes))).all())
    if ids:
        out["devices"] = {r.id: r.hostname or r.id for r in conn.execute(
            select(devices.c.id, devices.c.hostname).where(devices.c.id.in_(ids)))}
    if areas:
        out["areas"] = dict(conn.execute(select(org_units.c.code, org_units.c.name)
                                         .where(org_units.c.code.in_(areas))).all())
    return out


def name_silences(conn: Connection, items: List[Dict[str, Any]]) -> None:
    """Add ``school_name``, ``device_name`` and ``area_name`` beside a silence's matchers
    (people read names; the codes stay for programs)."""
    rows = [SimpleNamespace(school_code=i.get("school_code"), device_id=i.get("device_id"),
                            area_code=i.get("area_code")) for i in items]
    names = _names(conn, rows)
    for i in items:
        i["school_name"] = names["schools"].get(i.get("school_code") or "")
        i["device_name"] = names["devices"].get(i.get("device_id") or "")
        i["area_name"] = names["areas"].get(i.get("area_code") or "")


def list_alerts(conn: Connection, visible: Optional[FrozenSet[str]], now: float, lang: str,
                state: Optional[str] = "open", school: Optional[str] = None,
                area_units: Optional[Set[int]] = None, kind: Optional[str] = None,
                severity: Optional[str] = None, rule: Optional[str] = None,
                device: Optional[str] = None, page: int = 1,
                per_page: int = 50) -> Dict[str, Any]:
    """Alerts the caller may see, worst severity first and, within one, the oldest first
    (resolved ones: the latest resolved first). ``counts``: the open alerts matching the
    same filters (but state and severity) by severity and by handling."""
    active = _active_silences(conn, now)
    silenced = _silenced_clause(active)
    where: List[Any] = [school_filter(alerts.c.school_code, visible), _kind_clause(kind)]
    if visible is not None:
        where.append(alerts.c.school_code.is_not(None))
    if school is not None:
        where.append(alerts.c.school_code == school)
    if device is not None:
        where.append(alerts.c.device_id == device)
    if rule is not None:
        where.append(alerts.c.rule == rule)
    if area_units is not None:
        where.append(alerts.c.school_code.in_(
            select(schools.c.code).where(schools.c.org_unit_id.in_(sorted(area_units)))))
    scoped = and_(*where)
    listed = and_(scoped, _state_clause(state, silenced),
                  alerts.c.severity == severity if severity else true())
    total = int(conn.execute(select(func.count()).select_from(alerts).where(listed))
                .scalar_one())
    order = ([alerts.c.resolved_at.desc(), alerts.c.id.desc()] if state == "resolved"
             else [_severity_rank(), alerts.c.started_at, alerts.c.id])
    rows = conn.execute(select(alerts).where(listed).order_by(*order)
                        .limit(per_page).offset((page - 1) * per_page)).all()
    ids = {int(s.id) for s in active}
    given = _matchers(active)
    names = _names(conn, rows)
    items = [_item(r, lang, _handling(r, ids, given), names) for r in rows]
    summaries = delivery_summaries(conn, (i["id"] for i in items))
    for i in items:
        i["delivery"] = summaries[i["id"]]
    return {"items": items, "total": total, "page": page, "per_page": per_page,
            "pages": (total + per_page - 1) // per_page,
            "counts": _counts(conn, scoped, silenced)}


def _counts(conn: Connection, where: Any, silenced: Any) -> Dict[str, Any]:
    acked = alerts.c.ack_at.is_not(None)
    handling = case((silenced, "silenced"), (acked, "acknowledged"), else_="new")
    by_sev: Dict[str, int] = {s: 0 for s in SEVERITIES}
    by_handling: Dict[str, int] = {h: 0 for h in HANDLING if h != "resolved"}
    total = pending = 0
    for state, sev, hnd, n in conn.execute(
            select(alerts.c.state, alerts.c.severity, handling, func.count()).where(
                where, alerts.c.state != "resolved")
            .group_by(alerts.c.state, alerts.c.severity, handling)):
        if state == "pending":
            pending += int(n)
            continue
        by_sev[sev] = by_sev.get(sev, 0) + int(n)
        by_handling[hnd] = by_handling.get(hnd, 0) + int(n)
        total += int(n)
    return {"open": total, "pending": pending, "by_severity": by_sev,
            "by_handling": by_handling}


def open_counts(conn: Connection, visible: Optional[FrozenSet[str]], now: float,
                school: Optional[str] = None) -> Dict[str, Any]:
    """The open alerts the caller may see by severity and handling (the overview's card)."""
    where: List[Any] = [school_filter(alerts.c.school_code, visible)]
    if visible is not None:
        where.append(alerts.c.school_code.is_not(None))
    if school is not None:
        where.append(alerts.c.school_code == school)
    return _counts(conn, and_(*where), _silenced_clause(_active_silences(conn, now)))


def get_alert(conn: Connection, alert_id: int, visible: Optional[FrozenSet[str]],
              now: float, lang: str) -> Optional[Dict[str, Any]]:
    """One alert with its history (``events``, oldest first) and the silence that holds it;
    None when unknown or outside the caller's units (a collector alert has no school: only
    the province-wide roles see it)."""
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
    if row is None or (visible is not None and (row.school_code is None
                                                or row.school_code not in visible)):
        return None
    active = _active_silences(conn, now)
    handling = _handling(row, {int(s.id) for s in active}, _matchers(active))
    body = _item(row, lang, handling, _names(conn, [row]))
    body["events"] = [{"id": int(e.id), "ts": e.ts, "kind": e.kind, "actor": e.actor,
                       "detail": e.detail or {}}
                      for e in conn.execute(select(alert_events)
                                            .where(alert_events.c.alert_id == alert_id)
                                            .order_by(alert_events.c.ts, alert_events.c.id))]
    alert = {c: getattr(row, c) for c in MATCHERS}
    holding = [s for s in active
               if (row.silenced_by is not None and int(s.id) == int(row.silenced_by))
               or _matches({c: getattr(s, c) for c in MATCHERS if getattr(s, c) is not None},
                           alert)]
    body["silence"] = None if not holding or handling != "silenced" else {
        "id": int(holding[0].id), "kind": holding[0].kind, "ends_at": holding[0].ends_at,
        "comment": holding[0].comment, "created_by": holding[0].created_by}
    body["notifications"] = alert_notifications_of(conn, alert_id, lang)
    body["delivery"] = delivery_summaries(conn, [alert_id])[alert_id]
    return body


#: How a message told an alert (alert_notifications.kind).
NOTIFICATION_KINDS = ("firing", "resolved", "repeat", "update")
#: The delivery summary's buckets: an outbox state → what a person asks ("did it go?").
DELIVERY_BUCKETS = {"sent": "sent", "queued": "waiting", "sending": "waiting",
                    "failed": "failed", "dead": "failed"}
#: Channels whose recipient column names a configured entry (an Apprise URL's name, the
#: webhook's): shown as that name, never as an address that could hold a secret.
NAMED_CHANNELS = ("apprise", "webhook")


def _recipient(channel: str, recipient: str) -> str:
    # routing stores the entry name for these channels already; a URL that got here by
    # another path (an older row, a hand-made one) is cut to its scheme, never shown whole
    if channel in NAMED_CHANNELS and "://" in recipient:
        return recipient.split("://", 1)[0] + "://…"
    return recipient


def alert_notifications_of(conn: Connection, alert_id: int,
                           lang: str = "vi") -> List[Dict[str, Any]]:
    """Each outbox message about ``alert_id``, oldest first, with its fate: channel,
    recipient, how it told the alert (``kind``), state, attempts, when it was sent, the
    last error (stored, and ``last_error_text`` in ``lang``) and the next attempt."""
    t = notifications.c
    rows = conn.execute(
        select(t.id, t.channel, t.recipient, t.route, t.state, t.attempts, t.created_at,
               t.sent_at, t.last_error, t.next_attempt_at, alert_notifications.c.kind)
        .join(alert_notifications, alert_notifications.c.notification_id == t.id)
        .where(alert_notifications.c.alert_id == alert_id)
        .order_by(t.created_at, t.id)).all()
    waiting = ("queued", "failed", "sending")
    return [{"id": int(r.id), "channel": r.channel,
             "recipient": _recipient(r.channel, r.recipient), "route": r.route,
             "kind": r.kind, "state": r.state, "attempts": int(r.attempts),
             "created_at": r.created_at, "sent_at": r.sent_at, "last_error": r.last_error,
             "last_error_text": error_text(r.last_error, lang),
             "next_attempt_at": r.next_attempt_at if r.state in waiting else None}
            for r in rows]


def delivery_summaries(conn: Connection, alert_ids: Iterable[int]) -> Dict[int, Dict[str, int]]:
    """Per alert ``{"sent", "waiting", "failed"}`` (failed counts dead too) over its
    messages: one grouped query for a whole page of alerts, not one per row."""
    ids = sorted({int(i) for i in alert_ids})
    out: Dict[int, Dict[str, int]] = {i: {"sent": 0, "waiting": 0, "failed": 0} for i in ids}
    if not ids:
        return out
    link = alert_notifications.c
    for aid, state, n in conn.execute(
            select(link.alert_id, notifications.c.state, func.count())
            .join(notifications, notifications.c.id == link.notification_id)
            .where(link.alert_id.in_(ids)).group_by(link.alert_id, notifications.c.state)):
        bucket = DELIVERY_BUCKETS.get(state)
        if bucket is not None:
            out[int(aid)][bucket] += int(n)
    return out


def delivery_status(conn: Connection, now: float, recent: int = 20,
                    lang: str = "vi") -> Dict[str, Any]:
    """What the administrators' delivery panel shows: per channel what
    notify/status.py's ``delivery_status`` says (health as the sender records it, messages
    by state, the last error, the oldest waiting), plus what was sent in the last 24 h and
    the latest failures."""
    from ..notify.status import delivery_status as channel_status

    per_channel = channel_status(conn, now, lang)
    channels: Dict[str, Dict[str, Any]] = {
        c: dict(per_channel.get(c, {}), channel=c, sent_24h=0, last_sent_at=None,
                last_error_at=None) for c in CHANNELS}
    for channel, n in conn.execute(
            select(notifications.c.channel, func.count())
            .where(notifications.c.state == "sent", notifications.c.sent_at >= now - 86400)
            .group_by(notifications.c.channel)):
        if channel in channels:
            channels[channel]["sent_24h"] = int(n)
    for channel, last in conn.execute(
            select(notifications.c.channel, func.max(notifications.c.sent_at))
            .where(notifications.c.state == "sent").group_by(notifications.c.channel)):
        if channel in channels:
            channels[channel]["last_sent_at"] = last
    failures = [
        {"id": int(r.id), "channel": r.channel, "recipient": r.recipient, "state": r.state,
         "attempts": int(r.attempts), "subject": r.subject, "last_error": r.last_error,
         "created_at": r.created_at, "next_attempt_at": r.next_attempt_at}
        for r in conn.execute(select(notifications).where(
            notifications.c.state.in_(("failed", "dead")))
            .order_by(notifications.c.created_at.desc(), notifications.c.id.desc())
            .limit(recent))]
    for f in failures:
        ch = channels.get(f["channel"])
        if ch is not None and ch["last_error_at"] is None and f["last_error"]:
            ch["last_error_at"] = f["created_at"]
    return {"channels": [channels[c] for c in channels], "failures": failures,
            "generated_at": now}


__all__ = ["CHANNELS", "DELIVERY_BUCKETS", "HANDLING", "KINDS", "NOTIFICATION_KINDS",
           "SEVERITIES", "STATE_FILTERS", "alert_notifications_of", "delivery_status",
           "delivery_summaries", "get_alert", "list_alerts", "name_silences", "open_counts"]
