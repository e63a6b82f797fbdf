"""Alerts, silences and delivery: ``GET /api/v1/alerts`` (filters, paging),
``GET /api/v1/alerts/{id}`` (with its history), ``POST /api/v1/alerts/{id}/ack|unack``,
``GET|POST /api/v1/silences``, ``DELETE /api/v1/silences/{id}`` and, for administrators,
``GET /api/v1/notifications`` (delivery per channel, recent failures).

Scope as everywhere: a scoped user sees the alerts of their schools (an alert of the
collector itself, with no school, only the province-wide roles); one outside answers 404.
Who may act (deps.RIGHTS): ``ack`` and ``silence`` for so_admin, area officers and school
technicians, each inside their units — the people who go and fix things; a Sở viewer only
reads. A scoped user's silence must stay inside their units (name their school, a device
of it, or their area): a rule alone would silence the province. Every action is audited in
its transaction (actions.py).
"""
import time
from typing import Annotated, Any, Dict, List, Literal, Optional

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from ..alerting import actions
from ..alerting.page_text import (
    CHANNEL_LABELS,
    EVENT_LABELS,
    HANDLING_LABELS,
    KIND_LABELS,
    NOTIFICATION_KIND_LABELS,
    NOTIFICATION_STATE_LABELS,
    SEVERITY_LABELS,
    SILENCE_KIND_LABELS,
    SILENCE_STATE_LABELS,
    STATE_LABELS,
)
from ..metrics import default_metrics
from ..read import alerts as read
from ..read.schools import area_units
from ..read.scope import storable
from ..text import label, message, parse_time
from .actions import FORBIDDEN
from .deps import (
    BAD_REQUEST,
    NOT_FOUND,
    AdminPrincipal,
    ApiError,
    Conn,
    CurrentPrincipal,
    ErrorBody,
    Lang,
    Principal,
    Scope,
    TimeZone,
    client_address,
    may,
)
from .devices import TIME_PATTERN
from .present import present

router = APIRouter(tags=["alerts"])

AlertId = Annotated[int, Path(ge=1, le=2**62)]
SilenceId = Annotated[int, Path(ge=1, le=2**31 - 1)]
StateFilter = Literal["open", "new", "acknowledged", "silenced", "resolved", "pending",
                      "firing"]
assert set(StateFilter.__args__) == set(read.STATE_FILTERS)  # type: ignore[attr-defined]
Severity = Literal["critical", "warning", "info"]
Kind = Literal["school", "device", "collector"]
CONFLICT: Dict[int | str, Dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "Trạng thái không cho phép / conflicting state"}}
REFUSED: Dict[int | str, Dict[str, Any]] = {
    **NOT_FOUND, **FORBIDDEN, **CONFLICT, **BAD_REQUEST}

#: Printable text, no control characters but line breaks and tabs.
COMMENT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
CODE_PATTERN = r"^[^\x00-\x1f\x7f]+$"


class Ack(BaseModel):
    comment: Annotated[str, Field(min_length=1, max_length=actions.COMMENT_MAX,
                                  pattern=COMMENT_PATTERN,
                                  description="Ai xử lý, xử lý thế nào / who is on it, "
                                              "what they do")]


class Unack(BaseModel):
    comment: Annotated[Optional[str], Field(max_length=actions.COMMENT_MAX,
                                            pattern=COMMENT_PATTERN)] = None


class NewSilence(BaseModel):
    """At least one matcher; ``ends_at`` or ``duration_s``; times ISO 8601 or Unix seconds
    (``starts_at`` defaults to now)."""

    rule: Annotated[Optional[str], Field(min_length=1, max_length=64,
                                         pattern=CODE_PATTERN)] = None
    school_code: Annotated[Optional[str], Field(min_length=1, max_length=64,
                                                pattern=CODE_PATTERN)] = None
    area_code: Annotated[Optional[str], Field(min_length=1, max_length=128,
                                              pattern=CODE_PATTERN)] = None
    device_id: Annotated[Optional[str], Field(min_length=1, max_length=64,
                                              pattern=CODE_PATTERN)] = None
    kind: Literal["silence", "maintenance"] = "silence"
    starts_at: Annotated[Optional[str], Field(pattern=TIME_PATTERN)] = None
    ends_at: Annotated[Optional[str], Field(pattern=TIME_PATTERN)] = None
    duration_s: Annotated[Optional[int], Field(ge=60, le=actions.MAX_SILENCE_SECONDS)] = None
    comment: Annotated[str, Field(min_length=1, max_length=actions.COMMENT_MAX,
                                  pattern=COMMENT_PATTERN)]


