"""``speedtest``: one bandwidth test against a legacy speedtest HTTP server.

speedtest-cli 2.1.3 (the last release; the project is archived) is used for what only it
knows: speedtest.net's configuration and server list (``secure=True``: speedtest.net refuses
plain HTTP), which also say the ISP and the public IP. Its constructor always downloads that
configuration, so a self-hosted server (the collector's ``/speedtest/``, an nginx by the
recipe in deploy/nginx/) is tested here without it: the legacy protocol is three URLs next
to the server's ``upload.php`` (``latency.txt``, ``random{N}x{N}.jpg``, ``upload.php``).

The transfers themselves are our own, because speedtest-cli's cannot keep a byte budget
(it queues a fixed set of requests), counts no bytes of a request it abandons, and measures
from the first byte, so a shaper's burst and TCP's slow start count as link speed:

- Each direction runs for a fixed time (``FULL_SECONDS``; ``short`` mode: until its share
  of ``SHORT_BYTES``) on a few keep-alive connections, reading and sending 64 KiB at a time.
- Every chunk is taken from a shared byte budget first: when the grant's ``budget`` would
  be exceeded, the test stops there. Bytes moved are counted as they move, so a failed or
  stopped test still reports them.
- The rate is measured over a window that leaves out the warm-up (the first
  ``WARMUP_FRACTION`` of the phase's time or bytes): a token-bucket shaper lets its burst
  through at line rate and TCP starts slowly; both are over by then on any school link.
  The upload is measured on the sending side, where bytes handed to the socket are not yet
  on the link: the kernel's send buffer grows during a test (autotuning), which read as
  ~5 % too fast at 5 Mbit. On Linux the bytes still unacknowledged in each socket
  (``TIOCOUTQ``) are subtracted from every sample, so the count is what the server took;
  elsewhere the count is what was sent.
- When the upload ends, what is still in a socket's send queue never left: on Linux it is
  taken off ``bytes_tx`` (``TIOCOUTQ`` once more before the close); elsewhere the send
  buffer is capped (``SNDBUF_CAP``) so it can hold little. Every upload socket closes with
  ``SO_LINGER`` 0 (a reset): the kernel drops the unsent data instead of sending it after
  the test. At 0.8 Mbit/s that leftover was ~1 MB of the ~3 MB reported, and it kept the
  link busy long enough that the next test's ping read 170–230 ms instead of 2–3 ms.
- Every socket operation has ``speedtest.io_timeout``: a server that stops sending or
  reading mid-test ends the test with ``reason`` ``timeout`` and the bytes moved so far.
"""
import http.client
import ipaddress
import logging
import os
import random
import socket
import sys
import threading
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from .route import Route, route_to

log = logging.getLogger("schoolmon.agent.speedtest")

#: Seconds each direction runs in ``full`` mode (about rate × 10 s of data each way).
FULL_SECONDS = 10.0
#: ``short`` mode (metered links): at most this many bytes in all, and this long each way.
SHORT_BYTES = 10 * 1000 * 1000
SHORT_SECONDS = 8.0
#: Share of a test's bytes the download may use (uploads are slower on every school link).
DOWN_SHARE = 0.7
#: The start of each phase left out of the rate (time or bytes, whichever comes first).
WARMUP_FRACTION = 0.2
#: The byte budget of a test run by hand (``speedtest.budget``): what a full test of a
#: 300/100 Mbit school fibre needs (10 s × 400 Mbit/s ≈ 500 MB), so a faster link is still
#: measured over a shorter window, and a mistyped LAN or loopback server cannot move GBs.
#: On a metered 3G/4G link the time bounds a full test (10 s × 20 Mbit/s ≈ 25 MB each
#: way); ``--mode short`` stops it at 10 MB.
HAND_BUDGET = 500 * 1000 * 1000
#: Connections per direction.
THREADS = 4
CHUNK = 65536
#: Download image size: the largest legacy file, so a connection rarely starts a request.
IMAGE = 4000
#: Upload request body (a legacy server accepts a few MB per POST).
UPLOAD_BODY = 4 * 1024 * 1024
PINGS = 5
#: Longest answer read from latency.txt or upload.php.
ANSWER = 64
SAMPLE_EVERY = 0.05
#: Send buffer of an upload socket where the unsent bytes cannot be read (no TIOCOUTQ:
#: Windows). Those bytes are counted as sent, so THREADS × this (512 KiB) bounds how much
#: ``bytes_tx`` can overcount; the rate is not affected (the buffer is full from the
#: warm-up on). It also bounds what is in flight: 4 × 128 KiB per round trip, about
#: 100 Mbit/s at 40 ms, more than any school upload here.
SNDBUF_CAP = 128 * 1024
#: How long finding speedtest.net's servers may take (no Internet: it must fail quickly).
DISCOVER_TIMEOUT = 15.0
_BLOCK = random.Random(7).getrandbits(8 * CHUNK).to_bytes(CHUNK, "little")

