"""Routing: alert events → the people each one concerns → grouped messages in the outbox.

    settings = settings_from_config(cfg)        # routes file read and checked at start
    route_pass(engine, now, settings)           # after each evaluation (the leader only)

:func:`route_pass` consumes ``alert_events`` by a cursor kept in ``attt_state``
(``notify.route_cursor``, compare-and-set), not by callbacks, so a restart goes on from the
last event it handled and a second process cannot handle one twice. Only ``firing`` and
``resolved`` events move alerts into and out of groups (grouping.py); whether an alert is
silenced, suppressed or acknowledged is read from its row when a message is due, so a
silence made after the alert fired still holds its message back. Each batch of events and
the messages it makes are one transaction: the cursor, the groups and the outbox rows move
together or not at all.

Audiences (routes.toml ``audience``):

- ``school``: users with role school_tech whose scope holds the alert's school, and the
  school's ``contact_email`` from the registry;
- ``area``: area_officer users whose scope holds the school, or (an area's own alert) the
  area or a unit above it;
- ``so``: so_admin and so_viewer users, every ``notify.apprise_urls`` and the signed
  ``notify.webhook_url``.

A user is told on e-mail when they have ``email`` and on Zalo when they have
``zalo_chat_id``; alerts below their ``notify_min_severity`` (default warning) are not
said to them; they read their ``lang`` (default vi). Disabled users are told nothing.
"""
import fnmatch
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

import tomllib
from schoolmon.protocol.settings import ConfigError
from sqlalchemy import Connection, Engine, delete, select, update

from ..alerting.engine import problem_since
from ..read.scope import UnitSchools
from ..store.schema import (
    alert_events,
    alert_notifications,
    alerts,
    attt_state,
    dialect_insert,
    notification_groups,
    org_units,
    schools,
    user_units,
    users,
)
from ..text import DEFAULT_TIMEZONE
from .channels.apprise_urls import names as apprise_names
from .compose import AlertView, compose
from .grouping import (
    DEFAULT_MIN_SEVERITY,
    GROUP_LABELS,
    SEVERITIES,
    AlertNow,
    Flush,
    GroupState,
    Recipient,
    Timing,
    group_key,
    labels_of,
    on_firing,
    on_resolved,
    plan,
    severity_rank,
)
from .outbox import Message, enqueue_many

log = logging.getLogger("schoolmon.collector.notify")

SHIPPED_ROUTES_FILE = Path(__file__).with_name("routes.toml")
AUDIENCES = ("school", "area", "so")
CURSOR_KEY = "notify.route_cursor"
#: Events handled per transaction (a province's whole outage is ~3,000 alerts, 6,000
#: events with their pendings: one transaction).
BATCH = 10000
#: alert_events kinds that move an alert into or out of groups; the rest are read from
#: the alert's row when a message is due.
ROUTED_KINDS = ("firing", "resolved")


class RoutesError(ConfigError):
    """A routes file that cannot be used; the message names the file and line. A
    ConfigError, so the CLI prints it and exits 2 at start, as for the baseline files."""


@dataclass(frozen=True)
class Route:
    id: str
    audience: str
    timing: Timing
    group_by: Tuple[str, ...]
    rules: Tuple[str, ...] = ()  # ids or fnmatch patterns; empty: every rule
    severities: Tuple[str, ...] = ()  # empty: every severity
    line: int = 0

    def matches(self, rule: str, severity: str) -> bool:
        if self.severities and severity not in self.severities:
            return False
        return not self.rules or any(fnmatch.fnmatchcase(rule, p) for p in self.rules)


_ROUTE_KEYS = {"id", "audience", "rules", "severities", "group_by", "group_wait",
               "group_interval", "repeat_interval"}
