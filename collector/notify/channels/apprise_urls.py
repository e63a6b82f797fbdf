"""The Sở's own channels through Apprise (``notify.apprise_urls``: Telegram, Slack,
Discord, Microsoft Teams, a JSON or form POST …).

One ``Apprise`` object per URL, so each URL's outcome is known on its own: ``notify()``
answers for all the services an object holds together — a bool in Apprise 1.x, an
``AppriseResult`` in 2.x whose ``bool()`` keeps that meaning (caronc/apprise#538, #1611,
PR #1664) — and one URL that fails must not make the outbox retry (and so repeat) the
ones that worked. So a message names one URL (``recipient``): ``NAME`` from an entry
``NAME=URL``, or the entry's position (``1``, ``2`` …) for a bare URL; routing enqueues
one message per name (:func:`names`).

The reason of a failure comes from the result's own log lines (Apprise 2.x; 1.x gives
none), scrubbed of every part of the URL: an Apprise URL is made of secrets (bot tokens,
webhook keys, passwords).
"""
import inspect
import re
from typing import Any, Dict, List, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

from ..outbox import Message
from . import DeliveryError, scrub

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def parse_entries(entries: List[str]) -> List[Tuple[str, str]]:
    """``[(name, url)]`` of ``notify.apprise_urls``, in order."""
    out = []
    for i, entry in enumerate(entries, start=1):
        head, sep, tail = entry.partition("=")
        if sep and _NAME.match(head.strip()) and "://" in tail:
            out.append((head.strip(), tail.strip()))
        else:
            out.append((str(i), entry.strip()))
    return out


def names(entries: List[str]) -> List[str]:
    """The recipients routing may name on the ``apprise`` channel."""
    return [name for name, _url in parse_entries(entries)]


def url_secrets(url: str) -> List[str]:
    """Every part of ``url`` that may be a secret (all but its scheme)."""
    parts: List[str] = [url]
    try:
        s = urlsplit(url)
        parts += [s.netloc, s.username or "", s.password or "", s.hostname or ""]
        parts += [unquote(p) for p in s.path.split("/") if p]
        parts += [v for _k, v in parse_qsl(s.query)]
    except ValueError:
        pass
    return [p for p in parts if p]


class AppriseChannel:
    name = "apprise"

    def __init__(self, entries: List[str], timeout: float) -> None:
        import apprise

        self.timeout = timeout
        self.objects: Dict[str, Any] = {}
        self.refused: Dict[str, int] = {}  # name → position of a URL Apprise did not take
        self.secrets: List[str] = []
        for i, (name, url) in enumerate(parse_entries(entries), start=1):
            self.secrets += url_secrets(url)
            obj = apprise.Apprise()
            if obj.add(url):
                self.objects[name] = obj
            else:
                self.refused[name] = i
        # Apprise 2.x can bound the whole call; 1.x relies on each plugin's socket timeouts
        self._has_timeout = "timeout" in inspect.signature(apprise.Apprise.notify).parameters

    def send(self, message: Message) -> None:
        name = message.recipient
        if name in self.refused:
            raise DeliveryError("not_configured", "notify.apprise_urls[%d]: Apprise không nhận "
                                "URL này / Apprise does not accept this URL"
                                % self.refused[name])
        obj = self.objects.get(name)
        if obj is None:
            if not self.objects and not self.refused:
                raise DeliveryError("not_configured", "notify.apprise_urls")
            raise DeliveryError("unknown_recipient", "notify.apprise_urls: %r" % name[:64],
                                permanent=True)
        kw: Dict[str, Any] = {"timeout": self.timeout} if self._has_timeout else {}
        try:
            result = obj.notify(body=message.body, title=message.subject, **kw)
        except Exception as exc:  # a plugin's own bug must stay this message's failure
            raise DeliveryError("apprise", scrub("%s: %s" % (type(exc).__name__, exc),
                                                 self.secrets)[:300]) from None
        if result:
            return
        raise DeliveryError("apprise", self._why(result, name))

    def _why(self, result: Any, name: str) -> str:
        lines: List[str] = []
        logs = getattr(result, "logs", None)
        if callable(logs):
            try:
                lines = [e.message for e in logs() if getattr(e, "level", "") in
                         ("WARNING", "ERROR", "CRITICAL")]
            except Exception:
                lines = []
        status = getattr(getattr(result, "status", None), "name", None) or str(result)
        detail = "%s %s" % (name, status)
        if lines:
            detail += ": " + " | ".join(lines[-2:])
        return scrub(" ".join(detail.split()), self.secrets)[:500]
