"""The collector's own bandwidth-test target: the legacy speedtest HTTP protocol.

speedtest-cli and the agent's ``speedtest`` family test against any server that answers
``latency.txt``, ``random{N}x{N}.jpg`` and ``upload.php`` next to each other, so the Sở can
offer an in-province target without any third party. Mounted at ``/speedtest`` by
collector/api/app.py (``speedtest_server.enabled``); no authentication (agents have no web
login, and nothing here reveals school data).

A plain ASGI app rather than FastAPI routes: a download is megabytes of chunks and an
upload megabytes of body, and routing, validation and response models only cost CPU per
chunk (the accuracy target is met with uvicorn as the collector runs it).

- Downloads are streamed from one fixed pseudo-random block (incompressible, so a proxy
  that compresses gains nothing), never built in memory; Content-Length is exact. The
  legacy sizes are those speedtest.net serves: ``random{N}x{N}.jpg`` for N in 350..4000.
- Uploads are read and discarded chunk by chunk; the answer is ``size=<bytes>``.
- ``ip.txt`` answers ``ip=<the client's address>``: the agent reports it as the school's
  public IP (``ip`` in ``speedtest``). Not part of the legacy protocol: other servers 404.
- At most ``speedtest_server.max_concurrent`` transfers at once; over that a request gets
  503 with ``Retry-After`` (a test that cannot get a slot fails cleanly instead of all
  tests of a province slowing each other down). Latency requests do not take a slot.
"""
import asyncio
import os
import random
import threading
from typing import Any, Awaitable, Callable, Dict, MutableMapping, Optional

from prometheus_client import CollectorRegistry