Clock = Callable[[], float]


class SpeedtestFailed(Exception):
    """The test cannot go on; ``reason`` is the catalogue's (``no_server``, ``timeout`` ...)."""

    def __init__(self, reason: str) -> None:
        Exception.__init__(self, reason)
        self.reason = reason


class Server(NamedTuple):
    url: str  # upload.php
    name: str = ""
    isp: str = ""
    ip: str = ""


class Budget:
    """Bytes a test may still move, shared by its threads; counts what actually moved."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self.reserved = 0
        self.rx = 0
        self.tx = 0
        self.exhausted = False

    def take(self, n: int) -> bool:
        with self.lock:
            if self.reserved + n > self.limit:
                self.exhausted = True
                return False
            self.reserved += n
            return True

    def moved(self, n: int, reserved: int, rx: bool) -> None:
        with self.lock:
            self.reserved -= reserved - n
            if rx:
                self.rx += n
            else:
                self.tx += n

    def unsent(self, n: int) -> None:
        """``n`` bytes counted as sent were still in a send queue when it was dropped."""
        with self.lock:
            n = min(n, self.tx)
            self.tx -= n
            self.reserved -= n


class Phase:
    """One direction: its threads' shared byte count, sampled over time."""

    def __init__(self, cap: int, seconds: float, clock: Clock) -> None:
        self.cap = cap
        self.seconds = seconds
        self.clock = clock
        self.lock = threading.Lock()
        self.bytes = 0
        self.errors: List[str] = []
        self.stop = threading.Event()
        self.samples: List[Tuple[float, int]] = []
        #: when the phase's time is up (set by _run_phase)
        self.deadline: Optional[float] = None
        #: socket timeouts of threads that were finishing their last chunk after the deadline
        self.late = 0
        #: upload sockets in use, for the bytes still in their send queues
        self.sockets: Dict[int, Any] = {}

    def delivered(self) -> int:
        """Bytes counted, less those still waiting in the send queues (Linux)."""
        with self.lock:  # with drop(): a socket's unsent bytes are taken off once
            waiting = 0
            for sock in list(self.sockets.values()):
                waiting += _unsent(sock)
            return max(0, self.bytes - waiting)

    def drop(self, sock: Any) -> int:
        """The upload socket of this thread is done: its unsent bytes (Linux) no longer
        count; returns them."""
        with self.lock:
            self.sockets.pop(threading.get_ident(), None)
            left = _unsent(sock, sent=True)
            self.bytes -= left
            return left

    def add(self, n: int) -> None:
        with self.lock:
            self.bytes += n
        if self.bytes >= self.cap:
            self.stop.set()

    def fail(self, why: str, at: Optional[float] = None) -> None:
        """A worker's error (``at``: when it came). A timeout after the phase's time was up
        is kept apart: on a slow link one of the connections can wait out a TCP back-off
        in its last send or read while the others carry the link to the end (seen at
        0.8 Mbit/s); whether it was a stall is decided from the samples (``stalled``)."""
        with self.lock:
            if why == "timeout" and at is not None and self.deadline is not None \
                    and at >= self.deadline:
                self.late += 1
            else:
                self.errors.append(why)

    def stalled(self) -> bool:
        """No byte counted in the last WARMUP_FRACTION of the phase's time: the server
        stopped, not one connection."""
        if not self.samples or self.deadline is None:
            return True
        since = self.deadline - WARMUP_FRACTION * self.seconds
        before = [b for t, b in self.samples if t <= since]
        return self.samples[-1][1] <= (before[-1] if before else 0)

    def mbps(self) -> Optional[float]:
        """Rate over the samples after the warm-up (the whole phase if that is too short)."""
        s = self.samples
        if len(s) < 2 or s[-1][1] <= 0:
            return None
        t0, end_t, end_b = s[0][0], s[-1][0], s[-1][1]
        start = s[0]
        for t, b in s:
            if t - t0 >= WARMUP_FRACTION * self.seconds or b >= WARMUP_FRACTION * self.cap:
                start = (t, b)
                break
        if end_t - start[0] < 0.25 * (end_t - t0) or end_b - start[1] <= 0:
            start = s[0]
        if end_t <= start[0]:
            return None
        return (end_b - start[1]) * 8.0 / (end_t - start[0]) / 1e6


