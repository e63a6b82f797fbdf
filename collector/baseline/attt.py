"""The ATTT baseline file (``attt.toml``): its checks and the school rule, validated and
compiled once.

An invalid file raises :class:`BaselineError` with the file, the LINE and the reason.
``tomllib`` gives line numbers only for syntax errors; for a problem in a value the line
is found in the text: the n-th ``[[check]]`` header is the n-th check (tables parse in
file order), and inside it the line of ``key =``; a check's own problems point at its
``id = "..."`` line; top-level and ``[school_rule]`` keys at their ``key =`` line.
"""
import hashlib
import os
import re
from typing import Any, Dict, FrozenSet, List, Mapping, NamedTuple, Optional, Tuple

from schoolmon.protocol.catalogue import INVENTORY, SECURITY
from schoolmon.protocol.settings import ConfigError

from ..tomllines import TomlLines, load_versioned
from .conditions import Condition, ConditionError, compile_condition

SHIPPED_ATTT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "attt.toml")

SEVERITIES = ("critical", "high", "medium", "low")
#: Roles a check can cover (routers are not PCs: never judged).
PC_ROLES = ("lab", "office", "server")
OS_FAMILIES = ("windows", "linux")
#: What a placeholder may do to its value: ``{field|age_days}``, ``{field|date}``.
PLACEHOLDER_FUNCTIONS = ("age_days", "date")
#: Fields the collector derives for conditions (besides the reported ones).
DERIVED_FIELDS = ("os_supported", "os_support_status", "os_end")
#: Every name a condition may read: the security and inventory catalogue, and the derived.
FIELD_NAMES: FrozenSet[str] = frozenset(
    [f.name for f in SECURITY.fields] + [f.name for f in INVENTORY.fields]
    + list(DERIVED_FIELDS))

#: Fields counted in days (the catalogue's unit): their evidence shows whole days.
DAY_FIELDS: FrozenSet[str] = frozenset(
    f.name for f in SECURITY.fields + INVENTORY.fields if f.unit in ("days", "d"))

_TOP_KEYS = {"version", "school_rule", "check"}
_CHECK_KEYS = {"id", "title", "severity", "severity_by_role", "roles", "os", "pass", "warn",
               "when_frozen", "applies_if", "na_evidence", "evidence", "evidence_cases", "hint",
               "citation", "by_os"}
#: What a check may say differently for one OS family (``[check.by_os.linux]``).
_BY_OS_KEYS = {"hint", "citation", "evidence"}
#: An evidence case: the first whose condition holds gives the sentence.
_CASE_KEYS = {"when", "vi", "en"}
_RULE_KEYS = {"coverage_pct": 90.0, "coverage_days": 7.0, "office_critical_pct": 100.0,
              "all_critical_pct": 95.0, "critical_high_pct": 80.0}
_ID = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class BaselineError(ConfigError):
    """A baseline file that cannot be used: ``str()`` is "FILE:LINE: reason"."""

    def __init__(self, path: str, line: Optional[int], reason: str) -> None:
        super().__init__("%s:%s: %s" % (path, line if line else "?", reason))
        self.path, self.line, self.reason = path, line, reason


