"""What people do to alerts: acknowledge (who, when, comment) and take it back, and
silences and maintenance windows (create, delete keeping history, list).

    acknowledge(conn, alert_id, actor, comment, now, scope)    # → the alert's new rev
    create_silence(conn, Matchers(school_code="S01"), starts_at, ends_at, comment, actor,
                   now=now, scope=scope)                         # → the silence's id

Every function runs inside the caller's transaction, writes its ``alert_events`` row (the
history the pages show) and its ``audit_log`` row with the change, so the three commit
together or not at all. The evaluator (engine.py) owns every other column of ``alerts``;
an acknowledgement writes only ``ack_*`` and ``rev``, as a compare-and-set on ``rev``, so
neither side overwrites the other. A silence takes effect for the evaluator on its next
pass (it sets ``silenced_by``); the read side (read/alerts.py) also matches the active
silences itself, so the page shows an alert silenced the moment the silence is made.

``scope``: None (every school) or the school codes the caller may act on. An alert or a
silence outside it is "not found" (the API answers 404, codes do not leak); a silence whose
matchers reach outside it is refused (403).
"""
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Optional

from sqlalchemy import Connection, and_, false, or_, select, true, update

from ..store import audit
from ..store.registry import descendant_units
from ..store.schema import alert_events, alerts, devices, org_units, schools, silences

#: The longest silence or maintenance window (seconds): a forgotten silence must end.
MAX_SILENCE_SECONDS = 90 * 86400
SILENCE_KINDS = ("silence", "maintenance")
COMMENT_MAX = 1000
#: How often an acknowledgement retries its compare-and-set when the evaluator changed the
#: row between the read and the write (it touches open alerts at most once a minute).
CAS_TRIES = 5