_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def parse_routes(text: str, source: str = "routes.toml") -> Tuple[Route, ...]:
    """The routes of a TOML text; RoutesError naming ``source`` and the line otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RoutesError("%s: không đọc được TOML / not valid TOML: %s"
                          % (source, exc)) from None
    route_lines = [i + 1 for i, ln in enumerate(text.splitlines())
                   if ln.strip().startswith("[[route]]")]

    def fail(line: int, what: str) -> RoutesError:
        return RoutesError("%s dòng / line %d: %s" % (source, line, what))

    defaults = data.get("defaults", {})
    unknown = set(data) - {"defaults", "route"}
    if unknown:
        raise fail(1, "mục không biết / unknown table: %s" % ", ".join(sorted(unknown)))
    raw = data.get("route", [])
    if not isinstance(raw, list) or not raw:
        raise fail(1, "cần ít nhất một [[route]] / at least one [[route]] is needed")
    out: List[Route] = []
    for n, r in enumerate(raw):
        line = route_lines[n] if n < len(route_lines) else 1
        extra = set(r) - _ROUTE_KEYS
        if extra:
            raise fail(line, "khoá không biết / unknown key: %s" % ", ".join(sorted(extra)))
        rid = r.get("id")
        if not isinstance(rid, str) or not _ID.match(rid):
            raise fail(line, "id phải là chữ, số, _ hoặc - (tối đa 32) / id must be letters, "
                       "digits, _ or - (at most 32)")
        if any(x.id == rid for x in out):
            raise fail(line, "id %r trùng / duplicate id %r" % (rid, rid))
        audience = r.get("audience")
        if audience not in AUDIENCES:
            raise fail(line, "audience phải là một trong / must be one of %s, got %r"
                       % (", ".join(AUDIENCES), audience))
        sev = r.get("severities", [])
        if not isinstance(sev, list) or any(s not in SEVERITIES for s in sev):
            raise fail(line, "severities: chỉ gồm / only %s" % ", ".join(SEVERITIES))
        rules = r.get("rules", [])
        if not isinstance(rules, list) or any(not isinstance(x, str) or not x for x in rules):
            raise fail(line, "rules: danh sách tên luật / a list of rule ids")
        group_by = r.get("group_by", defaults.get("group_by", ["area", "rule"]))
        if not isinstance(group_by, list) or any(g not in GROUP_LABELS for g in group_by):
            raise fail(line, "group_by: chỉ gồm / only %s" % ", ".join(GROUP_LABELS))
        times: Dict[str, float] = {}
        for k, d in (("group_wait", 60), ("group_interval", 300), ("repeat_interval", 43200)):
            v = r.get(k, defaults.get(k, d))
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v > 30 * 86400:
                raise fail(line, "%s: số giây từ 0 đến 2592000 / seconds from 0 to 2592000, "
                           "got %r" % (k, v))
            times[k] = float(v)
        if times["group_interval"] <= 0 or times["repeat_interval"] <= 0:
            raise fail(line, "group_interval, repeat_interval: phải > 0 / must be > 0")
        out.append(Route(rid, audience, Timing(**times), tuple(group_by), tuple(rules),
                         tuple(sev), line))
    return tuple(out)


def load_routes(path: Optional[str] = None) -> Tuple[Route, ...]:
    p = Path(path) if path else SHIPPED_ROUTES_FILE
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RoutesError("%s: không đọc được / cannot be read: %s" % (p, exc)) from None
    return parse_routes(text, str(p))


@dataclass(frozen=True)
class NotifySettings:
    routes: Tuple[Route, ...]
    public_url: str = "http://127.0.0.1:8080"
    timezone: str = DEFAULT_TIMEZONE
    apprise_urls: Tuple[str, ...] = ()
    webhook_url: str = ""
    digest_at: str = "07:00"


def settings_from_config(cfg: Any) -> NotifySettings:
    """From the collector's config; RoutesError (stop at start) for a bad routes file."""
    public = cfg.api.public_url or "http://%s" % cfg.api.listen
    return NotifySettings(routes=load_routes(cfg.notify.routes_file or None),
                          public_url=public, timezone=cfg.province.timezone,
                          apprise_urls=tuple(cfg.notify.apprise_urls),
                          webhook_url=cfg.notify.webhook_url, digest_at=cfg.notify.digest_at)


# --- audiences --------------------------------------------------------------------------

def _user_recipients(row: Any) -> List[Recipient]:
    lang = row.lang if row.lang in ("vi", "en") else "vi"
    least = row.notify_min_severity if row.notify_min_severity in SEVERITIES \
        else DEFAULT_MIN_SEVERITY
    out = []
    if row.email:
        out.append(Recipient("email", row.email, lang, least, row.name))
    if row.zalo_chat_id:
        out.append(Recipient("zalo", row.zalo_chat_id, lang, least, row.name))
    return out


