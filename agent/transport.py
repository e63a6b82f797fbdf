"""The MQTT side of the agent: paho-mqtt 2.x, MQTT 5, QoS 1, TLS, replay from the spool.

Why MQTT 5 (not 3.1.1): topic aliases (the ~55-byte topic is sent once per connection
per kind instead of with every message: see docs/benchmarks.md for what it saves),
reason codes on PUBACK (a refused publish is told apart from a delivered one) and on
CONNACK (a wrong password is logged as such). Mosquitto 2 and EMQX both speak it.

Design:

- One thread owns everything MQTT and drives paho's ``loop()`` itself; nobody else calls
  paho. The runtime only puts messages into the spool and calls ``notify()``.
- Every connection attempt uses a **new paho client**. paho resends its own unacknowledged
  QoS 1 messages after a reconnect of the same client object; here the spool is the only
  source of truth instead: after every connect the transport replays the spool from its
  oldest message, in ``seq`` order, at most ``queue.replay_rate`` messages per second and
  at most ``WINDOW`` unacknowledged at a time, and deletes a message only on its PUBACK.
  (So a message whose PUBACK was lost with the connection is sent again; the collector
  ignores a repeated (device, seq).) It also keeps topic aliases valid: an alias only ever
  refers to a topic sent earlier on the same connection.
- Status: the Last Will ``offline``/``lost`` (retained, QoS 1) is set on each client before
  it connects; ``online`` (retained, QoS 1, with agent version and ``hb``) is published on
  every CONNACK; ``offline``/``shutdown`` only by ``stop()``, never on a lost connection.
- Reconnect: exponential backoff from ``mqtt.reconnect_min`` to ``mqtt.reconnect_max``
  with random jitter (each wait is uniform in [d/2, d]), so a school's thirty PCs do not
  all come back in the same second after a broker restart.
- Commands: subscribes to its own ``.../cmd`` topic; ``on_command`` is the seam
  (default: log and ignore).
- Credentials never reach a log line: only the host, port and user name are logged.
"""
import logging
import random
import ssl
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from schoolmon.protocol import ProtocolError, parse_json, topic
from schoolmon.protocol.settings import mqtt_endpoint

from . import __version__
from .message import build_message, status_fields
from .spool import Spool

log = logging.getLogger("schoolmon.agent.transport")

#: Most data messages sent and not yet acknowledged at one time.
WINDOW = 10
#: Give up a connection attempt without CONNACK after this many seconds.
CONNACK_TIMEOUT = 15.0
#: A connection that lasted less than this does not reset the backoff.
STABLE_AFTER = 10.0
#: Acknowledged messages are deleted from the spool in batches of up to this many...
ACK_BATCH = 50
#: ...or at least this often (seconds).
ACK_EVERY = 1.0


def backoff_delay(attempt: int, low: float, high: float,
                  rand: Callable[[float, float], float] = random.uniform) -> float:
    """Wait before reconnect attempt ``attempt`` (0 = first): exponential, capped, jittered."""
    d = min(high, low * (2 ** min(attempt, 30)))
    return rand(d / 2.0, d)


def status_payload(state: str, seq: int, ts: float, reason: str = "",
                   hb: Optional[int] = None) -> bytes:
    return build_message("status", status_fields(state, __version__, reason, hb), seq, ts)


def default_command_handler(cmd: Dict[str, Any]) -> None:
    log.info("command %r is not known to this agent version: ignored", cmd.get("cmd"))


