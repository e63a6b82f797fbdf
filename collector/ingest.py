"""MQTT ingest: broker → bounded queue → batches → state store + time series → acknowledgements.

- paho-mqtt 2.x, MQTT v5, persistent session (``clean_start=False``, a long Session
  Expiry Interval, the stable ``mqtt.client_id``): what agents publish while the collector
  is down waits in the broker.
- Subscribes ``schoolmon/v1/+/+/+`` at QoS 1, or ``$share/{group}/schoolmon/v1/+/+/+`` when
  ``ingest.shared_group`` is set (several collectors share the load; see ROADMAP).
- ``manual_ack=True``: a message is acknowledged only after its batch is committed to the
  state store (and written to the time series). A crash before that makes the broker
  deliver it again; the store drops (device, seq) pairs it already holds.
- Receive Maximum = ``min(ingest.max_pending, 65535)``: the broker never has more than that
  many unacknowledged messages out to us, so the queue stays bounded. ``on_message`` only
  appends to that queue (and blocks, as a last resort, when it is full).
- One worker thread makes batches (``ingest.batch_size`` messages or ``ingest.batch_wait``
  seconds after the first), decodes each message with the one wire-format definition,
  counts rejects by reason (and acknowledges them: they can never become valid), replaces
  a ``ts`` too far in the future or older than ``ingest.max_age`` by the receive time
  (flagged, counted), then runs the flow of ``collector/state.py``: ``store.prepare`` →
  ``store.commit`` with the time-series write alongside (the transaction commits only after
  it; retried with backoff while the server is down, nothing acknowledged meanwhile) →
  acknowledgements for the whole batch.
- Packet ids belong to the session, but to be safe an acknowledgement is only sent on the
  connection that delivered the message; anything older is left for the broker to
  deliver again (and counted as a duplicate then).
"""
import collections
import concurrent.futures
import logging
import queue
import ssl
import struct
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Set, Tuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from schoolmon.protocol import SUBSCRIPTION, ProtocolError, decode, wire
from schoolmon.protocol.settings import mqtt_endpoint

from .metrics import IngestMetrics, default_metrics
from .state import Event, Plan, Received
from .timeseries import NullTimeSeries, TimeSeriesUnavailable, build_lines, message_bodies

log = logging.getLogger("schoolmon.collector.ingest")

#: How long the broker keeps our session (and queues for it) while we are away: 7 days,
#: as long as an agent's own queue. The broker may cap it (persistent_client_expiration).
SESSION_EXPIRY = 7 * 86400

#: How long (s) a commit waits inside its transaction for the batch's time-series write
#: (normally ~0.1–0.3 s); longer, and it rolls back and waits outside (see ``_store``).
OVERLAP_WAIT = 2.0


class _TimeSeriesSlow(Exception):
    """The time-series write outlasted OVERLAP_WAIT: roll back, wait, commit again."""


#: Receive Maximum is a 16-bit field.
MAX_RECEIVE_MAXIMUM = 65535

#: PUBACK (MQTT 5 with reason "success" left out, as in 3.1.1): 0x40, length 2, packet id.
PUBACK = 0x40
_puback = struct.Struct("!BBH").pack


# A queued item: (topic bytes, payload, mid, qos, connection generation, received_at)
Item = Tuple[bytes, bytes, int, int, int, float]
# A decoded batch: (items, received messages, their positions in items, line bodies by
# id(received) or None)
Decoded = Tuple[List[Item], List[Received], List[int], Optional[Dict[int, List[Any]]]]


