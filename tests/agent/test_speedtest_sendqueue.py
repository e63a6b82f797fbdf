"""The upload's send queues, against a real legacy server on loopback that reads uploads
slowly (a slow school uplink): what is still queued when the phase ends is not counted in
``bytes_tx`` and is dropped (a reset), so nothing keeps the link busy after the test (the
end-to-end link test saw ~1 MB left over at 0.8 Mbit/s and the next test's ping at 200 ms).

The server counts the bytes its handlers read. When the test returns, those it has read
so far are what left the agent during the test (give or take the server's small receive
buffer); anything it reads later was still queued at the agent. No timing is assumed: the
server's pace only sets how large the leftover would be."""
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from schoolmon.agent.families import speedtest as st
from schoolmon.agent.families.speedtest import SpeedtestFamily

#: bytes that may be in flight on loopback besides the queues measured: a chunk per thread
SLACK = st.THREADS * st.CHUNK


def _queued(sock):
    """Bytes the server's kernel has taken (and acknowledged) but its handler not read."""
    import fcntl
    import termios

    try:
        buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return int.from_bytes(buf, sys.byteorder)


class _SlowUpload(BaseHTTPRequestHandler):
    """Legacy protocol; downloads at full speed, uploads read 4 KiB every 20 ms per
    connection (about 6 Mbit/s for four)."""
    protocol_version = "HTTP/1.1"
    rbufsize = 0  # unbuffered: every body byte read is counted as it is read
    lock = threading.Lock()
    received = 0
    active = 0
    idle = threading.Condition(lock)
    sockets = set()

    @classmethod
    def taken(cls):
        """Bytes read so far plus those waiting in the connections' receive queues (call
        with ``lock`` held)."""
        return cls.received + sum(_queued(s) for s in cls.sockets)

    def log_message(self, *a):
        pass

    def _answer(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/latency.txt"):
            self._answer(b"test=test\n")
            return
        size = 4 * 10 ** 6
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        try:
            self.wfile.write(b"\0" * size)
        except OSError:
            pass

    def do_POST(self):
        cls = type(self)
        with cls.lock:
            cls.active += 1
            cls.sockets.add(self.connection)
        try:
            n = int(self.headers["Content-Length"])
            got = 0
            while got < n:
                try:
                    chunk = self.rfile.read(min(4096, n - got))
                except OSError:  # the agent's reset
                    return
                if not chunk:
                    return
                got += len(chunk)
                with cls.lock:
                    cls.received += len(chunk)
                time.sleep(0.02)
            self._answer(b"size=%d" % got)
        finally:
            with cls.lock:
                cls.active -= 1
                cls.sockets.discard(self.connection)
                cls.idle.notify_all()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        # A bounded receive buffer (before listen(): accepted sockets inherit it), several
        # loopback segments (64 KiB) long so the window never closes for good: without it
        # the kernel grows it to megabytes and a whole body would sit there.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        super().server_bind()


@pytest.fixture
def slow_upload():
    handler = type("H", (_SlowUpload,), {})
    handler.lock = threading.Lock()
    handler.idle = threading.Condition(handler.lock)
    handler.sockets = set()
    srv = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d/upload.php" % srv.server_address[1], handler
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("outq", ["tiocoutq", "capped"])
def test_queued_upload_is_neither_counted_nor_sent_later(slow_upload, monkeypatch, outq):
    """``tiocoutq``: Linux, the queued bytes are read and taken off. ``capped``: as where
    they cannot be read (Windows): the send buffer is capped, which bounds the overcount
    by THREADS × SNDBUF_CAP (×2 here: Linux doubles a SO_SNDBUF)."""
    url, handler = slow_upload
    monkeypatch.setattr(st, "FULL_SECONDS", 2.0)
    if outq == "capped":
        monkeypatch.setattr(st, "_TIOCOUTQ", None)
    # (no route look-up: the test returns the moment its upload ends)
    r = SpeedtestFamily(speedtest_net=False, io_timeout=10.0, route=lambda: None).run(
        server=url, mode="full", budget=30 * 10 ** 6)
    with handler.lock:
        at_return = handler.taken()
        # the resets end every upload handler; a leftover would keep them reading
        assert handler.idle.wait_for(lambda: handler.active == 0, timeout=60)
        final = handler.received
    assert at_return > 0
    # nothing kept going after the test: the server read no more than it had taken
    assert final - at_return <= SLACK, (final, at_return)
    allowed = SLACK if outq == "tiocoutq" else SLACK + st.THREADS * 2 * st.SNDBUF_CAP
    # bytes_tx is what left, not what was handed to the sockets (the request headers are
    # not counted)
    assert abs(r["bytes_tx"] - at_return) <= allowed, (r["bytes_tx"], final, at_return)
    # and the test waited for no queued body past its time (before: a socket timeout)
    assert r["ok"] is True, r
