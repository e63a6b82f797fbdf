"""Helpers for the collector's ingest tests: config files, a collector process, polling."""
import os
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterable, Optional

from schoolmon.collector.config import load_config
from schoolmon.collector.store import registry
from schoolmon.collector.store import schema as db

from tests.servers import read_log


def wait_until(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.1,
               what: Any = "condition") -> Any:
    """Poll ``check`` until true; ``what`` (a text, or a function giving one) names it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    if callable(what):
        what = what()
    raise AssertionError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))


def seed_schools(store_url: str, rows: Iterable[Dict[str, Any]]) -> None:
    engine = db.make_engine(store_url)
    db.create_all(engine)
    registry.add_schools(engine, list(rows))
    engine.dispose()


def school_row(code: str, area: str = "Huyện Bát Xát", province: str = "Lào Cai") -> Dict[str, Any]:
    return {"code": code, "name": "Trường Tiểu học %s" % code, "level": "TH", "area": area,
            "province": province}


def write_config(path: str, mqtt_url: str, store_url: str, influx_url: str = "",
                 client_id: str = "test-collector", **ingest: Any) -> str:
    lines = ["[mqtt]", 'url = "%s"' % mqtt_url, 'client_id = "%s"' % client_id, "",
             "[store]", 'url = "%s"' % store_url, "", "[influx]", 'url = "%s"' % influx_url,
             "", "[liveness]", "sweep_interval = 1.0", "", "[ingest]"]
    for k, v in ingest.items():
        lines.append("%s = %s" % (k, repr(v) if not isinstance(v, str) else '"%s"' % v))
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def config(mqtt_url: str, store_url: str, influx_url: str = "", client_id: str = "test-collector",
           **ingest: Any) -> Any:
    over: Dict[str, Dict[str, Any]] = {
        "mqtt": {"url": mqtt_url, "client_id": client_id},
        "store": {"url": store_url}, "influx": {"url": influx_url},
        "liveness": {"sweep_interval": 1.0}}
    if ingest:
        over["ingest"] = ingest
    return load_config(env={}, demo=True, overrides=over)


class CollectorProcess:
    """``python -m schoolmon.collector.service`` as a child process."""

    def __init__(self, config_path: str, stats_path: Optional[str] = None,
                 log_path: Optional[str] = None) -> None:
        self.config_path = config_path
        self.stats_path = stats_path
        self.log_path = log_path or config_path + ".log"
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 20.0) -> "CollectorProcess":
        argv = [sys.executable, "-m", "schoolmon.collector.service", "--config", self.config_path,
                "--log-level", "INFO"]
        if self.stats_path:
            argv += ["--stats", self.stats_path]
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open while the process runs
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log,
                                     start_new_session=True)
        log.close()
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.strip() == b"ready" or not line:
                break
        if line.strip() != b"ready":
            self.kill()
            raise RuntimeError("collector did not start:\n" + self.log())
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def log(self) -> str:
        return read_log(self.log_path, last=5000)


def mosquitto_pub(port: int, topic: str, message: Optional[bytes] = None,
                  file: Optional[str] = None, qos: int = 1, retain: bool = False,
                  lines: Optional[bytes] = None) -> None:
    """Publish with Mosquitto's own client (a client none of us wrote)."""
    argv = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", str(qos), "-t", topic]
    if retain:
        argv.append("-r")
    stdin = None
    if file is not None:
        argv += ["-f", file]
    elif lines is not None:
        argv.append("-l")
        stdin = lines
    else:
        assert message is not None
        argv += ["-s"]
        stdin = message
    subprocess.run(argv, input=stdin, check=True, timeout=60)