class FastClient(mqtt.Client):
    """paho's Client with a bulk receive path (profiled: paho spends ~45 µs of CPU per
    received message: three ``recv`` calls per packet, dictionary bookkeeping per byte of
    the length, and MQTT 5 Properties objects nobody reads).

    ``loop_read`` reads up to 256 KiB per system call and cuts every complete packet out of
    that buffer in one loop. PUBLISH packets at QoS 0/1 (MQTT 5 or 3.1.1) are parsed right
    there (topic, packet id, payload; MQTT 5 properties skipped: we announce no Topic Alias
    Maximum, so none the broker sends changes a message's meaning) and handed over together,
    in arrival order, to ``on_raw_batch([(topic_bytes, payload, mid, qos), ...])``, whose
    caller acknowledges them (``manual_ack=True``; without it paho's path is taken). Every
    other packet (CONNACK, SUBACK, PINGRESP, QoS 2 flows, DISCONNECT ...) goes to paho's own
    handler exactly as paho would have read it, after the messages before it were handed
    over. A partial packet at the end of the buffer waits for the next read; a new
    connection starts with an empty buffer.

    Everything else (connect, keepalive, reconnect, subscribe, TLS) is paho's.
    """

    on_raw_batch: Optional[Callable[[List[Tuple[bytes, bytes, int, int]]], None]] = None
    _rbuf: bytes = b""
    _rsock: Any = None

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        sock = self._sock
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        if sock is not self._rsock:  # a new connection: forget what the old one left
            self._rbuf, self._rsock = b"", sock
        try:
            chunk = self._sock_recv(262144)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except OSError as err:
            self._easy_log(mqtt.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if not chunk:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        buf = self._rbuf + chunk if self._rbuf else chunk
        rc = self._parse(buf)
        if rc > 0:
            return self._loop_rc_handle(rc)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _parse(self, buf: bytes) -> MQTTErrorCode:
        """Handle every complete packet in ``buf``; keep the rest for the next read."""
        handler = self.on_raw_batch
        # The bulk path leaves acknowledgements to its caller; without manual_ack (or a
        # handler) PUBLISHes take paho's own path, which acknowledges them.
        manual = handler is not None and self._manual_ack
        v5 = self._protocol == mqtt.MQTTv5
        end = len(buf)
        pos = 0
        out: List[Tuple[bytes, bytes, int, int]] = []
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        while pos + 2 <= end:
            cmd = buf[pos]
            # remaining length: a variable byte integer of at most 4 bytes
            i = pos + 1
            length = shift = 0
            complete = False
            while i < end:
                b = buf[i]
                i += 1
                length |= (b & 0x7F) << shift
                if b < 0x80:
                    complete = True
                    break
                shift += 7
                if shift > 21:  # a fifth length byte
                    rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
                    break
            if not complete:
                break  # a protocol error, or the length itself is not complete yet
            stop = i + length
            if stop > end:
                break
            qos = (cmd >> 1) & 3
            if cmd & 0xF0 == 0x30 and qos < 2 and manual:
                try:
                    p = i + 2 + ((buf[i] << 8) | buf[i + 1])
                    topic_b = buf[i + 2:p]
                    mid = 0
                    if qos:
                        mid = (buf[p] << 8) | buf[p + 1]
                        p += 2
                    if v5:
                        plen, mult = 0, 1
                        while True:  # properties length, a variable byte integer
                            b = buf[p]
                            p += 1
                            plen += (b & 0x7F) * mult
                            if not b & 0x80:
                                break
                            mult <<= 7
                        p += plen
                except IndexError:
                    p = end + 1
                if p > stop:  # its fields run past its own length: as paho, drop the link
                    self._easy_log(mqtt.MQTT_LOG_ERR, "malformed PUBLISH packet")
                    rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
                    break
                out.append((topic_b, buf[p:stop], mid, qos))
                pos = stop
                continue
            # Any other packet: paho's handler, after the messages received before it.
            if out:
                handler(out)  # type: ignore[misc]
                out = []
            rc = self._paho_packet(cmd, buf[i:stop], length)
            pos = stop
            if rc > 0 or self._sock is None:
                break
        if out:
            handler(out)  # type: ignore[misc]
        self._rbuf = buf[pos:] if pos < end else b""
        return rc

    def _paho_packet(self, cmd: int, body: bytes, length: int) -> MQTTErrorCode:
        """Give one whole packet to paho's dispatcher, as its own reader would."""
        self._in_packet = {"command": cmd, "have_remaining": 1, "remaining_count": [],
                           "remaining_mult": 1, "remaining_length": length,
                           "packet": bytearray(body), "to_process": 0, "pos": 0}
        try:
            rc = self._packet_handle()
        except mqtt.MalformedPacket as exc:
            self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = {"command": 0, "have_remaining": 0, "remaining_count": [],
                           "remaining_mult": 1, "remaining_length": 0,
                           "packet": bytearray(b""), "to_process": 0, "pos": 0}
        return rc


def is_outage(exc: BaseException) -> bool:
    """An error that means "the database is unreachable, try again" (not "this data is
    wrong"): network and OS errors, SQLAlchemy's operational and disconnection errors."""
    if isinstance(exc, (OSError, TimeoutError, ConnectionError)):
        return True
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError,
                            sa_exc.DisconnectionError, sa_exc.TimeoutError))


