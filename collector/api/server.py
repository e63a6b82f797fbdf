"""Serving the app with uvicorn in a background thread (the main thread keeps the signals,
so ``run`` and ``demo`` decide themselves how to stop everything in order)."""
import socket
import threading
import time
from typing import Any, Optional, Tuple

import uvicorn


def split_listen(listen: str) -> Tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def port_free(host: str, port: int) -> bool:
    """True when a server could listen on host:port now. SO_REUSEADDR as uvicorn sets it:
    connections of a stopped server lingering in TIME_WAIT do not make the port busy."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class ApiServer:
    """uvicorn serving ``app`` on ``host:port`` in a thread; ``start()`` waits until it
    listens (raising RuntimeError naming the address when it cannot), ``stop()`` finishes
    the requests in hand and joins."""

    def __init__(self, app: Any, host: str, port: int, log_level: str = "warning",
                 access_log: bool = False) -> None:
        self.host, self.port = host, port
        self.server = uvicorn.Server(uvicorn.Config(
            app, host=host, port=port, log_level=log_level, access_log=access_log,
            lifespan="off", timeout_graceful_shutdown=5))
        self.thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None

    def _run(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:  # SystemExit from a failed bind, too
            self._error = exc

    def start(self, timeout: float = 15.0) -> "ApiServer":
        self.thread = threading.Thread(target=self._run, name="schoolmon-api", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("api.listen: cannot listen on %s:%d (address in use or not "
                                   "allowed)" % (self.host, self.port))
            time.sleep(0.02)
        return self

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = "[%s]" % host
        return "http://%s:%d" % (host, self.port)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():
                self.server.force_exit = True
                self.thread.join(2)
            self.thread = None