from .metrics import PREFIX, REGISTRY, Counter

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: The image sizes of the legacy protocol (speedtest.net's servers have these files).
SIZES = (350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000)
#: A legacy random{N}x{N}.jpg is about N*N*2 bytes (random4000x4000.jpg is 31 625 365 B on
#: the reference servers); the exact figure does not matter to a client that counts bytes.
_BYTES_PER_PIXEL = 2
#: One block of pseudo-random bytes, shared by every download.
_BLOCK = random.Random(20260101).getrandbits(8 * 65536).to_bytes(65536, "little")
#: Uploads larger than this are refused (413): a client sends chunks of at most a few MB.
MAX_UPLOAD = 64 * 1024 * 1024
RETRY_AFTER = 30


def download_size(n: int) -> int:
    return n * n * _BYTES_PER_PIXEL


class SpeedtestMetrics:
    """``schoolmon_speedtest_server_*``: requests by endpoint and answer, bytes served and
    received, and transfers refused because the server was full."""

    def __init__(self, registry: CollectorRegistry) -> None:
        p = PREFIX + "speedtest_server_"
        self.requests = Counter(registry, p + "requests_total",
                                "Test-server requests by endpoint and status.",
                                ("endpoint", "status"))
        self.bytes_sent = Counter(registry, p + "bytes_sent_total",
                                  "Bytes of download bodies sent.")
        self.bytes_received = Counter(registry, p + "bytes_received_total",
                                      "Bytes of upload bodies read and discarded.")
        self.refused = Counter(registry, p + "refused_total",
                               "Transfers refused with 503: max_concurrent were running.")


_metrics_by_registry: Dict[int, SpeedtestMetrics] = {}
_metrics_lock = threading.Lock()


def metrics_for(registry: Optional[CollectorRegistry] = None) -> SpeedtestMetrics:
    """One SpeedtestMetrics per registry (an app built twice on one registry shares it)."""
    registry = registry if registry is not None else REGISTRY
    with _metrics_lock:
        m = _metrics_by_registry.get(id(registry))
        if m is None:
            m = _metrics_by_registry[id(registry)] = SpeedtestMetrics(registry)
        return m


class SpeedtestApp:
    """The ASGI app serving the legacy endpoints under its mount point."""

    def __init__(self, max_concurrent: int = 8, metrics: Optional[SpeedtestMetrics] = None,
                 chunk: int = 65536) -> None:
        self.max_concurrent = max_concurrent
        self.metrics = metrics or metrics_for()
        self.chunk = min(chunk, len(_BLOCK))
        self.active = 0  # one event loop: a plain counter is enough

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        name = os.path.basename(path)
        method = scope.get("method", "GET")
        if name == "latency.txt" and method in ("GET", "HEAD"):
            await self._answer(send, 200, b"test=test\n", "latency")
            return
        if name.startswith("random") and name.endswith(".jpg") and method in ("GET", "HEAD"):
            n = _image_size(name)
            if n is None:
                await self._answer(send, 404, b"not found\n", "download")
                return
            await self._transfer(send, "download",
                                 self._download(receive, send, n, method == "HEAD"))
            return
        if name == "upload.php" and method == "POST":
            await self._transfer(send, "upload", self._upload(scope, receive, send))
            return
        if name == "ip.txt" and method in ("GET", "HEAD"):
            # the client's address as this server saw it: the school's public (NAT) IP
            # when the test crossed the Internet (behind a reverse proxy on this host,
            # uvicorn takes it from X-Forwarded-For: proxy_headers, trusted 127.0.0.1)
            client = scope.get("client") or ("",)
            await self._answer(send, 200, b"ip=%s\n" % str(client[0] or "").encode(), "ip")
            return
        if name == "upload.php" and method == "GET":  # probes of the URL: say it is there
            await self._answer(send, 200, b"size=0", "upload")
            return
        await self._answer(send, 404, b"not found\n", "other")

    async def _transfer(self, send: Send, endpoint: str, work: Awaitable[None]) -> None:
        if self.active >= self.max_concurrent:
            self.metrics.refused.inc()
            work.close()  # type: ignore[attr-defined]  # the coroutine is never awaited
            await self._answer(send, 503, b"busy, retry later\n", endpoint,
                               [(b"retry-after", str(RETRY_AFTER).encode())])
            return
        self.active += 1
        try:
            await work
        finally:
            self.active -= 1

    async def _download(self, receive: Receive, send: Send, n: int, head: bool) -> None:
        size = download_size(n)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"image/jpeg"), (b"content-length", str(size).encode()),
            (b"cache-control", b"no-store")]})
        self.metrics.requests.inc(endpoint="download", status="200")
        if head:
            await send({"type": "http.response.body", "body": b""})
            return
        # A client ends a download by closing the connection when its time is up: stop
        # at once instead of writing the rest of the file into a closed socket.
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        left = size
        view = memoryview(_BLOCK)
        try:
            while left > 0 and not gone.is_set():
                take = min(left, self.chunk)
                left -= take
                # bytes(): the server may hold the chunk after send returns
                await send({"type": "http.response.body", "body": bytes(view[:take]),
                            "more_body": left > 0})
                self.metrics.bytes_sent.inc(take)
                # send() does not wait while the socket takes data: yield, so other
                # transfers get their turn and a closed connection is noticed
                await asyncio.sleep(0)
        finally:
            watcher.cancel()

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = _content_length(scope)
        if length is not None and length > MAX_UPLOAD:
            await self._answer(send, 413, b"too large\n", "upload")
            return
        got = 0
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":  # the client gave up mid-body
                self.metrics.bytes_received.inc(got)
                self.metrics.requests.inc(endpoint="upload", status="disconnect")
                return
            body = event.get("body", b"")
            got += len(body)
            if not event.get("more_body", False):
                break
        self.metrics.bytes_received.inc(got)
        await self._answer(send, 200, b"size=%d" % got, "upload")

    async def _answer(self, send: Send, status: int, body: bytes, endpoint: str,
                      extra: Any = ()) -> None:
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-store")] + list(extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.metrics.requests.inc(endpoint=endpoint, status=str(status))


def _image_size(name: str) -> Optional[int]:
    """N of ``random{N}x{N}.jpg`` when N is a legacy size, else None."""
    core = name[len("random"):-len(".jpg")]
    a, x, b = core.partition("x")
    if not x or a != b or not a.isdigit():
        return None
    n = int(a)
    return n if n in SIZES else None


def _content_length(scope: Scope) -> Optional[int]:
    for k, v in scope.get("headers", ()):
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None