def subscription(shared_group: str = "") -> str:
    """The topic filter to subscribe to (``$share/{group}/...`` with a shared group)."""
    if shared_group:
        return "$share/%s/%s" % (shared_group, SUBSCRIPTION)
    return SUBSCRIPTION


class StoreLike:  # documentation only: what ingest needs from the state store
    def prepare(self, batch: List[Received]) -> Plan: ...

    def commit(self, plan: Plan, before_commit: Optional[Callable[[], None]] = None
               ) -> Optional[List[Event]]:
        """Write ``plan``; call ``before_commit()`` last, before the transaction
        commits, and commit nothing if it raises."""


class Ingest:
    """The MQTT consumer and its batch worker. ``start()``, ``stop()``."""

    def __init__(self, cfg: Any, store: Any, timeseries: Any = None,
                 metrics: Optional[IngestMetrics] = None,
                 on_events: Optional[Callable[[Sequence[Event]], None]] = None,
                 clock: Callable[[], float] = time.time, fast_client: bool = True) -> None:
        self.cfg = cfg
        self.store = store
        wire.use_orjson()  # the collector extra installs it; same results, ~2x faster
        self.timeseries = timeseries if timeseries is not None else NullTimeSeries()
        self._ts_enabled = bool(getattr(self.timeseries, "enabled", True))
        self.metrics = metrics if metrics is not None else default_metrics()
        self.on_events = on_events
        self.clock = clock
        ic = cfg.ingest
        self.batch_size = int(ic.batch_size)
        self.batch_wait = float(ic.batch_wait)
        self.max_pending = int(ic.max_pending)
        self.max_future_skew = float(ic.max_future_skew)
        self.max_age = float(ic.max_age)
        self.receive_maximum = max(1, min(self.max_pending, MAX_RECEIVE_MAXIMUM))
        self.topic_filter = subscription(ic.shared_group)
        #: acknowledge a batch with one write (False: paho's ack() per message)
        self.fast_ack = True
        #: use FastClient's receive path (False: paho's Client as it is)
        self.fast_client = bool(fast_client)

        self._queue: Deque[Item] = collections.deque()
        self._wake = threading.Event()
        self._space = threading.Condition()
        self._stop = threading.Event()
        self._gen = 0
        self._ack_lock = threading.Lock()
        self._connected = False
        self._subscribed = threading.Event()
        self._worker: Optional[threading.Thread] = None
        self._writer: Optional[threading.Thread] = None
        #: writes a batch's time series while the store thread writes its rows (start())
        self._ts_writer: Any = None
        #: decoded batches waiting for the store stage (bounded: backpressure)
        self._decoded: queue.Queue[Decoded] = queue.Queue(maxsize=2)
        #: messages taken from the queue and not yet acknowledged (or given up)
        self._in_flight = 0
        self._flight_lock = threading.Lock()
        #: latencies (receive → stored) of recent messages, for benchmarks
        self.recent_latencies: Deque[float] = collections.deque(maxlen=200_000)
        self.metrics.pending.set_function(self.pending)
        self._v5 = cfg.mqtt.protocol == "5"
        self._protocol = mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311
        self.client = self._make_client()

    # ---------------------------------------------------------------- MQTT side
    def _make_client(self) -> mqtt.Client:
        mc = self.cfg.mqtt
        cls = FastClient if self.fast_client else mqtt.Client
        client = cls(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                     client_id=mc.client_id, protocol=self._protocol, manual_ack=True,
                     # MQTT 3.1.1 keeps the session with clean_session=False (v5: clean_start)
                     clean_session=None if self._v5 else False)
        if mc.username:
            client.username_pw_set(mc.username, mc.password or None)
        host, port, tls = mqtt_endpoint(mc.url or "mqtt://127.0.0.1:1883")
        if tls:
            client.tls_set(ca_certs=mc.ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
        self._host, self._port = host, port
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        if isinstance(client, FastClient):
            client.on_raw_batch = self._on_raw_batch
        client.on_subscribe = self._on_subscribe
        return client

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        with self._ack_lock:
            self._gen += 1
            if flags.session_present and self._queue:
                # The broker kept our session: it sends every unacknowledged message again,
                # so what the last connection left queued here would only be done twice.
                dropped = len(self._queue)
                self._queue.clear()
                log.info("reconnected: %d queued message(s) left to the broker's resend",
                         dropped)
        self._connected = True
        self.metrics.broker_connected.set(1)
        log.info("connected to the broker %s:%d (session present: %s)", self._host, self._port,
                 flags.session_present)
        # Retain handling 1: retained messages only when the subscription is new, so a
        # reconnect does not replay every retained status.
        if self._v5:
            client.subscribe(self.topic_filter,
                             options=SubscribeOptions(qos=1, retainHandling=1))
        else:
            client.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any,
                      properties: Any) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("broker refused the subscription %s: %s", self.topic_filter, reason_codes)
        else:
            self._subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        with self._ack_lock:
            self._gen += 1
        self._connected = False
        self._subscribed.clear()
        self.metrics.broker_connected.set(0)
        if not self._stop.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._on_raw_publish(msg._topic, msg.payload, msg.mid, msg.qos)

    def _on_raw_publish(self, topic_b: bytes, payload: bytes, mid: int, qos: int) -> None:
        self._on_raw_batch([(topic_b, payload, mid, qos)])

    def _on_raw_batch(self, msgs: List[Tuple[bytes, bytes, int, int]]) -> None:
        q = self._queue
        gen, now = self._gen, time.time()
        q.extend([(t, p, mid, qos, gen, now) for t, p, mid, qos in msgs])
        if len(q) >= self.max_pending:
            self._backpressure()
        if not self._wake.is_set():
            self._wake.set()

    def _backpressure(self) -> None:
        """The queue is full (the broker sent more than our Receive Maximum, e.g. when it
        resends a session's backlog): stop reading for a while. Never longer than a third
        of the keepalive at a time: this is the network thread, and a broker that hears
        nothing (our PUBACKs wait for this thread too) for 1.5 keepalives drops us."""
        q = self._queue
        deadline = time.monotonic() + max(0.5, self.cfg.mqtt.keepalive / 3.0)
        with self._space:
            while len(q) >= self.max_pending and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("ingest queue full (%d messages); reading on", len(q))
                    return
                self._wake.set()
                self._space.wait(min(0.5, left))

    @property
    def connected(self) -> bool:
        return self._connected

    def pending(self) -> int:
        """Messages received and not yet acknowledged (queued + in the current batch)."""
        return len(self._queue) + self._in_flight

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY
        props.ReceiveMaximum = self.receive_maximum
        self._stop.clear()
        self._ts_writer = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="schoolmon-ingest-ts")
        self._worker = threading.Thread(target=self._run_decode, name="schoolmon-ingest-decode",
                                        daemon=True)
        self._writer = threading.Thread(target=self._run_store, name="schoolmon-ingest-store",
                                        daemon=True)
        self._worker.start()
        self._writer.start()
        if self._v5:
            self.client.connect_async(self._host, self._port, keepalive=self.cfg.mqtt.keepalive,
                                      clean_start=False, properties=props)
        else:
            self.client.connect_async(self._host, self._port, keepalive=self.cfg.mqtt.keepalive)
        self.client.loop_start()

    def wait_subscribed(self, timeout: float = 10.0) -> bool:
        return self._subscribed.wait(timeout)

    def stop(self, timeout: float = 10.0, drain: bool = True) -> None:
        """Stop: finish the batch in hand (and, with ``drain``, what is queued while the
        stores answer), acknowledge it, disconnect. Anything not stored stays unacknowledged
        in the broker."""
        if drain:
            deadline = time.monotonic() + timeout
            while self.pending() and time.monotonic() < deadline and self.alive():
                time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        with self._space:
            self._space.notify_all()
        for t in (self._worker, self._writer):
            if t is not None:
                t.join(timeout)
        try:
            self.client.disconnect()
        except Exception:
            pass
        self.client.loop_stop()
        if self._ts_writer is not None:
            self._ts_writer.shutdown(wait=False)
        self._connected = False
        self.metrics.broker_connected.set(0)

    # ---------------------------------------------------------------- worker
    def alive(self) -> bool:
        """Both worker threads are running."""
        return all(t is not None and t.is_alive() for t in (self._worker, self._writer))

    def _take(self) -> List[Item]:
        """Wait for the first message, then fill a batch until full or batch_wait passes."""
        q = self._queue
        batch: List[Item] = []
        first = None
        while not self._stop.is_set():
            n0 = len(batch)
            while len(batch) < self.batch_size:
                try:
                    batch.append(q.popleft())
                except IndexError:
                    break
            if len(batch) > n0:
                with self._flight_lock:
                    self._in_flight += len(batch) - n0
            if batch:
                if first is None:
                    first = time.monotonic()
                if len(batch) >= self.batch_size:
                    break
                left = first + self.batch_wait - time.monotonic()
                if left <= 0:
                    break
            else:
                left = 0.5
            self._wake.clear()
            if q:
                continue
            self._wake.wait(left)
        return batch

    def _done(self, n: int) -> None:
        with self._flight_lock:
            self._in_flight -= n
        if len(self._queue) < self.max_pending:
            with self._space:
                self._space.notify_all()

    # Stage 1 (decode thread): batches, decoding, skew checks and line bodies. Stage 2
    # (store thread): prepare → commit with the time-series write alongside →
    # acknowledgements, one batch at a time in arrival order. Decoding the next batch
    # overlaps with the current batch's waits on the time-series server and the database.
    def _run_decode(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            if not batch:
                continue
            try:
                t0 = time.perf_counter()
                received, positions = self._decode(batch)
                bodies = {id(r): message_bodies(r.message.kind, r.message.payload, r.ts)
                          for r in received} if self._ts_enabled else None
                item = (batch, received, positions, bodies)
                self.metrics.stage_seconds.inc(time.perf_counter() - t0, stage="decode")
            except Exception:  # pragma: no cover - a bug; the batch is left unacknowledged
                log.exception("decoding a batch of %d failed", len(batch))
                self._done(len(batch))
                continue
            while not self._stop.is_set():
                try:
                    self._decoded.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue
            else:
                self._done(len(batch))

    def _run_store(self) -> None:
        while not self._stop.is_set():
            try:
                batch, received, positions, bodies = self._decoded.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._handle(batch, received, positions, bodies)
            except TimeSeriesUnavailable:
                log.info("stopping with a batch of %d unwritten (left in the broker)", len(batch))
            except Exception:  # pragma: no cover - a bug; keep ingesting
                log.exception("batch of %d failed; left unacknowledged", len(batch))
            finally:
                self._done(len(batch))

    def _decode(self, batch: List[Item]) -> Tuple[List[Received], List[int]]:
        m = self.metrics
        m.received.inc(len(batch))
        received: List[Received] = []
        positions: List[int] = []
        rejected: Dict[str, int] = {}
        skew = {"future": 0, "too_old": 0}
        now_limit_future = self.max_future_skew
        max_age = self.max_age
        for pos, (topic_b, payload, _mid, _qos, _gen, rt) in enumerate(batch):
            try:
                topic = topic_b.decode("utf-8")
                msg = decode(topic, payload)
            except ProtocolError as exc:
                rejected[exc.reason] = rejected.get(exc.reason, 0) + 1
                continue
            except UnicodeDecodeError:
                rejected["bad_topic"] = rejected.get("bad_topic", 0) + 1
                continue
            ts = msg.ts
            if ts > rt + now_limit_future:
                received.append(Received(msg, rt, rt, "future", payload))
                positions.append(pos)
                skew["future"] += 1
            elif ts < rt - max_age:
                received.append(Received(msg, rt, rt, "too_old", payload))
                positions.append(pos)
                skew["too_old"] += 1
            else:
                received.append(Received(msg, rt, ts, None, payload))
                positions.append(pos)
        for reason, n in rejected.items():
            m.rejected.inc(n, reason=reason)
            log.debug("rejected %d message(s): %s", n, reason)
        for direction, n in skew.items():
            if n:
                m.clock_skew.inc(n, direction=direction)
        return received, positions

    def _handle(self, batch: List[Item], received: List[Received], positions: List[int],
                bodies: Optional[Dict[int, List[Any]]] = None) -> None:
        clock = time.perf_counter
        t0 = clock()
        events: List[Event] = []
        failed: Set[int] = set()
        if received:
            self._store(received, positions, bodies, events, failed)
        t3 = clock()
        self._ack(batch, failed)
        now = time.time()
        self.metrics.stage_seconds.inc(clock() - t3, stage="ack")
        lat = [now - item[5] for item in batch]
        self.metrics.latency.observe_many(lat)
        self.recent_latencies.extend(lat)
        self.metrics.batch_seconds.observe(clock() - t0)
        if events and self.on_events is not None:
            try:
                self.on_events(events)
            except Exception:
                log.exception("event callback failed")

    def _store(self, received: List[Received], positions: List[int],
               bodies: Optional[Dict[int, List[Any]]], events: List[Event],
               failed: Set[int]) -> None:
        """prepare → (time-series write ∥ state-store writes) → commit. The time-series
        write runs on its own thread while the store writes the batch's rows in its
        transaction; the transaction commits only once the time series are written, so a
        crash or an outage at any point leaves nothing committed whose lines are missing
        (the broker delivers the batch again; both writes are idempotent).

        Outages (database, time-series server) are retried until they end. Anything else
        (a message the store or the time-series server refuses, or a bug it triggers)
        splits the batch in halves, down to the one message at fault: that one is
        logged, counted and left unacknowledged (the broker offers it again after a
        reconnect), and every other message is stored."""
        clock = time.perf_counter
        stage = self.metrics.stage_seconds
        written: Optional[concurrent.futures.Future[int]] = None
        try:
            t0 = clock()
            plan = self._retry("prepare", lambda: self.store.prepare(received))
            t1 = clock()
            stage.inc(t1 - t0, stage="prepare")
            if plan.accepted and self._ts_enabled:
                lines = build_lines(plan.accepted, bodies)
                if lines:
                    written = self._ts_writer.submit(self.timeseries.write_lines, lines,
                                                     self._stop)
            t2 = clock()
            waited = [0.0]

            def time_series_written() -> None:
                if written is not None:
                    w0 = clock()
                    try:
                        written.result(timeout=OVERLAP_WAIT)
                    except concurrent.futures.TimeoutError:
                        raise _TimeSeriesSlow() from None
                    finally:
                        waited[0] += clock() - w0

            try:
                ev = self._retry("commit", lambda: self.store.commit(
                    plan, before_commit=time_series_written))
            except _TimeSeriesSlow:
                # The server is slow or down: wait outside the transaction, so the store's
                # lock (liveness sweeps) and SQLite's write lock (imports) stay free.
                assert written is not None
                w0 = clock()
                written.result()
                waited[0] += clock() - w0
                ev = self._retry("commit", lambda: self.store.commit(plan))
            stage.inc(waited[0], stage="timeseries")
            stage.inc(clock() - t2 - waited[0], stage="commit")
        except TimeSeriesUnavailable:
            raise
        except Exception as exc:
            if written is not None:
                written.exception()  # never two writes of one batch's lines at once
            if len(received) == 1:
                msg = received[0].message
                log.error("cannot store %s/%s/%s seq %s (left unacknowledged): %r",
                          msg.school, msg.device, msg.kind, msg.seq, exc)
                self.metrics.store_errors.inc()
                failed.add(positions[0])
                return
            log.warning("storing a batch of %d failed (%r); splitting it", len(received), exc)
            half = len(received) // 2
            self._store(received[:half], positions[:half], bodies, events, failed)
            self._store(received[half:], positions[half:], bodies, events, failed)
            return
        if ev:
            events.extend(ev)
        self._count(plan)

    def _retry(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run a store call, retrying with backoff while the database is unreachable.
        Other errors are raised at once (see ``_store``)."""
        delay = 0.5
        while True:
            try:
                return fn()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                if self._stop.is_set():
                    raise TimeSeriesUnavailable("stopping during store %s" % what) from exc
                log.warning("state store %s failed (%s); retrying in %.1fs", what,
                            str(exc)[:300], delay)
                if self._stop.wait(delay):
                    raise TimeSeriesUnavailable("stopping during store %s" % what) from exc
                delay = min(delay * 2, 30.0)

    def _count(self, plan: Plan) -> None:
        m = self.metrics
        if plan.accepted:
            kinds: Dict[str, int] = {}
            for a in plan.accepted:
                k = a.received.message.kind
                kinds[k] = kinds.get(k, 0) + 1
            for k, n in kinds.items():
                m.stored.inc(n, kind=k)
        if plan.duplicates:
            m.duplicates.inc(plan.duplicates)
        for _received, reason in plan.rejected:
            m.rejected.inc(reason=reason)
        gaps = sum(plan.gaps.values()) if plan.gaps else 0
        if gaps:
            m.seq_gaps.inc(gaps)

    def _ack(self, batch: List[Item], failed: Optional[Set[int]] = None) -> None:
        """PUBACK every QoS 1 message of the batch that came on the current connection,
        in one write (paho's per-message ``ack`` costs a wake-up and a send each)."""
        client = self.client
        with self._ack_lock:
            gen = self._gen
            if not self._connected:
                return
            if failed:
                mids = [item[2] for i, item in enumerate(batch)
                        if item[3] == 1 and item[4] == gen and i not in failed]
            else:
                mids = [mid for _t, _p, mid, qos, g, _rt in batch if qos == 1 and g == gen]
            if not mids:
                return
            queue_packet = getattr(client, "_packet_queue", None)
            if queue_packet is None or not self.fast_ack:  # pragma: no cover - other paho
                for mid in mids:
                    client.ack(mid, 1)
                return
            pack = _puback
            for i in range(0, len(mids), 8192):
                data = b"".join([pack(0x40, 2, mid) for mid in mids[i:i + 8192]])
                queue_packet(PUBACK, data, 0, 0)