class ActionError(ValueError):
    """A refused action: ``code`` is a text.MESSAGES code, ``status`` the HTTP answer."""

    def __init__(self, code: str, status: int = 400, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Matchers:
    """What a silence matches: every matcher that is not None must equal the alert's."""

    rule: Optional[str] = None
    school_code: Optional[str] = None
    area_code: Optional[str] = None
    device_id: Optional[str] = None

    def given(self) -> Dict[str, str]:
        return {k: v for k, v in (("rule", self.rule), ("school_code", self.school_code),
                                  ("area_code", self.area_code),
                                  ("device_id", self.device_id)) if v}


def _alert(conn: Connection, alert_id: int, scope: Optional[FrozenSet[str]]) -> Any:
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
    if row is None:
        raise ActionError("alert_not_found", 404)
    # an alert without a school (the collector's own health) is the Sở's, not a scoped user's
    if scope is not None and (row.school_code is None or row.school_code not in scope):
        raise ActionError("alert_not_found", 404)
    return row


def _comment(comment: Optional[str], required: bool) -> str:
    text = (comment or "").strip()
    if required and not text:
        raise ActionError("comment_required", 422)
    if len(text) > COMMENT_MAX or not storable(text):
        raise ActionError("comment_invalid", 422)
    return text


def _set_ack(conn: Connection, alert_id: int, scope: Optional[FrozenSet[str]],
             values: Dict[str, Any], want_acked: bool) -> Any:
    """Compare-and-set of the ack columns; returns the row as it was before the write."""
    for _ in range(CAS_TRIES):
        row = _alert(conn, alert_id, scope)
        if row.state == "resolved":
            raise ActionError("alert_resolved", 409)
        if want_acked and row.ack_at is not None:
            raise ActionError("alert_already_acked", 409)
        if not want_acked and row.ack_at is None:
            raise ActionError("alert_not_acked", 409)
        done = conn.execute(update(alerts).where(alerts.c.id == alert_id,
                                                 alerts.c.rev == row.rev)
                            .values(rev=row.rev + 1, **values))
        if done.rowcount == 1:
            return row
    raise ActionError("alert_changed", 409)


def acknowledge(conn: Connection, alert_id: int, actor: str, comment: Optional[str],
                now: float, scope: Optional[FrozenSet[str]] = None,
                client: Optional[str] = None) -> None:
    """Mark an open alert acknowledged by ``actor`` with ``comment`` (required: the next
    person reading the page needs to know who is on it and what they do)."""
    text = _comment(comment, required=True)
    row = _set_ack(conn, alert_id, scope,
                   {"ack_by": actor[:64], "ack_at": now, "ack_comment": text}, True)
    conn.execute(alert_events.insert().values(ts=now, alert_id=alert_id, kind="acked",
                                              actor=actor[:64], detail={"comment": text}))
    audit.record(conn, actor, "alert_ack", str(alert_id),
                 {"rule": row.rule, "school": row.school_code, "device": row.device_id,
                  "comment": text}, client, now)


def unacknowledge(conn: Connection, alert_id: int, actor: str, comment: Optional[str],
                  now: float, scope: Optional[FrozenSet[str]] = None,
                  client: Optional[str] = None) -> None:
    """Take an acknowledgement back (the alert needs someone again); the comment is
    optional and kept in the history."""
    text = _comment(comment, required=False)
    row = _set_ack(conn, alert_id, scope,
                   {"ack_by": None, "ack_at": None, "ack_comment": None}, False)
    conn.execute(alert_events.insert().values(
        ts=now, alert_id=alert_id, kind="unacked", actor=actor[:64],
        detail={"comment": text, "was_by": row.ack_by}))
    audit.record(conn, actor, "alert_unack", str(alert_id),
                 {"rule": row.rule, "school": row.school_code, "was_by": row.ack_by,
                  "comment": text}, client, now)


def _area_schools(conn: Connection, area_code: str) -> Optional[FrozenSet[str]]:
    """The schools of the org unit ``area_code`` and below, None when there is no such unit."""
    unit = conn.execute(select(org_units.c.id).where(org_units.c.code == area_code)).first()
    if unit is None:
        return None
    units = descendant_units(conn, {int(unit.id)})
    return frozenset(conn.execute(select(schools.c.code)
                                  .where(schools.c.org_unit_id.in_(units))).scalars())


def storable(text: str) -> bool:
    """False for text no stored code can equal (NUL: PostgreSQL refuses to compare it)."""
    return "\x00" not in text


def _check_matchers(conn: Connection, m: Matchers, scope: Optional[FrozenSet[str]]) -> None:
    if not m.given():
        raise ActionError("silence_no_matcher", 422)
    for value in m.given().values():
        if len(value) > 160 or not storable(value):
            raise ActionError("silence_matcher_invalid", 422)
    reach: Optional[FrozenSet[str]] = None  # the schools the silence can touch (None: all)
    if m.school_code is not None:
        if conn.execute(select(schools.c.code)
                        .where(schools.c.code == m.school_code)).first() is None:
            raise ActionError("school_not_found", 404)
        reach = frozenset({m.school_code})
    if m.device_id is not None:
        found = conn.execute(select(devices.c.school_code)
                             .where(devices.c.id == m.device_id)).first()
        if found is None or (scope is not None and found[0] not in scope):
            raise ActionError("device_not_found", 404)
        reach = frozenset({found[0]}) if reach is None else reach & {found[0]}
    if m.area_code is not None:
        in_area = _area_schools(conn, m.area_code)
        if in_area is None:
            raise ActionError("unit_not_found", 404)
        reach = in_area if reach is None else reach & in_area
    if scope is not None:
        if m.school_code is not None and m.school_code not in scope:
            raise ActionError("school_not_found", 404)
        # a rule alone, or an area larger than the caller's units, reaches other schools
        if reach is None or not reach <= scope:
            raise ActionError("silence_outside_scope", 403)


def create_silence(conn: Connection, matchers: Matchers, starts_at: float, ends_at: float,
                   comment: Optional[str], actor: str, kind: str = "silence",
                   now: float = 0.0, scope: Optional[FrozenSet[str]] = None,
                   client: Optional[str] = None) -> int:
    """A silence (or a maintenance window: the same, named for what it is) from
    ``starts_at`` to ``ends_at``; its id. Refused: no matcher, an end not after the start
    or already past, longer than :data:`MAX_SILENCE_SECONDS`, no comment, or matchers
    reaching outside ``scope``."""
    if kind not in SILENCE_KINDS:
        raise ActionError("silence_kind_invalid", 422)
    text = _comment(comment, required=True)
    _check_matchers(conn, matchers, scope)
    if ends_at <= now:  # said first: "in the past" is the mistake to fix then
        raise ActionError("silence_in_past", 422)
    if not ends_at > starts_at:
        raise ActionError("silence_ends_before_start", 422)
    if ends_at - starts_at > MAX_SILENCE_SECONDS:
        raise ActionError("silence_too_long", 422)
    new_id = conn.execute(silences.insert().values(
        kind=kind, rule=matchers.rule, school_code=matchers.school_code,
        area_code=matchers.area_code, device_id=matchers.device_id, starts_at=starts_at,
        ends_at=ends_at, comment=text, created_by=actor[:64], created_at=now)
        .returning(silences.c.id)).scalar_one()
    audit.record(conn, actor, "silence_create", str(new_id),
                 dict(matchers.given(), kind=kind, starts_at=starts_at, ends_at=ends_at,
                      comment=text), client, now)
    return int(new_id)


def _silence_reach(conn: Connection, row: Any) -> Optional[FrozenSet[str]]:
    """The schools a stored silence can touch (None: every school)."""
    return _reach_of(conn, row.school_code, row.device_id, row.area_code)


def _reach_of(conn: Connection, school: Optional[str], device: Optional[str],
              area: Optional[str]) -> Optional[FrozenSet[str]]:
    reach: Optional[FrozenSet[str]] = None
    if school:
        reach = frozenset({school})
    if device:
        found = conn.execute(select(devices.c.school_code)
                             .where(devices.c.id == device)).first()
        own = frozenset({found[0]}) if found else frozenset()
        reach = own if reach is None else reach & own
    if area:
        in_area = _area_schools(conn, area) or frozenset()
        reach = in_area if reach is None else reach & in_area
    return reach


def delete_silence(conn: Connection, silence_id: int, actor: str, now: float,
                   scope: Optional[FrozenSet[str]] = None,
                   client: Optional[str] = None) -> None:
    """End a silence now: ``deleted_at``/``deleted_by`` are set, the row stays (history).
    A scoped caller may delete only a silence inside their units."""
    row = conn.execute(select(silences).where(silences.c.id == silence_id)).first()
    if row is None:
        raise ActionError("silence_not_found", 404)
    if scope is not None:
        reach = _silence_reach(conn, row)
        if reach is None or not (reach & scope):
            raise ActionError("silence_not_found", 404)
        if not reach <= scope:
            raise ActionError("silence_outside_scope", 403)
    if row.deleted_at is not None:
        raise ActionError("silence_deleted", 409)
    conn.execute(update(silences).where(silences.c.id == silence_id,
                                        silences.c.deleted_at.is_(None))
                 .values(deleted_at=now, deleted_by=actor[:64]))
    audit.record(conn, actor, "silence_delete", str(silence_id),
                 {k: v for k, v in (("rule", row.rule), ("school_code", row.school_code),
                                    ("area_code", row.area_code),
                                    ("device_id", row.device_id)) if v}, client, now)


def silence_row(row: Any, now: float) -> Dict[str, Any]:
    """A silence as the API and the pages show it; ``active``: in force at ``now``."""
    state = ("deleted" if row.deleted_at is not None
             else "expired" if row.ends_at <= now
             else "scheduled" if row.starts_at > now else "active")
    return {"id": int(row.id), "kind": row.kind, "rule": row.rule,
            "school_code": row.school_code, "area_code": row.area_code,
            "device_id": row.device_id, "starts_at": row.starts_at, "ends_at": row.ends_at,
            "comment": row.comment, "created_by": row.created_by,
            "created_at": row.created_at, "deleted_by": row.deleted_by,
            "deleted_at": row.deleted_at, "silence_state": state}


def get_silence(conn: Connection, silence_id: int, now: float) -> Optional[Dict[str, Any]]:
    row = conn.execute(select(silences).where(silences.c.id == silence_id)).first()
    return None if row is None else silence_row(row, now)


def list_silences(conn: Connection, now: float, scope: Optional[FrozenSet[str]] = None,
                  include_past: bool = False, limit: int = 200) -> List[Dict[str, Any]]:
    """Silences in force or to come (with ``include_past``, ended and deleted ones too),
    those ending first first. A scoped caller sees the silences that touch one of their
    schools, those of the whole province (a rule alone) included: they silence theirs too."""
    where: List[Any] = []
    if not include_past:
        where += [silences.c.deleted_at.is_(None), silences.c.ends_at > now]
    if scope is not None:
        # a first cut in SQL (a school or device matcher outside the scope cannot touch it),
        # then the exact reach per row
        where.append(or_(silences.c.school_code.is_(None),
                         silences.c.school_code.in_(sorted(scope)) if scope else false()))
    rows = conn.execute(select(silences).where(and_(true(), *where))
                        .order_by(silences.c.deleted_at.is_not(None), silences.c.ends_at,
                                  silences.c.id).limit(limit * 4 if scope is not None
                                                       else limit)).all()
    out: List[Dict[str, Any]] = []
    for r in rows:
        if scope is not None:
            reach = _silence_reach(conn, r)
            if reach is not None and not (reach & scope):
                continue
        out.append(silence_row(r, now))
        if len(out) >= limit:
            break
    return out


def active_silences(conn: Connection, now: float) -> List[Any]:
    """The silences in force at ``now`` (rows), for matching alerts on the read side."""
    return list(conn.execute(select(silences).where(
        silences.c.deleted_at.is_(None), silences.c.starts_at <= now,
        silences.c.ends_at > now).order_by(silences.c.id)))


def matches(silence: Any, alert: Any) -> bool:
    """Whether every matcher of ``silence`` equals the alert's (the evaluator's rule)."""
    return all(getattr(silence, col) is None or getattr(silence, col) == getattr(alert, col)
               for col in ("rule", "school_code", "area_code", "device_id"))


__all__ = ["ActionError", "Matchers", "MAX_SILENCE_SECONDS", "SILENCE_KINDS", "acknowledge",
           "active_silences", "create_silence", "delete_silence", "get_silence", "list_silences", "matches",
           "silence_row", "unacknowledge"]
