"""Alert rules as data (``rules.toml``, or ``alerting.rules_file``), validated once at start.

A rule names a condition of :mod:`conditions` (``condition = "device_offline"``) and says
when it is an incident: severity, ``for`` (how long the condition holds before the alert
fires), ``clear_for`` (how long it stays false before the alert resolves: hysteresis),
``window`` (``always`` | ``school_hours`` | ``office_hours``: outside it no alert opens),
``scope`` (org units: area or school codes; empty: the whole province), ``roles`` (device
rules only), ``params`` (the condition's thresholds), ``suppresses`` (while open, the
school's device alerts are suppressed by it: a dead router is one alert, not one per PC)
and the title and text in Vietnamese and English, with ``{placeholders}`` filled from the
evidence.

An unusable file raises :class:`RulesError` naming the file and the LINE. ``tomllib``
gives the line only for syntax errors; for a problem in a value the line is found in the
text (the n-th ``[[rule]]`` header is the n-th rule, as tables parse in file order, and in
it the ``key =`` line) — the same way the baselines' files do (collector/baseline/attt.py).
"""
import datetime as _dt
import hashlib
import os
import re
import string
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from schoolmon.protocol.settings import ConfigError
from zoneinfo import ZoneInfo

from ..text import ATTT_STATUS_LABELS, OFFLINE_REASON_LABELS, ROLE_LABELS, duration_words
from ..tomllines import TomlLines, load_versioned
from .conditions import COMMON_PLACEHOLDERS, CONDITIONS, DEVICE, ROLES

SHIPPED_RULES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules.toml")

SEVERITIES = ("info", "warning", "critical")
WINDOWS = ("always", "school_hours", "office_hours")

_TOP_KEYS = {"version", "rule"}
_RULE_KEYS = {"id", "condition", "severity", "for", "clear_for", "grace", "window", "scope",
              "roles",
              "params", "suppresses", "enabled", "title", "text"}
_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class RulesError(ConfigError):
    """A rules file that cannot be used: ``str()`` is "FILE:LINE: reason"."""

    def __init__(self, path: str, line: Optional[int], reason: str) -> None:
        super().__init__("%s:%s: %s" % (path, line if line else "?", reason))
        self.path, self.line, self.reason = path, line, reason


@dataclass(frozen=True)
class Rule:
    id: str
    condition: str
    severity: str
    for_s: float
    clear_for_s: float
    window: str
    title: Mapping[str, str]
    text: Mapping[str, str]
    scope: Tuple[str, ...] = ()
    roles: Tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    suppresses: bool = False
    enabled: bool = True
    #: no new alert opens until the window has been open this long (seconds): a school's
    #: PCs are switched on as lessons begin, not at 07:00 sharp
    grace_s: float = 0.0

    @property
    def subject_kind(self) -> str:
        return CONDITIONS[self.condition].subject


@dataclass(frozen=True)
class Rules:
    rules: Tuple[Rule, ...]
    #: "shipped" or the file's path
    source: str
    #: SHA-256 of the file's bytes
    hash: str

    def by_id(self, rule_id: str) -> Optional[Rule]:
        for r in self.rules:
            if r.id == rule_id:
                return r
        return None


