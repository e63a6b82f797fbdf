"""E-mail over SMTP (``notify.smtp_url``, ``notify.smtp_from``), one recipient a message.

Why smtplib and not Apprise's ``mailto://``: the outbox already holds one row per
recipient, and what we must record per row is *why* a server refused that address
(``550 5.1.1 …``). Apprise's ``notify()`` reports one status per URL — a bool in 1.x, a
``NotifyResult`` per service in 2.x (caronc/apprise#538, #1611, PR #1664) — and a mailto://
URL with several addresses is one service, so a refused address shows only as "the
URL failed" with the SMTP reply in its log lines. smtplib (which Apprise itself uses
underneath) raises ``SMTPRecipientsRefused`` with each address's code and reply, and the
standard library's ``EmailMessage`` does the MIME encoding of Vietnamese subjects,
names and bodies (RFC 2047 headers, UTF-8 bodies) for us.
"""
import email.policy
import hashlib
import html
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import List, Optional
from urllib.parse import unquote, urlsplit

from ..outbox import Message
from . import DeliveryError, scrub

#: The e-mail policy: the default, with header lines up to RFC 5322's 998 characters.
SUBJECT_POLICY = email.policy.default.clone(max_line_length=998)


class EmailChannel:
    name = "email"

    def __init__(self, smtp_url: str, sender: str, timeout: float) -> None:
        self.url = smtp_url
        self.sender = sender
        self.timeout = timeout
        parts = urlsplit(smtp_url) if smtp_url else None
        self.scheme = parts.scheme if parts else ""
        self.host = (parts.hostname or "") if parts else ""
        self.port = (parts.port or (465 if self.scheme == "smtps" else 25)) if parts else 0
        self.user = unquote(parts.username) if parts and parts.username else None
        self.password = unquote(parts.password) if parts and parts.password else None

    def _secrets(self) -> List[str]:
        return [s for s in (self.password, self.url) if s]

    def build(self, message: Message) -> EmailMessage:
        """The e-mail for ``message``: UTF-8 plain text plus a simple HTML part.
        Its Message-ID derives from the dedup key, so a copy sent twice (a sender that
        crashed after the server took it) is one message to mail clients."""
        msg = EmailMessage()
        msg["Subject"] = message.subject
        msg["From"] = self.sender
        msg["To"] = message.recipient
        msg["Date"] = formatdate(usegmt=True)  # "GMT", not "-0000" (which says: zone unknown)
        digest = hashlib.sha256(message.dedup_key.encode("utf-8")).hexdigest()[:32]
        msg["Message-ID"] = "<%s@schoolmon>" % digest
        msg["Content-Language"] = message.lang
        msg.set_content(message.body, charset="utf-8")
        msg.add_alternative("<html><body><pre style=\"font-family: sans-serif; white-space: "
                            "pre-wrap\">%s</pre></body></html>" % html.escape(message.body),
                            subtype="html", charset="utf-8")
        # Written out with header lines up to 998 characters (RFC 5322) instead of 78:
        # Python 3.11's folder splits a long Vietnamese subject into encoded words at a
        # space and drops that space ("200 trườngmất kết nối", seen in
        # tests/test_alerting_end_to_end.py); unfolded, the subject is one encoded word.
        # The parts were encoded above under the default policy, so the body is unchanged.
        msg.policy = SUBJECT_POLICY
        return msg

    def send(self, message: Message) -> None:
        if not self.url:
            raise DeliveryError("not_configured", "notify.smtp_url")
        recipient = parseaddr(message.recipient)[1]
        if "@" not in recipient:
            raise DeliveryError("bad_message", "không phải địa chỉ e-mail / not an e-mail "
                                "address: %r" % message.recipient[:100], permanent=True)
        envelope_from = parseaddr(self.sender)[1] or self.sender
        where = "%s:%d" % (self.host, self.port)
        smtp: Optional[smtplib.SMTP] = None
        try:
            if self.scheme == "smtps":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                        context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.scheme == "smtp+starttls":
                    smtp.starttls(context=ssl.create_default_context())
            if self.user:
                self._login(smtp)
            smtp.send_message(self.build(message), envelope_from, [recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (0, b""))
            raise DeliveryError("refused", self._reply(code, reply),
                                permanent=500 <= int(code) < 600) from None
        except smtplib.SMTPResponseException as exc:  # sender refused, data, auth …
            raise DeliveryError("smtp", self._reply(exc.smtp_code, exc.smtp_error)) from None
        except (socket.timeout, TimeoutError):
            raise DeliveryError("timeout", "SMTP %s, %.0f s" % (where, self.timeout)) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError("unreachable", "SMTP %s: %s" % (
                where, scrub(str(exc) or type(exc).__name__, self._secrets()))) from None
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()

    def _login(self, smtp: smtplib.SMTP) -> None:
        user, password = self.user or "", self.password or ""
        if (user + password).isascii():
            smtp.login(user, password)
            return
        # smtplib encodes credentials as ASCII (UnicodeEncodeError on "Mật-khẩu"); AUTH
        # PLAIN carries UTF-8 (RFC 4616), so such a password goes that way by hand.
        import base64
        smtp.ehlo_or_helo_if_needed()
        token = base64.b64encode(b"\0" + user.encode("utf-8") + b"\0" + password.encode("utf-8"))
        code, reply = smtp.docmd("AUTH", "PLAIN " + token.decode("ascii"))
        if code != 235:
            raise smtplib.SMTPAuthenticationError(code, reply)

    def _reply(self, code: int, reply: object) -> str:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return scrub("%s %s" % (code, " ".join(text.split())), self._secrets())[:500]
