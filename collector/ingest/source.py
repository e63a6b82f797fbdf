"""Ingest's source: the broker connection, the bounded queue, backpressure and the
acknowledgements (the network thread's side of ingest).

- paho-mqtt 2.x, MQTT v5 (or 3.1.1), persistent session under a client id this process
  holds alone on this host (``mqtt.client``): what agents publish while the collector is
  down waits in the broker.
- ``manual_ack=True`` and Receive Maximum = ``min(ingest.max_pending, 65535)``: the broker
  never has more than that many unacknowledged messages out to us, so the queue stays
  bounded. Receiving only appends to that queue (in bulk, FastClient) and, as a last
  resort when it is full, stops reading for a while.
- Packet ids belong to the session, but to be safe an acknowledgement is only sent on the
  connection that delivered the message (its *generation*); anything older is left for
  the broker to deliver again (and counted as a duplicate then).
"""
import collections
import logging
import threading
import time
from types import SimpleNamespace
from typing import Any, Callable, Collection, Deque, List, Optional, Tuple

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from ..metrics import IngestMetrics
from ..mqtt import client as mqtt_client
from ..mqtt.codec import PUBACK, puback_packets
from ..mqtt.fast_client import FastClient, RawMessage

log = logging.getLogger("schoolmon.collector.ingest")

#: A queued message: (topic bytes, payload, packet id, QoS, connection generation,
#: received_at). A tuple, not an object: the collector takes ~12,000 a second.
Item = Tuple[bytes, bytes, int, int, int, float]


def settled_mids(batch: List[Item], unsettled: Collection[int], generation: int) -> List[int]:
    """The acknowledgement contract. A message is acknowledged only once it is *settled*:
    every output took it (state store committed, time series written), or it is refused
    for good and counted (a protocol reject, a duplicate, a registry refusal) or kept aside
    in the dead-letter table. ``unsettled`` holds the positions in ``batch`` of the others
    (nothing is acknowledged for them: the broker delivers them again). Only QoS 1
    messages from the connection of ``generation`` are acknowledged."""
    if unsettled:
        return [item[2] for i, item in enumerate(batch)
                if item[3] == 1 and item[4] == generation and i not in unsettled]
    return [mid for _t, _p, mid, qos, g, _rt in batch if qos == 1 and g == generation]