def parse_duration(value: Any) -> float:
    """Seconds of ``"30s"``, ``"15m"``, ``"2h"``, ``"7d"`` or a number of seconds;
    ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(value)
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    raise ValueError(value)


def _texts(value: Any) -> Optional[Dict[str, str]]:
    if isinstance(value, dict) and set(value) <= {"vi", "en"} and value.get("vi") \
            and all(isinstance(v, str) for v in value.values()):
        return {"vi": value["vi"], "en": value.get("en") or value["vi"]}
    return None


def placeholders(template: str) -> List[str]:
    """The ``{names}`` in ``template``; ValueError for a malformed one, a format spec or a
    conversion (the evidence is rendered by :func:`render`, units included)."""
    names = []
    for _lit, name, spec, conv in string.Formatter().parse(template):
        if name is None:
            continue
        if not re.match(r"^[a-z_][a-z0-9_]*$", name) or spec or conv:
            raise ValueError("{%s%s%s}" % (name, "!" + conv if conv else "",
                                           ":" + spec if spec else ""))
        names.append(name)
    return names


def parse_rules(text: str, source: str, path: Optional[str] = None) -> Rules:
    """The rules in ``text``; RulesError with the line when they cannot be used."""
    where = path or source
    lines = TomlLines(text, "rule")
    data = load_versioned(text, lines, _TOP_KEYS,
                          lambda line, reason: RulesError(where, line, reason))
    raw = data.get("rule")
    if not isinstance(raw, list) or not raw:
        raise RulesError(where, lines.key("rule"), "cần ít nhất một [[rule]] / needs at "
                         "least one [[rule]]")
    seen: Dict[str, int] = {}
    rules = [_rule(r, i, where, lines, seen) for i, r in enumerate(raw)]
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Rules(tuple(rules), source, digest)


def _rule(r: Any, i: int, where: str, lines: TomlLines, seen: Dict[str, int]) -> Rule:
    rid = r.get("id") if isinstance(r, dict) else None

    def fail(key: Optional[str], reason: str) -> RulesError:
        return RulesError(where, lines.item(i, key), "rule %s: %s"
                          % (rid if isinstance(rid, str) else "#%d" % (i + 1), reason))

    if not isinstance(r, dict):
        raise fail(None, "phải là bảng / must be a table")
    for k in r:
        if k not in _RULE_KEYS:
            raise fail(k, "khóa không biết / unknown key %r (biết / known: %s)"
                       % (k, ", ".join(sorted(_RULE_KEYS))))
    for k in ("id", "condition", "severity", "title", "text"):
        if k not in r:
            raise fail(None, "thiếu / missing %r" % k)
    if not isinstance(rid, str) or not _ID.match(rid):
        raise fail("id", "id phải là chữ thường, số, gạch dưới / id must be lower-case "
                   "letters, digits and underscores")
    if rid in seen:
        raise fail("id", "id trùng với quy tắc thứ %d / duplicate id (rule %d)"
                   % (seen[rid] + 1, seen[rid] + 1))
    seen[rid] = i
    cond_name = r["condition"]
    cond = CONDITIONS.get(cond_name) if isinstance(cond_name, str) else None
    if cond is None:
        raise fail("condition", "điều kiện không biết / unknown condition %r (biết / known: "
                   "%s)" % (cond_name, ", ".join(sorted(CONDITIONS))))
    if r["severity"] not in SEVERITIES:
        raise fail("severity", "mức độ không biết / unknown severity %r (one of %s)"
                   % (r["severity"], ", ".join(SEVERITIES)))
    durations = {}
    for k, default in (("for", 0.0), ("clear_for", 0.0), ("grace", 0.0)):
        try:
            durations[k] = parse_duration(r.get(k, default))
        except ValueError:
            raise fail(k, "thời lượng sai / bad duration %r (e.g. \"30s\", \"15m\", \"2h\", "
                       "\"7d\")" % (r.get(k),)) from None
    window = r.get("window", "always")
    if window not in WINDOWS:
        raise fail("window", "khung giờ không biết / unknown window %r (one of %s)"
                   % (window, ", ".join(WINDOWS)))
    if durations["grace"] and window == "always":
        raise fail("grace", "grace chỉ dùng với một khung giờ / grace needs a window "
                   "(school_hours or office_hours)")
    scope = r.get("scope", [])
    if not isinstance(scope, list) or not all(isinstance(s, str) and s for s in scope):
        raise fail("scope", "scope phải là danh sách mã đơn vị / must be a list of org unit "
                   "codes (area or school)")
    roles = r.get("roles", [])
    if not isinstance(roles, list) or any(x not in ROLES for x in roles):
        raise fail("roles", "vai trò không biết / unknown role in %r (of %s)"
                   % (roles, ", ".join(ROLES)))
    if roles and cond.subject != DEVICE:
        raise fail("roles", "roles chỉ dùng cho điều kiện của thiết bị / roles only apply "
                   "to a device condition")
    params = r.get("params", {})
    if not isinstance(params, dict):
        raise fail("params", "params phải là bảng / must be a table")
    for k, v in params.items():
        if k not in cond.params:
            raise fail("params", "tham số không biết / unknown parameter %r of %s (known: %s)"
                       % (k, cond_name, ", ".join(sorted(cond.params)) or "none"))
        expected = cond.params[k]
        if isinstance(expected, (int, float)) and not isinstance(expected, bool):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        else:
            ok = isinstance(v, type(expected))
        if not ok:
            raise fail("params", "tham số %r phải là %s / parameter %r must be a %s"
                       % (k, type(expected).__name__, k, type(expected).__name__))
    merged = dict(cond.params)
    merged.update(params)
    allowed = set(COMMON_PLACEHOLDERS) | set(cond.placeholders)
    texts = {}
    for k in ("title", "text"):
        t = _texts(r[k])
        if t is None:
            raise fail(k, "%s phải là { vi = \"...\", en = \"...\" } / must be "
                       "{ vi = \"...\", en = \"...\" }" % k)
        for lang, template in t.items():
            try:
                names = placeholders(template)
            except ValueError as exc:
                raise fail(k, "chỗ điền sai / bad placeholder %s in %s.%s" % (exc, k, lang)) \
                    from None
            for n in names:
                if n not in allowed:
                    raise fail(k, "chỗ điền không biết / unknown placeholder {%s} in %s.%s "
                               "(known for %s: %s)" % (n, k, lang, cond_name,
                                                       ", ".join(sorted(allowed))))
        texts[k] = t
    for k in ("suppresses", "enabled"):
        if k in r and not isinstance(r[k], bool):
            raise fail(k, "%s phải là true hoặc false / must be true or false" % k)
    return Rule(rid, cond_name, r["severity"], durations["for"], durations["clear_for"],
                window, texts["title"], texts["text"], tuple(scope), tuple(roles), merged,
                bool(r.get("suppresses", False)), bool(r.get("enabled", True)),
                durations["grace"])


def load_rules(path: Optional[str] = None) -> Rules:
    """The rules of ``path`` (absent or empty: the shipped file); RulesError naming the file
    and line when they cannot be used."""
    source = path or "shipped"
    target = path or SHIPPED_RULES_FILE
    try:
        with open(target, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise RulesError(target, None, "không đọc được tệp / cannot read the file: %s"
                         % exc.strerror) from None
    except UnicodeDecodeError:
        raise RulesError(target, None, "tệp không phải UTF-8 / the file is not UTF-8") \
            from None
    return parse_rules(text, source, target)


# --- rendering the templates -------------------------------------------------------------

def _label(table: Mapping[str, Mapping[str, str]], value: Any, lang: str) -> str:
    entry = table.get(str(value))
    if entry is None:
        return str(value)
    return entry.get(lang) or entry["vi"]


def _days(value: Any, lang: str) -> str:
    n = float(value)
    shown = ("%.0f" % n) if n >= 10 else ("%.1f" % n).rstrip("0").rstrip(".")
    return "%s ngày" % shown if lang == "vi" else "%s days" % shown


def local_time(ts: Optional[float], tz: str) -> str:
    """``10:05 02/12/2026`` in the province's zone (how people here write a time)."""
    if ts is None:
        return "?"
    d = _dt.datetime.fromtimestamp(float(ts), ZoneInfo(tz))
    return d.strftime("%H:%M %d/%m/%Y")


