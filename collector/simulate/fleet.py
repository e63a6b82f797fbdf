"""The fleet runner: publishes a simulated province to a broker over raw MQTT 3.1.1
sockets.

Publisher design (why not paho): a benchmark needs ≥ 10,000 msg/s from this process
while Mosquitto, the collector and the time-series server share two cores. paho spends
tens of microseconds per publish (message objects, locks, a wake-up per packet), so the
simulator speaks MQTT 3.1.1 itself over a few raw sockets ("connections", default 4), each
publishing for many devices: PUBLISH packets are built from per-device payload templates
(made by the real ``envelope`` + ``encode``, with only ``ts``/``seq``/``up`` substituted,
byte-for-byte what ``encode`` would produce), pipelined with up to ``window`` messages
awaiting PUBACK per connection, and sent in one ``sendall`` per tick. PUBACKs arrive in
order, so the simulator knows exactly which (device, seq) the broker has taken; after a
broker restart it reconnects and sends what was not acknowledged again (at least once).

Security: every PC whose agent has the security family (``posture``) publishes its
``security`` facts once at start and then every ``security_interval`` seconds (6 h, as the
agent's ``intervals.security``), staggered; ``set_antivirus(school, on)`` switches a school's
antivirus off or back on and publishes its PCs' facts at once (a demo or a test of a school
going below the baseline and back).

Last Will: a connection that carries exactly one device (``connections >= devices``)
sets that device's Last Will (``offline``, reason ``lost``), as a real agent does. With
several devices per connection a Last Will cannot speak for all of them; an orderly stop
publishes ``offline`` (reason ``shutdown``) for every device instead. Devices of the
"offline" profile were on and went away: on the first connect each sends its inventory, an
``online`` status and one health message, then the retained ``offline``/``lost`` status
the broker would have published as its Last Will, so the collector knows when it was last
heard (``last_seen``) and since when it is offline (``status_since``).
"""
import heapq
import logging
import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple
from urllib.parse import urlsplit

from schoolmon.protocol import ProtocolError, encode, envelope, parse_json, topic, validate_command

from ..mqtt.codec import (
    connect_packet,
    puback_packets,
    publish_packet,
    redeliver_packet,
    string,
    varint,
)
from ..text import utc_offset
from .fixture import Province, SimDevice, connectivity_province, province_fixture
from .link import (
    LinkProfile,
    RouterState,
    deal_links,
    probe_fields,
    router_fields,
    router_state,
    speedtest_fields,
    story_start,
)
from .payloads import health_templates, inventory_fields
from .posture import security_fields

#: Seconds between two security messages of one PC (the agent's default).
SECURITY_INTERVAL = 6 * 3600.0
#: The agent's defaults (``intervals.probe``, ``intervals.router``), at a health interval of
#: 60 s; a faster fleet (the demo's 15 s) probes faster in proportion.
PROBE_INTERVAL = 300.0
ROUTER_INTERVAL = 300.0
#: The one subscription of a connection: the commands to every device (each connection
#: acts on its own devices' only).
CMD_SUBSCRIPTION = "schoolmon/v1/+/+/cmd"

log = logging.getLogger("schoolmon.collector.simulate")


@dataclass
class SimStats:
    """What a simulation did. ``acked`` messages were taken by the broker (PUBACK)."""

    sent: int = 0
    acked: int = 0
    health_sent: int = 0
    security_sent: int = 0
    reconnects: int = 0
    elapsed: float = 0.0
    #: per device: the highest health seq the broker acknowledged (seqs 1..n, in order)
    acked_upto: Dict[str, int] = field(default_factory=dict)
    #: per device: the first health seq of this run
    first_seq: Dict[str, int] = field(default_factory=dict)
    #: the last error connecting to the broker (None: every connection got through)
    connect_error: Optional[str] = None
    #: connections that reached the broker at least once
    connected: int = 0
    probe_sent: int = 0
    router_sent: int = 0
    #: speedtest results published (answers to grants)
    tests_sent: int = 0
    #: grants not acted on, by why: expired, replayed, busy, invalid, silent (the school
    #: turned its tests off)
    grants_ignored: Dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.acked / self.elapsed if self.elapsed else 0.0

    def acked_pairs(self) -> int:
        """Distinct (device, seq) health messages the broker acknowledged."""
        return sum(max(0, hi - self.first_seq.get(d, 1) + 1) for d, hi in self.acked_upto.items())


