"""Helpers for the agent's process and transport tests: a recording subscriber on the real
broker and the real ``schoolmon-agent run`` as a child process."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from schoolmon.agent.config import render_toml

from tests.servers import read_log

AGENT = os.path.join(os.path.dirname(sys.executable), "schoolmon-agent")
SCHOOL = "79000101"


def wait_for(cond: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))


class Recorder:
    """Subscribes to everything under schoolmon/ with a persistent session (QoS 1), so
    messages published while the broker restarts are still delivered to it afterwards."""

    def __init__(self, port: int, pattern: str = "schoolmon/#") -> None:
        self.port = port
        self.pattern = pattern
        self.lock = threading.Lock()
        self.messages: List[Dict[str, Any]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rec-" + uuid.uuid4().hex[:8],
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.reconnect_delay_set(0.1, 0.5)
        self.subscribed = threading.Event()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, keepalive=10, clean_start=False,
                            properties=props)
        self.client.loop_start()
        wait_for(self.subscribed.is_set, 10, "recorder subscription")

    def _on_connect(self, client, userdata, flags, reason, properties):
        if not reason.is_failure:
            client.subscribe(self.pattern, qos=1)
            self.subscribed.set()

    def _on_message(self, client, userdata, msg):
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            payload = None
        with self.lock:
            self.messages.append({"topic": msg.topic, "kind": msg.topic.rsplit("/", 1)[-1],
                                  "payload": payload, "retain": msg.retain,
                                  "at": time.monotonic()})

    def of(self, kind: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [m for m in self.messages if m["kind"] == kind]

    def data_seqs(self) -> List[int]:
        """seq of every data message received, in arrival order (duplicates kept)."""
        with self.lock:
            return [m["payload"]["seq"] for m in self.messages
                    if m["kind"] != "status" and m["payload"]]

    def close(self) -> None:
        try:  # disconnect first: it wakes paho's loop thread, so loop_stop returns at once
            self.client.disconnect()
        except Exception:
            pass
        self.client.loop_stop()


def check_in_order_no_gap(seqs: List[int], first: int = 1) -> List[int]:
    """Unique seqs, first arrivals strictly increasing, no gap from ``first``."""
    seen: List[int] = []
    for s in seqs:
        if s not in seen:
            assert not seen or s > seen[-1], "seq %d arrived after %d: out of order" % (s, seen[-1])
            seen.append(s)
    assert seen, "no data messages"
    assert seen == list(range(first, seen[-1] + 1)), "gap in seq: %s" % (
        sorted(set(range(first, seen[-1] + 1)) - set(seen))[:20],)
    return seen


def agent_config(tmp: str, url: str, **sections: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    cfg: Dict[str, Dict[str, Any]] = {
        "agent": {"school": SCHOOL, "state_dir": os.path.join(tmp, "state"),
                  "log_level": "debug"},
        "mqtt": {"url": url, "keepalive": 5, "reconnect_min": 0.2, "reconnect_max": 1.0},
        "intervals": {"health": 1, "start_delay_min": 0.0, "start_delay_max": 0.3,
                      "inventory": 3600},
        "queue": {"replay_rate": 200.0},
    }
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


class AgentProcess:
    """The real ``schoolmon-agent run --config FILE`` as a child process."""

    def __init__(self, tmp: str, config: Dict[str, Dict[str, Any]],
                 env: Optional[Dict[str, str]] = None) -> None:
        self.tmp = tmp
        self.config_path = os.path.join(tmp, "agent.toml")
        with open(self.config_path, "w", encoding="utf-8") as fh:
            fh.write(render_toml(config))
        self.log_path = os.path.join(tmp, "agent-%s.log" % uuid.uuid4().hex[:6])
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()/kill()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
        full_env.update(env or {})
        self.proc = subprocess.Popen([AGENT, "run", "--config", self.config_path],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=full_env,
                                     start_new_session=True)

    def log(self) -> str:
        return read_log(self.log_path)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 20) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


def state_file(tmp: str) -> Dict[str, Any]:
    """The agent's queue state (seq, q_drop, pending); zeros before it is first written."""
    try:
        with open(os.path.join(tmp, "state", "queue", "state.json"), encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return {"seq": 0, "q_drop": 0, "pending": 0}


def fill_disk(folder: str) -> None:
    """Fill the file system holding ``folder`` to the last byte (a file ``filler``)."""
    import errno

    with open(os.path.join(folder, "filler"), "wb", buffering=0) as fh:
        block = b"\0" * 4096
        while True:
            try:
                fh.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(block) == 1:
                    break
                block = block[: len(block) // 2]
