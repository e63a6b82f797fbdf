"""The demo's own mail sink: an SMTP server on loopback that keeps every e-mail the
collector sends as a ``.eml`` file in the demo's folder, so a visitor can read the alerts'
messages and nothing ever leaves this machine.

aiosmtpd (a dev dependency, which ``make demo`` installs) does the SMTP; the collector
sends to it with its ordinary e-mail channel (``notify.smtp_url``). Without aiosmtpd the
demo says so and runs on, its e-mails left in the outbox (the alerts page still shows
every alert)."""
import email
import email.policy
import os
import threading
from typing import Any, Optional

from .processes import free_port

#: the demo users' addresses end in this reserved domain (RFC 2606): never deliverable
DEMO_MAIL_DOMAIN = "demo.schoolmon.invalid"


class _Keep:
    """aiosmtpd handler: each message to ``folder/NNNN.eml`` (numbered in arrival order)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        with self.lock:
            self.count += 1
            n = self.count
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        subject = str(msg.get("Subject", ""))
        path = os.path.join(self.folder, "%04d.eml" % n)
        tmp = path + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(raw)
        os.replace(tmp, path)
        print("✉ %s → %s: %s" % (os.path.basename(path), ", ".join(envelope.rcpt_tos), subject),
              flush=True)
        return "250 OK: kept in the demo's mail folder"


class Mailbox:
    """``start()`` → the ``smtp://127.0.0.1:PORT`` URL; ``stop()``; ``folder`` holds the
    e-mails; ``count`` how many arrived."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.handler = _Keep(folder)
        self.controller: Optional[Any] = None
        self.url = ""

    @property
    def count(self) -> int:
        return self.handler.count

    def start(self) -> str:
        from aiosmtpd.controller import Controller  # ImportError: the caller degrades

        os.makedirs(self.folder, exist_ok=True)
        port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=port)
        self.controller.start()
        self.url = "smtp://127.0.0.1:%d" % port
        return self.url

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


__all__ = ["DEMO_MAIL_DOMAIN", "Mailbox"]