@dataclass
class Audiences:
    """Who each audience holds, read once per pass from users, their scopes and the
    registry (a few thousand rows at most)."""
    school_techs: Dict[str, List[Recipient]] = field(default_factory=dict)  # school → techs
    school_officers: Dict[str, List[Recipient]] = field(default_factory=dict)
    unit_officers: Dict[str, List[Recipient]] = field(default_factory=dict)  # org code →
    ancestors: Dict[str, Tuple[str, ...]] = field(default_factory=dict)  # org code → self+up
    contacts: Dict[str, Recipient] = field(default_factory=dict)  # school → contact e-mail
    so: List[Recipient] = field(default_factory=list)

    @staticmethod
    def load(conn: Connection, settings: NotifySettings) -> "Audiences":
        a = Audiences()
        units = conn.execute(select(org_units.c.id, org_units.c.parent_id,
                                    org_units.c.code)).all()
        by_id = {u.id: u for u in units}
        for u in units:
            chain: List[str] = []
            seen: Set[int] = set()
            cur: Optional[Any] = u
            while cur is not None and cur.id not in seen:
                seen.add(cur.id)
                chain.append(cur.code)
                cur = by_id.get(cur.parent_id) if cur.parent_id is not None else None
            a.ancestors[u.code] = tuple(chain)
        scopes: Dict[int, List[Tuple[str, str]]] = {}
        for s in conn.execute(select(user_units.c.user_id, user_units.c.kind,
                                     user_units.c.code)):
            scopes.setdefault(s.user_id, []).append((s.kind, s.code))
        by_code = UnitSchools().by_code(conn)
        for u in conn.execute(select(users).where(users.c.disabled.is_not(True))
                              .order_by(users.c.id)):
            recs = _user_recipients(u)
            if not recs:
                continue
            if u.role in ("so_admin", "so_viewer"):
                a.so.extend(recs)
                continue
            scope = scopes.get(u.id, [])
            visible: Set[str] = set()
            for kind, code in scope:
                visible |= {code} if kind == "school" else by_code.get(code, frozenset())
            target = a.school_techs if u.role == "school_tech" else a.school_officers
            for code in visible:
                target.setdefault(code, []).extend(recs)
            if u.role == "area_officer":
                for kind, code in scope:
                    if kind == "org":
                        a.unit_officers.setdefault(code, []).extend(recs)
        for c in conn.execute(select(schools.c.code, schools.c.contact_email)
                              .where(schools.c.contact_email.is_not(None))):
            if c.contact_email and "@" in c.contact_email:
                a.contacts[c.code] = Recipient("email", c.contact_email.strip(), "vi",
                                               DEFAULT_MIN_SEVERITY, "contact:" + c.code)
        # an Apprise URL is made of secrets: the outbox (and so the API) names it by its
        # entry name (channels/apprise_urls.py), the channel looks the URL up when sending
        for name in apprise_names(list(settings.apprise_urls)):
            a.so.append(Recipient("apprise", name, "vi", DEFAULT_MIN_SEVERITY, "config"))
        if settings.webhook_url:
            a.so.append(Recipient("webhook", "webhook", "vi", "info", "config"))
        return a

    def recipients(self, route: Route, alert: Mapping[str, Any]) -> List[Recipient]:
        """Everyone ``route`` tells about ``alert`` (a dict of its row), each address once,
        the ones whose least severity is above the alert's left out."""
        school, area = alert.get("school_code"), alert.get("area_code")
        found: List[Recipient] = []
        if route.audience == "school" and school:
            found += self.school_techs.get(school, [])
            if school in self.contacts:
                found.append(self.contacts[school])
        elif route.audience == "area":
            if school:
                found += self.school_officers.get(school, [])
            elif area:
                for code in self.ancestors.get(area, (area,)):
                    found += self.unit_officers.get(code, [])
        elif route.audience == "so":
            found += self.so
        rank = severity_rank(alert.get("severity"))
        out: Dict[str, Recipient] = {}
        for r in found:
            if rank >= severity_rank(r.min_severity) and r.key not in out:
                out[r.key] = r
        return list(out.values())