class Check(NamedTuple):
    id: str
    title: Dict[str, str]
    severity: str
    severity_by_role: Dict[str, str]
    roles: Tuple[str, ...]
    os: Tuple[str, ...]
    passes: Condition
    warn: Optional[Condition]
    when_frozen: Optional[str]
    evidence: Optional[Dict[str, str]]
    hint: Dict[str, str]
    citation: str
    #: not applicable on a PC where this condition is false (an unknown does not make it
    #: na: the check is judged, and is unknown there)
    applies_if: Optional[Condition] = None
    #: the evidence of that "na" ({vi, en}; placeholders as in ``evidence``)
    na_evidence: Optional[Dict[str, str]] = None
    #: (condition, {vi, en}): the first case whose condition holds gives the sentence
    evidence_cases: Tuple[Tuple[Condition, Dict[str, str]], ...] = ()
    #: per OS family: {"hint": {vi, en}, "citation": str, "evidence": {vi, en}}
    by_os: Dict[str, Dict[str, Any]] = {}

    def severity_for(self, role: Optional[str]) -> str:
        return self.severity_by_role.get(role or "", self.severity)

    def hint_for(self, os_family: Optional[str]) -> Dict[str, str]:
        return (self.by_os.get(os_family or "") or {}).get("hint") or self.hint

    def citation_for(self, os_family: Optional[str]) -> str:
        return (self.by_os.get(os_family or "") or {}).get("citation") or self.citation

    def evidence_for(self, os_family: Optional[str]) -> Optional[Dict[str, str]]:
        return (self.by_os.get(os_family or "") or {}).get("evidence") or self.evidence

    @property
    def fields(self) -> Tuple[str, ...]:
        """The fields its conditions read (pass, warn, applies_if, the evidence cases), in
        order, once each."""
        out = list(self.passes.fields)
        more = [self.warn, self.applies_if] + [cond for cond, _ in self.evidence_cases]
        for cond in more:
            for f in cond.fields if cond is not None else ():
                if f not in out:
                    out.append(f)
        return tuple(out)

    @property
    def templates(self) -> Tuple[str, ...]:
        """Every evidence sentence it may show (their placeholders are kept as values)."""
        out: List[str] = []
        texts = [self.evidence, self.na_evidence] + [t for _, t in self.evidence_cases] + [
            o.get("evidence") for o in self.by_os.values()]
        for t in texts:
            out.extend(sorted((t or {}).values()))
        return tuple(out)


class SchoolRule(NamedTuple):
    coverage_pct: float = 90.0
    coverage_days: float = 7.0
    office_critical_pct: float = 100.0
    all_critical_pct: float = 95.0
    critical_high_pct: float = 80.0


class Baseline(NamedTuple):
    checks: Tuple[Check, ...]
    rule: SchoolRule
    #: "shipped" or the file's path
    source: str
    #: SHA-256 of the file's bytes
    hash: str


def _texts(value: Any) -> Optional[Dict[str, str]]:
    if isinstance(value, str):
        return {"vi": value, "en": value}
    if isinstance(value, dict) and set(value) <= {"vi", "en"} and value.get("vi") \
            and all(isinstance(v, str) for v in value.values()):
        return {"vi": value["vi"], "en": value.get("en") or value["vi"]}
    return None


def parse_baseline(text: str, source: str, path: Optional[str] = None) -> Baseline:
    """The baseline in ``text``; BaselineError with the line when it cannot be used."""
    where = path or source
    lines = TomlLines(text, "check")
    data = load_versioned(text, lines, _TOP_KEYS,
                          lambda line, reason: BaselineError(where, line, reason))
    rule_raw = data.get("school_rule") or {}
    if not isinstance(rule_raw, dict):
        raise BaselineError(where, lines.key("school_rule"), "school_rule phải là bảng / "
                            "must be a table")
    rule_values = dict(_RULE_KEYS)
    for k, v in rule_raw.items():
        if k not in _RULE_KEYS:
            raise BaselineError(where, lines.key(k, "school_rule"),
                                "school_rule: khóa không biết / unknown key %r (allowed: %s)"
                                % (k, ", ".join(_RULE_KEYS)))
        limit = 3650 if k == "coverage_days" else 100
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= limit:
            raise BaselineError(where, lines.key(k, "school_rule"),
                                "school_rule.%s: cần số trong (0, %d] / needs a number in "
                                "(0, %d], got %r" % (k, limit, limit, v))
        rule_values[k] = float(v)
    raw_checks = data.get("check") or []
    if not isinstance(raw_checks, list) or not raw_checks:
        raise BaselineError(where, lines.key("check"), "cần ít nhất một [[check]] / needs "
                            "at least one [[check]]")
    checks: List[Check] = []
    seen: Dict[str, int] = {}
    for i, c in enumerate(raw_checks):
        checks.append(_check(c, i, where, lines, seen))
    return Baseline(tuple(checks), SchoolRule(**rule_values), source,
                    hashlib.sha256(text.encode("utf-8")).hexdigest())


