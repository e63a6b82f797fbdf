"""Helpers for the end-to-end tests: the real ``schoolmon-collector`` and ``schoolmon-agent``
console scripts as child processes against private Mosquitto, VictoriaMetrics and
PostgreSQL (tests/servers.py), and small readers for the collector's HTTP API, its
``/metrics`` and its state store."""
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from typing import Any, Dict, List, Optional

import httpx

from tests.agent.agenthelp import AgentProcess, agent_config, wait_for
from tests.servers import Postgres, free_port, read_log

BIN = os.path.dirname(sys.executable)
COLLECTOR = os.path.join(BIN, "schoolmon-collector")
AGENT = os.path.join(BIN, "schoolmon-agent")

__all__ = ["AgentProcess", "agent_config", "wait_for", "Collector", "clean_env",
           "fresh_database", "write_schools_csv", "import_schools", "parse_metrics",
           "kill_group", "agent_collect", "mosquitto_sub_one"]


#: SCHOOLMON_* variables the whole suite sets (tests/conftest.py): kept in clean_env.
SUITE_VARIABLES = ("SCHOOLMON_ALERTING_CALENDAR_FILE",)


def clean_env(**extra: str) -> Dict[str, str]:
    """This process's environment without any SCHOOLMON_* variable but the suite's own
    (an always-open school calendar), plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SCHOOLMON_") or k in SUITE_VARIABLES}
    env.update(extra)
    return env


def kill_group(proc: Optional[subprocess.Popen], sig: int = signal.SIGKILL) -> None:
    """Signal the whole process group of ``proc`` (started with start_new_session)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


def fresh_database(pg: Postgres) -> str:
    """A new empty database in the session's PostgreSQL; its SQLAlchemy URL."""
    name = "e2e_" + uuid.uuid4().hex[:10]
    subprocess.run(pg._cmd([pg.bin + "/psql", "-h", "127.0.0.1", "-p", str(pg.port),
                            "-U", "postgres", "-c", "CREATE DATABASE %s" % name]),
                   check=True, stdout=subprocess.DEVNULL, timeout=30)
    return "postgresql+psycopg://postgres@127.0.0.1:%d/%s" % (pg.port, name)


def write_schools_csv(path: str, code: str) -> str:
    """A school list as a Sở would keep it: Vietnamese headers, Vietnamese names."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("Mã trường,Tên trường,Cấp học,Xã/phường,Tỉnh,Số học sinh,Nhà mạng\n"
                 "%s,Trường THCS Kim Đồng,THCS,Xã Bát Xát,Lào Cai,512,VNPT\n" % code)
    return path


def import_schools(csv_path: str, config_path: str) -> str:
    """``schoolmon-collector schools import FILE --config FILE``; its output."""
    r = subprocess.run([COLLECTOR, "schools", "import", csv_path, "--config", config_path],
                       capture_output=True, text=True, env=clean_env(), timeout=60)
    assert r.returncode == 0, "schools import failed (%d):\n%s\n%s" % (
        r.returncode, r.stdout, r.stderr)
    return r.stdout


def parse_metrics(text: str) -> Dict[str, float]:
    """Prometheus text → {"name{labels}": value} (plus "name" summed over its labels)."""
    out: Dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            v = float(value)
        except ValueError:
            continue
        out[key] = v
        name = key.split("{", 1)[0]
        if "{" in key:
            out[name] = out.get(name, 0.0) + v
    return out


def agent_collect(tmp: str, school: str, *families: str) -> List[Dict[str, Any]]:
    """``schoolmon-agent collect --family ...`` on this machine (its own state folder)."""
    conf = os.path.join(tmp, "collect.toml")
    with open(conf, "w", encoding="utf-8") as fh:
        fh.write('[agent]\nschool = "%s"\nstate_dir = "%s"\n'
                 % (school, os.path.join(tmp, "collect-state")))
    argv = [AGENT, "collect", "--config", conf]
    for f in families:
        argv += ["--family", f]
    r = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def mosquitto_sub_one(port: int, topic: str, timeout: int = 5) -> Dict[str, Any]:
    """The retained message of ``topic``, read by Mosquitto's own client."""
    r = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", topic,
                        "-C", "1", "-W", str(timeout), "-v", "-F", "%r %p"],
                       capture_output=True, text=True, timeout=timeout + 5)
    assert r.returncode == 0 and r.stdout.strip(), "nothing retained on %s: %s" % (
        topic, r.stderr)
    retained, _, payload = r.stdout.strip().partition(" ")
    return {"retain": retained == "1", "payload": json.loads(payload)}