def _unsent(sock: Any, sent: bool = False) -> int:
    """Bytes in ``sock``'s send queue not yet acknowledged (0 where the OS cannot say);
    ``sent``: only those not yet sent (Linux; those in flight cross the link even after a
    reset, which follows them)."""
    if _TIOCOUTQ is None or sock is None:
        return 0
    try:
        import fcntl

        request = _SIOCOUTQNSD if sent and sys.platform.startswith("linux") else _TIOCOUTQ
        buf = fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0")
        return int.from_bytes(buf, sys.byteorder)
    except (OSError, ValueError):  # closed meanwhile
        return 0


def _outq_request() -> Optional[int]:
    try:
        import termios  # Linux, macOS; not on Windows

        return int(termios.TIOCOUTQ)
    except (ImportError, AttributeError):  # pragma: no cover
        return None


_TIOCOUTQ = _outq_request()
#: Linux's SIOCOUTQNSD (linux/sockios.h; not in termios): bytes queued and not yet sent.
_SIOCOUTQNSD = 0x894B


def _abortive(sock: Any) -> None:
    """Close ``sock`` with a reset, dropping what is still in its send queue (SO_LINGER 0),
    and, where the unsent bytes cannot be read, keep that queue small."""
    if sock is None:
        return
    try:
        # struct linger: two ints on POSIX, two u_shorts on Windows
        fmt = "HH" if sys.platform == "win32" else "ii"
        import struct

        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack(fmt, 1, 0))
        if _TIOCOUTQ is None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF_CAP)
    except (OSError, ValueError):  # closed meanwhile: nothing left to drop
        pass


def _connection(url: str, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if parts.scheme == "https":
        import ssl

        return http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout,
                                           context=ssl.create_default_context())
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)


def _base_path(url: str) -> str:
    return os.path.dirname(urlsplit(url).path)


def _user_agent() -> str:
    try:
        import speedtest

        return speedtest.build_user_agent()
    except Exception:  # noqa: BLE001 - an old library must not stop a test
        return "schoolmon-agent"


