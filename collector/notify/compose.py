"""The words of a notification: subject, plain-text body and the webhook's JSON.

Vietnamese first, English for a reader whose ``lang`` is en; times in the province's zone
as people write them (``02/12/2026 10:00``), and in the webhook also as UTC and local
ISO 8601. A grouped message lists the worst alerts first (severity, then the longest
open, then the school in Vietnamese order) and stops at ``MAX_LISTED`` with a count of the
rest, so 200 schools make one readable e-mail. :data:`NOTIFY_TEXTS` is the one definition
of every sentence a notification says; the severity labels are the shared ones of
collector/text.py.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence
from urllib.parse import quote

from ..text import ALERT_SEVERITY_LABELS, DEFAULT_TIMEZONE, iso_local, iso_utc, label, local_short
from ..text import sort_key as vi_sort_key
from .grouping import severity_rank

#: Alerts listed in a body; the rest are counted.
MAX_LISTED = 20

NOTIFY_TEXTS: Dict[str, Dict[str, str]] = {
    "n_alerts": {"vi": "{n} cảnh báo", "en": "{n} alerts"},
    "resolved_prefix": {"vi": "Đã khắc phục", "en": "Resolved"},
    "repeat_prefix": {"vi": "Nhắc lại", "en": "Reminder"},
    "plus_resolved": {"vi": "{n} đã khắc phục", "en": "{n} resolved"},
    "section_new": {"vi": "Cảnh báo mới ({n})", "en": "New alerts ({n})"},
    "section_still": {"vi": "Vẫn đang diễn ra ({n})", "en": "Still firing ({n})"},
    "section_resolved": {"vi": "Đã khắc phục ({n})", "en": "Resolved ({n})"},
    "more": {"vi": "… và {n} cảnh báo khác", "en": "… and {n} more"},
    "since": {"vi": "Từ {t}", "en": "Since {t}"},
    "resolved_at": {"vi": "Khắc phục lúc {t}", "en": "Resolved at {t}"},
    "acked": {"vi": "đã xác nhận bởi {who}", "en": "acknowledged by {who}"},
    "view_all": {"vi": "Xem tất cả cảnh báo: {url}", "en": "All alerts: {url}"},
    # the route's id is for the Sở's administrators, not the reader: it stays in the
    # webhook's JSON and the outbox, not in the text
    "footer": {"vi": "Thư tự động từ schoolmon; giờ theo {tz}.",
               "en": "Sent by schoolmon; times in {tz}."},
}

#: A count of alerts of one rule, for a grouped subject ("200 trường mất kết nối").
RULE_COUNT_TEXTS: Dict[str, Dict[str, str]] = {
    "school_offline": {"vi": "{n} trường mất kết nối", "en": "{n} schools offline"},
    "school_internet_down": {"vi": "{n} trường mất Internet", "en": "{n} schools without Internet"},
    "router_down": {"vi": "{n} router không liên lạc được", "en": "{n} routers unreachable"},
    "server_offline": {"vi": "{n} máy chủ mất kết nối", "en": "{n} servers offline"},
    "office_pc_offline": {"vi": "{n} máy văn phòng mất kết nối", "en": "{n} office PCs offline"},
    "lab_pc_offline": {"vi": "{n} máy phòng tin học mất kết nối", "en": "{n} lab PCs offline"},
    "agent_silent": {"vi": "{n} máy không báo về", "en": "{n} devices silent"},
    "below_connectivity": {"vi": "{n} trường chưa đạt chuẩn kết nối",
                           "en": "{n} schools below the connectivity baseline"},
    "below_attt": {"vi": "{n} trường chưa đạt chuẩn ATTT",
                   "en": "{n} schools below the ATTT baseline"},
    "device_av_off": {"vi": "{n} máy không có bảo vệ chống mã độc",
                      "en": "{n} devices without anti-malware protection"},
    "device_disk_full": {"vi": "{n} máy đầy ổ đĩa", "en": "{n} devices with a full disk"},
    "device_cpu_hot": {"vi": "{n} máy quá nóng", "en": "{n} devices running hot"},
    "device_reboot_pending": {"vi": "{n} máy chờ khởi động lại quá lâu",
                              "en": "{n} devices waiting too long for a reboot"},
}

SUBJECT_PREFIX = "[schoolmon]"


def say(key: str, lang: str, **values: Any) -> str:
    entry = NOTIFY_TEXTS[key]
    return (entry.get(lang) or entry["vi"]).format(**values)


@dataclass(frozen=True)
class AlertView:
    """One alert as a message shows it (from its row, ``alerts.value`` and the registry)."""
    id: int
    rule: str
    severity: str
    state: str
    subject: str
    title: Mapping[str, str]
    text: Mapping[str, str]
    started_at: float
    fired_at: Optional[float] = None
    #: when the problem began (alerting.engine.problem_since): what "Từ …" says
    began_at: Optional[float] = None
    resolved_at: Optional[float] = None
    school_code: Optional[str] = None
    school_name: Optional[str] = None
    area_code: Optional[str] = None
    area_name: Optional[str] = None
    device_id: Optional[str] = None
    device_name: Optional[str] = None
    ack_by: Optional[str] = None

    def title_in(self, lang: str) -> str:
        return str(self.title.get(lang) or self.title.get("vi") or self.rule)

    def text_in(self, lang: str) -> str:
        return str(self.text.get(lang) or self.text.get("vi") or "")


@dataclass(frozen=True)
class Composed:
    subject: str
    body: str
    payload: Dict[str, Any]


def worst_first(alerts: Sequence[AlertView]) -> List[AlertView]:
    return sorted(alerts, key=lambda a: (-severity_rank(a.severity), a.fired_at or a.started_at,
                                         vi_sort_key(a.school_name or ""), a.id))


def page_url(base_url: str, a: AlertView) -> str:
    """The page a reader opens: the device's, else the school's, else the alerts list."""
    base = base_url.rstrip("/")
    if a.device_id:
        return "%s/devices/%s" % (base, quote(a.device_id, safe=""))
    if a.school_code:
        return "%s/schools/%s" % (base, quote(a.school_code, safe=""))
    return "%s/alerts" % base


def _headline(alerts: Sequence[AlertView], lang: str) -> str:
    if len(alerts) == 1:
        return alerts[0].title_in(lang)
    rules = {a.rule for a in alerts}
    if len(rules) == 1 and next(iter(rules)) in RULE_COUNT_TEXTS:
        entry = RULE_COUNT_TEXTS[next(iter(rules))]
        head = (entry.get(lang) or entry["vi"]).format(n=len(alerts))
    else:
        head = say("n_alerts", lang, n=len(alerts))
    areas = {a.area_name for a in alerts}
    if len(areas) == 1 and None not in areas:
        head += " — %s" % next(iter(areas))
    return head


def subject_line(kind: str, new: Sequence[AlertView], still: Sequence[AlertView],
                 resolved: Sequence[AlertView], lang: str) -> str:
    if kind == "firing":
        text = _headline(new, lang)
        if resolved:
            text += " (%s)" % say("plus_resolved", lang, n=len(resolved))
    elif kind == "resolved":
        text = "%s: %s" % (say("resolved_prefix", lang), _headline(resolved, lang))
    else:
        text = "%s: %s" % (say("repeat_prefix", lang), _headline(still, lang))
    return "%s %s" % (SUBJECT_PREFIX, text)


def _lines(a: AlertView, lang: str, tz: str, base_url: str, resolved: bool) -> List[str]:
    sev = label(ALERT_SEVERITY_LABELS, a.severity, lang)
    head = "• [%s] %s" % (sev, a.title_in(lang))
    if a.ack_by and not resolved:
        head += " (%s)" % say("acked", lang, who=a.ack_by)
    out = [head]
    text = a.text_in(lang)
    if text:
        out.append("  " + text)
    when = say("since", lang, t=local_short(a.began_at or a.started_at, tz))
    if resolved and a.resolved_at is not None:
        when += "; " + say("resolved_at", lang, t=local_short(a.resolved_at, tz))
    out.append("  " + when)
    out.append("  " + page_url(base_url, a))
    return out


def _section(title_key: str, alerts: Sequence[AlertView], budget: int, lang: str, tz: str,
             base_url: str, resolved: bool) -> List[str]:
    if not alerts:
        return []
    out = ["", say(title_key, lang, n=len(alerts))]
    shown = worst_first(alerts)[:max(budget, 0)]
    for a in shown:
        out.extend(_lines(a, lang, tz, base_url, resolved))
    if len(alerts) > len(shown):
        out.append(say("more", lang, n=len(alerts) - len(shown)))
    return out


def alert_json(a: AlertView, base_url: str, tz: str) -> Dict[str, Any]:
    def when(t: Optional[float]) -> Optional[Dict[str, Optional[str]]]:
        return None if t is None else {"utc": iso_utc(t), "local": iso_local(t, tz)}
    return {"id": a.id, "rule": a.rule, "severity": a.severity, "state": a.state,
            "subject": a.subject, "title": dict(a.title), "text": dict(a.text),
            "school": None if a.school_code is None else {"code": a.school_code,
                                                           "name": a.school_name},
            "area": None if a.area_code is None else {"code": a.area_code, "name": a.area_name},
            "device": None if a.device_id is None else {"id": a.device_id,
                                                        "name": a.device_name},
            "started_at": when(a.started_at), "fired_at": when(a.fired_at),
            "resolved_at": when(a.resolved_at), "acknowledged_by": a.ack_by,
            "url": page_url(base_url, a)}


def compose(route: str, kind: str, lang: str, new: Sequence[AlertView],
            still: Sequence[AlertView], resolved: Sequence[AlertView], base_url: str,
            tz: str = DEFAULT_TIMEZONE, group_key: str = "",
            labels: Optional[Mapping[str, str]] = None, with_json: bool = True) -> Composed:
    """The message for one flush of a group (see grouping.plan for the kinds);
    ``with_json`` False leaves the webhook's JSON out (a third of the work for an e-mail)."""
    subject = subject_line(kind, new, still, resolved, lang)
    body: List[str] = [subject[len(SUBJECT_PREFIX) + 1:]]
    budget = MAX_LISTED
    for key, alerts, is_resolved in (("section_new", new, False),
                                     ("section_resolved", resolved, True),
                                     ("section_still", still, False)):
        body.extend(_section(key, alerts, budget, lang, tz, base_url, is_resolved))
        budget -= min(len(alerts), max(budget, 0))
    body += ["", say("view_all", lang, url=base_url.rstrip("/") + "/alerts"),
             say("footer", lang, tz=tz)]
    if not with_json:
        return Composed(subject, "\n".join(body) + "\n", {})
    payload = {
        "version": 1, "kind": kind, "route": route, "group_key": group_key,
        "labels": dict(labels or {}), "lang": lang, "subject": subject,
        "alerts": ([dict(alert_json(a, base_url, tz), change="new") for a in new]
                   + [dict(alert_json(a, base_url, tz), change="resolved") for a in resolved]
                   + [dict(alert_json(a, base_url, tz), change="still") for a in still]),
        "counts": {"new": len(new), "resolved": len(resolved), "still": len(still)},
    }
    return Composed(subject, "\n".join(body) + "\n", payload)


__all__ = ["AlertView", "Composed", "MAX_LISTED", "NOTIFY_TEXTS", "RULE_COUNT_TEXTS",
           "alert_json", "compose", "page_url", "say", "subject_line", "worst_first"]
