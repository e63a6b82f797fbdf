"""The channels a notification goes out on, behind one small interface::

    channel.send(message)   # returns when delivered; raises DeliveryError(code, detail)

Each channel is a module of its own: ``mail`` (SMTP), ``apprise_urls`` (the Sở's own
Apprise URLs), ``webhook`` (the signed JSON webhook), ``zalo`` (the Zalo Bot API).
``channels_from_config(cfg)`` builds the four; a channel whose keys are empty is built
anyway and refuses every message with ``not_configured``, so the message is recorded as
failing (and the channel's health says why) rather than silently dropped.

Secrets (SMTP password, tokens, the webhook secret, Apprise URLs) never reach an error:
each channel passes its error texts through :func:`scrub` with its own secrets.
"""
from types import SimpleNamespace
from typing import Dict, Iterable, Protocol

from ..outbox import Message


class DeliveryError(Exception):
    """An attempt failed: ``code`` (a key of notify/text.py's REASONS) and ``detail``
    (technical, no secret). ``permanent``: retrying cannot help (the server refused the
    address for good), so the message is ``dead`` at once."""

    def __init__(self, code: str, detail: str, permanent: bool = False) -> None:
        super().__init__("%s: %s" % (code, detail))
        self.code = code
        self.detail = detail
        self.permanent = permanent


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> None: ...


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (longer than 3 characters) replaced by ``***``."""
    for secret in sorted((s for s in secrets if s and len(s) > 3), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def channels_from_config(cfg: SimpleNamespace) -> Dict[str, Channel]:
    """The four channels for ``cfg.notify``, by name."""
    from .apprise_urls import AppriseChannel
    from .mail import EmailChannel
    from .webhook import WebhookChannel
    from .zalo import ZaloChannel

    n = cfg.notify
    timeout = float(n.timeout)
    built: Dict[str, Channel] = {
        "email": EmailChannel(n.smtp_url, n.smtp_from, timeout),
        "apprise": AppriseChannel(list(n.apprise_urls), timeout),
        "webhook": WebhookChannel(n.webhook_url, n.webhook_secret, timeout),
        "zalo": ZaloChannel(n.zalo_token, n.zalo_api_url, timeout),
    }
    return built


__all__ = ["Channel", "DeliveryError", "channels_from_config", "scrub"]