def _check(c: Any, i: int, where: str, lines: TomlLines, seen: Dict[str, int]) -> Check:
    def fail(key: Optional[str], reason: str) -> BaselineError:
        cid = c.get("id") if isinstance(c, dict) else None
        return BaselineError(where, lines.item(i, key), "check %s: %s"
                             % (repr(cid) if cid else "#%d" % (i + 1), reason))

    if not isinstance(c, dict):
        raise fail(None, "phải là bảng / must be a table")
    for k in c:
        if k not in _CHECK_KEYS:
            raise fail(k, "khóa không biết / unknown key %r" % k)
    cid = c.get("id")
    if not isinstance(cid, str) or not _ID.match(cid):
        raise fail("id", "id: a-z, 0-9, _ (bắt đầu bằng chữ / starting with a letter)")
    if cid in seen:
        raise fail("id", "id trùng với check thứ %d / duplicate id (also check #%d)"
                   % (seen[cid], seen[cid]))
    seen[cid] = i + 1
    title = _texts(c.get("title"))
    if title is None:
        raise fail("title", "title: cần {vi, en} / needs {vi, en}")
    hint = _texts(c.get("hint"))
    if hint is None:
        raise fail("hint", "hint: cần {vi, en} / needs {vi, en}")
    sev = c.get("severity")
    if sev not in SEVERITIES:
        raise fail("severity", "severity phải là một trong / must be one of %s, got %r"
                   % (", ".join(SEVERITIES), sev))
    by_role = c.get("severity_by_role") or {}
    if not isinstance(by_role, dict) or any(
            r not in PC_ROLES or s not in SEVERITIES for r, s in by_role.items()):
        raise fail("severity_by_role", "severity_by_role: {vai trò / role = severity}, "
                   "roles %s" % ", ".join(PC_ROLES))
    roles = c.get("roles", list(PC_ROLES))
    if not isinstance(roles, list) or not roles or any(r not in PC_ROLES for r in roles):
        raise fail("roles", "roles: danh sách trong / a list of %s, got %r"
                   % (", ".join(PC_ROLES), roles))
    oses = c.get("os", list(OS_FAMILIES))
    if not isinstance(oses, list) or not oses or any(o not in OS_FAMILIES for o in oses):
        raise fail("os", "os: danh sách trong / a list of %s, got %r"
                   % (", ".join(OS_FAMILIES), oses))
    conds: Dict[str, Optional[Condition]] = {}
    for key in ("pass", "warn"):
        text = c.get(key)
        if text is None and key == "warn":
            conds[key] = None
            continue
        if not isinstance(text, str):
            raise fail(key, "%s: cần một điều kiện (chuỗi) / needs a condition (a string)" % key)
        try:
            conds[key] = compile_condition(text, FIELD_NAMES)
        except ConditionError as exc:
            raise fail(key, "%s: %s" % (key, exc)) from None
    frozen = c.get("when_frozen")
    if frozen not in (None, "na"):
        raise fail("when_frozen", "when_frozen chỉ nhận \"na\" / only \"na\", got %r" % frozen)
    def sentence(key: str, value: Any, label: str) -> Optional[Dict[str, str]]:
        """An evidence sentence {vi, en} whose placeholders name known fields."""
        if value is None:
            return None
        texts = _texts(value)
        if texts is None:
            raise fail(key, "%s: cần {vi, en} / needs {vi, en}" % label)
        for t in texts.values():
            for name, fn in re.findall(r"\{([a-z_0-9]+)(?:\|([a-z_]+))?\}", t):
                if name not in FIELD_NAMES:
                    raise fail(key, "%s: trường không có / unknown field %r" % (label, name))
                if fn and fn not in PLACEHOLDER_FUNCTIONS:
                    raise fail(key, "%s: {%s|%s}: chỉ / only %s" % (
                        label, name, fn, ", ".join(PLACEHOLDER_FUNCTIONS)))
        return texts

    def condition(key: str, text: Any, label: str) -> Condition:
        if not isinstance(text, str):
            raise fail(key, "%s: cần một điều kiện (chuỗi) / needs a condition (a string)"
                       % label)
        try:
            return compile_condition(text, FIELD_NAMES)
        except ConditionError as exc:
            raise fail(key, "%s: %s" % (label, exc)) from None

    ev = sentence("evidence", c.get("evidence"), "evidence")
    citation = c.get("citation")
    if not isinstance(citation, str) or not citation.strip():
        raise fail("citation", "citation: cần căn cứ (văn bản, tiêu chuẩn) / needs the rule "
                   "behind the check")
    applies = None
    if c.get("applies_if") is not None:
        applies = condition("applies_if", c["applies_if"], "applies_if")
    na_ev = sentence("na_evidence", c.get("na_evidence"), "na_evidence")
    if (applies is None) != (na_ev is None):
        raise fail("applies_if" if applies is not None else "na_evidence",  # the one given
                   "applies_if và na_evidence đi cùng nhau / applies_if needs na_evidence "
                   "(the sentence shown when it does not apply), and the other way round")
    raw_cases = c.get("evidence_cases") or []
    if not isinstance(raw_cases, list):
        raise fail("evidence_cases", "evidence_cases: danh sách / a list of "
                   "{ when = \"...\", vi = \"...\", en = \"...\" }")
    cases: List[Tuple[Condition, Dict[str, str]]] = []
    for n, case in enumerate(raw_cases, 1):
        label = "evidence_cases[%d]" % n
        if not isinstance(case, dict) or not set(case) <= _CASE_KEYS or "when" not in case:
            raise fail("evidence_cases", "%s: cần / needs { when, vi, en }" % label)
        texts = sentence("evidence_cases", {k: v for k, v in case.items() if k != "when"},
                         label)
        assert texts is not None
        cases.append((condition("evidence_cases", case["when"], label + ".when"), texts))
    by_os_raw = c.get("by_os") or {}
    if not isinstance(by_os_raw, dict):
        raise fail("by_os", "by_os: bảng theo hệ điều hành / a table per OS family")
    by_os: Dict[str, Dict[str, Any]] = {}
    for fam, over in by_os_raw.items():
        label = "by_os.%s" % fam
        if fam not in OS_FAMILIES:
            raise fail("by_os", "%s: hệ điều hành trong / an OS family of %s" % (
                label, ", ".join(OS_FAMILIES)))
        if not isinstance(over, dict) or not over or not set(over) <= _BY_OS_KEYS:
            raise fail("by_os", "%s: chỉ nhận / only %s" % (label, ", ".join(
                sorted(_BY_OS_KEYS))))
        one: Dict[str, Any] = {}
        if "hint" in over:
            hint_os = _texts(over["hint"])
            if hint_os is None:
                raise fail("by_os", "%s.hint: cần {vi, en} / needs {vi, en}" % label)
            one["hint"] = hint_os
        if "citation" in over:
            if not isinstance(over["citation"], str) or not over["citation"].strip():
                raise fail("by_os", "%s.citation: cần căn cứ / needs the rule" % label)
            one["citation"] = over["citation"].strip()
        if "evidence" in over:
            one["evidence"] = sentence("by_os", over["evidence"], label + ".evidence")
        by_os[fam] = one
    passes = conds["pass"]
    assert passes is not None
    return Check(cid, title, sev, dict(by_role), tuple(roles), tuple(oses), passes,
                 conds["warn"], frozen, ev, hint, citation.strip(), applies, na_ev,
                 tuple(cases), by_os)


