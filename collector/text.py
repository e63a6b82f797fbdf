"""What people read, in Vietnamese first and English on request: the one vi/en text module.

- Languages: :data:`LANGS`, :func:`pick_lang` (``?lang=`` / ``Accept-Language``).
- Labels of codes (statuses, roles, school and unit levels): :func:`label`.
- Messages (errors, notes): :data:`MESSAGES`, :func:`message`.
- Vietnamese text: :func:`fold` (case and diacritics ignored, for search and codes) and
  :func:`sort_key` (Vietnamese alphabetical order: "Bảo Thắng" before "Bát Xát").
- Times: stored in UTC; :func:`iso_utc` and :func:`iso_local` render them
  (the province's zone, ``Asia/Ho_Chi_Minh`` by default), :func:`parse_time` reads them.

A table entry is ``{"vi": ..., "en": ...}``; a missing English text falls back to the
Vietnamese one, never to a key.
"""
import datetime as _dt
import functools
import unicodedata
from typing import Any, Dict, List, Mapping, Optional, Tuple

from zoneinfo import ZoneInfo

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"

Texts = Mapping[str, Mapping[str, str]]

# --- labels of codes ------------------------------------------------------------------------

#: Status codes of devices and schools (Vietnamese first).
STATUS_LABELS: Dict[str, Dict[str, str]] = {
    "online": {"vi": "trực tuyến", "en": "online"},
    "offline": {"vi": "mất kết nối", "en": "offline"},
    "pending": {"vi": "chờ duyệt", "en": "pending approval"},
    "unknown": {"vi": "chưa có dữ liệu", "en": "no data yet"},
    "partial": {"vi": "mất kết nối một phần", "en": "partly offline"},
    "no_devices": {"vi": "chưa có thiết bị", "en": "no devices"},
    "revoked": {"vi": "đã thu hồi", "en": "revoked"},
    "active": {"vi": "đang hoạt động", "en": "active"},
    "not_evaluated": {"vi": "chưa đánh giá", "en": "not evaluated yet"},
    "meets": {"vi": "Đạt chuẩn", "en": "meets the baseline"},
    "below": {"vi": "Chưa đạt chuẩn", "en": "below the baseline"},
    "retired": {"vi": "đã ngừng sử dụng", "en": "retired"},
}

#: What a school's state comes to, for its page: a router down is not "one PC off".
SCHOOL_CONDITION_LABELS: Dict[str, Dict[str, str]] = {
    "all_online": {"vi": "mọi thiết bị trực tuyến", "en": "every device online"},
    "router_down": {"vi": "mất kết nối Internet/router", "en": "Internet/router down"},
    "some_devices_off": {"vi": "một số máy tắt", "en": "some devices off"},
    "all_offline": {"vi": "mọi thiết bị mất kết nối", "en": "every device offline"},
    "no_devices": {"vi": "chưa có thiết bị", "en": "no devices"},
}

#: Why a device went offline (devices.offline_reason).
OFFLINE_REASON_LABELS: Dict[str, Dict[str, str]] = {
    "shutdown": {"vi": "tắt máy", "en": "shut down"},
    "lost": {"vi": "mất kết nối đột ngột", "en": "connection lost"},
    "timeout": {"vi": "quá hạn không báo về", "en": "stopped reporting"},
}

