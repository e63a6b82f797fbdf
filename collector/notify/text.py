"""What people read about delivery, Vietnamese first and English on request: the one
definition of each reason a channel gives, the test message and the CLI's lines.

A delivery error is stored (``notifications.last_error``, the health row) as
``"<code>: <detail>"``: the code names the reason, the detail is the technical part
(an SMTP reply, an HTTP status, Zalo's description), never a secret. :func:`error_text`
renders it in a language.
"""
from typing import Dict, Optional

from ..text import DEFAULT_LANG

#: Why an attempt failed, by code. ``{detail}`` is the technical part.
REASONS: Dict[str, Dict[str, str]] = {
    "not_configured": {"vi": "Kênh chưa được cấu hình ({detail})",
                       "en": "Channel not configured ({detail})"},
    "refused": {"vi": "Máy chủ thư từ chối người nhận ({detail})",
                "en": "The mail server refused the recipient ({detail})"},
    "smtp": {"vi": "Máy chủ thư báo lỗi ({detail})",
             "en": "The mail server answered an error ({detail})"},
    "unreachable": {"vi": "Không kết nối được ({detail})",
                    "en": "Cannot connect ({detail})"},
    "timeout": {"vi": "Quá thời gian chờ ({detail})",
                "en": "Timed out ({detail})"},
    "http_status": {"vi": "Máy nhận trả lời lỗi HTTP {detail}",
                    "en": "The receiver answered HTTP {detail}"},
    "zalo": {"vi": "Zalo báo lỗi: {detail}", "en": "Zalo answered an error: {detail}"},
    "bad_answer": {"vi": "Câu trả lời không hợp lệ ({detail})",
                   "en": "Invalid answer ({detail})"},
    "apprise": {"vi": "Apprise không gửi được ({detail})",
                "en": "Apprise could not send ({detail})"},
    "unknown_recipient": {"vi": "Không có người nhận này ({detail})",
                          "en": "No such recipient ({detail})"},
    "bad_message": {"vi": "Tin nhắn không hợp lệ ({detail})",
                    "en": "Invalid message ({detail})"},
    "crashed": {"vi": "Lỗi khi gửi ({detail})", "en": "Error while sending ({detail})"},
}

#: The message ``schoolmon-collector notify test`` sends, and its lines.
TEST_TEXTS: Dict[str, Dict[str, str]] = {
    "subject": {"vi": "schoolmon: thử gửi thông báo ({channel})",
                "en": "schoolmon: test notification ({channel})"},
    "body": {"vi": "Đây là tin nhắn thử của hệ thống giám sát schoolmon (Sở GD&ĐT), gửi lúc "
                   "{time}. Nếu bạn đọc được tin này, kênh {channel} hoạt động bình thường.",
             "en": "This is a test message from schoolmon (the Department of Education's "
                   "monitoring), sent at {time}. If you can read it, the {channel} channel "
                   "works."},
    "sent": {"vi": "đã gửi", "en": "sent"},
    "no_recipient": {"vi": "chưa có người nhận: dùng --to", "en": "no recipient: use --to"},
    "will_retry": {"vi": "sẽ thử lại sau", "en": "will be retried"},
}


def _pick(entry: Dict[str, str], lang: str) -> str:
    return entry.get(lang) or entry[DEFAULT_LANG]


def reason_text(code: str, detail: str, lang: str = DEFAULT_LANG) -> str:
    entry = REASONS.get(code)
    if entry is None:
        return "%s: %s" % (code, detail)
    return _pick(entry, lang).format(detail=detail)


def error_text(stored: Optional[str], lang: str = DEFAULT_LANG) -> Optional[str]:
    """A stored ``"<code>: <detail>"`` in ``lang`` (None for None)."""
    if stored is None:
        return None
    code, sep, detail = stored.partition(": ")
    if not sep or code not in REASONS:
        return stored
    return reason_text(code, detail, lang)


def test_text(key: str, lang: str = DEFAULT_LANG, **params: str) -> str:
    return _pick(TEST_TEXTS[key], lang).format(**params)