def load_baseline(path: Optional[str] = None) -> Baseline:
    """The baseline of ``path`` (None or empty: the shipped file)."""
    src = path or SHIPPED_ATTT_FILE
    try:
        with open(src, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise BaselineError(src, None, "không đọc được / cannot be read: %s"
                            % (exc.strerror or exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BaselineError(src, None, "không phải UTF-8 / not UTF-8") from None
    return parse_baseline(text, "shipped" if not path else src, src)


def rule_dict(rule: SchoolRule) -> Dict[str, float]:
    return dict(rule._asdict())


def describe(b: Baseline) -> List[Mapping[str, Any]]:
    """The checks as plain data (both languages), for the API and ``baseline check``."""
    return [{"id": c.id, "title": c.title, "severity": c.severity,
             "severity_by_role": c.severity_by_role, "roles": list(c.roles),
             "os": list(c.os), "pass": c.passes.text, "warn": c.warn.text if c.warn else None,
             "when_frozen": c.when_frozen,
             "applies_if": c.applies_if.text if c.applies_if else None,
             "hint": c.hint, "citation": c.citation,
             "by_os": {fam: {k: v for k, v in o.items() if k != "evidence"}
                       for fam, o in c.by_os.items() if "hint" in o or "citation" in o}}
            for c in b.checks]
