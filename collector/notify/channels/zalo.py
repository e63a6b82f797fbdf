"""Zalo — what Vietnamese teachers actually read — through the Zalo Bot API
(``notify.zalo_token``, ``notify.zalo_api_url``). Apprise has no Zalo plugin, so this is
our own, as small as the API:

    POST {zalo_api_url}/bot{TOKEN}/sendMessage   {"chat_id": ..., "text": ...}
    → {"ok": true, "result": {"message_id": ..., "date": ...}}
    → {"ok": false, "error_code": 400, "description": "..."}

(Zalo Bot Platform, docs.zaloplatforms.com/docs/BOT/apis/sendMessage: the token goes in
the path as with Telegram's Bot API; ``text`` is 1–2000 characters. An HTTP 2xx alone is
no success: ``ok`` decides.) ``recipient`` is the chat id (``users.zalo_chat_id``).

Length: a text longer than 2000 (counted in UTF-16 units, after NFC, so an emoji counts
as two) is **cut** at the last whole line that fits and ends with "… (+N dòng / lines)".
Not split into several messages: a retry after part 2 failed would send part 1 again,
and the outbox promises each message once. A Zalo notice is short; the whole list is in
the e-mail and on the alerts page.

The token is a secret: it never appears in an error (the URL is never shown).
"""
import json
import socket
import unicodedata
import urllib.error
import urllib.request
from typing import Any, Optional

from ..outbox import Message
from . import DeliveryError, scrub

#: Zalo Bot API's limit on ``text``.
MAX_TEXT = 2000
DEFAULT_API_URL = "https://bot-api.zaloplatforms.com"


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def fit_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` (NFC) when it fits in ``limit`` UTF-16 units; else cut at a line end with
    a note of how many lines were left out."""
    text = unicodedata.normalize("NFC", text).strip() or "-"
    if _units(text) <= limit:
        return text
    lines = text.split("\n")
    for keep in range(len(lines) - 1, 0, -1):
        note = "\n… (+%d dòng / lines)" % (len(lines) - keep)
        head = "\n".join(lines[:keep])
        if _units(head) + _units(note) <= limit:
            return head + note
    # one very long line: cut it by characters
    note = " …"
    out = []
    used = _units(note)
    for ch in text:
        used += _units(ch)
        if used > limit:
            break
        out.append(ch)
    return "".join(out) + note


class ZaloChannel:
    name = "zalo"

    def __init__(self, token: str, api_url: str, timeout: float) -> None:
        self.token = token
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.timeout = timeout

    def _scrub(self, text: str) -> str:
        return scrub(text, [self.token])

    def send(self, message: Message) -> None:
        if not self.token:
            raise DeliveryError("not_configured", "notify.zalo_token")
        if not message.recipient.strip():
            raise DeliveryError("bad_message", "chat_id trống / empty chat_id", permanent=True)
        text = fit_text(message.body if not message.subject else
                        "%s\n%s" % (message.subject, message.body))
        data = json.dumps({"chat_id": message.recipient.strip(), "text": text},
                          ensure_ascii=False).encode("utf-8")
        req = urllib.request.Request("%s/bot%s/sendMessage" % (self.api_url, self.token),
                                     data=data, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        status: Optional[int] = None
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                raw = resp.read(65536)
                status = resp.status
        except urllib.error.HTTPError as exc:
            # Zalo answers errors with a status and the same envelope: read it for the reason
            status = exc.code
            try:
                raw = exc.read(65536)
            except OSError:
                raw = b""
        except (socket.timeout, TimeoutError):
            raise DeliveryError("timeout", "Zalo, %.0f s" % self.timeout) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (socket.timeout, TimeoutError)):
                raise DeliveryError("timeout", "Zalo, %.0f s" % self.timeout) from None
            raise DeliveryError("unreachable", "Zalo: %s" % self._scrub(str(exc.reason))) from None
        except OSError as exc:
            raise DeliveryError("unreachable", "Zalo: %s" % self._scrub(str(exc))) from None
        answer: Any = None
        try:
            answer = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            pass
        if isinstance(answer, dict) and answer.get("ok") is True and (200 <= status < 300):
            return
        if isinstance(answer, dict) and answer.get("ok") is False:
            raise DeliveryError("zalo", self._scrub("%s %s" % (
                answer.get("error_code", status), str(answer.get("description", ""))[:300])))
        if not 200 <= status < 300:
            raise DeliveryError("http_status", "%d (Zalo)" % status)
        raise DeliveryError("bad_answer", "Zalo: %s" % self._scrub(
            raw[:120].decode("utf-8", "replace")))
