"""The light link probe (``probe`` family): the default gateway, DNS, a domestic and an
international HTTP target, every ``intervals.probe`` seconds, a few KB in all.

Each check runs in its own thread with its own deadline (``probe.timeout``): a target that
resolves but never answers costs its own ``*_ok`` false / ``*_err`` ``timeout`` and nothing
else; ``collect`` returns after at most about one timeout (plus the route lookup). Threads
of a check that overran are left to finish on their own (daemon threads; every socket has
the same timeout, so they end soon after).

Runs on its own worker thread (``slow=False`` in its spec), not the slow one: a 5-minute
security scan must not hold up the link check whose regularity the uptime figure rests on.

``ping_check`` (one ICMP echo through the command runner, TCP connect to port 80/53 when
ping is missing, not allowed or unanswered) is also the router family's gateway check.
"""
import http.client
import logging
import re
import socket
import ssl
import sys
import threading
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

from ..runner import CommandError
from .route import Route, default_route

log = logging.getLogger(__name__)

#: Bytes of a response body read at most (latency.txt is 10 B; generate_204 has none).
MAX_BODY = 4096
#: ``dom_err`` when there is no domestic target (no ``mqtt.url``, no ``probe.domestic_url``).
NOT_CONFIGURED = "not_configured"
#: Seconds the route lookup may take (PowerShell on an old lab PC starts slowly).
ROUTE_TIMEOUT = 30.0


class Check(NamedTuple):
    ok: bool
    ms: Optional[float] = None
    err: str = ""

    def fields(self, prefix: str) -> Dict[str, Any]:
        out: Dict[str, Any] = {prefix + "_ok": self.ok}
        if self.ms is not None:
            out[prefix + "_ms"] = round(self.ms, 1)
        if self.err:
            out[prefix + "_err"] = self.err[:128]
        return out


def _elapsed_ms(start: float) -> float:
    return (time.monotonic() - start) * 1000.0


# One reply line: Linux "64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=0.35 ms", Windows
# "Reply from 10.0.0.1: bytes=32 time<1ms TTL=64", Vietnamese Windows "Phản hồi từ ...:
# byte=32 thời gian=3ms TTL=64". Only the TTL and the number before "ms" are not localised;
# "Destination host unreachable" replies (rc 0 on Windows) have no TTL.
_TTL = re.compile(r"\bttl[=:]\s*\d+", re.IGNORECASE)
_TIME = re.compile(r"([=<])\s*(\d+(?:[.,]\d+)?)\s*ms\b", re.IGNORECASE)


def parse_ping(output: str) -> Optional[float]:
    """The round trip of the first reply in ping's output, ms; None: no reply.
    ``time<1ms`` (Windows) is 0.5 ms."""
    for line in output.splitlines():
        if not _TTL.search(line):
            continue
        m = _TIME.search(line)
        if m:
            value = float(m.group(2).replace(",", "."))
            return value / 2 if m.group(1) == "<" else value
    return None


def ping_argv(host: str, platform_name: str) -> List[str]:
    if platform_name.startswith("win"):
        return ["ping", "-n", "1", "-w", "1000", host]
    return ["ping", "-c", "1", "-W", "1", host]


def tcp_check(host: str, timeout: float, ports: Tuple[int, ...] = (80, 53)) -> Check:
    """Connect to the host's port 80, then 53: an answer, even "refused", proves it is up."""
    err = "timeout"
    for port in ports:
        start = time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return Check(True, _elapsed_ms(start))
        except ConnectionRefusedError:  # a RST came back: the host is there
            return Check(True, _elapsed_ms(start))
        except socket.timeout:
            err = "timeout"
        except OSError as exc:
            err = _os_err(exc)
    return Check(False, None, err)


def ping_check(runner: Any, host: str, timeout: float,
               platform_name: Optional[str] = None, tcp: Callable[..., Check] = tcp_check
               ) -> Check:
    """One ICMP echo; TCP 80/53 when ping is missing, not allowed or got no reply (some
    routers drop ICMP from the LAN but answer on their web or DNS port)."""
    platform_name = platform_name or sys.platform
    why = ""
    try:
        res = runner.run(ping_argv(host, platform_name), timeout + 1.0)
        ms = parse_ping(res.stdout)
        if ms is not None:
            return Check(True, ms)
        why = "timeout" if res.rc in (0, 1) else "ping rc %d" % res.rc
    except CommandError as exc:
        why = "ping: %s" % exc
    got = tcp(host, min(timeout, 2.0))
    if got.ok:
        return got
    return Check(False, None, got.err or why or "timeout")