def _why(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timeout"
    return "error: %s: %s" % (exc.__class__.__name__, exc)


def ping(url: str, timeout: float, count: int = PINGS, clock: Clock = time.monotonic
         ) -> Tuple[float, float, int]:
    """(lowest ms, jitter ms, bytes received) of ``count`` GETs of latency.txt on one
    connection (the first also opens it and is left out). Raises SpeedtestFailed."""
    conn = _connection(url, timeout)
    path = _base_path(url) + "/latency.txt"
    times: List[float] = []
    got = 0
    try:
        for i in range(count + 1):
            t = clock()
            conn.request("GET", "%s?x=%d.%d" % (path, int(time.time() * 1000), i),
                         headers={"User-Agent": _user_agent(), "Cache-Control": "no-cache"})
            resp = conn.getresponse()
            body = resp.read(ANSWER)
            got += len(body)
            if resp.status != 200 or not body.startswith(b"test=test"):
                raise SpeedtestFailed("error: latency.txt answered http %d" % resp.status)
            if i:
                times.append((clock() - t) * 1000.0)
    except (OSError, http.client.HTTPException) as exc:
        raise SpeedtestFailed(_why(exc)) from None
    finally:
        conn.close()
    jitter = (sum(abs(a - b) for a, b in zip(times, times[1:])) / (len(times) - 1)
              if len(times) > 1 else 0.0)
    return min(times), jitter, got


def _download(url: str, phase: Phase, budget: Budget, deadline: float, timeout: float,
              clock: Clock) -> None:
    path = "%s/random%dx%d.jpg" % (_base_path(url), IMAGE, IMAGE)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    conn = _connection(url, timeout)
    try:
        while not phase.stop.is_set() and clock() < deadline:
            conn.request("GET", "%s?x=%d" % (path, random.getrandbits(48)),
                         headers={"User-Agent": _user_agent(), "Cache-Control": "no-cache"})
            resp = conn.getresponse()
            if resp.status != 200:
                phase.fail("error: http %d" % resp.status)
                return
            while not phase.stop.is_set() and clock() < deadline:
                if not budget.take(CHUNK):
                    phase.stop.set()
                    return
                n = 0
                try:
                    n = resp.readinto(view)
                finally:
                    budget.moved(n, CHUNK, rx=True)
                if not n:
                    break
                phase.add(n)
    except (OSError, http.client.HTTPException) as exc:
        phase.fail(_why(exc), clock())
    finally:
        conn.close()


def _upload(url: str, phase: Phase, budget: Budget, deadline: float, timeout: float,
            clock: Clock) -> None:
    path = urlsplit(url).path or "/upload.php"
    conn = _connection(url, timeout)
    view = memoryview(_BLOCK)
    try:
        while not phase.stop.is_set() and clock() < deadline:
            size = max(CHUNK, min(UPLOAD_BODY, phase.cap // THREADS))
            if not budget.take(ANSWER):  # the ``size=...`` answer is bytes too
                phase.stop.set()
                return
            conn.putrequest("POST", "%s?x=%d" % (path, random.getrandbits(48)))
            conn.putheader("User-Agent", _user_agent())
            conn.putheader("Content-Type", "application/octet-stream")
            conn.putheader("Content-Length", str(size))
            conn.endheaders()
            if phase.sockets.get(threading.get_ident()) is not conn.sock:
                _abortive(conn.sock)  # a new connection (the first, or after a close)
                phase.sockets[threading.get_ident()] = conn.sock
            sent = 0
            while sent < size:
                if phase.stop.is_set() or clock() >= deadline:
                    return  # mid-body: closing the connection ends the request
                n = min(CHUNK, size - sent)
                if not budget.take(n):
                    phase.stop.set()
                    return
                ok: Optional[int] = 0
                try:
                    ok = _send(conn.sock, view[:n], deadline, timeout, clock)
                finally:
                    budget.moved(ok or 0, n, rx=False)
                if ok is None:
                    return  # the phase's time is up
                sent += ok
                phase.add(ok)
            # The answer comes once the server has the whole body: a body still queued
            # here at the deadline is not waited for (it would keep the link busy).
            body = b""
            try:
                if not _until(conn.sock, deadline, timeout, clock):
                    return
                resp = conn.getresponse()
                body = resp.read(ANSWER)
            except socket.timeout:
                if clock() >= deadline:
                    return
                raise
            finally:
                budget.moved(len(body), ANSWER, rx=True)
            if resp.status != 200:
                phase.fail("error: upload.php answered http %d" % resp.status)
                return
    except (OSError, http.client.HTTPException) as exc:
        phase.fail(_why(exc), clock())
    finally:
        # what never left is not counted, and the reset on close drops it from the link
        budget.unsent(phase.drop(conn.sock))
        conn.close()


def _until(sock: Any, deadline: float, timeout: float, clock: Clock) -> bool:
    """The next wait on ``sock`` ends at the deadline at the latest (False: it passed)."""
    left = deadline - clock()
    if left <= 0:
        return False
    sock.settimeout(min(timeout, left))
    return True


def _send(sock: Any, data: memoryview, deadline: float, timeout: float,
          clock: Clock) -> Optional[int]:
    """Hand ``data`` (or its start) to ``sock``: the bytes taken, or None when the phase's
    time ran out while the send queue was full. Not sendall: a full queue makes room only
    once a third of it has drained (Linux), seconds on a slow link, and those seconds must
    not run past the phase (the socket.timeout after the deadline is no stall)."""
    if not _until(sock, deadline, timeout, clock):
        return None
    try:
        return int(sock.send(data))
    except socket.timeout:
        if clock() >= deadline:
            return None
        raise


def _run_phase(work: Callable[..., None], url: str, phase: Phase, budget: Budget,
               timeout: float, clock: Clock) -> None:
    """Run ``THREADS`` workers for ``phase.seconds``; sample the byte count meanwhile. The
    threads are daemons: one stuck past its socket timeout is left behind, never waited
    for longer than the phase plus one timeout."""
    start = clock()
    deadline = start + phase.seconds
    phase.deadline = deadline
    threads = [threading.Thread(target=work, args=(url, phase, budget, deadline, timeout,
                                                   clock), name="speedtest-%d" % i,
                                daemon=True) for i in range(THREADS)]
    phase.samples.append((start, 0))
    for t in threads:
        t.start()
    hard = deadline + timeout + 1.0
    while any(t.is_alive() for t in threads) and clock() < hard:
        time.sleep(SAMPLE_EVERY)
        now = clock()
        if now <= deadline and not phase.stop.is_set():
            phase.samples.append((now, phase.delivered()))
        elif phase.stop.is_set() and phase.samples[-1][1] < phase.bytes and \
                now <= deadline:
            # the budget or the cap ended it: its last bytes count, at the time they came
            phase.samples.append((now, phase.delivered()))
    phase.stop.set()
    if any(t.is_alive() for t in threads) or (phase.late and phase.stalled()):
        phase.fail("timeout")


def measure(server: Server, mode: str, budget_bytes: int, timeout: float,
            clock: Clock = time.monotonic) -> Dict[str, Any]:
    """One test against ``server``: the catalogue's fields from ``ok`` to ``bytes_tx``
    (``ok`` false with ``reason`` when it failed)."""
    limit = budget_bytes if mode == "full" else min(budget_bytes, SHORT_BYTES)
    seconds = FULL_SECONDS if mode == "full" else SHORT_SECONDS
    budget = Budget(limit)
    out: Dict[str, Any] = {"ok": False}
    try:
        ping_ms, jitter_ms, got = ping(server.url, timeout, clock=clock)
    except SpeedtestFailed as exc:
        return {"ok": False, "reason": exc.reason, "bytes_rx": 0, "bytes_tx": 0}
    budget.take(got)
    budget.moved(got, got, rx=True)
    out.update(ping_ms=round(ping_ms, 2), jitter_ms=round(jitter_ms, 2))
    down = Phase(max(0, int((limit - got) * DOWN_SHARE)), seconds, clock)
    _run_phase(_download, server.url, down, budget, timeout, clock)
    down_mbps = down.mbps()
    up = None
    up_mbps = None
    if not down.errors and down_mbps is not None:
        up = Phase(max(0, limit - budget.reserved), seconds, clock)
        _run_phase(_upload, server.url, up, budget, timeout, clock)
        up_mbps = up.mbps()
    out.update(bytes_rx=budget.rx, bytes_tx=budget.tx)
    errors = down.errors + (up.errors if up else [])
    if errors:
        out["reason"] = "timeout" if "timeout" in errors else errors[0]
    elif down_mbps is None or up_mbps is None:
        out["reason"] = "budget" if budget.exhausted or limit <= got else "error: no data moved"
    else:
        out.update(ok=True, down_mbps=round(down_mbps, 2), up_mbps=round(up_mbps, 2))
    if not out["ok"]:
        out.pop("ping_ms", None)
        out.pop("jitter_ms", None)
    return out


def speedtest_net_servers(timeout: float, limit: int = 3) -> List[Server]:
    """speedtest.net's closest servers (secure), with the ISP and IP its configuration saw.
    In a thread with a deadline: without Internet, DNS alone can take long. Raises
    SpeedtestFailed(``no_server``)."""
    box: Dict[str, Any] = {}

    def find() -> None:
        try:
            import speedtest

            st = speedtest.Speedtest(secure=True, timeout=min(timeout, 10.0))
            client = st.config.get("client", {})
            found = st.get_closest_servers(limit)
            box["servers"] = [Server(s["url"].replace("http://", "https://", 1),
                                     "%s (%s)" % (s.get("name", ""), s.get("sponsor", "")),
                                     client.get("isp", ""), client.get("ip", ""))
                              for s in found]
        except Exception as exc:  # noqa: BLE001 - any failure of an archived library
            box["error"] = exc

    t = threading.Thread(target=find, name="speedtest-net", daemon=True)
    t.start()
    t.join(min(timeout, DISCOVER_TIMEOUT))
    if t.is_alive():
        log.warning("speedtest.net: no answer within %.0f s", min(timeout, DISCOVER_TIMEOUT))
        raise SpeedtestFailed("no_server")
    if "error" in box:
        log.warning("speedtest.net unreachable: %s", box["error"])
        raise SpeedtestFailed("no_server")
    return box["servers"]


def fetch_ip(url: str, timeout: float) -> Tuple[str, int]:
    """(the public address the server saw, bytes received) from ``ip.txt`` next to
    ``upload.php`` (``ip=1.2.3.4``): the collector's test server and the nginx recipe
    answer it; any other server does not, and then the address is left out ("", n)."""
    conn = _connection(url, min(timeout, 5.0))
    try:
        conn.request("GET", "%s/ip.txt?x=%d" % (_base_path(url), random.getrandbits(32)),
                     headers={"User-Agent": _user_agent(), "Cache-Control": "no-cache"})
        resp = conn.getresponse()
        body = resp.read(ANSWER)
    except (OSError, http.client.HTTPException):
        return "", 0
    finally:
        conn.close()
    text = body.decode("ascii", "replace").strip()
    if resp.status != 200 or not text.startswith("ip="):
        return "", len(body)
    try:
        return str(ipaddress.ip_address(text[3:].strip())), len(body)
    except ValueError:
        return "", len(body)


def server_route(url: str, runner: Any = None) -> Optional[Route]:
    """The interface towards the server of ``url`` (see route.route_to)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    return route_to(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                    runner)


# --- the family ---------------------------------------------------------------------------

class SpeedtestFamily:
    """``collect()`` runs a test by hand; ``run(...)`` one under a grant."""

    def __init__(self, servers: Sequence[str] = (), timeout: float = 120.0,
                 io_timeout: float = 10.0, budget: int = HAND_BUDGET,
                 speedtest_net: bool = True, clock: Clock = time.monotonic,
                 discover: Optional[Callable[[float], List[Server]]] = None,
                 runner: Any = None,
                 route: Optional[Callable[[str], Optional[Route]]] = None,
                 public_ip: Optional[Callable[[str, float], Tuple[str, int]]] = None) -> None:
        self.servers = list(servers)
        #: the interface used: the route to the server tested (``ip route get``), not the
        #: default route, which a loopback or in-province server need not take
        self.route = route or (lambda url: server_route(url, runner))
        self.public_ip = public_ip or fetch_ip
        self.timeout = timeout
        self.io_timeout = io_timeout
        self.budget = budget
        self.speedtest_net = speedtest_net
        self.clock = clock
        self.discover = discover or speedtest_net_servers

    def collect(self) -> Dict[str, Any]:
        return self.run(trigger="manual")

    def candidates(self, server: str = "") -> List[Server]:
        """The servers to try in order: the one asked for, else speedtest.net's closest
        (when allowed), then the configured ones."""
        if server:
            return [Server(server)] + [Server(s) for s in self.servers if s != server]
        found: List[Server] = []
        if self.speedtest_net:
            try:
                found = self.discover(self.io_timeout)
            except SpeedtestFailed:
                log.info("falling back to the configured servers (%d)", len(self.servers))
        return found + [Server(s) for s in self.servers]

    def run(self, server: str = "", budget: Optional[int] = None, mode: str = "full",
            trigger: str = "manual", lease: str = "") -> Dict[str, Any]:
        t0 = self.clock()
        limit = self.budget if budget is None else int(budget)
        out: Dict[str, Any] = {"ok": False, "trigger": trigger, "mode": mode}
        if lease:
            out["lease"] = lease
        result: Dict[str, Any] = {"reason": "no_server", "bytes_rx": 0, "bytes_tx": 0}
        tried = 0
        for cand in self.candidates(server):
            tried += 1
            # a server that does not answer latency.txt is skipped; one that fails later
            # (moved bytes) ends the test: its bytes are spent, the next could spend more
            result = measure(cand, mode, limit, self.io_timeout, self.clock)
            result["server"] = cand.url
            for k, v in (("server_name", cand.name), ("isp", cand.isp), ("ip", cand.ip)):
                if v:
                    result[k] = v
            left = limit - result.get("bytes_rx", 0) - result.get("bytes_tx", 0)
            if result["ok"] and not cand.ip and left >= ANSWER:
                # the collector's server (or nginx by the recipe) says the address it saw
                ip, got = self.public_ip(cand.url, self.io_timeout)
                result["bytes_rx"] = result.get("bytes_rx", 0) + got
                if ip:
                    result["ip"] = ip
            if result["ok"] or result.get("bytes_rx", 0) > ANSWER * (PINGS + 1):
                break
            log.info("server %s: %s", cand.url, result.get("reason"))
            if self.clock() - t0 > self.timeout:
                break
        if not tried:
            log.warning("no test server: speedtest.net unreachable and speedtest.servers "
                        "is empty")
        elif not result["ok"] and result.get("reason") not in ("timeout", "budget") \
                and result.get("bytes_rx", 0) <= ANSWER * (PINGS + 1):
            result["reason"] = "no_server"
        out.update(result)
        via = None
        if result.get("server"):
            try:
                via = self.route(result["server"])
            except Exception:  # noqa: BLE001 - the interface is a nicety, the test the point
                log.debug("route to %s unknown", result["server"], exc_info=True)
        if via is not None:
            out.update(via.fields())
        out["dur_s"] = round(self.clock() - t0, 2)
        return out
