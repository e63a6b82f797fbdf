"""A check's evidence in words: the stored evidence is data (a code, the values used); the
sentence is made when shown, in the reader's language, from the check's ``evidence``
template in the baseline file (its ``evidence_cases``, its ``by_os`` sentence) or the
generic sentences of ``collector/text.py``.

How values read: true/false as có/không (yes/no); a field counted in days (the catalogue's
unit) in whole days, rounded up so the number agrees with the thresholds (3.2 days is 4:
over 3); other decimals with the reader's decimal mark (4,5 in Vietnamese); dates as
dd/mm/yyyy in both languages, like every other date of the pages. A fact the agent could
not determine is named in words (``FACT_LABELS``), with the agent's reason translated when
it is a well-known one, and the agent's own words marked as the PC's technical detail.
"""
import datetime as _dt
import math
import re
from typing import Any, Dict, Mapping, Optional, Tuple

from ..baseline import Check, Unknown
from ..baseline.attt import DAY_FIELDS
from ..baseline.conditions import NOW
from ..text import (
    AGENT_DETAIL_WORDS,
    AGENT_REASONS,
    EVIDENCE_TEXTS,
    FACT_LABELS,
    OS_FAMILY_LABELS,
    OS_SUPPORT_LABELS,
    OS_SUPPORT_SENTENCES,
    ROLE_LABELS,
    label,
)

_PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)(?:\|([a-z_]+))?\}")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def _date(iso: str) -> str:
    """A date as the pages write it: 14/01/2020 (in both languages)."""
    m = _ISO_DATE.match(iso)
    return "%s/%s/%s" % (m.group(3), m.group(2), m.group(1)) if m else iso


def number(value: float, lang: str) -> str:
    """A decimal as its reader writes it: 4,5 in Vietnamese, 4.5 in English."""
    text = ("%.1f" % value).rstrip("0").rstrip(".")
    return text.replace(".", ",") if lang == "vi" else text


def whole_days(value: float) -> int:
    """Days rounded up: the shown number is over a whole-day threshold exactly when the
    value is (3.2 days: 4, over 3)."""
    return max(0, int(math.ceil(round(float(value), 6))))


def _word(value: Any, lang: str, name: Optional[str] = None) -> str:
    if isinstance(value, bool):
        return label(EVIDENCE_TEXTS, "true" if value else "false", lang) or str(value)
    if isinstance(value, (int, float)) and name in DAY_FIELDS:
        return "%d" % whole_days(value)
    if isinstance(value, float):
        return number(value, lang)
    return str(value)


def agent_detail(text: str, lang: str) -> str:
    """A setting the agent reports as text, with its usual words in the reader's language."""
    for english, words in AGENT_DETAIL_WORDS:
        if english in text:
            text = text.replace(english, words.get(lang) or english)
    return text


def os_support_sentence(status: Optional[str], end: Optional[str], lang: str) -> str:
    """"hết hỗ trợ từ 14/01/2020", "được hỗ trợ đến 30/06/2028" ..."""
    key = status or "unknown"
    if key == "unknown" and end:
        key = "unknown_end"
    elif key not in OS_SUPPORT_SENTENCES or not end:
        key = "unknown"
    return (label(OS_SUPPORT_SENTENCES, key, lang) or key).replace(
        "{end}", _date(end or ""))


def _fill(template: str, values: Mapping[str, Any], at: float, lang: str) -> str:
    def one(m: "re.Match[str]") -> str:
        name, fn = m.group(1), m.group(2)
        value = values.get(name)
        if value is None or value == "":
            return label(EVIDENCE_TEXTS, "missing", lang) or "-"
        try:
            if fn == "age_days":
                return "%d" % whole_days((at - float(value)) / 86400.0)
            if fn == "date":
                return _date(_dt.datetime.fromtimestamp(float(value), _dt.timezone.utc).date()
                             .isoformat())
        except (TypeError, ValueError, OverflowError, OSError):
            return "?"
        if name == "os_support_status":
            return label(OS_SUPPORT_LABELS, str(value), lang) or str(value)
        if isinstance(value, str) and _ISO_DATE.match(value):
            return _date(value)
        if isinstance(value, str) and name.endswith("_detail"):
            return agent_detail(value, lang)
        return _word(value, lang, name)
    return _PLACEHOLDER.sub(one, template)


