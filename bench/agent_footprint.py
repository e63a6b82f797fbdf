#!/usr/bin/env python3
"""Agent footprint: run the real ``schoolmon-agent run`` for a few minutes against a private
real Mosquitto at the default intervals (only the random start delay is shortened) and
print its RSS, USS, average CPU (% of one core) and bytes on the wire per device per day.

Bytes are measured at the MQTT layer, both directions: the agent connects through a small
TCP relay that parses the MQTT packets crossing it (fixed header + remaining length, the
topic or topic alias of each PUBLISH), so every byte of every MQTT packet is counted and
attributed (health, status, inventory, PUBACK, PING, CONNECT/CONNACK, SUBSCRIBE...).
TCP/IP and TLS overhead are not included (they depend on the link, not on schoolmon).

Per-day figure, modelled from the measured packets (a short run cannot simply be
multiplied: its one-off connect and inventory would dominate):
  1440 × (health PUBLISH + its PUBACK)               one health per 60 s, a full day on
                                                     (the first of a connection carries
                                                     the topic, the others its alias)
+ measured PINGREQ/PINGRESP bytes per second × 86400
+ 1 × session (CONNECT with the Will, CONNACK, SUBSCRIBE, SUBACK, online status + PUBACK,
  offline status + PUBACK, DISCONNECT)               one agent start per day
+ 1 × inventory (+ PUBACK)                           sent at start; changes are rare
The plain linear extrapolation of the whole run is printed too.

Usage: python bench/agent_footprint.py [--minutes 3] [--no-alias]
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from typing import Dict, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import psutil  # noqa: E402

from tests.servers import ByteRelay, Mosquitto  # noqa: E402

NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 8: "SUBSCRIBE", 9: "SUBACK",
         12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT"}


def _varint(buf: bytes, i: int) -> Tuple[int, int]:
    value, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


class MqttMeter:
    """Parses one direction of an MQTT 5 stream and counts bytes per packet class."""

    def __init__(self, stats: Dict[str, list], lock: threading.Lock,
                 aliases: Dict[int, str]) -> None:
        self.buf = b""
        self.stats = stats
        self.lock = lock
        self.aliases = aliases

    def feed(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 2:
            try:
                length, body = _varint(self.buf, 1)
            except IndexError:
                return
            total = body + length
            if len(self.buf) < total:
                return
            packet, self.buf = self.buf[:total], self.buf[total:]
            self._count(packet, body)

    def _count(self, p: bytes, body: int) -> None:
        ptype = p[0] >> 4
        name = NAMES.get(ptype, "type%d" % ptype)
        if ptype == 3:
            qos = (p[0] >> 1) & 3
            tlen = int.from_bytes(p[body:body + 2], "big")
            topic = p[body + 2:body + 2 + tlen].decode("utf-8", "replace")
            i = body + 2 + tlen + (2 if qos else 0)
            plen, j = _varint(p, i)
            props, alias = p[j:j + plen], None
            k = 0
            while k < len(props):
                pid = props[k]
                if pid == 0x23:
                    alias = int.from_bytes(props[k + 1:k + 3], "big")
                    k += 3
                elif pid == 0x01:
                    k += 2
                elif pid == 0x02:
                    k += 5
                else:
                    break
            if alias is not None:
                if topic:
                    self.aliases[alias] = topic
                else:
                    topic = self.aliases.get(alias, "?")
            name = "PUBLISH " + topic.rsplit("/", 1)[-1]
        with self.lock:
            self.stats[name][0] += 1
            self.stats[name][1] += len(p)
            self.stats[name][2].append(len(p))


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--no-alias", action="store_true", help="MQTT 5 topic aliases off")
    ap.add_argument("--health", type=int, default=60,
                    help="health interval, s (default 60; a short one is a leak check: "
                         "the per-day bytes then do not apply)")
    args = ap.parse_args(argv)
    agent_bin = os.path.join(os.path.dirname(sys.executable), "schoolmon-agent")
    if not os.path.exists(agent_bin):
        agent_bin = shutil.which("schoolmon-agent") or agent_bin
    broker = Mosquitto()
    stats: Dict[str, list] = defaultdict(lambda: [0, 0, []])
    stats_lock = threading.Lock()
    # one meter per connection and direction (topic aliases are per connection)
    relay = ByteRelay(broker.port, meter=lambda way: MqttMeter(stats, stats_lock, {}).feed)
    tmp = tempfile.mkdtemp(prefix="schoolmon-bench-")
    cfg = os.path.join(tmp, "agent.toml")
    with open(cfg, "w", encoding="utf-8") as fh:
        fh.write('[agent]\nschool = "79000101"\nstate_dir = "%s"\n\n'
                 '[mqtt]\nurl = "mqtt://127.0.0.1:%d"\ntopic_alias = %s\n\n'
                 '[intervals]\nhealth = %d\nstart_delay_min = 1.0\nstart_delay_max = 3.0\n'
                 % (os.path.join(tmp, "state"), relay.port,
                    "false" if args.no_alias else "true", args.health))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    log_path = os.path.join(tmp, "agent.log")
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    started = time.monotonic()
    proc = subprocess.Popen([agent_bin, "run", "--config", cfg], stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    ps = psutil.Process(proc.pid)
    samples = []
    cpu_at_60: Optional[Tuple[float, float]] = None
    try:
        end = started + args.minutes * 60
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(5)
            mi = ps.memory_full_info()
            samples.append((time.monotonic() - started, mi.rss, mi.uss))
            if cpu_at_60 is None and time.monotonic() - started >= 60:
                cpu_at_60 = (time.monotonic(), _cpu(ps))
        wall = time.monotonic() - started
        cpu_total = _cpu(ps)
        now = time.monotonic()
        final = ps.memory_full_info()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        log.close()
        relay.close()
        broker.stop()
    stats = {k: (v[0], v[1], list(v[2])) for k, v in stats.items()}
    shutil.rmtree(tmp, ignore_errors=True)

    def get(name: str) -> Tuple[int, int]:
        n, b, _ = stats.get(name, (0, 0, []))
        return n, b

    n_health, b_health = get("PUBLISH health")
    n_inv, b_inv = get("PUBLISH inventory")
    n_status, b_status = get("PUBLISH status")
    n_ack, b_ack = get("PUBACK")
    n_ping, b_ping = get("PINGREQ")
    n_pong, b_pong = get("PINGRESP")
    session = sum(get(k)[1] for k in ("CONNECT", "CONNACK", "SUBSCRIBE", "SUBACK",
                                      "DISCONNECT"))
    ack_size = (b_ack / n_ack) if n_ack else 4
    sizes = stats.get("PUBLISH health", (0, 0, []))[2]
    # With topic aliases only the first health of a connection carries the topic.
    steady = (sum(sizes[1:]) / len(sizes[1:])) if len(sizes) > 1 else (
        sizes[0] if sizes else 0)
    per_day_health = (sizes[0] + 1439 * steady + 1440 * ack_size) if sizes else 0
    per_day_ping = (b_ping + b_pong) / wall * 86400
    per_day_session = session + b_status + n_status * ack_size  # online + offline, 1 start/day
    per_day_inventory = (b_inv / max(n_inv, 1) + ack_size) if n_inv else 0
    per_day = per_day_health + per_day_ping + per_day_session + per_day_inventory
    linear = relay.total / wall * 86400
    steady_cpu = None
    if cpu_at_60 is not None and now - cpu_at_60[0] > 30:
        steady_cpu = (cpu_total - cpu_at_60[1]) / (now - cpu_at_60[0]) * 100
    rss_peak = max(s[1] for s in samples) if samples else final.rss

    print("agent footprint, %.1f min run, health every %d s, inventory check 3600 s, MQTT 5, "
          "topic aliases %s" % (wall / 60, args.health, "off" if args.no_alias else "on"))
    print("  RSS  end %.1f MB, peak %.1f MB" % (final.rss / 2 ** 20, rss_peak / 2 ** 20))
    if len(samples) >= 4:
        marks = [samples[len(samples) * k // 4 - 1] for k in (1, 2, 3, 4)]
        print("  RSS  over the run: %s" % ", ".join(
            "%.1f min %.1f MB" % (t / 60, rss / 2 ** 20) for t, rss, _ in marks))
    print("  USS  end %.1f MB" % (final.uss / 2 ** 20))
    print("  CPU  %.3f %% of one core over the whole run (start included)"
          % (cpu_total / wall * 100))
    if steady_cpu is not None:
        print("  CPU  %.3f %% of one core after the first minute" % steady_cpu)
    print("  wire (MQTT layer, both directions) by packet class:")
    for name in sorted(stats):
        n, b, _ = stats[name]
        print("    %-20s %5d packets %8d bytes (%.0f B each; sizes %s)"
              % (name, n, b, b / n, " ".join(str(x) for x in stats[name][2][:6])))
    print("  per device per day (model above): %.0f B = %.3f MB  [health %.0f, ping %.0f, "
          "session+status %.0f, inventory %.0f]" % (per_day, per_day / 1e6, per_day_health,
                                                    per_day_ping, per_day_session,
                                                    per_day_inventory))
    print("  per device per day (linear extrapolation of this run, one-offs included): "
          "%.3f MB" % (linear / 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
