"""The daily digest e-mail to the Sở: the last 24 hours of alerts, in Vietnamese.

    digest_pass(engine, now, settings)   # every routing pass; sends once a local day

At ``notify.digest_at`` (local time, default 07:00) and any pass after it that day, each
so_admin and so_viewer user with an e-mail address gets one message covering the 24 hours
before that moment (not before the pass: a late or repeated pass describes the same
window): alerts opened, resolved, still open by severity, the schools with the most and
longest alerts, and counts per area. The outbox key is the local date and the recipient,
so a restart, the clock set back or a second collector sends no second digest that day.
"""
import datetime as _dt
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import Connection, Engine, and_, or_, select
from zoneinfo import ZoneInfo

from ..store.schema import alerts, attt_state, dialect_insert, org_units, schools, users
from ..text import ALERT_SEVERITY_LABELS, duration_words, label, local_short
from ..text import sort_key as vi_sort_key
from .compose import SUBJECT_PREFIX
from .grouping import SEVERITIES, severity_rank
from .outbox import Message, enqueue
from .routing import NotifySettings

log = logging.getLogger("schoolmon.collector.notify")

STATE_KEY = "notify.digest"
#: Schools listed as the worst.
WORST_LISTED = 10
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

DIGEST_TEXTS: Dict[str, Dict[str, str]] = {
    "subject": {"vi": "Báo cáo cảnh báo ngày {day}: {opened} mới, {resolved} đã khắc phục, "
                      "{open} còn mở",
                "en": "Alert report for {day}: {opened} new, {resolved} resolved, {open} open"},
    "title": {"vi": "Báo cáo cảnh báo hằng ngày — {day}", "en": "Daily alert report — {day}"},
    "window": {"vi": "Từ {start} đến {end} (giờ {tz})", "en": "From {start} to {end} ({tz})"},
    "changes": {"vi": "Trong 24 giờ qua:", "en": "In the last 24 hours:"},
    "opened": {"vi": "  Cảnh báo mới: {n}", "en": "  New alerts: {n}"},
    "resolved": {"vi": "  Đã khắc phục: {n}", "en": "  Resolved: {n}"},
    "open": {"vi": "  Còn đang diễn ra: {n} ({by_severity})",
             "en": "  Still open: {n} ({by_severity})"},
    "worst": {"vi": "Trường cần chú ý nhất:", "en": "Schools needing the most attention:"},
    "worst_line": {"vi": "  {i}. {school} ({area}): {n} cảnh báo, tổng {duration}",
                   "en": "  {i}. {school} ({area}): {n} alerts, {duration} in all"},
    "none": {"vi": "  (không có)", "en": "  (none)"},
    "by_area": {"vi": "Theo khu vực:", "en": "By area:"},
    "area_line": {"vi": "  {area}: mới {opened}, đã khắc phục {resolved}, còn mở {open}",
                  "en": "  {area}: {opened} new, {resolved} resolved, {open} open"},
    "link": {"vi": "Xem chi tiết: {url}", "en": "Details: {url}"},
    "no_area": {"vi": "Toàn tỉnh", "en": "Province-wide"},
}


def _say(key: str, lang: str, **values: Any) -> str:
    entry = DIGEST_TEXTS[key]
    return (entry.get(lang) or entry["vi"]).format(**values)


def check_digest_at(value: Any) -> Optional[str]:
    """Config check: local ``HH:MM``."""
    if not isinstance(value, str) or not _HHMM.match(value):
        return "phải là giờ địa phương HH:MM / must be a local time HH:MM, got %r" % (value,)
    return None


def digest_moment(now: float, at: str, tz: str) -> Tuple[str, float]:
    """The local date of ``now`` and the instant (epoch s) of that date's digest time."""
    zone = ZoneInfo(tz)
    local = _dt.datetime.fromtimestamp(now, zone)
    m = _HHMM.match(at)
    hh, mm = (int(m.group(1)), int(m.group(2))) if m else (7, 0)
    moment = _dt.datetime(local.year, local.month, local.day, hh, mm, tzinfo=zone)
    return local.date().isoformat(), moment.timestamp()


@dataclass(frozen=True)
class DigestFigures:
    start: float
    end: float
    opened: int
    resolved: int
    open_by_severity: Dict[str, int]
    worst: List[Tuple[str, str, int, float]]  # school name, area name, alerts, seconds open
    by_area: List[Tuple[str, int, int, int]]  # area name, opened, resolved, open

    @property
    def open(self) -> int:
        return sum(self.open_by_severity.values())


