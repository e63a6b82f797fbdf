"""Ingest: broker → bounded queue → batches → state store + time series → acknowledgements.

Two threads besides paho's network thread. The decode thread takes batches from the
source (``ingest.batch_size`` messages, or ``ingest.batch_wait`` seconds after the first)
and decodes them; the store thread writes one decoded batch at a time, in arrival order
(``batch.BatchWriter``), and acknowledges what is settled (``source.settled_mids``).
Decoding the next batch overlaps with the current batch's waits on the time-series server
and the database.
"""
import collections
import logging
import queue
import threading
import time
from types import SimpleNamespace
from typing import Callable, Deque, List, Optional, Sequence

import paho.mqtt.client as mqtt
from schoolmon.protocol import wire

from ..metrics import IngestMetrics, default_metrics
from ..state import Event
from ..store.dead_letters import DeadLetter
from ..timeseries import NullTimeSeries, TimeSeriesUnavailable
from .batch import BatchWriter, Decoded, Outcome
from .seam import Store, TimeSeries
from .source import Source

log = logging.getLogger("schoolmon.collector.ingest")


class Ingest:
    """The MQTT consumer and its batch worker. ``start()``, ``stop()``."""

    def __init__(self, cfg: SimpleNamespace, store: Store, timeseries: Optional[TimeSeries] = None,
                 metrics: Optional[IngestMetrics] = None,
                 on_events: Optional[Callable[[Sequence[Event]], None]] = None,
                 fast_client: bool = True,
                 keep_aside: Optional[Callable[[List[DeadLetter]], int]] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.store = store
        wire.use_orjson()  # the collector extra installs it; same results, ~2x faster
        self.timeseries: TimeSeries = timeseries if timeseries is not None else NullTimeSeries()
        self.metrics = metrics if metrics is not None else default_metrics()
        self.on_events = on_events
        self._stop = threading.Event()
        self.source = Source(cfg, self.metrics, self._stop, fast_client, clock)
        self.writer = BatchWriter(store, self.timeseries, self.metrics, self._stop,
                                  float(cfg.ingest.max_future_skew), float(cfg.ingest.max_age),
                                  keep_aside)
        self.max_pending = self.source.max_pending
        self._decode_thread: Optional[threading.Thread] = None
        self._store_thread: Optional[threading.Thread] = None
        #: decoded batches waiting for the store stage (bounded: backpressure)
        self._decoded: queue.Queue[Decoded] = queue.Queue(maxsize=2)
        #: latencies (receive → stored) of recent messages, for benchmarks
        self.recent_latencies: Deque[float] = collections.deque(maxlen=200_000)
        self.metrics.pending.set_function(self.pending)

    @property
    def client(self) -> mqtt.Client:
        return self.source.client

    @property
    def connected(self) -> bool:
        return self.source.connected

    def pending(self) -> int:
        """Messages received and not yet acknowledged (queued + in the current batch)."""
        return self.source.pending()

    def stalled_for(self) -> float:
        """Seconds messages have waited with nothing settled (0 while ingest progresses)."""
        return self.source.stalled_for()

    def wait_subscribed(self, timeout: float = 10.0) -> bool:
        return self.source.wait_subscribed(timeout)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the threads and connect (raises ClientIdTaken: see ``mqtt.client``)."""
        self._stop.clear()
        self.writer.start()
        self._decode_thread = threading.Thread(target=self._run_decode,
                                               name="schoolmon-ingest-decode", daemon=True)
        self._store_thread = threading.Thread(target=self._run_store,
                                              name="schoolmon-ingest-store", daemon=True)
        self._decode_thread.start()
        self._store_thread.start()
        try:
            self.source.start()
        except Exception:
            self._stop.set()
            raise

    def stop(self, timeout: float = 10.0, drain: bool = True) -> None:
        """Stop: finish the batch in hand (and, with ``drain``, what is queued while the
        stores answer), acknowledge it, disconnect. Anything not stored stays unacknowledged
        in the broker."""
        if drain:
            deadline = time.monotonic() + timeout
            while self.pending() and time.monotonic() < deadline and self.alive():
                time.sleep(0.02)
        self._stop.set()
        self.source.stop_waiting()
        for t in (self._decode_thread, self._store_thread):
            if t is not None:
                t.join(timeout)
        self.source.stop()
        self.writer.stop()

    def alive(self) -> bool:
        """Both worker threads are running."""
        return all(t is not None and t.is_alive()
                   for t in (self._decode_thread, self._store_thread))

    # ---------------------------------------------------------------- threads
    def _run_decode(self) -> None:
        source = self.source
        while not self._stop.is_set():
            batch = source.take()
            if not batch:
                continue
            try:
                t0 = time.perf_counter()
                item = self.writer.decode(batch)
                self.metrics.stage_seconds.inc(time.perf_counter() - t0, stage="decode")
            except Exception:  # pragma: no cover - a bug; the batch is left unacknowledged
                log.exception("decoding a batch of %d failed", len(batch))
                source.done(len(batch))
                continue
            while not self._stop.is_set():
                try:
                    self._decoded.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue
            else:
                source.done(len(batch))

    def _run_store(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._decoded.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._handle(item)
            except TimeSeriesUnavailable:
                log.info("stopping with a batch of %d unwritten (left in the broker)",
                         len(item.items))
            except Exception:  # pragma: no cover - a bug; keep ingesting
                log.exception("batch of %d failed; left unacknowledged", len(item.items))
            finally:
                self.source.done(len(item.items))

    def _handle(self, item: Decoded) -> Outcome:
        clock = time.perf_counter
        t0 = clock()
        outcome = self.writer.write(item)
        t3 = clock()
        self.source.acknowledge(item.items, outcome.unsettled)
        now = self.clock()  # the clock that stamped received_at
        self.metrics.stage_seconds.inc(clock() - t3, stage="ack")
        lat = [now - it[5] for it in item.items]
        self.metrics.latency.observe_many(lat)
        self.recent_latencies.extend(lat)
        self.metrics.batch_seconds.observe(clock() - t0)
        if outcome.events and self.on_events is not None:
            try:
                self.on_events(outcome.events)
            except Exception:
                log.exception("event callback failed")
        return outcome
