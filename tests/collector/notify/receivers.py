"""Real receivers on loopback for the delivery tests, each on a free port and stopped by
its fixture: an SMTP server (aiosmtpd) that keeps what it receives and refuses the
addresses it is told to, and an HTTP receiver whose answer a test chooses (a status, a
JSON body, or hanging until released) — it plays the webhook receiver, Zalo's Bot API
and Apprise's json:// target."""
import email
import email.policy
import http.server
import json
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from tests.servers import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: List[str]
    message: EmailMessage


class _SmtpHandler:
    def __init__(self) -> None:
        self.received: List[Received] = []
        self.refuse: Set[str] = set()
        self.lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                       policy=email.policy.default)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          msg))  # type: ignore[arg-type]
        return "250 Message accepted"


class SmtpServer:
    """aiosmtpd's Controller on 127.0.0.1:<free port>; ``url`` for notify.smtp_url.

    ``tls``: None (plain), ``"starttls"`` (STARTTLS required) or ``"smtps"`` (TLS from
    the first byte), with ``certs`` a folder from tests.servers.make_test_pki; ``login``
    (user, password) makes AUTH required."""

    def __init__(self, tls: Optional[str] = None, certs: Optional[str] = None,
                 login: Optional[Tuple[str, str]] = None) -> None:
        import ssl

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.handler = _SmtpHandler()
        self.port = free_port()
        self.tls = tls
        self.logins: List[str] = []
        kw: Dict[str, Any] = {}
        if tls is not None:
            assert certs is not None
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain("%s/server.crt" % certs, "%s/server.key" % certs)
            if tls == "starttls":
                kw.update(tls_context=ctx, require_starttls=True)
            else:
                kw.update(ssl_context=ctx)
        if login is not None:
            def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                             auth_data: Any) -> Any:
                user = auth_data.login.decode("utf-8")
                ok = (user, auth_data.password.decode("utf-8")) == login
                if ok:
                    self.logins.append(user)
                return AuthResult(success=ok, handled=False)  # False: aiosmtpd answers 535
            kw.update(authenticator=authenticate, auth_required=True,
                      # aiosmtpd counts only STARTTLS as TLS, not a TLS listener
                      auth_require_tls=tls == "starttls")
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kw)
        self.controller.start()

    @property
    def url(self) -> str:
        scheme = {"starttls": "smtp+starttls", "smtps": "smtps"}.get(self.tls or "", "smtp")
        return "%s://127.0.0.1:%d" % (scheme, self.port)

    def url_with(self, user: str, password: str) -> str:
        from urllib.parse import quote
        return self.url.replace("://", "://%s:%s@" % (quote(user), quote(password, safe="")))

    @property
    def received(self) -> List[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def refuse(self, address: str) -> None:
        self.handler.refuse.add(address)

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class Request:
    path: str
    headers: Dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


#: What the receiver answers a request: (status, JSON-able body or bytes).
Answer = Tuple[int, Any]


class HttpReceiver:
    """A threading HTTP server on 127.0.0.1:<free port> that records every POST and
    answers with ``answer(request)``; ``hold()`` makes it hang (no answer) until
    ``release()``."""

    def __init__(self, answer: Optional[Callable[[Request], Answer]] = None) -> None:
        self.requests: List[Request] = []
        self.answer: Callable[[Request], Answer] = answer or (lambda r: (200, {"ok": True}))
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self.arrived = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                req = Request(self.path, {k: v for k, v in self.headers.items()},
                              self.rfile.read(n))
                with outer._lock:
                    outer.requests.append(req)
                outer.arrived.set()
                outer._open.wait(120)
                status, body = outer.answer(req)
                raw = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def got(self) -> List[Request]:
        with self._lock:
            return list(self.requests)

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def stop(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
