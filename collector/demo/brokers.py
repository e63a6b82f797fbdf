"""The demo's embedded brokers: a private Mosquitto child process, or amqtt in-process."""
import asyncio
import logging
import os
import shutil
import subprocess
import threading
from typing import Any, Optional

from .processes import popen_logged, stop_process, wait_port

log = logging.getLogger("schoolmon.collector.demo")

#: In the demo folder: the pid of the embedded Mosquitto (see stop_stale_broker).
PIDFILE = "broker.pid"


def find_mosquitto() -> Optional[str]:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto",
                      "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto"):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


class MosquittoBroker:
    """A private Mosquitto (child process) on a loopback port."""

    kind = "Mosquitto"

    def __init__(self, binary: str, folder: str, port: int) -> None:
        self.binary, self.folder, self.port = binary, folder, port
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return "mqtt://127.0.0.1:%d" % self.port

    def start(self) -> "MosquittoBroker":
        os.makedirs(self.folder, exist_ok=True)
        conf = os.path.join(self.folder, "mosquitto.conf")
        with open(conf, "w") as fh:
            fh.write("# written by schoolmon-collector demo; private to the demo\n"
                     "listener %d 127.0.0.1\n"
                     "allow_anonymous true\n"
                     "persistence false\n"
                     "max_queued_messages 100000\n"
                     "log_dest stdout\n"
                     "log_type error\nlog_type warning\n" % self.port)
        if os.geteuid() == 0:
            try:  # mosquitto drops root to its own user: let it read its folder
                import pwd
                os.chown(self.folder, pwd.getpwnam("mosquitto").pw_uid, -1)
                os.chown(conf, pwd.getpwnam("mosquitto").pw_uid, -1)
            except (KeyError, OSError):
                pass
        self.proc = popen_logged([self.binary, "-c", conf], os.path.join(self.folder, "mosquitto.log"))
        # Mosquitto started as root drops to its own user, which clears the parent-death
        # signal: note its pid so that the next demo can stop one a killed demo left behind.
        with open(os.path.join(self.folder, PIDFILE), "w") as fh:
            fh.write("%d\n" % self.proc.pid)
        wait_port(self.port, 15, self.proc)
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


class AmqttBroker:
    """amqtt in this process, on its own event loop in a thread (MQTT 3.1.1 only)."""

    kind = "amqtt (in-process, MQTT 3.1.1)"

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.broker: Any = None
        self.thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None

    @property
    def url(self) -> str:
        return "mqtt://127.0.0.1:%d" % self.port

    def _run(self) -> None:
        from amqtt.broker import Broker
        loop = self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        # amqtt reports clients that vanish (and its own shutdown) as unhandled errors:
        # keep them out of the demo's console
        loop.set_exception_handler(lambda lp, ctx: log.debug("amqtt: %s", ctx.get("message")))

        async def boot() -> None:
            self.broker = Broker({
                "listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:%d" % self.port}},
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                            {"allow_anonymous": True}},
            })
            await self.broker.start()

        try:
            loop.run_until_complete(boot())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    def start(self) -> "AmqttBroker":
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        self.thread = threading.Thread(target=self._run, name="amqtt-broker", daemon=True)
        self.thread.start()
        self._ready.wait(15)
        if self._error is not None:
            raise RuntimeError("amqtt did not start: %s" % self._error)
        wait_port(self.port, 15)
        return self

    def stop(self) -> None:
        if self.loop is None or self.broker is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.broker.shutdown(), self.loop).result(10)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(10)