#: Column and card titles the pages show (one definition, vi and en).
FIELD_LABELS: Dict[str, Dict[str, str]] = {
    "last_seen": {"vi": "Báo về lần cuối", "en": "Last reported"},
    "status_since": {"vi": "Trạng thái từ", "en": "Status since"},
    "offline_since": {"vi": "Mất kết nối từ", "en": "Offline since"},
    "seen_24h": {"vi": "Thiết bị báo về trong 24 giờ", "en": "Devices heard in the last 24 h"},
    "offline_count": {"vi": "Số máy mất kết nối", "en": "Devices offline"},
    "online_pct": {"vi": "% thiết bị trực tuyến", "en": "% devices online"},
    "schools": {"vi": "Trường", "en": "Schools"},
    "devices": {"vi": "Thiết bị", "en": "Devices"},
    "area": {"vi": "Khu vực", "en": "Area"},
    "router": {"vi": "Bộ định tuyến (router)", "en": "Router"},
    "room": {"vi": "Phòng", "en": "Room"},
    "os": {"vi": "Hệ điều hành", "en": "Operating system"},
    "worst_schools": {"vi": "Trường cần chú ý", "en": "Schools needing attention"},
    "trend_online": {"vi": "Thiết bị báo về mỗi ngày (30 ngày)",
                     "en": "Devices heard per day (30 days)"},
    "online_hourly": {"vi": "Thiết bị báo về mỗi giờ (7 ngày)",
                      "en": "Devices heard per hour (7 days)"},
    "status_history": {"vi": "Lịch sử trạng thái", "en": "Status history"},
    "messages_received": {"vi": "Bản tin đã nhận", "en": "Messages received"},
    "messages_lost": {"vi": "Bản tin bị mất", "en": "Messages lost"},
    "messages_duplicates": {"vi": "Bản tin trùng", "en": "Duplicate messages"},
}

#: The metrics of a device's series: name and unit, vi and en (units read the same).
SERIES_LABELS: Dict[str, Dict[str, str]] = {
    "cpu_pct": {"vi": "CPU đang dùng", "en": "CPU busy", "unit": "%"},
    "mem_pct": {"vi": "Bộ nhớ đang dùng", "en": "Memory in use", "unit": "%"},
    "swap_pct": {"vi": "Bộ nhớ swap đang dùng", "en": "Swap in use", "unit": "%"},
    "disk_pct": {"vi": "Ổ đĩa đầy nhất đã dùng", "en": "Fullest disk used", "unit": "%"},
    "temp": {"vi": "Nhiệt độ CPU cao nhất", "en": "Highest CPU temperature", "unit": "°C"},
    "rx": {"vi": "Mạng nhận", "en": "Network received", "unit": "B/s"},
    "tx": {"vi": "Mạng gửi", "en": "Network sent", "unit": "B/s"},
}

#: Device roles.
ROLE_LABELS: Dict[str, Dict[str, str]] = {
    "lab": {"vi": "máy phòng tin học", "en": "lab PC"},
    "office": {"vi": "máy văn phòng", "en": "office PC"},
    "server": {"vi": "máy chủ", "en": "server"},
    "router": {"vi": "bộ định tuyến", "en": "router"},
}

#: School levels (cấp học) by code: the one definition (the registry's LEVELS derive from it).
SCHOOL_LEVELS: Dict[str, Dict[str, str]] = {
    "MN": {"vi": "Mầm non", "en": "Preschool"},
    "TH": {"vi": "Tiểu học", "en": "Primary"},
    "THCS": {"vi": "Trung học cơ sở", "en": "Lower secondary"},
    "THPT": {"vi": "Trung học phổ thông", "en": "Upper secondary"},
    "GDNN-GDTX": {"vi": "Giáo dục nghề nghiệp - Giáo dục thường xuyên",
                  "en": "Vocational / continuing education centre"},
    "LIEN-CAP": {"vi": "Liên cấp", "en": "Multi-level"},
}

#: Levels of school and organisation units (the unit levels are data; these are the usual).
LEVEL_LABELS: Dict[str, Dict[str, str]] = dict(SCHOOL_LEVELS, **{
    "province": {"vi": "Tỉnh / thành phố", "en": "Province"},
    "area": {"vi": "Khu vực", "en": "Area"},
})

# --- messages -------------------------------------------------------------------------------