class Transport:
    def __init__(self, cfg: Any, school: str, device: str, spool: Spool,
                 on_command: Callable[[Dict[str, Any]], Any] = default_command_handler
                 ) -> None:
        self.cfg = cfg
        self.school = school
        self.device = device
        self.spool = spool
        self.on_command = on_command
        self.host, self.port, self.tls = mqtt_endpoint(cfg.mqtt.url)
        self.username = cfg.mqtt.username or device
        self.status_topic = topic(school, device, "status")
        self.cmd_topic = topic(school, device, "cmd")
        self.hb = int(cfg.intervals.health)
        self.rate = float(cfg.queue.replay_rate)
        self._v5 = cfg.mqtt.protocol == "5"
        self._protocol = mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._client: Optional[mqtt.Client] = None
        self.connected = threading.Event()
        # per connection
        self._inflight: Dict[int, int] = {}  # mid -> seq
        self._status_mids: Set[int] = set()
        self._acked: List[int] = []
        self._refused: List[int] = []
        self._sent_upto = 0
        self._next_send = 0.0
        self._aliases: Dict[str, int] = {}
        self._alias_max = 0
        self._connack_at = 0.0
        self._conn_failed = False
        self._session_up = False
        self._settled_at = 0.0
        # counters (for tests and the benchmark)
        self.connects = 0
        self.published = 0

    # --- public -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """A message was queued: send it soon."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Orderly stop: publish ``offline``/``shutdown`` if connected, then disconnect.
        What is still queued stays in the spool for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout + CONNACK_TIMEOUT)

    # --- the connection loop ------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                stable = self._session()
            except Exception:  # never let the thread die: log and reconnect
                log.exception("MQTT session failed")
                stable = False
            if self._stop.is_set():
                break
            lasted = time.monotonic() - started
            attempt = 0 if (stable and lasted >= STABLE_AFTER) else attempt + 1
            delay = backoff_delay(max(attempt - 1, 0), self.cfg.mqtt.reconnect_min,
                                  self.cfg.mqtt.reconnect_max)
            log.info("reconnecting to %s:%d in %.1f s", self.host, self.port, delay)
            self._stop.wait(delay)

    def _new_client(self) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.device,
                        protocol=self._protocol, clean_session=None if self._v5 else True)
        c.username_pw_set(self.username, self.cfg.mqtt.password or None)
        if self.tls:
            c.tls_set(ca_certs=self.cfg.mqtt.ca_file or None,
                      certfile=self.cfg.mqtt.cert_file or None,
                      keyfile=self.cfg.mqtt.key_file or None,
                      cert_reqs=ssl.CERT_REQUIRED)
        c.max_inflight_messages_set(WINDOW + 4)
        c.connect_timeout = 10.0
        c.will_set(self.status_topic,
                   status_payload("offline", self.spool.seq, time.time(), reason="lost"),
                   qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        return c

    def _session(self) -> bool:
        """One connection, from connect to its loss (or stop). True if it got CONNACK."""
        self._inflight, self._status_mids = {}, set()
        self._acked, self._refused = [], []
        self._sent_upto, self._next_send = 0, 0.0
        self._aliases, self._alias_max = {}, 0
        self._conn_failed = False
        self._session_up = False
        client = self._new_client()
        self._client = client
        try:
            if self._v5:
                client.connect(self.host, self.port, keepalive=self.cfg.mqtt.keepalive,
                               clean_start=True)
            else:  # MQTT 3.1.1: a clean session is chosen in the Client constructor
                client.connect(self.host, self.port, keepalive=self.cfg.mqtt.keepalive)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.warning("cannot reach the broker %s:%d: %s", self.host, self.port,
                        exc.__class__.__name__ + (": " + str(exc) if str(exc) else ""))
            return False
        began = time.monotonic()
        got_connack = False
        while True:
            wait = 0.5
            if self._wake.is_set() and self.connected.is_set():
                wait = min(0.5, max(0.002, self._next_send - time.monotonic()))
            rc = client.loop(timeout=wait)
            got_connack = self._session_up
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._conn_failed:
                if got_connack and not self._stop.is_set():
                    log.warning("connection to the broker lost (%s); %d message(s) queued",
                                mqtt.error_string(rc) if rc else "closed", self.spool.count)
                break
            if not got_connack and time.monotonic() - began > CONNACK_TIMEOUT:
                log.warning("no CONNACK from %s:%d within %.0f s", self.host, self.port,
                            CONNACK_TIMEOUT)
                break
            # Acknowledgements are applied in batches during a replay (one transaction
            # and one fsync per batch), at once when nothing else is in flight.
            if (self._acked or self._refused) and (
                    not self._inflight or len(self._acked) >= ACK_BATCH
                    or time.monotonic() - self._settled_at >= ACK_EVERY):
                self._settle()
            if self._stop.is_set():
                if got_connack:
                    self._shutdown(client)
                else:
                    client.disconnect()
                break
            if got_connack:
                self._pump(client)
        self.connected.clear()
        self._settle()
        try:
            client.socket() and client.disconnect()
        except Exception:
            pass
        return got_connack

    def _settle(self) -> None:
        """Apply the acknowledgements paho reported (deletes them from the spool)."""
        self._settled_at = time.monotonic()
        if self._acked:
            acked, self._acked = self._acked, []
            self.spool.ack(acked)
        if self._refused:
            refused, self._refused = self._refused, []
            self.spool.discard(refused, "refused by the broker")

    def _pump(self, client: mqtt.Client) -> None:
        """Send queued messages in seq order, within the window and the rate cap."""
        if not self._wake.is_set():
            return
        self._wake.clear()
        interval = 1.0 / self.rate
        while len(self._inflight) < WINDOW and not self._stop.is_set():
            now = time.monotonic()
            if now < self._next_send:
                self._wake.set()  # come back on the next loop turn
                return
            rows = self.spool.peek(after=self._sent_upto, limit=1)
            if not rows:
                return
            row = rows[0]
            info = self._publish(client, row.topic, row.payload, row.retain)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                log.debug("publish of seq %d not sent: %s", row.seq, mqtt.error_string(info.rc))
                return
            self._inflight[info.mid] = row.seq
            self._sent_upto = row.seq
            self.published += 1
            self._next_send = max(now, self._next_send) + interval

    def _publish(self, client: mqtt.Client, name: str, payload: bytes,
                 retain: bool) -> mqtt.MQTTMessageInfo:
        props = None
        if self._alias_max and self.cfg.mqtt.topic_alias:
            alias = self._aliases.get(name)
            if alias is not None:
                props = Properties(PacketTypes.PUBLISH)
                props.TopicAlias = alias
                name = ""  # the broker knows it from earlier on this connection
            elif len(self._aliases) < self._alias_max:
                alias = len(self._aliases) + 1
                self._aliases[name] = alias
                props = Properties(PacketTypes.PUBLISH)
                props.TopicAlias = alias
        return client.publish(name, payload, qos=1, retain=retain, properties=props)

    def _shutdown(self, client: mqtt.Client) -> None:
        try:
            info = client.publish(self.status_topic,
                                  status_payload("offline", self.spool.seq, time.time(),
                                                 reason="shutdown"),
                                  qos=1, retain=True)
            self._status_mids.add(info.mid)
            deadline = time.monotonic() + 3.0
            while info.mid in self._status_mids and time.monotonic() < deadline:
                if client.loop(timeout=0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
            self._settle()
            if info.mid in self._status_mids:
                log.warning("offline status not acknowledged before stop")
            client.disconnect()
            client.loop(timeout=0.2)
            log.info("disconnected from %s:%d (offline published, %d message(s) kept in "
                     "the queue)", self.host, self.port, self.spool.count)
        except Exception as exc:
            log.warning("orderly disconnect failed: %s", exc)

    # --- paho callbacks (all run in this thread, inside client.loop()) ------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.error("broker %s:%d refused the connection for user %s: %s", self.host,
                      self.port, self.username, reason)
            self._conn_failed = True
            return
        self.connects += 1
        self._session_up = True
        self._connack_at = time.monotonic()
        self._alias_max = int(getattr(properties, "TopicAliasMaximum", 0) or 0)
        log.info("connected to %s:%d as %s (%d message(s) queued)", self.host, self.port,
                 self.username, self.spool.count)
        # Subscribe before the birth: the broker handles one client's packets in order, so
        # whoever sees this "online" (the collector re-sends a pending grant on it) can
        # count on the cmd subscription being there already.
        client.subscribe(self.cmd_topic, qos=1)
        info = client.publish(self.status_topic,
                              status_payload("online", self.spool.seq, time.time(), hb=self.hb),
                              qos=1, retain=True)
        self._status_mids.add(info.mid)
        self.connected.set()
        self._wake.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        # Never publish offline here: the broker's Last Will says "lost" for us.
        self.connected.clear()
        if reason is not None and getattr(reason, "is_failure", False):
            log.debug("disconnected: %s", reason)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        if mid in self._status_mids:
            self._status_mids.discard(mid)
            return
        seq = self._inflight.pop(mid, None)
        if seq is None:
            return
        if reason is not None and getattr(reason, "is_failure", False):
            log.error("broker refused message seq %d: %s", seq, reason)
            self._refused.append(seq)
        else:
            self._acked.append(seq)
        self._wake.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: Any) -> None:
        if message.topic != self.cmd_topic:
            return
        try:
            cmd = parse_json(message.payload)
        except ProtocolError as exc:
            log.warning("ignoring a command that is not a JSON object: %s", exc.detail)
            return
        try:
            self.on_command(cmd)
        except Exception:
            log.exception("command handler failed")
