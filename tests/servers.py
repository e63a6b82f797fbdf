"""Real servers for tests, each private to a test run, on a free loopback port.

Mosquitto, VictoriaMetrics and PostgreSQL from Debian's packages are started as child
processes in a temporary folder and stopped (and their folders removed) afterwards.
Use them through the fixtures in conftest.py.
"""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from typing import Callable, List, Optional


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0, proc: Optional[subprocess.Popen] = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited with %s before listening on %d" % (proc.returncode, port))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("nothing listens on 127.0.0.1:%d after %.0fs" % (port, timeout))


def _which(name: str, *extra: str) -> str:
    for candidate in (shutil.which(name),) + extra:
        if candidate and os.path.exists(candidate):
            return candidate
    raise RuntimeError("%s is not installed: run `make servers` (Debian package)" % name)


class Server:
    """A child process with its own folder; ``stop()`` is idempotent."""

    def __init__(self, name: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="schoolmon-%s-" % name)
        self.proc: Optional[subprocess.Popen] = None
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "server.log")

    def _spawn(self, argv: List[str], **kw) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - open while the server runs
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, **kw)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop the process the hard way, keeping its data folder (for restart tests)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        return read_log(self.log_path)


class Mosquitto(Server):
    """A private Mosquitto 2 with persistence, unlimited queues for persistent sessions."""

    def __init__(self, extra_conf: str = "") -> None:
        super().__init__("mosquitto")
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as fh:
            fh.write(
                "listener %d 127.0.0.1\n"
                "allow_anonymous true\n"
                "persistence true\n"
                "persistence_location %s/\n"
                "autosave_interval 1\n"
                "max_queued_messages 0\n"
                "max_inflight_messages 0\n"
                "message_size_limit 0\n"
                "log_dest stdout\n"
                "log_type error\nlog_type warning\nlog_type notice\n"
                "%s\n" % (self.port, self.dir, extra_conf))
        if os.geteuid() == 0:
            # mosquitto drops root to user "mosquitto": let it write its folder.
            try:
                uid = pwd.getpwnam("mosquitto").pw_uid
                os.chown(self.dir, uid, -1)
            except KeyError:
                pass
        self.start()

    @property
    def url(self) -> str:
        return "mqtt://127.0.0.1:%d" % self.port

    def start(self) -> None:
        self._spawn([_which("mosquitto", "/usr/sbin/mosquitto"), "-c", self.conf])
        wait_port(self.port, proc=self.proc)

    def restart(self, down_seconds: float = 0.0) -> None:
        self.kill(signal.SIGTERM)
        time.sleep(down_seconds)
        self.start()


class VictoriaMetrics(Server):
    """VictoriaMetrics single node: InfluxDB line protocol at /api/v2/write, export API."""

    def __init__(self) -> None:
        super().__init__("victoria")
        self.start()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def start(self) -> None:
        self._spawn([_which("victoria-metrics"), "-httpListenAddr=127.0.0.1:%d" % self.port,
                     "-storageDataPath=%s/data" % self.dir, "-retentionPeriod=100y",
                     "-search.latencyOffset=0s", "-loggerLevel=ERROR"])
        wait_port(self.port, proc=self.proc)

    def flush(self) -> None:
        """Make what was written searchable now (VictoriaMetrics buffers ~1s)."""
        urllib.request.urlopen(self.url + "/internal/force_flush", timeout=10).read()

    def export(self, match: str) -> List[dict]:
        """Every stored sample of series matching ``match`` (a PromQL selector)."""
        import json
        import urllib.parse
        self.flush()
        q = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(self.url + "/api/v1/export?" + q, timeout=10) as r:
            return [json.loads(line) for line in r.read().decode().splitlines() if line.strip()]


class Postgres(Server):
    """A throwaway PostgreSQL cluster (run as user postgres when we are root)."""

    def __init__(self) -> None:
        super().__init__("postgres")
        bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bindir:
            raise RuntimeError("PostgreSQL is not installed: run `make servers`")
        self.bin = bindir[-1]
        self.data = os.path.join(self.dir, "data")
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            uid = pwd.getpwnam("postgres").pw_uid
            os.chown(self.dir, uid, -1)
        subprocess.run(self._cmd([self.bin + "/initdb", "-D", self.data, "-U", "postgres",
                                  "-A", "trust", "-E", "UTF8", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.start()
        subprocess.run(self._cmd([self.bin + "/psql", "-h", "127.0.0.1", "-p", str(self.port),
                                  "-U", "postgres", "-c", "CREATE DATABASE schoolmon"]),
                       check=True, stdout=subprocess.DEVNULL)

    def _cmd(self, argv: List[str]) -> List[str]:
        return (["runuser", "-u", "postgres", "--"] + argv) if self._as_postgres else argv

    @property
    def url(self) -> str:
        return "postgresql+psycopg://postgres@127.0.0.1:%d/schoolmon" % self.port

    def start(self) -> None:
        self._spawn(self._cmd([self.bin + "/postgres", "-D", self.data, "-h", "127.0.0.1",
                               "-p", str(self.port), "-k", self.dir, "-c", "fsync=off",
                               "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]))
        wait_port(self.port, proc=self.proc)
        time.sleep(0.3)  # accepting TCP comes a moment before accepting logins


class ByteRelay:
    """A TCP relay on loopback in front of ``target_port`` that counts the bytes crossing it
    each way (what crosses the TCP connection: the MQTT layer, no IP/TCP headers).
    ``meter(way)`` — way is "up" (client → server) or "down" — may return a callable that
    is fed every chunk of one connection in that direction (one per connection)."""

    def __init__(self, target_port: int,
                 meter: Optional[Callable[[str], Callable[[bytes], None]]] = None) -> None:
        self.target = target_port
        self.meter = meter
        self.lock = threading.Lock()
        self.up = self.down = 0
        self.closed = False
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def total(self) -> int:
        return self.up + self.down

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.srv.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            for src, dst, way in ((client, server, "up"), (server, client, "down")):
                feed = self.meter(way) if self.meter else None
                threading.Thread(target=self._pipe, args=(src, dst, way, feed),
                                 daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, way: str,
              feed: Optional[Callable[[bytes], None]]) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    if way == "up":
                        self.up += len(data)
                    else:
                        self.down += len(data)
                if feed is not None:
                    feed(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.srv.close()


def make_test_pki(folder: str, client_cn: Optional[str] = None) -> None:
    """A throw-away CA, a server certificate for 127.0.0.1 and (with ``client_cn``) a
    client certificate, as ca.crt, server.crt/.key, client.crt/.key in ``folder``, readable
    by the broker (which drops root to user mosquitto)."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl"] + list(args), cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.crt")
    names = [("server", "127.0.0.1")] + ([("client", client_cn)] if client_cn else [])
    for name, cn in names:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % cn,
                "-keyout", "%s.key" % name, "-out", "%s.csr" % name)
        ext = os.path.join(folder, "%s.ext" % name)
        with open(ext, "w") as fh:
            fh.write("subjectAltName=IP:127.0.0.1\n" if name == "server" else
                     "extendedKeyUsage=clientAuth\n")
        openssl("x509", "-req", "-in", "%s.csr" % name, "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-out", "%s.crt" % name, "-extfile", ext)
    for f in os.listdir(folder):
        os.chmod(os.path.join(folder, f), 0o644)
    os.chmod(folder, 0o755)


def read_log(path: str, last: Optional[int] = None) -> str:
    """A child process's log file as text (its ``last`` characters); "" if there is none."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return text[-last:] if last else text