def _os_err(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, socket.gaierror):
        return "dns: " + dns_error(exc)
    if isinstance(exc, ssl.SSLError):
        return "tls: %s" % (exc.reason or exc)
    if isinstance(exc, OSError) and exc.errno in (101, 113, 10051, 10065):
        return "unreachable"
    return "error: %s" % (exc.__class__.__name__ if not str(exc) else str(exc))


# getaddrinfo's answers (glibc EAI_*, Windows WSA*: numbers, so a Vietnamese Windows
# reads as an English one) → the probe's DNS errors
_EAI = {
    getattr(socket, "EAI_NONAME", -2): "nxdomain", 11001: "nxdomain",  # WSAHOST_NOT_FOUND
    getattr(socket, "EAI_NODATA", -5): "no_answer", 11004: "no_answer",  # WSANO_DATA
    getattr(socket, "EAI_AGAIN", -3): "timeout", 11002: "timeout",  # WSATRY_AGAIN
    getattr(socket, "EAI_FAIL", -4): "servfail", 11003: "servfail",  # WSANO_RECOVERY
}
RESOLV_CONF = "/etc/resolv.conf"


def _no_nameserver(resolv_conf: str) -> bool:
    """The system resolver has no server to ask (Linux and other Unix: resolv.conf without
    a ``nameserver`` line; Windows keeps its servers elsewhere: never said)."""
    if sys.platform.startswith("win"):
        return False
    try:
        with open(resolv_conf, encoding="utf-8", errors="replace") as fh:
            return not any(line.split()[:1] == ["nameserver"] for line in fh)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def dns_error(exc: socket.gaierror, resolv_conf: str = RESOLV_CONF) -> str:
    """``nxdomain`` (the name does not exist), ``no_answer`` (it has no address),
    ``timeout`` (no server answered: unreachable, silent or refusing), ``no_server``
    (none is configured), ``servfail`` (the server failed), else the resolver's words."""
    code = _EAI.get(exc.errno or 0)
    if code in ("timeout", "servfail") and _no_nameserver(resolv_conf):
        return "no_server"
    if code:
        return code
    return "error: %s" % (exc.strerror or exc)


def dns_check(name: str, timeout: float, resolve: Callable[..., Any] = socket.getaddrinfo,
              resolv_conf: str = RESOLV_CONF) -> Check:
    """Resolve the name through the system resolver (getaddrinfo has no timeout of its
    own: the caller's deadline bounds it, ``timeout``)."""
    start = time.monotonic()
    try:
        resolve(name, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return Check(False, None, dns_error(exc, resolv_conf))
    except OSError as exc:
        return Check(False, None, _os_err(exc))
    return Check(True, _elapsed_ms(start))


def http_check(url: str, timeout: float) -> Check:
    """GET the URL, read at most MAX_BODY bytes; time to the end of that. 2xx/3xx is ok.
    No proxy: the probe measures this PC's own path."""
    start = time.monotonic()
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, parts.port or 443, timeout=timeout,
                context=ssl.create_default_context())
        elif parts.scheme == "http":
            conn = http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)
        else:
            return Check(False, None, "error: not an http(s) URL")
        try:
            conn.request("GET", (parts.path or "/") + ("?" + parts.query if parts.query else ""),
                         headers={"User-Agent": "schoolmon-agent probe",
                                  "Cache-Control": "no-cache"})
            resp = conn.getresponse()
            resp.read(MAX_BODY)
            status = resp.status
        finally:
            conn.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if isinstance(exc, http.client.HTTPException) and not isinstance(exc, OSError):
            return Check(False, None, "error: %s" % exc.__class__.__name__)
        return Check(False, None, _os_err(exc) if isinstance(exc, OSError)
                     else "error: %s" % exc)
    ms = _elapsed_ms(start)
    if 200 <= status < 400:
        return Check(True, ms)
    return Check(False, ms, "http %d" % status)


