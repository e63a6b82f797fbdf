"""How the API shows things to people: Vietnamese first, English on request, times in UTC
(ISO 8601 with ``Z``) plus the province's local time (Asia/Ho_Chi_Minh by default).

The query layer returns plain values (times as UTC epoch seconds or aware datetimes,
statuses as machine codes); :func:`present` walks a response and adds, next to each,
what a person reads: ``last_seen`` → ``last_seen`` (UTC ``Z``) + ``last_seen_local``;
``status`` → ``status`` + ``status_label``.
"""
import datetime as _dt
from typing import Any, Dict, Optional

from zoneinfo import ZoneInfo

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"

#: Status codes of devices and schools, and their labels (Vietnamese first).
STATUS_LABELS: Dict[str, Dict[str, str]] = {
    "online": {"vi": "trực tuyến", "en": "online"},
    "offline": {"vi": "mất kết nối", "en": "offline"},
    "pending": {"vi": "chờ duyệt", "en": "pending approval"},
    "unknown": {"vi": "chưa có dữ liệu", "en": "no data yet"},
    "partial": {"vi": "một phần mất kết nối", "en": "partly offline"},
    "no_devices": {"vi": "chưa có thiết bị", "en": "no devices"},
    "revoked": {"vi": "đã thu hồi", "en": "revoked"},
    "active": {"vi": "đang hoạt động", "en": "active"},
    "not_evaluated": {"vi": "chưa đánh giá", "en": "not evaluated yet"},
}

ROLE_LABELS: Dict[str, Dict[str, str]] = {
    "lab": {"vi": "máy phòng máy", "en": "lab PC"},
    "office": {"vi": "máy văn phòng", "en": "office PC"},
    "server": {"vi": "máy chủ", "en": "server"},
    "router": {"vi": "bộ định tuyến", "en": "router"},
}

def _level_labels() -> Dict[str, Dict[str, str]]:
    from ..store.registry import LEVEL_NAMES_EN, LEVELS
    table = {code: {"vi": name, "en": LEVEL_NAMES_EN.get(code, name)}
             for code, name in LEVELS.items()}
    # levels of organisation units (data, but these two are the usual ones)
    table["province"] = {"vi": "Tỉnh / thành phố", "en": "Province"}
    table["area"] = {"vi": "Khu vực", "en": "Area"}
    return table


LEVEL_LABELS: Dict[str, Dict[str, str]] = _level_labels()

#: Messages of the API itself (errors, notes).
MESSAGES: Dict[str, Dict[str, str]] = {
    "auth_required": {
        "vi": "Cần xác thực: gửi tiêu đề Authorization: Bearer <mã truy cập>.",
        "en": "Authentication required: send Authorization: Bearer <token>.",
    },
    "auth_invalid": {
        "vi": "Mã truy cập không hợp lệ.",
        "en": "The token is not valid.",
    },
    "admin_required": {
        "vi": "Thao tác này cần quyền quản trị.",
        "en": "This needs an admin token.",
    },
    "school_not_found": {"vi": "Không tìm thấy trường.", "en": "School not found."},
    "device_not_found": {"vi": "Không tìm thấy thiết bị.", "en": "Device not found."},
    "metric_unknown": {
        "vi": "Chỉ số không có trong dữ liệu lưu trữ của thiết bị.",
        "en": "The metric is not kept for this device.",
    },
    "bad_range": {
        "vi": "Khoảng thời gian không hợp lệ: 'from' phải trước 'to'.",
        "en": "Invalid time range: 'from' must be before 'to'.",
    },
    "bad_time": {
        "vi": "Thời gian không hợp lệ: dùng ISO 8601 (ví dụ 2026-01-31T08:00:00Z) "
              "hoặc số giây Unix.",
        "en": "Invalid time: use ISO 8601 (e.g. 2026-01-31T08:00:00Z) or Unix seconds.",
    },
    "baseline_not_evaluated": {
        "vi": "Chưa đánh giá: bộ tiêu chí (chuẩn) chưa được áp dụng trong phiên bản này.",
        "en": "Not evaluated yet: no baseline is applied in this version.",
    },
    "dependency_down": {
        "vi": "Một thành phần phụ thuộc không sẵn sàng.",
        "en": "A dependency is not ready.",
    },
}


def pick_lang(query_lang: Optional[str], accept_language: Optional[str]) -> str:
    """``?lang=`` wins; else the first of vi/en in Accept-Language by weight; else vi."""
    if query_lang:
        low = query_lang.strip().lower()[:2]
        if low in LANGS:
            return low
    if accept_language:
        best, best_q = None, -1.0
        for i, part in enumerate(accept_language.split(",")):
            tag, _, params = part.strip().partition(";")
            primary = tag.strip().lower().split("-")[0]
            q = 1.0
            for p in params.split(";"):
                k, _, v = p.strip().partition("=")
                if k == "q":
                    try:
                        q = float(v)
                    except ValueError:
                        q = 0.0
            # earlier entries win ties
            q -= i * 1e-6
            if primary in LANGS and q > best_q:
                best, best_q = primary, q
        if best and best_q > 0:
            return best
    return DEFAULT_LANG


def text(key: str, lang: str) -> str:
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry[DEFAULT_LANG]


def label(table: Dict[str, Dict[str, str]], code: Optional[str], lang: str) -> Optional[str]:
    if code is None:
        return None
    entry = table.get(code)
    if entry is None:
        return code
    return entry.get(lang) or entry[DEFAULT_LANG]


def to_datetime(value: Any) -> Optional[_dt.datetime]:
    """UTC epoch seconds, an aware datetime or a naive one (taken as UTC) → aware UTC."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _dt.datetime.fromtimestamp(float(value), _dt.timezone.utc)
    if isinstance(value, str):
        return parse_time(value)
    raise TypeError("not a time: %r" % (value,))


def parse_time(value: str) -> _dt.datetime:
    """ISO 8601 (``Z`` or an offset; naive taken as UTC) or Unix seconds → aware UTC."""
    s = value.strip()
    try:
        return _dt.datetime.fromtimestamp(float(s), _dt.timezone.utc)
    except ValueError:
        pass
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    d = _dt.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return d.astimezone(_dt.timezone.utc)


def iso_utc(value: Any) -> Optional[str]:
    d = to_datetime(value)
    if d is None:
        return None
    return d.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_local(value: Any, tz: str) -> Optional[str]:
    """The same moment in the province's time zone, ISO 8601 with its offset
    (e.g. ``2026-11-22T21:00:00+07:00``)."""
    d = to_datetime(value)
    if d is None:
        return None
    return d.astimezone(ZoneInfo(tz)).replace(microsecond=0).isoformat()


#: Keys whose values are times.
TIME_KEYS = frozenset({
    "ts", "now", "first_seen", "last_seen", "since", "status_since", "from", "to",
    "updated_at", "created_at", "received_at", "boot_ts", "generated_at", "last_status_at",
})
#: Keys whose values are passed through as they are (device payloads, echoed filters).
RAW_KEYS = frozenset({"payload", "filters"})
#: Keys whose values are codes with labels.
LABELLED = {
    "status": STATUS_LABELS,
    "role": ROLE_LABELS,
    "level": LEVEL_LABELS,
    "baseline": STATUS_LABELS,
    "state": STATUS_LABELS,
}


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
