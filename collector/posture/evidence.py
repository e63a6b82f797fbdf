"""A check's evidence in words: the stored evidence is data (a code, the values used); the
sentence is made when shown, in the reader's language, from the check's ``evidence``
template in the baseline file or the generic sentences of ``collector/text.py``."""
import datetime as _dt
import re
from typing import Any, Mapping, Optional

from ..baseline import Check
from ..text import EVIDENCE_TEXTS, OS_SUPPORT_LABELS, ROLE_LABELS, label

_PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)(?:\|([a-z_]+))?\}")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def _date(iso: str, lang: str) -> str:
    """A date as its reader writes it: 14/01/2020 in Vietnamese, 2020-01-14 in English."""
    m = _ISO_DATE.match(iso)
    return "%s/%s/%s" % (m.group(3), m.group(2), m.group(1)) if m and lang == "vi" else iso


def _word(value: Any, lang: str) -> str:
    if isinstance(value, bool):
        return label(EVIDENCE_TEXTS, "true" if value else "false", lang) or str(value)
    if isinstance(value, float):
        return ("%.1f" % value).rstrip("0").rstrip(".")
    return str(value)


def _fill(template: str, values: Mapping[str, Any], at: float, lang: str) -> str:
    def one(m: "re.Match[str]") -> str:
        name, fn = m.group(1), m.group(2)
        value = values.get(name)
        if value is None or value == "":
            return label(EVIDENCE_TEXTS, "missing", lang) or "-"
        try:
            if fn == "age_days":
                return "%d" % int((at - float(value)) // 86400)
            if fn == "date":
                return _date(_dt.datetime.fromtimestamp(float(value), _dt.timezone.utc).date()
                             .isoformat(), lang)
        except (TypeError, ValueError, OverflowError, OSError):
            return "?"
        if name == "os_support_status":
            return label(OS_SUPPORT_LABELS, str(value), lang) or str(value)
        if isinstance(value, str) and _ISO_DATE.match(value):
            return _date(value, lang)
        return _word(value, lang)
    return _PLACEHOLDER.sub(one, template)


def render(check: Optional[Check], entry: Mapping[str, Any], at: float, lang: str) -> str:
    """The sentence for one check's stored ``entry`` ({state, ev, values}) judged at ``at``."""
    ev = entry.get("ev") or {}
    code = ev.get("code") or "values"
    values = entry.get("values") or {}
    if code == "values":
        if check is not None and check.evidence:
            return _fill(check.evidence.get(lang) or check.evidence["vi"], values, at, lang)
        shown = ", ".join("%s = %s" % (k, _word(v, lang)) for k, v in values.items())
        return (EVIDENCE_TEXTS["values"].get(lang) or "").format(values=shown or "-")
    if code == "unknown":
        reason = ev.get("reason")
        if reason:
            reason = label(EVIDENCE_TEXTS, reason, lang) if reason in EVIDENCE_TEXTS else reason
            return EVIDENCE_TEXTS["unknown_reason"][lang].format(field=ev.get("field"),
                                                                 reason=reason)
        return EVIDENCE_TEXTS["unknown"][lang].format(field=ev.get("field"))
    params = {k: v for k, v in ev.items() if k != "code"}
    if code == "na_role":
        params["role"] = label(ROLE_LABELS, params.get("role"), lang)
    if code == "frozen" and not params.get("product"):
        params["product"] = label(EVIDENCE_TEXTS, "unnamed", lang)
    if code == "stale":
        params["days"] = _word(float(params.get("days") or 7), lang)
    entry_text = EVIDENCE_TEXTS.get(code)
    if entry_text is None:
        return code
    try:
        return (entry_text.get(lang) or entry_text["vi"]).format(**params)
    except (KeyError, IndexError):
        return entry_text.get(lang) or entry_text["vi"]


__all__ = ["render"]
