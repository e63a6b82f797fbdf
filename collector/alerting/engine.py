"""The alert evaluator: rules over the store's facts → the ``alerts`` and ``alert_events``
tables (pending → firing → resolved), with hysteresis, windows, dependencies and silences.

    engine = AlertEngine(store_engine, load_rules(), calendar)
    engine.evaluate(now, full=True)    # a level-triggered pass over the whole province
    engine.evaluate(now)               # the schools named by store events since the cursor

**Lifecycle**, per (rule, subject), at most one open row (the partial unique index):

- condition true, no open row, inside the rule's window → a ``pending`` row (event
  ``pending``); ``started_at`` is when the data says it began for an ``always`` rule, and
  this first sight for a windowed one (``for`` counts school time, not the night before);
- pending, true, ``for`` elapsed since ``started_at``, inside the window → ``firing``;
- pending that is false for ``clear_for``, or outside its window → ``cancelled`` (the row is
  closed, never fired, so nobody is notified);
- firing, false for ``clear_for`` since ``last_true_at`` → ``resolved``, exactly once (the
  row is closed; a new occurrence is a new row). A window does not close a firing alert:
  a school still offline at 17:05 is not "recovered".

**Dependencies**: an open alert of a rule with ``suppresses = true`` (school offline,
Internet down, router down) sets ``suppressed_by`` on the other device alerts of its school
(events ``suppressed`` / ``unsuppressed``); a school-level suppressor wins over the router.
**Silences**: an active row of ``silences`` whose every non-NULL matcher equals the alert's
sets ``silenced_by`` (events ``silenced`` / ``unsilenced``). Acknowledgements (``ack_*``)
belong to the API: every update here is a compare-and-set on ``rev`` that names only the
evaluator's columns, so an ack written meanwhile is kept (the row is judged again next pass).

**Robust by construction**: a pass reads the store (never in-process callbacks); its
cursor, the last ``events.id`` it has taken into account, is kept in ``attt_state``
(``alerting.cursor``), so a new process continues where the last stopped. Times are the
``now`` passed in. A clock that went back (``now`` before an alert's ``evaluated_at``)
changes nothing about that alert until it catches up: no false firing or resolution.
Only one process should evaluate (leader.py); should two ever race, the unique index and
the compare-and-set make the loser's writes no-ops, so no transition is recorded twice.
"""
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Set, Tuple

from sqlalchemy import Engine, bindparam, func, select, text, update

from ..store.schema import alert_events, alerts, attt_state, dialect_insert, events, silences
from .conditions import (
    COLLECTOR,
    CONDITIONS,
    CollectorStats,
    Facts,
    Finding,
    load_facts,
)
from .rules import Rule, Rules, render

log = logging.getLogger("schoolmon.collector.alerting")

CURSOR_KEY = "alerting.cursor"
#: Device conditions a school's outage (school offline, Internet or router down) explains,
#: so their alerts are suppressed by it: being unreachable or silent
SUPPRESSIBLE_CONDITIONS = frozenset({"device_offline", "agent_silent"})
#: ``last_true_at`` of an alert that stays true is written at most this often (seconds), so
#: a pass writes what changed, not every open alert. The process keeps the exact time in
#: memory and writes it when the condition turns false, so ``clear_for`` is exact; only
#: across a restart may the stored time be up to this much old.
TOUCH = 60.0
#: More changed schools than this in one incremental pass: read the whole province instead
#: (a few whole-table reads cost less than long IN lists).
MAX_PARTIAL = 500
OPEN = ("pending", "firing")


class SchoolHours(Protocol):
    """The school calendar as the evaluator needs it (collector.alerting.calendar)."""

    def in_window(self, window: str, ts: float, school: Optional[str] = None,
                  area: Optional[str] = None) -> bool: ...


@dataclass(frozen=True)
class PassStats:
    full: bool
    seconds: float
    schools: int  # schools looked at
    findings: int  # (rule, subject) pairs true now
    events: Dict[str, int] = field(default_factory=dict)  # alert events written, by kind
    rule_errors: Tuple[str, ...] = ()
    cursor: int = 0
    skipped: bool = False  # nothing new since the cursor


@dataclass
class _Alert:
    """An open row as read, with what this pass changes."""

    row: Any
    values: Dict[str, Any] = field(default_factory=dict)
    evs: List[Tuple[str, Optional[Dict[str, Any]]]] = field(default_factory=list)
    touch: bool = False

    def get(self, col: str) -> Any:
        return self.values[col] if col in self.values else getattr(self.row, col)


