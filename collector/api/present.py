"""How the API shows a response to people: :func:`present` walks it and adds, next to each
value, what a person reads — ``last_seen`` → ``last_seen`` (UTC ``Z``) + ``last_seen_local``
(the province's time); ``status`` → ``status`` + ``status_label`` (Vietnamese first).
The words and the time rendering are :mod:`schoolmon.collector.text`'s.

The read side returns plain values (times as UTC epoch seconds or aware datetimes,
statuses as codes); nothing else in the API renders them.
"""
from typing import Any, Dict

from ..text import LEVEL_LABELS, ROLE_LABELS, STATUS_LABELS, Texts, iso_local, iso_utc, label
from ..text import message as text  # noqa: F401 - api/health.py imports it from here

#: Keys whose values are times.
TIME_KEYS = frozenset({
    "ts", "now", "first_seen", "last_seen", "since", "status_since", "from", "to",
    "updated_at", "created_at", "received_at", "boot_ts", "generated_at", "last_status_at",
    "disabled_at", "offline_since", "evaluated_at", "reported_at",
    "hour", "expires", "next_planned", "granted_at",  # connectivity: probe hours, leases
    # alerts, silences, the outbox
    "began_at", "started_at", "fired_at", "resolved_at", "starts_at", "ends_at", "deleted_at",
    "last_sent_at", "last_error_at", "last_attempt", "next_attempt_at", "sent_at",
})
#: Keys whose values are passed through as they are (device payloads, echoed filters,
#: the query parameters of a link, an audit entry's detail).
RAW_KEYS = frozenset({"payload", "filters", "params", "detail", "values", "evidence"})
#: Keys whose values are codes with labels.
LABELLED: Dict[str, Texts] = {
    "status": STATUS_LABELS,
    "role": ROLE_LABELS,
    "level": LEVEL_LABELS,
    "baseline": STATUS_LABELS,
    "state": STATUS_LABELS,
}

__all__ = ["LABELLED", "RAW_KEYS", "TIME_KEYS", "iso_utc", "present", "text"]


def present(obj: Any, lang: str, tz: str) -> Any:
    """Walk ``obj`` (dicts and lists) adding ``<key>_local`` beside each time and
    ``<key>_label`` beside each status/role/level code. Times become UTC ``...Z``."""
    if isinstance(obj, list):
        return [present(x, lang, tz) for x in obj]
    if not isinstance(obj, dict):
        return obj
    out: Dict[str, Any] = {}
    for key, value in obj.items():
        if key in RAW_KEYS:
            out[key] = value
            continue
        if key in TIME_KEYS and not isinstance(value, (dict, list)):
            if value is None:
                out[key] = None
                out[key + "_local"] = None
            else:
                try:
                    out[key] = iso_utc(value)
                    out[key + "_local"] = iso_local(value, tz)
                except (TypeError, ValueError, OverflowError, OSError):
                    out[key] = value
            continue
        if key in LABELLED and (value is None or isinstance(value, str)):
            out[key] = value
            if key + "_label" not in obj:
                out[key + "_label"] = label(LABELLED[key], value, lang)
            continue
        out[key] = present(value, lang, tz)
    return out