def run_parallel(checks: Dict[str, Callable[[], Check]], timeout: float) -> Dict[str, Check]:
    """Each check in its own daemon thread; whatever has not answered by the deadline is
    ``timeout``."""
    results: Dict[str, Check] = {}
    lock = threading.Lock()

    def run(name: str, fn: Callable[[], Check]) -> None:
        try:
            got = fn()
        except Exception as exc:  # a bug in one check costs that check only
            log.warning("probe %s: %s", name, exc, exc_info=True)
            got = Check(False, None, "error: %s" % exc.__class__.__name__)
        with lock:
            results.setdefault(name, got)

    threads = [threading.Thread(target=run, args=(n, f), name="probe-" + n, daemon=True)
               for n, f in checks.items()]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    with lock:
        for name in checks:
            results.setdefault(name, Check(False, None, "timeout"))
        return dict(results)


def domestic_url(settings: Any, mqtt_url: str) -> str:
    """``probe.domestic_url``, else the collector's latency.txt on the broker's host."""
    if settings.domestic_url:
        return settings.domestic_url
    try:
        host = urlsplit(mqtt_url).hostname if mqtt_url else None
    except ValueError:
        host = None
    if not host:
        return ""
    if ":" in host:
        host = "[%s]" % host
    return "http://%s:%d/speedtest/latency.txt" % (host, settings.domestic_port)


class ProbeFamily:
    def __init__(self, runner: Any, settings: Any, dom_url: str = "",
                 tester: Optional[bool] = None, platform_name: Optional[str] = None,
                 route: Optional[Callable[[], Optional[Route]]] = None) -> None:
        self.runner = runner
        self.timeout = float(settings.timeout)
        self.dns_name = settings.dns_name
        self.dom_url = dom_url
        self.intl_url = settings.intl_url
        self.tester = tester
        self.platform_name = platform_name or sys.platform
        self.route = route or (lambda: default_route(self.runner,
                                                     platform_name=self.platform_name))
        self._warned = False

    def _gateway(self) -> Tuple[Optional[Route], Optional[Check]]:
        route = self.route()
        if route is None or not route.gateway:
            return route, None
        return route, ping_check(self.runner, route.gateway, self.timeout, self.platform_name)

    def collect(self) -> Dict[str, Any]:
        t = self.timeout
        checks: Dict[str, Callable[[], Any]] = {}
        if self.dns_name:
            checks["dns"] = lambda: dns_check(self.dns_name, t)
        if self.dom_url:
            checks["dom"] = lambda: http_check(self.dom_url, t)
        if self.intl_url:
            checks["intl"] = lambda: http_check(self.intl_url, t)
        gw_box: List[Any] = []
        gw_thread = threading.Thread(target=lambda: gw_box.append(self._gateway()),
                                     name="probe-gw", daemon=True)
        gw_thread.start()
        results = run_parallel(checks, t + 0.5)
        # the gateway waits for the route first (PowerShell on Windows)
        gw_thread.join(ROUTE_TIMEOUT + t + 2.0)
        out: Dict[str, Any] = {}
        if gw_box:
            route, gw = gw_box[0]
            if route is not None:
                out.update(route.fields())
                if route.gateway:
                    out["gw"] = route.gateway
            if gw is not None:
                out.update(gw.fields("gw"))
            elif route is None:
                out.update(Check(False, None, "no route").fields("gw"))
        else:
            out.update(Check(False, None, "timeout").fields("gw"))
        if self.dns_name:
            out["dns_name"] = self.dns_name
            out.update(results["dns"].fields("dns"))
        if self.dom_url:
            out["dom_url"] = self.dom_url
            out.update(results["dom"].fields("dom"))
        else:
            # the check the school's uptime is judged on: say it is missing (no ``dom_ok``:
            # not an attempt, so the collector falls back to the international target)
            out["dom_err"] = NOT_CONFIGURED
            if not self._warned:
                self._warned = True
                log.warning("probe: không có đích trong nước (chưa đặt mqtt.url hay "
                            "probe.domestic_url) / no domestic target: mqtt.url and "
                            "probe.domestic_url are both empty, the domestic check is "
                            "skipped")
        if self.intl_url:
            out["intl_url"] = self.intl_url
            out.update(results["intl"].fields("intl"))
        if self.tester is not None:
            out["tester"] = self.tester
        return out