#: The body field each refusal of actions.py is about (a 422 names it, like pydantic's).
REFUSAL_FIELDS = {"silence_no_matcher": "rule", "silence_matcher_invalid": "rule",
                  "silence_ends_before_start": "ends_at", "silence_in_past": "ends_at",
                  "silence_too_long": "ends_at", "silence_kind_invalid": "kind",
                  "comment_required": "comment", "comment_invalid": "comment"}


def _count(request: Request, action: str, outcome: str) -> None:
    """Count an action and how it ended: the running service's metrics, else the process's."""
    m = getattr(getattr(request.app.state, "service", None), "metrics", None)
    if m is None or not hasattr(m, "alert_actions"):
        m = default_metrics()
    m.alert_actions.inc(action=action, outcome=outcome)


def _refused(exc: actions.ActionError, lang: str) -> ApiError:
    errors = None
    if exc.status == 422:
        errors = [{"loc": ["body", REFUSAL_FIELDS.get(exc.code, "body")],
                   "msg": message(exc.code, lang), "type": exc.code}]
    return ApiError(exc.status, exc.code, detail=exc.detail or None, errors=errors)


def _labels(item: Dict[str, Any], lang: str) -> Dict[str, Any]:
    item["severity_label"] = label(SEVERITY_LABELS, item["severity"], lang)
    item["state_label"] = label(STATE_LABELS, item["state"], lang)
    item["handling_label"] = label(HANDLING_LABELS, item["handling"], lang)
    item["kind_label"] = label(KIND_LABELS, item["kind"], lang)
    for e in item.get("events") or ():
        e["kind_label"] = label(EVENT_LABELS, e["kind"], lang)
    for n in item.get("notifications") or ():
        n["channel_label"] = label(CHANNEL_LABELS, n["channel"], lang)
        n["state_label"] = label(NOTIFICATION_STATE_LABELS, n["state"], lang)
        n["kind_label"] = label(NOTIFICATION_KIND_LABELS, n["kind"], lang)
    return item


def _silence_labels(s: Dict[str, Any], lang: str) -> Dict[str, Any]:
    s["kind_label"] = label(SILENCE_KIND_LABELS, s["kind"], lang)
    s["silence_state_label"] = label(SILENCE_STATE_LABELS, s["silence_state"], lang)
    return s