def fact(field: Optional[str], lang: str) -> str:
    """A field in the reader's words ("trạng thái phần mềm diệt virus"), else its id."""
    return label(FACT_LABELS, field, lang) or str(field or "?")


def reason_of(reason: Optional[str]) -> Tuple[Optional[Dict[str, str]], Optional[str], bool]:
    """(the words of a well-known reason, the hint code of ``UNKNOWN_HINTS``, whether those
    words say all the agent said) of an agent's reason; (None, None, False) when it is not
    one of them."""
    low = (reason or "").strip().lower()
    if not low:
        return None, None, False
    if low == "os_unknown":
        return EVIDENCE_TEXTS["os_unknown"], "os_table", True
    if low == "esu_unknown":
        return EVIDENCE_TEXTS["esu_unknown"], "agent", True
    for needles, words, hint in AGENT_REASONS:
        if any(n in low for n in needles):
            return words, hint, low in needles
    return None, None, False


def unknown_hint(entry: Mapping[str, Any]) -> Optional[str]:
    """The code of ``UNKNOWN_HINTS`` for an unknown check: how to make the fact known (not
    the check's remedy for a failure); None when the check is not unknown."""
    if entry.get("state") != "unknown":
        return None
    ev = entry.get("ev") or {}
    code = ev.get("code")
    if code in ("no_report", "stale"):
        return str(code)
    _, hint, _ = reason_of(ev.get("reason"))
    return hint or "agent"


def _unknown(ev: Mapping[str, Any], lang: str) -> str:
    what = fact(ev.get("field"), lang)
    reason = str(ev.get("reason") or "").strip()
    words, _, whole = reason_of(reason)
    if words is not None:
        # the agent's own words beside, as the PC's technical detail, when they say more
        key = "unknown_reason" if whole else "unknown_reason_detail"
    else:
        key = "unknown_detail" if reason else "unknown"
    text = EVIDENCE_TEXTS[key][lang].format(
        field=what, reason=(words or {}).get(lang) or "", detail=reason)
    return text[:1].upper() + text[1:]


def _case_template(check: Check, values: Mapping[str, Any], at: float, lang: str,
                   os_family: Optional[str]) -> Optional[str]:
    env: Dict[str, Any] = dict(values)
    env[NOW] = at
    for cond, texts in check.evidence_cases:
        try:
            if cond.run(env):
                return texts.get(lang) or texts["vi"]
        except Unknown:
            continue
    ev = check.evidence_for(os_family)
    return (ev.get(lang) or ev["vi"]) if ev else None


def render(check: Optional[Check], entry: Mapping[str, Any], at: float, lang: str,
           os_family: Optional[str] = None) -> str:
    """The sentence for one check's stored ``entry`` ({state, ev, values}) judged at ``at``
    on a PC of ``os_family`` (its ``by_os`` sentence, if the check has one)."""
    ev = entry.get("ev") or {}
    code = ev.get("code") or "values"
    values = entry.get("values") or {}
    if code == "values":
        template = _case_template(check, values, at, lang, os_family) if check else None
        if template is not None:
            return _fill(template, values, at, lang)
        shown = ", ".join("%s = %s" % (fact(k, lang), _word(v, lang, k))
                          for k, v in values.items())
        return (EVIDENCE_TEXTS["values"].get(lang) or "").format(values=shown or "-")
    if code == "unknown":
        return _unknown(ev, lang)
    if code == "na_if":
        texts = (check.na_evidence if check is not None else None) or EVIDENCE_TEXTS["na_if"]
        return _fill(texts.get(lang) or texts["vi"], values, at, lang)
    params = {k: v for k, v in ev.items() if k != "code"}
    if code == "na_role":
        params["role"] = label(ROLE_LABELS, params.get("role"), lang)
    if code == "na_os":
        params["os"] = label(OS_FAMILY_LABELS, params.get("os"), lang)
    if code == "frozen" and not params.get("product"):
        params["product"] = label(EVIDENCE_TEXTS, "unnamed", lang)
    if code == "stale":
        params["days"] = number(float(params.get("days") or 7), lang)
    entry_text = EVIDENCE_TEXTS.get(code)
    if entry_text is None:
        return code
    try:
        return (entry_text.get(lang) or entry_text["vi"]).format(**params)
    except (KeyError, IndexError):
        return entry_text.get(lang) or entry_text["vi"]


__all__ = ["render", "unknown_hint", "os_support_sentence", "agent_detail", "fact",
           "number", "whole_days"]