def figures(conn: Connection, start: float, end: float) -> DigestFigures:
    """What the digest says about [start, end): read from ``alerts`` (fired ones only; a
    pending that never fired was never an alert anyone saw)."""
    rows = conn.execute(
        select(alerts.c.id, alerts.c.severity, alerts.c.school_code, alerts.c.area_code,
               alerts.c.fired_at, alerts.c.resolved_at)
        .where(alerts.c.fired_at.is_not(None), alerts.c.fired_at < end,
               or_(alerts.c.resolved_at.is_(None), alerts.c.resolved_at >= start))).all()
    codes = sorted({r.school_code for r in rows if r.school_code})
    school_info: Dict[str, Tuple[str, str]] = {}
    if codes:
        for i in range(0, len(codes), 900):
            for s in conn.execute(select(schools.c.code, schools.c.name,
                                         org_units.c.code.label("area"))
                                  .join(org_units, org_units.c.id == schools.c.org_unit_id)
                                  .where(schools.c.code.in_(codes[i:i + 900]))):
                school_info[s.code] = (s.name, s.area)
    area_names = {u.code: u.name for u in conn.execute(select(org_units.c.code,
                                                              org_units.c.name))}
    opened = resolved = 0
    open_sev = {s: 0 for s in SEVERITIES}
    per_school: Dict[str, List[float]] = {}
    per_area: Dict[Optional[str], List[int]] = {}
    for r in rows:
        area = r.area_code or (school_info.get(r.school_code, ("", None))[1]
                               if r.school_code else None)
        counts = per_area.setdefault(area, [0, 0, 0])
        if r.fired_at >= start:
            opened += 1
            counts[0] += 1
        if r.resolved_at is not None and start <= r.resolved_at < end:
            resolved += 1
            counts[1] += 1
        if r.resolved_at is None or r.resolved_at >= end:
            sev = r.severity if r.severity in open_sev else SEVERITIES[-1]
            open_sev[sev] += 1
            counts[2] += 1
        if r.school_code:
            span = min(r.resolved_at if r.resolved_at is not None else end, end) \
                - max(r.fired_at, start)
            tally = per_school.setdefault(r.school_code, [0, 0.0])
            tally[0] += 1
            tally[1] += max(span, 0.0)
    worst = sorted(per_school.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
    worst_rows = []
    for code, (n, secs) in worst[:WORST_LISTED]:
        name, area = school_info.get(code, (code, ""))
        worst_rows.append((name, area_names.get(area, area), int(n), float(secs)))
    areas = [(area_names.get(a, a) if a else "", c[0], c[1], c[2]) for a, c in per_area.items()]
    areas.sort(key=lambda x: vi_sort_key(x[0]))
    return DigestFigures(start, end, opened, resolved, open_sev, worst_rows, areas)


def compose_digest(f: DigestFigures, day_shown: str, lang: str, tz: str,
                   base_url: str) -> Tuple[str, str]:
    """(subject, body) of the digest in ``lang``."""
    subject = "%s %s" % (SUBJECT_PREFIX, _say("subject", lang, day=day_shown, opened=f.opened,
                                              resolved=f.resolved, open=f.open))
    by_sev = ", ".join("%s %d" % (label(ALERT_SEVERITY_LABELS, s, lang), f.open_by_severity[s])
                       for s in sorted(SEVERITIES, key=severity_rank, reverse=True))
    body = [_say("title", lang, day=day_shown),
            _say("window", lang, start=local_short(f.start, tz), end=local_short(f.end, tz),
                 tz=tz), "",
            _say("changes", lang), _say("opened", lang, n=f.opened),
            _say("resolved", lang, n=f.resolved),
            _say("open", lang, n=f.open, by_severity=by_sev), "", _say("worst", lang)]
    if not f.worst:
        body.append(_say("none", lang))
    for i, (school, area, n, secs) in enumerate(f.worst, 1):
        body.append(_say("worst_line", lang, i=i, school=school, area=area, n=n,
                         duration=duration_words(secs, lang)))
    body += ["", _say("by_area", lang)]
    if not f.by_area:
        body.append(_say("none", lang))
    for area, o, r, n in f.by_area:
        body.append(_say("area_line", lang, area=area or _say("no_area", lang), opened=o,
                         resolved=r, open=n))
    body += ["", _say("link", lang, url=base_url.rstrip("/") + "/alerts")]
    return subject, "\n".join(body) + "\n"


#: How late a day's digest may still go (seconds after its time): a collector started at
#: 21:00 does not mail "yesterday 07:00 → today 07:00" in the evening, as if all were well
DIGEST_LATE = 3 * 3600.0


def digest_pass(engine: Engine, now: float, settings: NotifySettings) -> int:
    """Enqueue today's digest when its time has come and it is not recorded yet; returns
    the messages newly enqueued (0 before the time, more than DIGEST_LATE after it, after it
    was sent, or for nobody)."""
    day, moment = digest_moment(now, settings.digest_at, settings.timezone)
    if now < moment or now >= moment + DIGEST_LATE:
        return 0
    with engine.begin() as conn:
        row = conn.execute(select(attt_state.c.value)
                           .where(attt_state.c.key == STATE_KEY)).first()
        if row is not None and isinstance(row.value, dict) and row.value.get("day") == day:
            return 0
        f = figures(conn, moment - 86400, moment)
        shown = local_short(moment, settings.timezone) or day
        day_shown = shown.split(" ")[0]
        n = 0
        for u in conn.execute(select(users.c.name, users.c.email, users.c.lang)
                              .where(users.c.role.in_(("so_admin", "so_viewer")),
                                     users.c.disabled.is_not(True),
                                     and_(users.c.email.is_not(None), users.c.email != ""))
                              .order_by(users.c.id)):
            lang = u.lang if u.lang in ("vi", "en") else "vi"
            subject, body = compose_digest(f, day_shown, lang, settings.timezone,
                                           settings.public_url)
            key = "digest:%s:%s" % (day, hashlib.sha256(u.email.encode()).hexdigest()[:24])
            if enqueue(conn, Message(key, "email", u.email, subject, body, lang, "digest",
                                     "digest:" + day, {"day": day, "opened": f.opened,
                                                       "resolved": f.resolved,
                                                       "open": f.open}), now):
                n += 1
        ins = dialect_insert(conn, attt_state).values(key=STATE_KEY, value={"day": day},
                                                     updated_at=now, rev=1)
        conn.execute(ins.on_conflict_do_update(
            index_elements=["key"], set_={"value": ins.excluded.value, "updated_at": now,
                                          "rev": attt_state.c.rev + 1}))
    if n:
        log.info("digest for %s: %d messages", day, n)
    return n


__all__ = ["DIGEST_TEXTS", "DigestFigures", "STATE_KEY", "check_digest_at", "compose_digest",
           "digest_moment", "digest_pass", "figures"]