class Collector:
    """``schoolmon-collector run --config FILE``: the real console script, its own process
    group, the admin token given through ``SCHOOLMON_API_ADMIN_TOKEN``."""

    def __init__(self, tmp: str, mqtt_url: str, store_url: str, influx_url: str) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.token = secrets.token_urlsafe(32)
        self.config_path = os.path.join(tmp, "collector.toml")
        self.log_path = os.path.join(tmp, "collector.log")
        with open(self.config_path, "w", encoding="utf-8") as fh:
            fh.write('[mqtt]\nurl = "%s"\nclient_id = "e2e-collector-%s"\n\n'
                     '[store]\nurl = "%s"\n\n'
                     '[influx]\nurl = "%s"\n\n'
                     '[ingest]\nbatch_wait = 0.1\n\n'
                     '[liveness]\nsweep_interval = 1.0\n\n'
                     '[api]\nlisten = "127.0.0.1:%d"\n\n'
                     '[province]\ncode = "lao-cai"\nname = "Lào Cai"\n'
                     % (mqtt_url, uuid.uuid4().hex[:8], store_url, influx_url, self.port))
        self.store_url = store_url
        self.proc: Optional[subprocess.Popen] = None
        self.http = httpx.Client(base_url=self.url, timeout=10,
                                 headers={"Authorization": "Bearer " + self.token})

    def start(self, timeout: float = 30.0) -> "Collector":
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps its own copy
        try:
            self.proc = subprocess.Popen(
                [COLLECTOR, "run", "--config", self.config_path], stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env=clean_env(SCHOOLMON_API_ADMIN_TOKEN=self.token))
        finally:
            log.close()

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, \
                "collector exited:\n" + self.log()
            try:
                return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        wait_for(ready, timeout, "collector /healthz 200", step=0.2)
        return self

    def get(self, path: str, **params: Any) -> Any:
        r = self.http.get(path, params=params or None)
        assert r.status_code == 200, "%s: %d %s" % (path, r.status_code, r.text[:500])
        return r.json()

    def device(self, device_id: str) -> Dict[str, Any]:
        return self.get("/api/v1/devices/%s" % device_id)

    def metrics(self) -> Dict[str, float]:
        r = httpx.get(self.url + "/metrics", timeout=10)
        assert r.status_code == 200
        return parse_metrics(r.text)

    def device_row(self, device_id: str) -> Dict[str, Any]:
        """The device's row in the state store itself (PostgreSQL), e.g. ``missing``."""
        from schoolmon.collector.store import schema as db
        from sqlalchemy import select
        engine = db.make_engine(self.store_url)
        try:
            with engine.connect() as conn:
                row = conn.execute(select(db.devices).where(db.devices.c.id == device_id)).first()
                return dict(row._mapping) if row is not None else {}
        finally:
            engine.dispose()

    def terminate(self, timeout: float = 20.0) -> "tuple[int, float]":
        """SIGTERM; (exit status, seconds it took to exit)."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
            raise AssertionError("collector did not stop within %.0f s of SIGTERM:\n%s"
                                 % (timeout, self.log())) from None
        return rc, time.monotonic() - t0

    def close(self) -> None:
        kill_group(self.proc)
        self.http.close()

    def log(self) -> str:
        return read_log(self.log_path, last=6000)
