"""The signed JSON webhook (``notify.webhook_url``, ``notify.webhook_secret``), for a
province's own systems, signed as CONTRACT.md says::

    X-Schoolmon-Timestamp: 1767225600
    X-Schoolmon-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

The body is the message's ``payload`` (what routing built for the webhook) as compact
UTF-8 JSON, or, when a message has none, ``{"subject", "body", "lang"}``. Each POST also
carries ``X-Schoolmon-Delivery`` (a hash of the outbox's dedup key, the same on every
retry of one message) so a receiver can drop a copy it already took.

A receiver checks a request with :func:`verify` (this module needs only the standard
library). Any 2xx is delivered; another status, a refused connection or no answer within
``notify.timeout`` is a failure with the status or the reason recorded.

Why urllib and no HTTP client library: one POST with a timeout is all it takes, and the
collector's extra does not otherwise need one.
"""
import hashlib
import hmac
import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Mapping, Optional
from urllib.parse import urlsplit

from ..outbox import Message
from . import DeliveryError, scrub

SIGNATURE_HEADER = "X-Schoolmon-Signature"
TIMESTAMP_HEADER = "X-Schoolmon-Timestamp"
DELIVERY_HEADER = "X-Schoolmon-Delivery"
#: Seconds a receiver accepts between the timestamp and its own clock, by default.
DEFAULT_TOLERANCE = 300.0


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Schoolmon-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def refusal(body: bytes, headers: Mapping[str, str], secret: str, now: float,
            tolerance: float = DEFAULT_TOLERANCE) -> Optional[str]:
    """Why a receiver must refuse this request (vi / en), or None when it is genuine:
    signed with ``secret`` and sent within ``tolerance`` seconds of ``now`` (an old
    request replayed is refused)."""
    lower = {k.lower(): v for k, v in headers.items()}
    ts = lower.get(TIMESTAMP_HEADER.lower())
    sig = lower.get(SIGNATURE_HEADER.lower())
    if not ts or not sig:
        return "thiếu chữ ký hoặc thời điểm / signature or timestamp missing"
    try:
        sent = float(ts)
    except ValueError:
        return "thời điểm không hợp lệ / timestamp is not a number"
    if abs(now - sent) > tolerance:
        return ("thời điểm lệch %.0f giây, quá %.0f (gửi lại?) / timestamp %.0f s off, over "
                "%.0f (a replay?)" % (abs(now - sent), tolerance, abs(now - sent), tolerance))
    if not hmac.compare_digest(signature(secret, ts, body), sig.strip()):
        return "chữ ký sai / signature does not match"
    return None


def verify(body: bytes, headers: Mapping[str, str], secret: str, now: float,
           tolerance: float = DEFAULT_TOLERANCE) -> bool:
    """True when the request is genuine and fresh (see :func:`refusal` for why not)."""
    return refusal(body, headers, secret, now, tolerance) is None


def body_of(message: Message) -> bytes:
    doc: Any = message.payload if message.payload is not None else {
        "subject": message.subject, "body": message.body, "lang": message.lang}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"),
                      sort_keys=True).encode("utf-8")


def shown_url(url: str) -> str:
    """scheme://host:port of ``url``: no user, password, path or query (any may hold a
    secret)."""
    try:
        parts = urlsplit(url)
        return "%s://%s%s" % (parts.scheme, parts.hostname or "?",
                              ":%d" % parts.port if parts.port else "")
    except ValueError:
        return "?"


class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str, secret: str, timeout: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.clock = clock

    def headers(self, body: bytes, message: Message) -> Dict[str, str]:
        ts = str(int(self.clock()))
        return {"Content-Type": "application/json; charset=utf-8",
                "User-Agent": "schoolmon-collector",
                TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature(self.secret, ts, body),
                DELIVERY_HEADER: hashlib.sha256(message.dedup_key.encode("utf-8"))
                .hexdigest()[:32]}

    def send(self, message: Message) -> None:
        if not self.url:
            raise DeliveryError("not_configured", "notify.webhook_url")
        if not self.secret:
            raise DeliveryError("not_configured", "notify.webhook_secret")
        body = body_of(message)
        req = urllib.request.Request(self.url, data=body, method="POST",
                                     headers=self.headers(body, message))
        where = shown_url(self.url)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                resp.read(65536)
                status = resp.status
        except urllib.error.HTTPError as exc:
            raise DeliveryError("http_status", "%d (%s)" % (exc.code, where)) from None
        except (socket.timeout, TimeoutError):
            raise DeliveryError("timeout", "%s, %.0f s" % (where, self.timeout)) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (socket.timeout, TimeoutError)):
                raise DeliveryError("timeout", "%s, %.0f s" % (where, self.timeout)) from None
            raise DeliveryError("unreachable", "%s: %s" % (
                where, scrub(str(exc.reason), [self.url, self.secret]))) from None
        except OSError as exc:
            raise DeliveryError("unreachable", "%s: %s" % (
                where, scrub(str(exc), [self.url, self.secret]))) from None
        if not 200 <= status < 300:
            raise DeliveryError("http_status", "%d (%s)" % (status, where))