# --- the pass ---------------------------------------------------------------------------

class Conflict(RuntimeError):
    """Another process moved the cursor or a group first: this transaction is undone."""


@dataclass(frozen=True)
class PassStats:
    events: int = 0
    enqueued: int = 0
    duplicates: int = 0
    conflicts: int = 0


def _read_cursor(conn: Connection) -> Tuple[int, Optional[int]]:
    row = conn.execute(select(attt_state.c.value, attt_state.c.rev)
                       .where(attt_state.c.key == CURSOR_KEY)).first()
    if row is None:
        return 0, None
    value = row.value if isinstance(row.value, dict) else {}
    return int(value.get("event_id", 0)), int(row.rev)


def _claim(conn: Connection, now: float) -> Tuple[int, int]:
    """Take the cursor row for this transaction: compare-and-set of its rev, first thing,
    so a second routing transaction waits for this one (PostgreSQL's row lock, SQLite's
    write lock) and then finds the rev moved and is undone (Conflict) instead of routing
    the same events or flushing the same groups. Returns (cursor, the rev now held)."""
    cursor, rev = _read_cursor(conn)
    if rev is None:
        ins = dialect_insert(conn, attt_state).values(key=CURSOR_KEY, value={"event_id": 0},
                                                     updated_at=now, rev=1)
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT
        if not conn.execute(ins.on_conflict_do_nothing(index_elements=["key"])
                            .returning(attt_state.c.key)).all():
            raise Conflict(CURSOR_KEY)
        return cursor, 1
    got = conn.execute(update(attt_state).where(attt_state.c.key == CURSOR_KEY,
                                                attt_state.c.rev == rev)
                       .values(updated_at=now, rev=rev + 1)).rowcount
    if got != 1:
        raise Conflict(CURSOR_KEY)
    return cursor, rev + 1


def _set_cursor(conn: Connection, event_id: int, rev: int, now: float) -> None:
    conn.execute(update(attt_state).where(attt_state.c.key == CURSOR_KEY,
                                          attt_state.c.rev == rev)
                 .values(value={"event_id": event_id}, updated_at=now))


def _load_groups(conn: Connection) -> Dict[str, GroupState]:
    out = {}
    for row in conn.execute(select(notification_groups)):
        try:
            out[row.group_key] = GroupState.from_row(row)
        except (KeyError, TypeError, ValueError):  # a row no version of this code wrote
            log.warning("notification group %r unreadable, skipped", row.group_key)
    return out


def _save_groups(conn: Connection, changed: Sequence[GroupState]) -> None:
    """Replace the changed groups' rows (delete, then one multi-row insert of those not
    empty): a province's outage changes thousands at once, and a statement per group was
    most of a pass on PostgreSQL. Safe without a compare-and-set per row: the transaction
    holds the cursor row (see _claim)."""
    keys = [g.key for g in changed if g.rev]
    for i in range(0, len(keys), 900):
        conn.execute(delete(notification_groups)
                     .where(notification_groups.c.group_key.in_(keys[i:i + 900])))
    rows = [{"group_key": g.key, "route": g.route, "opened_at": g.opened_at,
             "last_sent_at": g.last_sent_at, "last_digest": None, "state": g.state_json(),
             "rev": g.rev + 1} for g in changed if not g.empty]
    if rows:
        conn.execute(notification_groups.insert(), rows)


def _alert_dicts(conn: Connection, ids: Iterable[int]) -> Dict[int, Dict[str, Any]]:
    wanted = sorted(set(ids))
    out: Dict[int, Dict[str, Any]] = {}
    for i in range(0, len(wanted), 900):  # under SQLite's bound-parameter limit
        for r in conn.execute(select(alerts).where(alerts.c.id.in_(wanted[i:i + 900]))):
            out[int(r.id)] = dict(r._mapping)
    return out