class Source:
    """The MQTT consumer: connection, queue, backpressure, acknowledgements."""

    def __init__(self, cfg: SimpleNamespace, metrics: IngestMetrics, stop: threading.Event,
                 fast_client: bool = True, clock: Callable[[], float] = time.time) -> None:
        ic = cfg.ingest
        #: stamps each message's received_at (the liveness clock); tests pass their own
        #: so a scenario can happen at 10:00 on a school day whatever the wall clock says
        self.clock = clock
        self.mqtt_cfg = cfg.mqtt
        self.metrics = metrics
        self.batch_size = int(ic.batch_size)
        self.batch_wait = float(ic.batch_wait)
        self.max_pending = int(ic.max_pending)
        self.topic_filter = mqtt_client.subscription(ic.shared_group)
        self.fast_client = bool(fast_client)
        #: acknowledge a batch with one write (False: paho's ack() per message)
        self.fast_ack = True
        self._stop = stop
        self._v5 = cfg.mqtt.protocol == "5"
        self.queue: Deque[Item] = collections.deque()
        self._wake = threading.Event()
        self._space = threading.Condition()
        self._gen = 0
        self._ack_lock = threading.Lock()
        self._connected = False
        self._subscribed = threading.Event()
        #: messages taken from the queue and not yet acknowledged (or given up)
        self._in_flight = 0
        self._flight_lock = threading.Lock()
        #: monotonic time of the last acknowledgement, or of the last moment nothing waited
        self._progress_at = time.monotonic()
        self._claim: Optional[mqtt_client.ClientIdClaim] = None
        self.client_id = cfg.mqtt.client_id
        self.client, self.host, self.port = self._make_client(self.client_id)

    def _make_client(self, client_id: str) -> Tuple[mqtt.Client, str, int]:
        client, host, port = mqtt_client.make_client(self.mqtt_cfg, client_id, self.fast_client)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        if isinstance(client, FastClient):
            client.on_raw_batch = self._on_raw_batch
        client.on_subscribe = self._on_subscribe
        return client, host, port

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Claim the client id (raises ClientIdTaken), connect in the background."""
        self._claim = mqtt_client.claim_client_id(self.mqtt_cfg.client_id,
                                                  "%s:%d" % (self.host, self.port))
        if self._claim.client_id != self.client_id:
            log.info("client id %s is used by another collector process on this host; "
                     "using %s", self.client_id, self._claim.client_id)
            self.client_id = self._claim.client_id
            self.client, self.host, self.port = self._make_client(self.client_id)
        self._progress_at = time.monotonic()
        mqtt_client.connect(self.client, self.mqtt_cfg, self.host, self.port, self.max_pending)

    def stop_waiting(self) -> None:
        """Wake ``take`` and a blocked receive: the stop event is set."""
        self._wake.set()
        with self._space:
            self._space.notify_all()

    def stop(self) -> None:
        self.stop_waiting()
        try:
            self.client.disconnect()
        except Exception:
            pass
        self.client.loop_stop()
        self._connected = False
        self.metrics.broker_connected.set(0)
        if self._claim is not None:
            self._claim.release()
            self._claim = None

    def wait_subscribed(self, timeout: float = 10.0) -> bool:
        return self._subscribed.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected

    def pending(self) -> int:
        """Messages received and not yet acknowledged (queued + being handled)."""
        return len(self.queue) + self._in_flight

    def stalled_for(self) -> float:
        """Seconds messages have been waiting with nothing acknowledged (0: progressing)."""
        if not self.pending():
            self._progress_at = time.monotonic()
            return 0.0
        return max(0.0, time.monotonic() - self._progress_at)

    # ---------------------------------------------------------------- network thread
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        with self._ack_lock:
            self._gen += 1
            if flags.session_present and self.queue:
                # The broker kept our session: it sends every unacknowledged message again,
                # so what the last connection left queued here would only be done twice.
                dropped = len(self.queue)
                self.queue.clear()
                log.info("reconnected: %d queued message(s) left to the broker's resend",
                         dropped)
        self._connected = True
        self.metrics.broker_connected.set(1)
        log.info("connected to the broker %s:%d as %s (session present: %s)", self.host,
                 self.port, self.client_id, flags.session_present)
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
        self._on_raw_batch([(msg._topic, bytes(msg.payload), msg.mid, msg.qos)])

    def _on_raw_batch(self, msgs: List[RawMessage]) -> None:
        q = self.queue
        if not q and not self._in_flight:  # waiting starts now, not at the last ack
            self._progress_at = time.monotonic()
        gen, now = self._gen, self.clock()
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
        q = self.queue
        deadline = time.monotonic() + max(0.5, self.mqtt_cfg.keepalive / 3.0)
        with self._space:
            while len(q) >= self.max_pending and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("ingest queue full (%d messages); reading on", len(q))
                    return
                self._wake.set()
                self._space.wait(min(0.5, left))

    # ---------------------------------------------------------------- worker side
    def take(self) -> List[Item]:
        """Wait for the first message, then fill a batch until full or batch_wait passes."""
        q = self.queue
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

    def done(self, n: int) -> None:
        """``n`` messages taken by ``take`` are finished with (acknowledged or not)."""
        with self._flight_lock:
            self._in_flight -= n
        if len(self.queue) < self.max_pending:
            with self._space:
                self._space.notify_all()

    def acknowledge(self, batch: List[Item], unsettled: Collection[int] = ()) -> int:
        """PUBACK what ``settled_mids`` allows, in one write (paho's per-message ``ack``
        costs a wake-up and a send each). Returns how many were acknowledged."""
        client = self.client
        if len(unsettled) < len(batch):  # settled messages are progress, acked or not
            self._progress_at = time.monotonic()
        with self._ack_lock:
            if not self._connected:
                return 0
            mids = settled_mids(batch, unsettled, self._gen)
            if not mids:
                return 0
            queue_packet = getattr(client, "_packet_queue", None)
            if queue_packet is None or not self.fast_ack:  # pragma: no cover - other paho
                for mid in mids:
                    client.ack(mid, 1)
                return len(mids)
            for i in range(0, len(mids), 8192):
                queue_packet(PUBACK, puback_packets(mids[i:i + 8192]), 0, 0)
            return len(mids)