@router.get("/alerts", summary="Cảnh báo / alerts")
def list_alerts(
    conn: Conn, scope: Scope, lang: Lang, tz: TimeZone,
    state: Annotated[StateFilter, Query(
        description="`open` (mặc định: mọi cảnh báo chưa kết thúc / every alert not "
                    "resolved), `new` (chưa ai xử lý / nobody on it), `acknowledged`, "
                    "`silenced`, `resolved`, or the evaluator's `pending` / `firing`.")] = "open",
    school: Annotated[Optional[str], Query(max_length=64,
                                           description="Mã trường / school code.")] = None,
    area: Annotated[Optional[str], Query(
        max_length=128, description="Khu vực như ở /schools / area as in /schools.")] = None,
    kind: Annotated[Optional[Kind], Query(
        description="Về một trường, một thiết bị hay chính schoolmon / about a school, a "
                    "device or the collector itself.")] = None,
    severity: Annotated[Optional[Severity], Query(description="Mức độ / severity.")] = None,
    rule: Annotated[Optional[str], Query(max_length=64, description="Quy tắc / rule id.")] = None,
    device: Annotated[Optional[str], Query(max_length=64,
                                           description="Mã thiết bị / device id.")] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Dict[str, Any]:
    """Alerts the caller may see: the most severe first and, within a severity, the oldest
    first (resolved: the latest resolved first). Each: `title` and `text` in the caller's
    language, `severity`, `state` (the evaluator's), `handling` (new, acknowledged,
    silenced, resolved), `school`, `device`, `started_at`, `fired_at`, `resolved_at`,
    `ack` (by, at, comment), `suppressed_by`, `delivery` (its messages sent, waiting,
    failed — dead included; one query for the page). `counts`: the open alerts of the same
    school/area/kind/rule/device by severity and by handling."""
    now = time.time()
    if any(v is not None and not storable(v) for v in (school, rule, device)):
        return present({"items": [], "total": 0, "page": page, "per_page": per_page,
                        "pages": 0, "counts": {"open": 0, "pending": 0, "by_severity": {},
                                               "by_handling": {}}}, lang, tz)
    units = area_units(conn, area) if area is not None else None
    body = read.list_alerts(conn, scope, now, lang, state=state, school=school,
                            area_units=units, kind=kind, severity=severity, rule=rule,
                            device=device, page=page, per_page=per_page)
    body["items"] = [_labels(i, lang) for i in body["items"]]
    body["filters"] = {"state": state, "school": school, "area": area, "kind": kind,
                       "severity": severity, "rule": rule, "device": device}
    body["generated_at"] = now
    return present(body, lang, tz)


@router.get("/alerts/{alert_id}", summary="Một cảnh báo / one alert", responses=NOT_FOUND)
def get_alert(conn: Conn, scope: Scope, lang: Lang, tz: TimeZone,
              alert_id: AlertId) -> Dict[str, Any]:
    """The alert with `events` (its history, oldest first: pending, firing, acked,
    silenced, resolved ... with who and when), `silence` (the one holding it),
    `notifications` (each message about it, oldest first: `channel`, `recipient` — an
    Apprise or webhook entry by its name only —, `kind` firing/resolved/repeat/update,
    `state`, `attempts`, `sent_at`, `last_error` and `last_error_text` in the caller's
    language, `next_attempt_at`) and `delivery` (sent, waiting, failed — dead included)."""
    body = read.get_alert(conn, alert_id, scope, time.time(), lang)
    if body is None:
        raise ApiError(404, "alert_not_found")
    return present(_labels(body, lang), lang, tz)


def _act(request: Request, principal: Principal, action: str, alert_id: int, fn: Any,
         comment: Optional[str], lang: str, tz: str) -> Dict[str, Any]:
    now = time.time()
    with request.app.state.engine.begin() as conn:
        # outside the caller's units: 404 before any word about rights
        if read.get_alert(conn, alert_id, principal.scope, now, lang) is None:
            _count(request, action, "alert_not_found")
            raise ApiError(404, "alert_not_found")
        if not may(principal, "ack"):
            _count(request, action, "forbidden_role")
            raise ApiError(403, "forbidden_role")
        try:
            fn(conn, alert_id, principal.name, comment, now, principal.scope,
               client_address(request))
        except actions.ActionError as exc:
            _count(request, action, exc.code)
            raise _refused(exc, lang) from None
    _count(request, action, "done")
    with request.app.state.engine.connect() as conn:
        body = read.get_alert(conn, alert_id, principal.scope, now, lang)
    assert body is not None
    return present(_labels(body, lang), lang, tz)


@router.post("/alerts/{alert_id}/ack", summary="Xác nhận cảnh báo / acknowledge",
             responses=REFUSED)
def ack(request: Request, principal: CurrentPrincipal, lang: Lang, tz: TimeZone,
        alert_id: AlertId, body: Ack) -> Dict[str, Any]:
    """Someone is on it: `ack` records who, when and the comment (required). 409 when the
    alert is resolved or already acknowledged."""
    return _act(request, principal, "ack", alert_id, actions.acknowledge, body.comment,
                lang, tz)


@router.post("/alerts/{alert_id}/unack", summary="Bỏ xác nhận / take an acknowledgement back",
             responses=REFUSED)
def unack(request: Request, principal: CurrentPrincipal, lang: Lang, tz: TimeZone,
          alert_id: AlertId, body: Unack) -> Dict[str, Any]:
    """The alert needs someone again (409 when it is not acknowledged)."""
    return _act(request, principal, "unack", alert_id, actions.unacknowledge, body.comment,
                lang, tz)


@router.get("/silences", summary="Tắt thông báo / silences")
def list_silences(conn: Conn, scope: Scope, lang: Lang, tz: TimeZone,
                  include_past: Annotated[bool, Query(
                      description="Cả những lần đã hết hạn hoặc đã xóa / also ended and "
                                  "deleted ones")] = False) -> Dict[str, Any]:
    """Silences and maintenance windows in force or to come (ending first first), each with
    its matchers, `starts_at`, `ends_at`, `comment`, `created_by` and `silence_state`. A
    scoped user sees those that touch one of their schools (province-wide ones too)."""
    now = time.time()
    items = [_silence_labels(s, lang)
             for s in actions.list_silences(conn, now, scope, include_past=include_past)]
    read.name_silences(conn, items)
    return present({"items": items, "generated_at": now}, lang, tz)


def _time(value: Optional[str]) -> Optional[float]:
    if value is None:
        return None
    try:
        return parse_time(value).timestamp()
    except (ValueError, OverflowError, OSError):
        raise ApiError(400, "bad_time") from None


@router.post("/silences", summary="Tắt thông báo / create a silence", status_code=201,
             responses=REFUSED)
def create_silence(request: Request, principal: CurrentPrincipal, lang: Lang, tz: TimeZone,
                   body: NewSilence) -> Dict[str, Any]:
    """Alerts matching every given matcher (`rule`, `school_code`, `area_code`,
    `device_id`) still open and resolve, but nobody is notified until `ends_at` (at most 90
    days). `kind`: `silence`, or `maintenance` (a planned window). Refused with the reason
    (422): no matcher, no end, an end not after the start or already past, too long; 403
    for a scoped user's silence reaching outside their units."""
    now = time.time()
    if not may(principal, "silence"):
        _count(request, "silence_create", "forbidden_role")
        raise ApiError(403, "forbidden_role")
    starts = _time(body.starts_at)
    starts = now if starts is None else starts
    ends = _time(body.ends_at)
    if ends is None and body.duration_s is not None:
        ends = starts + body.duration_s
    if ends is None:
        _count(request, "silence_create", "invalid_request")
        raise ApiError(422, "invalid_request", errors=[
            {"loc": ["body", "ends_at"], "msg": "ends_at or duration_s", "type": "missing"}])
    matchers = actions.Matchers(rule=body.rule, school_code=body.school_code,
                                area_code=body.area_code, device_id=body.device_id)
    with request.app.state.engine.begin() as conn:
        try:
            new_id = actions.create_silence(conn, matchers, starts, ends, body.comment,
                                            principal.name, kind=body.kind, now=now,
                                            scope=principal.scope,
                                            client=client_address(request))
        except actions.ActionError as exc:
            _count(request, "silence_create", exc.code)
            raise _refused(exc, lang) from None
        made = actions.get_silence(conn, new_id, now)
        read.name_silences(conn, [made] if made else [])
    _count(request, "silence_create", "done")
    assert made is not None
    return present(_silence_labels(made, lang), lang, tz)


@router.delete("/silences/{silence_id}", summary="Xóa lần tắt thông báo / delete a silence",
               responses=REFUSED)
def delete_silence(request: Request, principal: CurrentPrincipal, lang: Lang, tz: TimeZone,
                   silence_id: SilenceId) -> Dict[str, Any]:
    """Ends the silence now; it stays in the history (`include_past`) with who deleted it."""
    now = time.time()
    with request.app.state.engine.begin() as conn:
        if not may(principal, "silence"):
            # 404 first for one the caller cannot see, then 403 for the role
            visible = [s for s in actions.list_silences(conn, now, principal.scope,
                                                        include_past=True, limit=100000)
                       if s["id"] == silence_id]
            outcome = "forbidden_role" if visible else "silence_not_found"
            _count(request, "silence_delete", outcome)
            raise ApiError(403 if visible else 404, outcome)
        try:
            actions.delete_silence(conn, silence_id, principal.name, now, principal.scope,
                                   client_address(request))
        except actions.ActionError as exc:
            _count(request, "silence_delete", exc.code)
            raise _refused(exc, lang) from None
        done = actions.get_silence(conn, silence_id, now)
        read.name_silences(conn, [done] if done else [])
    _count(request, "silence_delete", "done")
    assert done is not None
    return present(_silence_labels(done, lang), lang, tz)


@router.get("/notifications", summary="Gửi thông báo / delivery status (administrators)")
def notifications(admin: AdminPrincipal, conn: Conn, lang: Lang,
                  tz: TimeZone) -> Dict[str, Any]:
    """Per channel (e-mail, Apprise, webhook, Zalo): messages `queued`, `sending`, `sent`,
    `failed` (will retry), `dead` (gave up), `sent_24h`, `last_sent_at`, `last_error` and
    `health` as the sender records it; `failures`: the latest failed or dead messages."""
    body = read.delivery_status(conn, time.time())
    for ch in body["channels"]:
        ch["channel_label"] = label(CHANNEL_LABELS, ch["channel"], lang)
    for f in body["failures"]:
        f["channel_label"] = label(CHANNEL_LABELS, f["channel"], lang)
        f["state_label"] = label(NOTIFICATION_STATE_LABELS, f["state"], lang)
    return present(body, lang, tz)


__all__: List[str] = ["router"]