def _views(conn: Connection, rows: Mapping[int, Mapping[str, Any]]) -> Dict[int, AlertView]:
    codes = {r["school_code"] for r in rows.values() if r.get("school_code")}
    areas = {r["area_code"] for r in rows.values() if r.get("area_code")}
    school_names: Dict[str, str] = {}
    area_of: Dict[str, str] = {}
    if codes:
        for s in conn.execute(select(schools.c.code, schools.c.name, org_units.c.code.label("area"))
                              .join(org_units, org_units.c.id == schools.c.org_unit_id)
                              .where(schools.c.code.in_(sorted(codes)))):
            school_names[s.code] = s.name
            area_of[s.code] = s.area
            areas.add(s.area)
    area_names = {u.code: u.name for u in conn.execute(
        select(org_units.c.code, org_units.c.name).where(org_units.c.code.in_(sorted(areas))))
    } if areas else {}
    out = {}
    for i, r in rows.items():
        raw = r.get("value")
        v: Dict[str, Any] = raw if isinstance(raw, dict) else {}
        title: Dict[str, str] = v["title"] if isinstance(v.get("title"), dict) else {}
        text: Dict[str, str] = v["text"] if isinstance(v.get("text"), dict) else {}
        school = r.get("school_code")
        area = r.get("area_code") or (area_of.get(school) if school else None)
        out[i] = AlertView(
            id=i, rule=r["rule"], severity=r["severity"], state=r["state"],
            subject=r["subject"], title=title or {"vi": r["rule"]}, text=text,
            started_at=float(r["started_at"]), fired_at=r.get("fired_at"),
            began_at=problem_since(v, float(r["started_at"])),
            resolved_at=r.get("resolved_at"), school_code=school,
            school_name=v.get("school_name") or school_names.get(school or "") or school,
            area_code=area, area_name=area_names.get(area or "") or area,
            device_id=r.get("device_id"), device_name=v.get("device_name") or r.get("device_id"),
            ack_by=r.get("ack_by"))
    return out


def _apply_events(conn: Connection, settings: NotifySettings, groups: Dict[str, GroupState],
                  events: Sequence[Any], audiences: Optional[Audiences]) -> Audiences:
    rows = _alert_dicts(conn, (e.alert_id for e in events if e.kind == "firing"))
    aud = audiences or Audiences.load(conn, settings)
    by_alert: Dict[int, Set[str]] = {}
    for key, g in groups.items():
        for i in g.firing + g.notified:
            by_alert.setdefault(i, set()).add(key)
    for e in events:
        aid = int(e.alert_id)
        if e.kind == "firing":
            a = rows.get(aid)
            if a is None:
                continue
            for route in settings.routes:
                if not route.matches(a["rule"], a["severity"]):
                    continue
                labels = labels_of(route.group_by, a)
                for rcp in aud.recipients(route, a):
                    key = group_key(route.id, rcp, labels)
                    g = groups.get(key) or GroupState(key, route.id, rcp, labels,
                                                      opened_at=float(e.ts))
                    groups[key] = on_firing(g, aid)
                    by_alert.setdefault(aid, set()).add(key)
        elif e.kind == "resolved":
            for key in by_alert.get(aid, ()):
                groups[key] = on_resolved(groups[key], aid)
    return aud


def _links_of(f: Flush) -> List[Tuple[int, str]]:
    """How a message tells each alert it covers: ``firing`` for the new ones,
    ``resolved`` for the resolved, and for the rest ``repeat`` (a repeat message) or
    ``update`` (still firing, named again in a message that is about other alerts)."""
    again = "repeat" if f.kind == "repeat" else "update"
    out: Dict[int, str] = {}
    for ids, how in ((f.still, again), (f.resolved, "resolved"), (f.new, "firing")):
        for i in ids:
            out[int(i)] = how
    return sorted(out.items())


#: Link rows per INSERT: 3 columns each, far under SQLite's bound-parameter limit.
LINK_CHUNK = 2000


def _write_links(conn: Connection, new: Mapping[str, int],
                 links: Mapping[str, Sequence[Tuple[int, str]]]) -> None:
    """The alert_notifications rows of the messages that were new (in the caller's
    transaction, with the outbox rows). A message already recorded — after a restart, a
    clock jump back, a second process — is not in ``new``, so it adds no link twice; a
    multi-row insert like enqueue_many keeps routing's speed."""
    rows = [{"alert_id": aid, "notification_id": nid, "kind": how}
            for key, nid in new.items() for aid, how in links.get(key, ())]
    for i in range(0, len(rows), LINK_CHUNK):
        conn.execute(alert_notifications.insert(), rows[i:i + LINK_CHUNK])