class AlertEngine:
    def __init__(self, engine: Engine, rules: Rules, calendar: SchoolHours,
                 stats: Optional[Callable[[], CollectorStats]] = None,
                 timezone: str = "Asia/Ho_Chi_Minh",
                 on_rule_error: Optional[Callable[[str], None]] = None) -> None:
        self.engine = engine
        self.rules = rules
        self.calendar = calendar
        self.stats = stats
        self.tz = timezone
        self.on_rule_error = on_rule_error
        self._rules = {r.id: r for r in rules.rules if r.enabled}
        #: alert id -> when this process last saw its condition true (see TOUCH)
        self._last_true: Dict[int, float] = {}
        self._checks = sorted({str(r.params["check"]) for r in self._rules.values()
                               if r.condition == "device_av_off"})

    # ------------------------------------------------------------------ cursor
    def cursor(self) -> Dict[str, Any]:
        with self.engine.connect() as c:
            row = c.execute(select(attt_state.c.value).where(
                attt_state.c.key == CURSOR_KEY)).first()
        return dict(row.value) if row is not None and isinstance(row.value, dict) else {}

    def _save_cursor(self, conn: Any, value: Dict[str, Any], now: float) -> None:
        ins = dialect_insert(conn, attt_state).values(key=CURSOR_KEY, value=value,
                                                     updated_at=now, rev=1)
        conn.execute(ins.on_conflict_do_update(
            index_elements=["key"], set_={"value": ins.excluded.value, "updated_at": now,
                                          "rev": attt_state.c.rev + 1}))

    # ------------------------------------------------------------------ a pass
    def evaluate(self, now: float, full: bool = False) -> PassStats:
        """One pass at ``now``: every school when ``full`` (or before any cursor), else the
        schools of the store events after the cursor (nothing to do: ``skipped``)."""
        t0 = time.perf_counter()
        cur = self.cursor()
        with self.engine.connect() as conn:
            top = conn.execute(select(func.max(events.c.id))).scalar() or 0
            only: Optional[Set[str]] = None
            if not full and "event_id" in cur:
                after = int(cur["event_id"])
                if top <= after:
                    return PassStats(False, time.perf_counter() - t0, 0, 0, cursor=after,
                                     skipped=True)
                codes = set(conn.execute(select(events.c.school).where(
                    events.c.id > after, events.c.id <= top,
                    events.c.school.is_not(None)).distinct()).scalars())
                only = codes if len(codes) <= MAX_PARTIAL else None
                full = only is None
            else:
                full = True
            if only is not None and not only:  # events of no school: nothing to judge
                facts = None
            else:
                facts = load_facts(conn, now, self.stats() if self.stats else None, only,
                                   self._checks)
        counts: Dict[str, int] = {}
        errors: List[str] = []
        findings = 0
        if facts is not None:
            findings, errors = self._apply(facts, now, counts)
        with self.engine.begin() as w:
            value = dict(cur)
            value["event_id"] = max(int(top), int(cur.get("event_id") or 0))
            value["last_at"] = now
            if full:
                value["full_at"] = now
            self._save_cursor(w, value, now)
        return PassStats(full, time.perf_counter() - t0,
                         len(facts.schools) if facts is not None else 0, findings, counts,
                         tuple(errors), int(value["event_id"]))

    def _findings(self, facts: Facts) -> Tuple[Dict[Tuple[str, str], Finding], Set[str],
                                                List[str]]:
        """(rule, subject) -> finding for every rule that ran; the rules that failed (their
        open alerts are left as they are: an error is no evidence of recovery)."""
        out: Dict[Tuple[str, str], Finding] = {}
        failed: Set[str] = set()
        errors: List[str] = []
        for rule in self._rules.values():
            spec = CONDITIONS[rule.condition]
            if spec.subject == COLLECTOR and facts.only is not None:
                failed.add(rule.id)  # not looked at by an incremental pass: leave them be
                continue
            mine: Dict[Tuple[str, str], Finding] = {}
            try:
                for f in spec.run(facts, rule.params):
                    if self._in_scope(rule, f, facts):
                        mine[(rule.id, f.subject)] = f
            except Exception:
                # nothing of a rule that failed half-way is used: no alert opens or closes
                log.exception("alert rule %s failed", rule.id)
                failed.add(rule.id)
                errors.append(rule.id)
                if self.on_rule_error is not None:
                    self.on_rule_error(rule.id)
                continue
            out.update(mine)
        return out, failed, errors

    @staticmethod
    def _in_scope(rule: Rule, f: Finding, facts: Facts) -> bool:
        if rule.roles:
            d = facts.devices.get(f.device_id or "")
            if d is None or d.role not in rule.roles:
                return False
        if rule.scope:
            s = facts.schools.get(f.school_code or "")
            if s is None:
                return False
            area = s.area_code or ""
            if not any(u == s.code or u == area or area.startswith(u + "/")
                       for u in rule.scope):
                return False
        return True

    def _value(self, rule: Rule, f: Finding, facts: Facts, since: float,
               now: float) -> Dict[str, Any]:
        """``alerts.value``: title and text in both languages, the evidence, the names."""
        s = facts.schools.get(f.school_code or "")
        d = facts.devices.get(f.device_id or "")
        evidence = dict(f.evidence)
        evidence["since"] = since
        names = {"school_name": s.name if s else None, "school_code": f.school_code,
                 "area_name": s.area_name if s else None,
                 "device_name": d.name if d else f.device_id, "device_id": f.device_id}
        fill = dict(evidence, **names)
        return {"title": {lang: render(rule.title[lang], fill, lang, now, self.tz)
                          for lang in ("vi", "en")},
                "text": {lang: render(rule.text[lang], fill, lang, now, self.tz)
                         for lang in ("vi", "en")},
                "evidence": evidence, "school_name": names["school_name"],
                "device_name": names["device_name"] if f.device_id else None}

    def _apply(self, facts: Facts, now: float, counts: Dict[str, int]
               ) -> Tuple[int, List[str]]:
        found, failed, errors = self._findings(facts)
        window_memo: Dict[Tuple[str, Optional[str]], bool] = {}

        def in_window(rule: Rule, school: Optional[str]) -> bool:
            if rule.window == "always":
                return True
            key = (rule.window, school)
            if key not in window_memo:
                sf = facts.schools.get(school or "")
                area = sf.area_code if sf is not None else None
                window_memo[key] = bool(self.calendar.in_window(rule.window, now, school,
                                                                area))
            return window_memo[key]

        def past_grace(rule: Rule, school: Optional[str]) -> bool:
            """The window was already open ``grace`` ago (rules.py: Rule.grace_s)."""
            if not rule.grace_s:
                return True
            sf = facts.schools.get(school or "")
            area = sf.area_code if sf is not None else None
            return bool(self.calendar.in_window(rule.window, now - rule.grace_s, school, area))

        with self.engine.connect() as conn:
            q = select(alerts).where(alerts.c.state.in_(OPEN))
            if facts.only is not None:
                q = q.where(alerts.c.school_code.in_(sorted(facts.only)))
            open_rows = {(r.rule, r.subject): _Alert(r) for r in conn.execute(q)}
            active = list(conn.execute(select(silences).where(
                silences.c.deleted_at.is_(None), silences.c.starts_at <= now,
                silences.c.ends_at > now).order_by(silences.c.id)))

        # 1. transitions of the open alerts
        for key, a in open_rows.items():
            r = a.row
            rule = self._rules.get(r.rule)
            if now < float(r.evaluated_at):
                continue  # the clock went back: nothing is decided until it catches up
            if rule is None:  # the rule was removed from the file: close its alerts
                self._close(a, now, "cancelled" if r.state == "pending" else "resolved",
                            {"reason": "rule_removed"})
                continue
            if rule.id in failed:
                continue
            f = found.get(key)
            if f is not None:
                a.values["last_true_at"] = now
                a.touch = now - float(r.last_true_at) >= TOUCH
                self._last_true[int(r.id)] = now
                if r.state == "pending":
                    if not in_window(rule, r.school_code):
                        self._close(a, now, "cancelled", {"reason": "outside_window"})
                    elif now - float(r.started_at) >= rule.for_s:
                        a.values.update(state="firing", fired_at=now)
                        a.evs.append(("firing", None))
                # the text is rendered again when the evidence or the state changes (its
                # "duration" then says how long at that moment: what a message sends)
                since = _since(f, float(r.started_at), now)
                stored = (r.value or {}).get("evidence") or {}
                if a.evs or stored != dict(f.evidence, since=since):
                    a.values["value"] = self._value(rule, f, facts, since, now)
            else:
                last = max(float(r.last_true_at), self._last_true.pop(int(r.id), 0.0))
                if last > float(r.last_true_at):  # seen true since the stored time
                    a.values["last_true_at"] = last
                    a.touch = True
                cleared = now - last >= rule.clear_for_s
                if r.state == "pending" and (cleared or not in_window(rule, r.school_code)):
                    self._close(a, now, "cancelled", None)
                elif r.state == "firing" and cleared:
                    self._close(a, now, "resolved", None)

        # 2. new alerts: true now, no open row, inside the window
        new: List[Dict[str, Any]] = []
        for key, f in found.items():
            if key in open_rows:
                continue
            rule = self._rules[key[0]]
            if not in_window(rule, f.school_code) or not past_grace(rule, f.school_code):
                continue
            # ``for`` counts from when the data says it began for an ``always`` rule, from
            # this first sight inside the window for a windowed one (a school silent all
            # night does not fire at 07:00 sharp)
            started = _since(f, now, now) if rule.window == "always" else now
            s = facts.schools.get(f.school_code or "")
            state = "firing" if now - started >= rule.for_s else "pending"
            new.append({"rule": rule.id, "subject": f.subject, "school_code": f.school_code,
                        "area_code": s.area_code if s else None, "device_id": f.device_id,
                        "severity": rule.severity, "state": state, "started_at": started,
                        "fired_at": now if state == "firing" else None,
                        "last_true_at": now, "evaluated_at": now,
                        "value": self._value(rule, f, facts, _since(f, now, now), now),
                        "rev": 1})
        self._write(open_rows, new, facts, active, now, counts)
        return len(found), errors

    @staticmethod
    def _close(a: _Alert, now: float, kind: str, detail: Optional[Dict[str, Any]]) -> None:
        a.values.update(state="resolved", resolved_at=now)
        a.evs.append((kind, detail))

    # ------------------------------------------------------------------ writing
    def _write(self, open_rows: Dict[Tuple[str, str], _Alert], new: List[Dict[str, Any]],
               facts: Facts, active: List[Any], now: float, counts: Dict[str, int]) -> None:
        with self.engine.begin() as w:
            evs: List[Dict[str, Any]] = []
            # inserted rows, in batches: a second evaluator's row for the same (rule,
            # subject) wins (the partial unique index); this one is skipped, its events too
            fresh: Set[int] = set()
            for i in range(0, len(new), 1000):
                chunk = new[i:i + 1000]
                ins = dialect_insert(w, alerts).on_conflict_do_nothing(
                    index_elements=["rule", "subject"],
                    index_where=text("state != 'resolved'")).returning(
                    alerts.c.id, alerts.c.rule, alerts.c.subject)
                ids = {(r.rule, r.subject): int(r.id) for r in w.execute(ins, chunk)}
                for row in chunk:
                    got = ids.get((row["rule"], row["subject"]))
                    if got is None:
                        continue
                    fresh.add(got)
                    evs.append(self._event(got, now, "pending", None))
                    if row["state"] == "firing":
                        evs.append(self._event(got, now, "firing", None))
                    open_rows[(row["rule"], row["subject"])] = _Alert(
                        _Row(dict(row, id=got, suppressed_by=None, silenced_by=None)))
            self._dependencies(open_rows, now)
            self._silences(open_rows, active)
            touches: List[Dict[str, Any]] = []
            # rows inserted by this transaction: nobody else can have changed them, so
            # their dependencies and silences are one batch, not a compare-and-set each
            marks: List[Dict[str, Any]] = []
            for a in open_rows.values():
                if a.row.id in fresh:
                    if a.evs:
                        marks.append({"b_id": a.row.id, "b_sup": a.get("suppressed_by"),
                                      "b_sil": a.get("silenced_by")})
                        evs.extend(self._event(a.row.id, now, k, d) for k, d in a.evs)
                    continue
                changes = {k: v for k, v in a.values.items()
                           if k not in ("last_true_at",) and v != getattr(a.row, k)}
                if not changes and not a.evs:
                    if a.touch:
                        touches.append({"b_id": a.row.id, "b_true": a.values["last_true_at"],
                                        "b_now": now})
                    continue
                changes["evaluated_at"] = now
                if "last_true_at" in a.values:
                    changes["last_true_at"] = a.values["last_true_at"]
                res = w.execute(update(alerts).where(
                    alerts.c.id == a.row.id, alerts.c.rev == a.row.rev)
                    .values(rev=a.row.rev + 1, **changes))
                if res.rowcount != 1:
                    continue  # changed meanwhile (an ack): judged again next pass
                for kind, detail in a.evs:
                    evs.append(self._event(a.row.id, now, kind, detail))
            if marks:
                w.execute(update(alerts).where(alerts.c.id == bindparam("b_id"))
                          .values(suppressed_by=bindparam("b_sup"),
                                  silenced_by=bindparam("b_sil")), marks)
            if touches:
                w.execute(update(alerts).where(alerts.c.id == bindparam("b_id"),
                                               alerts.c.state != "resolved")
                          .values(last_true_at=bindparam("b_true"),
                                  evaluated_at=bindparam("b_now")), touches)
            if evs:
                w.execute(alert_events.insert(), evs)
            for e in evs:
                counts[e["kind"]] = counts.get(e["kind"], 0) + 1

    @staticmethod
    def _event(alert_id: int, now: float, kind: str, detail: Optional[Dict[str, Any]]
               ) -> Dict[str, Any]:
        return {"ts": now, "alert_id": alert_id, "kind": kind, "actor": None,
                "detail": detail}

    def _dependencies(self, open_rows: Dict[Tuple[str, str], _Alert], now: float) -> None:
        """``suppressed_by`` of each open device alert: the school's open suppressor (a
        school-level one first, else another device's, e.g. the router), or None."""
        by_school: Dict[str, List[_Alert]] = {}
        for a in open_rows.values():
            rule = self._rules.get(a.row.rule)
            if rule is not None and rule.suppresses and a.get("state") in OPEN \
                    and a.row.school_code:
                by_school.setdefault(a.row.school_code, []).append(a)
        for lst in by_school.values():
            lst.sort(key=lambda x: (not x.row.subject.startswith("school:"), x.row.id))
        for a in open_rows.values():
            if not a.row.subject.startswith("device:"):
                continue
            rule = self._rules.get(a.row.rule)
            want: Optional[int] = None
            # only what the outage explains: a PC unreachable or silent behind a dead
            # router, not its antivirus being off or its disk full (still worth telling)
            if a.get("state") in OPEN and rule is not None \
                    and rule.condition in SUPPRESSIBLE_CONDITIONS:
                for s in by_school.get(a.row.school_code or "", ()):
                    if s is a or (self._is_suppressor(a) and
                                  not s.row.subject.startswith("school:")):
                        continue
                    want = int(s.row.id)
                    break
            have = a.row.suppressed_by
            if want != (int(have) if have is not None else None):
                a.values["suppressed_by"] = want
                if want is not None:
                    a.evs.append(("suppressed", {"by": want}))
                elif have is not None and a.get("state") in OPEN:
                    a.evs.append(("unsuppressed", {"by": int(have)}))
                elif have is not None:
                    a.values.pop("suppressed_by")  # resolved: keep who suppressed it

    def _is_suppressor(self, a: _Alert) -> bool:
        rule = self._rules.get(a.row.rule)
        return bool(rule and rule.suppresses)

    @staticmethod
    def _silences(open_rows: Dict[Tuple[str, str], _Alert], active: List[Any]) -> None:
        for a in open_rows.values():
            if a.get("state") not in OPEN:
                continue  # a resolved alert keeps the silence it had
            want = None
            for s in active:
                if all(getattr(s, col) is None or getattr(s, col) == getattr(a.row, col)
                       for col in ("rule", "school_code", "area_code", "device_id")):
                    want = int(s.id)
                    break
            have = a.row.silenced_by
            if want != (int(have) if have is not None else None):
                a.values["silenced_by"] = want
                if want is not None:
                    a.evs.append(("silenced", {"silence": want}))
                else:
                    a.evs.append(("unsilenced", {"silence": int(have)}))

    # ------------------------------------------------------------------ reading
    def counts(self) -> Dict[Tuple[str, str], int]:
        """Open alerts by (state, severity), for the metrics."""
        with self.engine.connect() as c:
            return {(r.state, r.severity): int(r.n) for r in c.execute(
                select(alerts.c.state, alerts.c.severity, func.count().label("n"))
                .where(alerts.c.state.in_(OPEN))
                .group_by(alerts.c.state, alerts.c.severity))}


def problem_since(value: Any, started_at: float) -> float:
    """When the problem an alert is about began, as people are told it: the evidence's
    ``since`` (the data's own time: a disk full for days, a Last Will at 10:00) when it
    has one, else ``started_at`` (which, for a rule with a window, is when the evaluator
    first saw it inside that window: what ``for`` counts from)."""
    ev = value.get("evidence") if isinstance(value, dict) else None
    since = ev.get("since") if isinstance(ev, dict) else None
    if isinstance(since, (int, float)) and not isinstance(since, bool) and since > 0:
        return float(min(since, started_at))
    return float(started_at)


def _since(f: Finding, default: float, now: float) -> float:
    """When the condition began: the data's own time when it has one (never in the
    future), else ``default``."""
    if f.since is not None and f.since <= now:
        return float(f.since)
    return default


class _Row:
    """A freshly inserted alert, shaped like a row read from the table."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


__all__ = ["AlertEngine", "PassStats", "SchoolHours", "CURSOR_KEY", "TOUCH"]