#: Messages of the API (errors, notes), by code.
MESSAGES: Dict[str, Dict[str, str]] = {
    "auth_required": {
        "vi": "Cần xác thực: gửi tiêu đề Authorization: Bearer <mã truy cập>.",
        "en": "Authentication required: send Authorization: Bearer <token>.",
    },
    "auth_invalid": {"vi": "Mã truy cập không hợp lệ.", "en": "The token is not valid."},
    "admin_required": {"vi": "Thao tác này cần quyền quản trị.",
                       "en": "This needs an admin token."},
    "school_not_found": {"vi": "Không tìm thấy trường.", "en": "School not found."},
    "device_not_found": {"vi": "Không tìm thấy thiết bị.", "en": "Device not found."},
    "not_found": {"vi": "Không tìm thấy đường dẫn này.", "en": "No such path."},
    "method_not_allowed": {"vi": "Đường dẫn này không nhận phương thức này.",
                           "en": "This path does not accept this method."},
    "http_error": {"vi": "Yêu cầu không được xử lý.", "en": "The request was not handled."},
    "invalid_request": {"vi": "Tham số không hợp lệ.", "en": "Invalid parameters."},
    "metric_unknown": {
        "vi": "Chỉ số không có trong dữ liệu lưu trữ của thiết bị.",
        "en": "The metric is not kept for this device.",
    },
    "bad_range": {
        "vi": "Khoảng thời gian không hợp lệ: 'from' phải trước 'to'.",
        "en": "Invalid time range: 'from' must be before 'to'.",
    },
    "range_too_long": {
        "vi": "Khoảng thời gian quá dài: tối đa 400 ngày mỗi lần.",
        "en": "The time range is too long: at most 400 days at once.",
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
    "dependency_down": {"vi": "Một thành phần phụ thuộc không sẵn sàng.",
                        "en": "A dependency is not ready."},
}

#: What a validation error says about one parameter, by pydantic error type (the English
#: is pydantic's own wording, kept for ``lang=en``); other types fall back to "invalid".
VALIDATION_MESSAGES: Dict[str, Dict[str, str]] = {
    "missing": {"vi": "Thiếu tham số bắt buộc.", "en": "Field required"},
    "int_parsing": {"vi": "Phải là một số nguyên.",
                    "en": "Input should be a valid integer"},
    "int_from_float": {"vi": "Phải là một số nguyên.",
                       "en": "Input should be a valid integer"},
    "bool_parsing": {"vi": "Phải là true hoặc false.", "en": "Input should be a valid boolean"},
    "greater_than_equal": {"vi": "Giá trị quá nhỏ.", "en": "Input is too small"},
    "less_than_equal": {"vi": "Giá trị quá lớn.", "en": "Input is too large"},
    "string_too_long": {"vi": "Chuỗi quá dài.", "en": "String is too long"},
    "literal_error": {"vi": "Không phải một trong các giá trị cho phép.",
                      "en": "Input is not one of the allowed values"},
    "enum": {"vi": "Không phải một trong các giá trị cho phép.",
             "en": "Input is not one of the allowed values"},
    "string_pattern_mismatch": {"vi": "Không đúng định dạng.",
                                "en": "String does not match the expected format"},
    "duplicate": {"vi": "Tham số chỉ được có một giá trị.", "en": "Given more than once"},
    "unknown_parameter": {"vi": "Đường dẫn này không có tham số này.",
                          "en": "This path has no such parameter"},
    "invalid": {"vi": "Giá trị không hợp lệ.", "en": "Invalid value"},
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
            q -= i * 1e-6  # earlier entries win ties
            if primary in LANGS and q > best_q:
                best, best_q = primary, q
        if best and best_q > 0:
            return best
    return DEFAULT_LANG


def _pick(entry: Mapping[str, str], lang: str) -> str:
    return entry.get(lang) or entry[DEFAULT_LANG]


def message(code: str, lang: str) -> str:
    """The message ``code`` in ``lang`` (the code itself when there is none)."""
    entry = MESSAGES.get(code)
    return code if entry is None else _pick(entry, lang)


def label(table: Texts, code: Optional[str], lang: str) -> Optional[str]:
    """The label of ``code`` in ``table`` (the code itself when the table has none)."""
    if code is None:
        return None
    entry = table.get(code)
    return code if entry is None else _pick(entry, lang)


def validation_message(error_type: str, lang: str) -> str:
    entry = VALIDATION_MESSAGES.get(error_type) or VALIDATION_MESSAGES["invalid"]
    return _pick(entry, lang)


# --- Vietnamese text ------------------------------------------------------------------------

def fold(text: str) -> str:
    """Lower case without Vietnamese diacritics (đ → d), spaces collapsed."""
    text = text.replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFD", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return " ".join(text.lower().split())


#: Marks that make a letter of its own in the Vietnamese alphabet (a ă â, o ô ơ, u ư, e ê),
#: ranked after the plain letter; the five tone marks only break ties (secondary order).
_LETTER_MARKS = {"\u0306": 1, "\u0302": 2, "\u031b": 3}  # breve, circumflex, horn
_TONE_MARKS = {"\u0300": 2, "\u0309": 3, "\u0303": 4, "\u0301": 5, "\u0323": 6}
#: Tone order: none, huyền (grave), hỏi (hook), ngã (tilde), sắc (acute), nặng (dot below).


@functools.lru_cache(maxsize=65536)  # the same few thousand names, sorted on every list
def sort_key(text: str) -> Tuple[str, str, str]:
    """Key for Vietnamese alphabetical order (a ă â b c d đ e ê ... o ô ơ ... u ư ...),
    case and tones as tie-breakers: ``sorted(names, key=sort_key)`` puts "Bảo Thắng" before
    "Bát Xát" and "Đồng" after every "D...". The key is three strings (letters, each as its
    base and a rank; tones; the text), which compare at C speed: lists of thousands of
    schools are sorted on every request."""
    letters: List[str] = []
    tones: List[str] = []
    for ch in unicodedata.normalize("NFD", text):
        if ch in _LETTER_MARKS and letters:
            letters[-1] = letters[-1][0] + str(_LETTER_MARKS[ch])
        elif ch in _TONE_MARKS:
            if tones:
                tones[-1] = str(_TONE_MARKS[ch])
        elif unicodedata.category(ch) == "Mn":
            continue
        else:
            low = ch.lower()[:1] or ch
            letters.append("d9" if low == "đ" else low + "0")
            tones.append("1")
    return "".join(letters), "".join(tones), text


# --- times ----------------------------------------------------------------------------------

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
    """ISO 8601 (``Z`` or an offset; naive taken as UTC) or Unix seconds → aware UTC.
    ValueError (or OverflowError/OSError for seconds out of range) when it is neither."""
    s = value.strip()
    if s.isascii():  # float() also reads "١٢" and "１２"; a time is written in ASCII
        try:
            return _dt.datetime.fromtimestamp(float(s), _dt.timezone.utc)
        except ValueError:
            pass
    else:
        raise ValueError("not a time: %r" % value)
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    d = _dt.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return d.astimezone(_dt.timezone.utc)


def iso_utc(value: Any) -> Optional[str]:
    """``2026-11-22T14:00:00Z`` (seconds; None stays None)."""
    d = to_datetime(value)
    if d is None:
        return None
    return d.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_local(value: Any, tz: str = DEFAULT_TIMEZONE) -> Optional[str]:
    """The same moment in the province's time zone, ISO 8601 with its offset
    (e.g. ``2026-11-22T21:00:00+07:00``)."""
    d = to_datetime(value)
    if d is None:
        return None
    return d.astimezone(ZoneInfo(tz)).replace(microsecond=0).isoformat()


def utc_offset(at: float, tz: str = DEFAULT_TIMEZONE) -> int:
    """The zone's offset from UTC at ``at`` (epoch s), in seconds: where local days start
    (Asia/Ho_Chi_Minh keeps +07:00 all year)."""
    off = _dt.datetime.fromtimestamp(at, ZoneInfo(tz)).utcoffset()
    return int(off.total_seconds()) if off is not None else 0