#: A message to publish: (topic with its length prefix, payload, retain, (device, health
#: seq) or None for other kinds).
Packet = Tuple[bytes, bytes, bool, Optional[Tuple[str, int]]]


class _Conn(threading.Thread):
    """One raw MQTT connection publishing for a share of the devices."""

    def __init__(self, sim: "Simulation", idx: int, devices: List[SimDevice], rate: float) -> None:
        super().__init__(name="schoolmon-sim-%d" % idx, daemon=True)
        self.sim, self.idx, self.devices, self.rate = sim, idx, devices, rate
        self.online = [d for d in devices if d.online]
        self.rng = random.Random(sim.seed * 1000 + idx)
        self.topics = {d.id: {k: string(topic(d.school, d.id, k))
                              for k in ("health", "status", "inventory", "security", "probe",
                                        "router", "speedtest")}
                       for d in devices}
        self.templates = {d.id: health_templates(d, self.rng) for d in devices}
        self.boot = {d.id: int(time.time()) - self.rng.randint(600, 8 * 3600) for d in devices}
        #: (monotonic time due, device index) of the next periodic security message
        self.security_due: List[Tuple[float, int]] = []
        self.index = {d.id: i for i, d in enumerate(devices)}
        #: devices whose security is to be sent at once (``Simulation.set_antivirus``)
        self.security_now: List[SimDevice] = []
        #: (monotonic due, n, what, device index, data): probes, router polls and test
        #: results to publish (connectivity)
        self.link_due: List[Tuple[float, int, str, int, Any]] = []
        self._link_n = 0
        #: grant ids seen (replays are ignored), devices testing now, router counters
        self.grants_seen: Set[str] = set()
        self.testing: Set[str] = set()
        self.routers: Dict[str, RouterState] = {}
        self.sock: Optional[socket.socket] = None
        self.inflight: List[Tuple[int, bytes, Optional[Tuple[str, int]]]] = []
        self._inflight_head = 0
        self.mid = 0
        self.buf = b""
        self.last_send = time.monotonic()
        self.error: Optional[BaseException] = None

    # -- socket
    def _connect(self) -> None:
        sim = self.sim
        delay = 0.2
        while not sim.stop_event.is_set() and not sim.past_deadline():
            try:
                s = socket.create_connection((sim.host, sim.port), timeout=10)
                if sim.tls:
                    ctx = ssl.create_default_context(cafile=sim.ca_file or None)
                    s = ctx.wrap_socket(s, server_hostname=sim.host)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                will = None
                if len(self.devices) == 1:
                    d = self.devices[0]
                    will = (topic(d.school, d.id, "status"),
                            encode(envelope("status", {"state": "offline", "reason": "lost",
                                                       "agent": d.agent, "hb": d.hb},
                                            d.seq, time.time())))
                cid = (sim.client_prefix + "-%d" % self.idx) if len(self.devices) > 1 \
                    else self.devices[0].id
                s.sendall(connect_packet(cid, 60, sim.username, sim.password, will))
                ack = self._recv_exact(s, 4)
                if ack[0] != 0x20 or ack[3] != 0:
                    raise ConnectionError("broker refused the connection (CONNACK %r)" % ack)
                if sim.links is not None:  # SUBSCRIBE (id 1) to the commands, QoS 1
                    body = b"\x00\x01" + string(CMD_SUBSCRIPTION) + b"\x01"
                    s.sendall(b"\x82" + varint(len(body)) + body)
                s.settimeout(None)
                s.setblocking(True)
                self.sock = s
                self.buf = b""
                sim._count_connected(self)
                return
            except OSError as exc:
                # The first failure is said plainly; retries only at debug level.
                if sim._connect_failed(self, exc):
                    log.warning("simulator cannot connect to the broker %s:%d: %s; retrying",
                                sim.host, sim.port, exc)
                else:
                    log.debug("simulator connection %d: %s; retrying", self.idx, exc)
                if sim.stop_event.wait(min(delay, sim.time_left())):
                    return
                delay = min(delay * 2, 5.0)

    @staticmethod
    def _recv_exact(s: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                raise ConnectionError("connection closed")
            data += chunk
        return data

    def _next_mid(self) -> int:
        self.mid = self.mid % 65535 + 1
        return self.mid

    def _send(self, packets: List["Packet"]) -> None:
        """Queue (topic, payload, retain, (device, health seq) or None) and send them."""
        out = []
        for topic_b, payload, retain, key in packets:
            mid = self._next_mid()
            pkt = publish_packet(topic_b, payload, mid, retain)
            self.inflight.append((mid, pkt, key))
            out.append(pkt)
        self.sim._count_sent(len(packets), sum(1 for p in packets if p[3] is not None))
        self._sendall(b"".join(out))

    def _sendall(self, data: bytes) -> None:
        if self.sock is None:
            raise ConnectionError("not connected")
        self.sock.sendall(data)
        self.last_send = time.monotonic()

    def _read_acks(self, timeout: float) -> None:
        s = self.sock
        if s is None:
            raise ConnectionError("not connected")
        s.settimeout(timeout)
        try:
            data = s.recv(65536)
        except (socket.timeout, BlockingIOError):
            return
        finally:
            if self.sock is not None:
                self.sock.settimeout(None)
        if not data:
            raise ConnectionError("connection closed by the broker")
        buf = self.buf + data
        pos, n = 0, len(buf)
        acked = 0
        pubacks: List[int] = []
        while n - pos >= 2:
            ptype = buf[pos] & 0xF0
            length, k = buf[pos + 1], pos + 2  # PUBACK and PINGRESP: one length byte
            if length & 0x80:  # a longer packet (a command): the whole varint
                length, mult, k = length & 0x7F, 128, pos + 2
                while k < n and buf[k - 1] & 0x80:
                    length += (buf[k] & 0x7F) * mult
                    mult *= 128
                    k += 1
                if buf[k - 1] & 0x80:
                    break
            if n - k < length:
                break
            if ptype == 0x40:
                acked += 1
            elif ptype == 0x30:
                pid = self._incoming(buf[pos], buf[k:k + length])
                if pid:
                    pubacks.append(pid)
            pos = k + length
        self.buf = buf[pos:]
        if pubacks:
            self._sendall(puback_packets(pubacks))
        if acked:
            self._acked(acked)

    def _acked(self, n: int) -> None:
        head = self._inflight_head
        done = self.inflight[head:head + n]
        self._inflight_head = head + len(done)
        if self._inflight_head > 4096:
            del self.inflight[:self._inflight_head]
            self._inflight_head = 0
        upto: Dict[str, int] = {}
        for _mid, _pkt, key in done:
            if key is not None:
                upto[key[0]] = key[1]
        self.sim._count_acked(len(done), upto)

    # -- connectivity: commands in, probes, router polls and test results out
    def _incoming(self, first: int, body: bytes) -> int:
        """A PUBLISH from the broker (a command); its packet id to acknowledge, or 0."""
        qos = (first >> 1) & 3
        tlen = int.from_bytes(body[:2], "big")
        topic_s = body[2:2 + tlen].decode("utf-8", "replace")
        at = 2 + tlen
        pid = 0
        if qos:
            pid = int.from_bytes(body[at:at + 2], "big")
            at += 2
        parts = topic_s.split("/")
        i = self.index.get(parts[3]) if len(parts) == 5 and parts[4] == "cmd" else None
        if i is not None:
            self._command(self.devices[i], i, body[at:])
        return pid

    def _command(self, d: SimDevice, i: int, raw: bytes) -> None:
        """Answer a valid, fresh ``speedtest`` grant after the test's own duration (as the
        agent does); ignore an invalid, expired or replayed one, or one while testing."""
        sim = self.sim
        try:
            cmd = validate_command(parse_json(raw))
        except (ProtocolError, ValueError) as exc:
            log.info("simulator: %s: command refused: %s", d.id, exc)
            sim._count_ignored("invalid")
            return
        if cmd["cmd"] != "speedtest":  # pragma: no cover - the only command of v1
            sim._count_ignored("invalid")
            return
        now = time.time()
        p = sim.links.get(d.school) if sim.links else None
        why = ("replayed" if cmd["id"] in self.grants_seen else
               "expired" if cmd["exp"] <= now else
               "busy" if d.id in self.testing else
               "silent" if p is None or p.kind == "silent" else None)
        self.grants_seen.add(cmd["id"])
        if why:
            sim._count_ignored(why)
            return
        assert p is not None
        r = random.Random("%s|%s" % (sim.seed, cmd["id"]))
        f = speedtest_fields(p, r, now, self._local_hour(now), cmd["mode"], cmd["budget"],
                        failing=p.kind == "dead_router")
        f["lease"] = cmd["id"]
        f["trigger"] = cmd.get("trigger") or "command"
        delay = f["dur_s"] if sim.speedtest_delay is None else sim.speedtest_delay
        delay = min(delay, max(0.0, cmd["exp"] - now) * 0.8)
        self.testing.add(d.id)
        self._due(time.monotonic() + delay, "result", i, f)

    def _due(self, at: float, what: str, i: int, data: Any = None) -> None:
        self._link_n += 1
        heapq.heappush(self.link_due, (at, self._link_n, what, i, data))

    @staticmethod
    def _local_hour(now: float) -> float:
        return ((now + utc_offset(now)) % 86400) / 3600.0

    def _link_start(self) -> None:
        """At the first connect: every online PC's first probe within one interval, each
        tester's first router poll within a few seconds."""
        sim = self.sim
        if sim.links is None or self.link_due:
            return
        mono = time.monotonic()
        for i, d in enumerate(self.devices):
            p = sim.links.get(d.school)
            if p is None or not d.online or d.role == "router":
                continue
            self._due(mono + self.rng.uniform(0, sim.probe_interval), "probe", i)
            if d.id == p.tester:
                self._due(mono + self.rng.uniform(0, min(5.0, sim.router_interval)), "router", i)

    def _link_batch(self, room: int) -> List[Any]:
        sim = self.sim
        links = sim.links or {}
        out: List[Any] = []
        now, mono = time.time(), time.monotonic()
        while self.link_due and self.link_due[0][0] <= mono and len(out) < room:
            _at, _n, what, i, data = heapq.heappop(self.link_due)
            d = self.devices[i]
            p: LinkProfile = links[d.school]
            if what == "probe":
                fields = probe_fields(p, d, self.rng, now, sim.since[d.school],
                                      sim.dead_at.get(d.school))
                self._due(mono + sim.probe_interval * self.rng.uniform(0.9, 1.1), "probe", i)
            elif what == "router":
                st = self.routers.get(d.school)
                if st is None:
                    st = self.routers[d.school] = router_state(p, now, sim.seed)
                fields = router_fields(p, st, self.rng, now, self._local_hour(now),
                                       dead=d.school in sim.dead_at)
                self._due(mono + sim.router_interval * self.rng.uniform(0.95, 1.05), "router", i)
            else:
                fields = data
                what = "speedtest"
                self.testing.discard(d.id)
            d.seq += 1
            sim._count_link(what)
            out.append((self.topics[d.id][what], encode(envelope(what, fields, d.seq, now)),
                        False, None))
        return out

    def _pending(self) -> int:
        return len(self.inflight) - self._inflight_head

    def _resend(self) -> None:
        """After a reconnect: send again what the broker did not acknowledge (new ids)."""
        pending = self.inflight[self._inflight_head:]
        self.inflight, self._inflight_head = [], 0
        if not pending:
            return
        out = []
        for _old, pkt, key in pending:
            mid = self._next_mid()
            # Rewrite the packet id (the two bytes after the topic) and set DUP.
            new = redeliver_packet(pkt, mid)
            self.inflight.append((mid, new, key))
            out.append(new)
        self._sendall(b"".join(out))

    # -- messages
    def _status(self, d: SimDevice, state: str, reason: Optional[str] = None,
                ts: Optional[float] = None) -> "Packet":
        f: Dict[str, Any] = {"state": state, "agent": d.agent, "hb": d.hb}
        if reason:
            f["reason"] = reason
        payload = encode(envelope("status", f, d.seq, time.time() if ts is None else ts))
        return (self.topics[d.id]["status"], payload, True, None)

    def _security(self, d: SimDevice, now: float) -> Optional["Packet"]:
        """The device's security message now (None: it reports none)."""
        fields = security_fields(d, now, av_off=d.school in self.sim.av_off)
        if fields is None:
            return None
        d.seq += 1
        self.sim._count_security()
        return (self.topics[d.id]["security"], encode(envelope("security", fields, d.seq, now)),
                False, None)

    def _first_security(self, d: SimDevice, now: float, packets: List[Any]) -> None:
        """At the agent's start: its security facts, and when the next ones are due."""
        sim = self.sim
        if not sim.security_interval or sim.security_sent.get(d.id):
            return
        sim.security_sent[d.id] = True
        pkt = self._security(d, now)
        if pkt is None:
            return
        packets.append(pkt)
        if d.online:
            due = time.monotonic() + sim.security_interval * self.rng.uniform(0.9, 1.1)
            heapq.heappush(self.security_due, (due, self.index[d.id]))

    def _security_batch(self) -> List[Any]:
        """The periodic security messages due now and those asked for at once."""
        out: List[Any] = []
        now, mono = time.time(), time.monotonic()
        with self.sim._lock:
            asked, self.security_now = self.security_now, []
        for d in asked:
            pkt = self._security(d, now)
            if pkt is not None:
                out.append(pkt)
        while self.security_due and self.security_due[0][0] <= mono:
            _due, i = heapq.heappop(self.security_due)
            pkt = self._security(self.devices[i], now)
            if pkt is not None:
                out.append(pkt)
            heapq.heappush(self.security_due, (mono + (self.sim.security_interval or 0.0), i))
        return out

    def _hello(self) -> None:
        """On every connect: inventory + online status (offline devices, once: their last
        messages, then their Last Will)."""
        packets: List[Any] = []
        now = time.time()
        for d in self.devices:
            if d.online:
                if not self.sim.inventory_sent.get(d.id):
                    d.seq += 1
                    packets.append((self.topics[d.id]["inventory"],
                                    encode(envelope("inventory", inventory_fields(d), d.seq, now)),
                                    True, None))
                    self.sim.inventory_sent[d.id] = True
                packets.append(self._status(d, "online"))
                self._first_security(d, now, packets)
            elif not self.sim.inventory_sent.get(d.id):
                # A device that was on and went away: its inventory, an online status and
                # one health message (so the collector knows when it was last heard), then
                # the Last Will the broker publishes when its connection drops.
                self.sim.inventory_sent[d.id] = True
                d.seq += 1
                packets.append((self.topics[d.id]["inventory"],
                                encode(envelope("inventory", inventory_fields(d), d.seq, now)),
                                True, None))
                packets.append(self._status(d, "online", ts=now))
                self._first_security(d, now, packets)
                d.seq += 1
                its = int(now)
                tmpl = self.templates[d.id]
                packets.append((self.topics[d.id]["health"],
                                tmpl[d.seq % len(tmpl)] % (its, d.seq, its - self.boot[d.id]),
                                False, (d.id, d.seq)))
                self.sim._first_seq(d.id, d.seq)
                packets.append(self._status(d, "offline", "lost", now))
        for i in range(0, len(packets), 1000):
            self._send(packets[i:i + 1000])

    def _health_batch(self, n: int) -> List[Any]:
        out = []
        online = self.online
        now = time.time()
        its = int(now)
        k = len(online)
        for _ in range(n):
            d = online[self.rr % k]
            self.rr += 1
            d.seq += 1
            tmpl = self.templates[d.id]
            payload = tmpl[d.seq % len(tmpl)] % (its, d.seq, its - self.boot[d.id])
            out.append((self.topics[d.id]["health"], payload, False, (d.id, d.seq)))
            self.sim._first_seq(d.id, d.seq)
        return out

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # pragma: no cover - reported by run_simulation
            self.error = exc
            log.exception("simulator connection %d failed", self.idx)

    def _run(self) -> None:
        sim = self.sim
        self.rr = self.idx  # spread devices' start
        self._connect()
        if self.sock is None:
            return
        self._hello()
        self._link_start()
        start = time.monotonic()
        sent_health = 0
        window = sim.window
        while not sim.stop_event.is_set():
            try:
                if sim.deadline is not None and time.monotonic() >= sim.deadline:
                    break
                due = int((time.monotonic() - start) * self.rate) - sent_health
                room = window - self._pending()
                if (self.security_now or (self.security_due and self.security_due[0][0]
                                          <= time.monotonic())) and room > 0:
                    extra = self._security_batch()
                    if extra:
                        self._send(extra)
                if self.link_due and self.link_due[0][0] <= time.monotonic() and room > 0:
                    extra = self._link_batch(room)
                    if extra:
                        self._send(extra)
                if self.online and due > 0 and room > 0:
                    n = min(due, room, sim.chunk)
                    self._send(self._health_batch(n))
                    sent_health += n
                    self._read_acks(0)
                else:
                    wait = 0.05 if room <= 0 else min(0.05, max(0.001, 1.0 / max(self.rate, 1)))
                    self._read_acks(wait)
                    if time.monotonic() - self.last_send > 30:
                        self._sendall(b"\xc0\x00")  # PINGREQ
            except OSError as exc:
                if sim.stop_event.is_set():
                    break
                log.info("simulator connection %d lost (%s); reconnecting", self.idx, exc)
                sim._count_reconnect()
                self._close()
                self._connect()
                if self.sock is None:
                    break
                self._resend()
                self._hello()
                # do not try to catch up on what was missed while disconnected
                start = time.monotonic() - sent_health / max(self.rate, 1e-9)
        self._finish()

    def _finish(self) -> None:
        sim = self.sim
        try:
            if sim.final_status and self.sock is not None:
                packets = [self._status(d, "offline", "shutdown") for d in self.online]
                for i in range(0, len(packets), 1000):
                    self._send(packets[i:i + 1000])
            deadline = time.monotonic() + sim.drain_timeout
            while self.sock is not None and self._pending() and time.monotonic() < deadline:
                self._read_acks(0.05)
            if self.sock is not None:
                self._sendall(b"\xe0\x00")  # DISCONNECT: no Last Will
        except OSError:
            pass
        self._close()

    def _close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


class Simulation:
    """A running simulated fleet; ``start()``, ``stop()``, ``join()``, ``stats``."""

    def __init__(self, broker_url: str, province: Province, rate: Optional[float] = None,
                 duration: Optional[float] = None, stop_event: Optional[threading.Event] = None,
                 connections: Optional[int] = None, window: int = 5000, chunk: int = 500,
                 username: str = "", password: str = "", ca_file: str = "",
                 final_status: bool = True, drain_timeout: float = 10.0, seed: int = 1,
                 client_prefix: str = "schoolmon-sim",
                 security_interval: Optional[float] = SECURITY_INTERVAL,
                 connectivity: bool = False, probe_interval: Optional[float] = None,
                 router_interval: Optional[float] = None,
                 speedtest_delay: Optional[float] = None) -> None:
        parts = urlsplit(broker_url)
        self.tls = parts.scheme == "mqtts"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (8883 if self.tls else 1883)
        if connectivity:
            # one router per school: the collector's router.{school}, fed by the tester's
            # router messages; the fixture's own router devices (an agent on the router)
            # are not run. Without connectivity (the ingest benchmark) they are, as before.
            province = connectivity_province(province)
        self.province = province
        online = [d for d in province.devices if d.online]
        # default: every device every 60 s (its hb)
        self.rate = float(rate) if rate else len(online) / 60.0
        self.duration = duration
        self.stop_event = stop_event or threading.Event()
        self.window, self.chunk = max(1, window), max(1, chunk)
        self.username, self.password, self.ca_file = username, password, ca_file
        self.final_status, self.drain_timeout = final_status, drain_timeout
        self.seed = seed
        self.client_prefix = client_prefix
        self.deadline: Optional[float] = None
        self.inventory_sent: Dict[str, bool] = {}
        #: seconds between a PC's security messages (None or 0: no security messages)
        self.security_interval = security_interval
        self.security_sent: Dict[str, bool] = {}
        #: schools whose antivirus is switched off (``set_antivirus``)
        self.av_off: Set[str] = set()
        self.stats = SimStats()
        self._lock = threading.Lock()
        # connectivity (off by default: the ingest benchmark's message mix stays health,
        # status, inventory and security): probes, router polls, answers to test grants
        scale = (len(online) / self.rate if self.rate else 60.0) / 60.0
        self.probe_interval = max(1.0, probe_interval or PROBE_INTERVAL * scale)
        self.router_interval = max(1.0, router_interval or ROUTER_INTERVAL * scale)
        #: seconds a test takes before its result (None: the test's own ``dur_s``)
        self.speedtest_delay = speedtest_delay
        self.links: Optional[Dict[str, LinkProfile]] = None
        self.since: Dict[str, float] = {}
        #: schools whose router is dead now (and since when)
        self.dead_at: Dict[str, float] = {}
        if connectivity:
            now = time.time()
            self.links = deal_links(province, seed)
            for code, p in self.links.items():
                self.since[code] = story_start(p, now)
                if p.kind == "dead_router":
                    self.dead_at[code] = self.since[code]
        devices = province.devices
        k = connections or min(4, max(1, len(devices)))
        k = max(1, min(k, len(devices) or 1))
        share = [devices[i::k] for i in range(k)]
        rates = [self.rate * sum(1 for d in s if d.online) / max(1, len(online)) for s in share]
        self.conns = [_Conn(self, i, s, r) for i, (s, r) in enumerate(zip(share, rates)) if s]
        self._t0 = 0.0
        self._ever_connected: Set[int] = set()

    def _count_sent(self, n: int, health: int) -> None:
        with self._lock:
            self.stats.sent += n
            self.stats.health_sent += health

    def _count_acked(self, n: int, upto: Dict[str, int]) -> None:
        with self._lock:
            self.stats.acked += n
            self.stats.acked_upto.update(upto)

    def _count_link(self, what: str) -> None:
        with self._lock:
            if what == "probe":
                self.stats.probe_sent += 1
            elif what == "router":
                self.stats.router_sent += 1
            else:
                self.stats.tests_sent += 1

    def _count_ignored(self, why: str) -> None:
        with self._lock:
            self.stats.grants_ignored[why] = self.stats.grants_ignored.get(why, 0) + 1

    def _count_security(self) -> None:
        with self._lock:
            self.stats.security_sent += 1

    def set_antivirus(self, school: str, on: bool) -> int:
        """Switch the antivirus of every PC of ``school`` off (``on=False``) or back on, and
        publish those PCs' security facts at once; the number of PCs that will report."""
        n = 0
        with self._lock:
            if on:
                self.av_off.discard(school)
            else:
                self.av_off.add(school)
            for c in self.conns:
                mine = [d for d in c.online if d.school == school and d.sec is not None
                        and d.sec.reports]
                c.security_now.extend(mine)
                n += len(mine)
        return n

    def _first_seq(self, device: str, seq: int) -> None:
        if device not in self.stats.first_seq:
            with self._lock:
                self.stats.first_seq.setdefault(device, seq)

    def _count_connected(self, conn: "_Conn") -> None:
        with self._lock:
            if conn.idx not in self._ever_connected:
                self._ever_connected.add(conn.idx)
                self.stats.connected += 1

    def _connect_failed(self, conn: "_Conn", exc: BaseException) -> bool:
        """Record a failed connection; True for the first failure of this run."""
        with self._lock:
            first = self.stats.connect_error is None
            self.stats.connect_error = "%s:%d: %s" % (self.host, self.port, exc)
            return first

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def time_left(self) -> float:
        """Seconds to the deadline (a large number without one)."""
        return 3600.0 if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def _count_reconnect(self) -> None:
        with self._lock:
            self.stats.reconnects += 1

    def start(self) -> "Simulation":
        self._t0 = time.monotonic()
        if self.duration is not None:
            self.deadline = self._t0 + self.duration
        for c in self.conns:
            c.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: Optional[float] = None) -> SimStats:
        for c in self.conns:
            c.join(timeout)
        self.stats.elapsed = time.monotonic() - self._t0
        return self.stats

    def run(self) -> SimStats:
        self.start()
        try:
            while any(c.is_alive() for c in self.conns):
                for c in self.conns:
                    c.join(0.2)
        except KeyboardInterrupt:
            self.stop()
        return self.join()


def run_simulation(broker_url: str, schools: int = 30, devices_per_school: int = 10,
                   rate: Optional[float] = None, duration: Optional[float] = None,
                   stop_event: Optional[threading.Event] = None, seed: int = 1,
                   province: Optional[Province] = None, **options: Any) -> SimStats:
    """Publish a simulated fleet to ``broker_url`` until ``duration`` seconds pass or
    ``stop_event`` is set (Ctrl-C also stops it). ``rate`` is health messages per second
    for the whole fleet (default: each online device every 60 s). ``options`` go to
    :class:`Simulation` (connections, window, chunk, username, password, ca_file,
    final_status, connectivity — on here, off in ``Simulation`` —, ...). Returns the
    SimStats."""
    prov = province or province_fixture(schools, devices_per_school, seed)
    options.setdefault("connectivity", True)
    sim = Simulation(broker_url, prov, rate=rate, duration=duration, stop_event=stop_event,
                     seed=seed, **options)
    return sim.run()