#: How each evidence value reads, per language (units included): the one definition.
_FORMATS: Dict[str, Any] = {
    "disk_pct": lambda v, lang: "%.0f %%" % float(v),
    "temp": lambda v, lang: "%.0f °C" % float(v),
    "threshold_pct": lambda v, lang: "%.0f %%" % float(v),
    "threshold_c": lambda v, lang: "%.0f °C" % float(v),
    "silent_days": _days,
    "pending_days": _days,
    "role": lambda v, lang: _label(ROLE_LABELS, v, lang),
    "reason": lambda v, lang: _label(OFFLINE_REASON_LABELS, v, lang),
    "status": lambda v, lang: _label(ATTT_STATUS_LABELS, v, lang),
    "stalled_s": lambda v, lang: duration_words(float(v), lang),
    "probes_ok_pct": lambda v, lang: "%.0f %%" % float(v),
    "cause": lambda v, lang: {
        "wan_down": {"vi": "router báo mất kết nối WAN", "en": "the router reports its WAN "
                     "link down"},
        "probes_failed": {"vi": "các máy không truy cập được Internet", "en": "the PCs "
                          "cannot reach the Internet"},
    }.get(str(v), {}).get(lang, str(v)),
}


def render(template: str, values: Mapping[str, Any], lang: str, now: float,
           tz: str = "Asia/Ho_Chi_Minh") -> str:
    """``template`` with its placeholders filled from ``values`` (the evidence, the school
    and device names); ``since`` reads as a local time, ``duration`` as how long since then,
    an absent value as ``?``."""
    out = []
    for lit, name, _spec, _conv in string.Formatter().parse(template):
        out.append(lit)
        if name is None:
            continue
        if name == "since":
            out.append(local_time(values.get("since"), tz))
        elif name == "duration":
            since = values.get("since")
            out.append(duration_words(now - float(since), lang) if since is not None else "?")
        else:
            v = values.get(name)
            if v is None or v == "":
                out.append("?")
            else:
                fmt = _FORMATS.get(name)
                out.append(fmt(v, lang) if fmt is not None else str(v))
    return "".join(out)


__all__ = ["Rule", "Rules", "RulesError", "SEVERITIES", "WINDOWS", "SHIPPED_RULES_FILE",
           "load_rules", "parse_rules", "parse_duration", "placeholders", "render",
           "local_time"]