def _flush(conn: Connection, settings: NotifySettings, groups: Dict[str, GroupState],
           now: float) -> Tuple[int, int]:
    routes = {r.id: r for r in settings.routes}
    ids = {i for g in groups.values() for i in g.firing + g.notified + g.resolved}
    rows = _alert_dicts(conn, ids)
    state = {i: AlertNow(r["state"], r.get("silenced_by") is not None,
                         r.get("suppressed_by") is not None, r.get("ack_at") is not None)
             for i, r in rows.items()}
    due = []
    for key, g in groups.items():
        route = routes.get(g.route)
        if route is None:  # a route taken out of the file: its groups say nothing more
            continue
        f = plan(g, route.timing, state, now)
        if f is not None:
            due.append((key, f))
    if not due:
        return 0, 0
    views = _views(conn, {i: rows[i] for _, f in due for i in f.new + f.still + f.resolved
                          if i in rows})
    msgs = []
    links: Dict[str, List[Tuple[int, str]]] = {}  # dedup key → (alert id, how it is told)
    for key, f in due:
        g = groups[key]
        rcp = g.recipient
        msg = compose(g.route, f.kind, rcp.lang, [views[i] for i in f.new if i in views],
                      [views[i] for i in f.still if i in views],
                      [views[i] for i in f.resolved if i in views], settings.public_url,
                      settings.timezone, g.key, dict(g.labels),
                      with_json=rcp.channel == "webhook")
        payload: Any = msg.payload if rcp.channel == "webhook" else {
            "alert_ids": list(f.new + f.still), "resolved_ids": list(f.resolved),
            "kind": f.kind}
        msgs.append(Message(f.dedup_key, rcp.channel, rcp.address, msg.subject, msg.body,
                            rcp.lang, g.route, g.key, payload))
        links[f.dedup_key] = _links_of(f)
        groups[key] = f.after
    new = enqueue_many(conn, msgs, now)
    _write_links(conn, new, links)
    enqueued = len(new)
    dupes = len(msgs) - enqueued
    return enqueued, dupes


def route_pass(engine: Engine, now: float, settings: NotifySettings,
               metrics: Any = None) -> PassStats:
    """Handle every alert event after the cursor, then enqueue the messages now due.
    ``now`` is passed in (tests drive the clock); nothing here reads the wall clock."""
    events_total = enqueued = dupes = conflicts = 0
    audiences: Optional[Audiences] = None
    while True:
        try:
            with engine.begin() as conn:
                cursor, rev = _claim(conn, now)
                events = conn.execute(
                    select(alert_events.c.id, alert_events.c.ts, alert_events.c.alert_id,
                           alert_events.c.kind)
                    .where(alert_events.c.id > cursor).order_by(alert_events.c.id)
                    .limit(BATCH)).all()
                groups = _load_groups(conn)
                before = dict(groups)
                routed = [e for e in events if e.kind in ROUTED_KINDS]
                if routed:
                    audiences = _apply_events(conn, settings, groups, routed, audiences)
                last = len(events) < BATCH
                n = d = 0
                if last:
                    n, d = _flush(conn, settings, groups, now)
                _save_groups(conn, [g for key, g in groups.items() if before.get(key) is not g])
                if events:
                    _set_cursor(conn, int(events[-1].id), rev, now)
            # committed: count it
            events_total += len(events)
            enqueued += n
            dupes += d
        except Conflict as exc:
            # Another process got there first (it should not: one leader routes); what it
            # did stands, this pass stops and the next one starts from its cursor.
            log.warning("routing: %s changed under this pass; undone", exc)
            conflicts += 1
            break
        if last:
            break
    if metrics is not None:
        metrics.notify_enqueued.inc(enqueued)
        metrics.notify_duplicates.inc(dupes)
        metrics.notify_conflicts.inc(conflicts)
    return PassStats(events_total, enqueued, dupes, conflicts)


__all__ = ["AUDIENCES", "Audiences", "CURSOR_KEY", "NotifySettings", "PassStats", "Route",
           "RoutesError", "SHIPPED_ROUTES_FILE", "load_routes", "parse_routes", "route_pass",
           "settings_from_config"]
