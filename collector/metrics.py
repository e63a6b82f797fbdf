"""The collector's own metrics, rendered at ``/metrics`` in Prometheus text format 0.0.4.

A tiny thread-safe registry (no dependency on prometheus_client): counters with labels,
gauges (set, or read from a callback at render time) and a latency histogram.
``REGISTRY`` is the process-wide default that :class:`IngestMetrics` uses unless given
another; tests make a fresh ``Registry()`` so they do not see each other's counts.

Names (all prefixed ``schoolmon_``)::

    schoolmon_messages_received_total            messages taken from the broker
    schoolmon_messages_stored_total{kind}        new messages committed to the state store
    schoolmon_rejected_total{reason}             refused; every reason pre-created at 0
    schoolmon_duplicates_total                   (device, seq) already stored (redelivery)
    schoolmon_seq_gaps_total                     sequence numbers missing (loss)
    schoolmon_clock_skew_total{direction}        ts replaced by receive time (future|too_old)
    schoolmon_pending_messages                   received, not yet stored/acknowledged
    schoolmon_batch_seconds                      histogram: one batch, prepare → ack
    schoolmon_ingest_latency_seconds             histogram: receive → stored, per message
    schoolmon_timeseries_lines_total             lines written to the time-series server
    schoolmon_timeseries_write_errors_total      failed write requests
    schoolmon_timeseries_retries_total           write attempts that were retries
    schoolmon_broker_connected                   1 while connected to the broker
    schoolmon_store_errors_total                 messages the stores refused (not outages)
    schoolmon_dead_letters_total{reason}         refused for good: kept aside, acknowledged
    schoolmon_ingest_stage_seconds_total{stage}  wall time per stage (where a batch goes)
"""
import math
import threading
from bisect import bisect_left
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from schoolmon.protocol import REASONS

PREFIX = "schoolmon_"

#: Seconds; suits both a batch write (ms to s) and receive-to-stored latency.
DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _fmt(value: float) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()
                                  and abs(value) < 1e15):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = ['%s="%s"' % (n, _escape_label(str(v))) for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, doc: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.doc = doc
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: Dict[str, str]) -> Tuple[str, ...]:
        if set(labels) != set(self.labelnames):
            raise ValueError("%s takes labels %s, got %s" % (self.name, self.labelnames,
                                                             tuple(labels)))
        return tuple(str(labels[n]) for n in self.labelnames)

    def header(self) -> List[str]:
        return ["# HELP %s %s" % (self.name, _escape_help(self.doc)),
                "# TYPE %s %s" % (self.name, self.kind)]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, doc: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, doc, labelnames)
        self._values: Dict[Tuple[str, ...], float] = {}
        if not self.labelnames:
            self._values[()] = 0

    def inc(self, amount: float = 1, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def precreate(self, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values.setdefault(key, 0)

    def get(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0)

    def total(self) -> float:
        with self._lock:
            return sum(self._values.values())

    def samples(self) -> Dict[Tuple[str, ...], float]:
        with self._lock:
            return dict(self._values)

    def render(self) -> List[str]:
        out = self.header()
        for key, value in sorted(self.samples().items()):
            out.append("%s%s %s" % (self.name, _labels(self.labelnames, key), _fmt(value)))
        return out


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, doc: str, labelnames: Sequence[str] = (),
                 function: Optional[Callable[[], float]] = None) -> None:
        super().__init__(name, doc, labelnames)
        self._values: Dict[Tuple[str, ...], float] = {}
        self._function = function
        if not self.labelnames:
            self._values[()] = 0

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = value

    def inc(self, amount: float = 1, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def dec(self, amount: float = 1, **labels: str) -> None:
        self.inc(-amount, **labels)

    def set_function(self, function: Optional[Callable[[], float]]) -> None:
        """Read the (label-less) value from ``function`` at render time."""
        self._function = function

    def get(self, **labels: str) -> float:
        if self._function is not None and not labels:
            try:
                return float(self._function())
            except Exception:  # a broken callback must not break /metrics
                return math.nan
        with self._lock:
            return self._values.get(self._key(labels), 0)

    def render(self) -> List[str]:
        out = self.header()
        if self._function is not None and not self.labelnames:
            out.append("%s %s" % (self.name, _fmt(self.get())))
            return out
        with self._lock:
            items = sorted(self._values.items())
        for key, value in items:
            out.append("%s%s %s" % (self.name, _labels(self.labelnames, key), _fmt(value)))
        return out


class Histogram(_Metric):
    """Cumulative buckets, sum and count (label-less: one series per metric)."""

    kind = "histogram"

    def __init__(self, name: str, doc: str, buckets: Iterable[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, doc, ())
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)  # last = +Inf
        self._sum = 0.0
        self._count = 0

    def observe(self, value: float) -> None:
        self.observe_many((value,))

    def observe_many(self, values: Iterable[float]) -> None:
        """Observe many values under one lock (cheap for a whole batch)."""
        buckets = self.buckets
        values = list(values)
        with self._lock:
            counts = self._counts
            for v in values:
                counts[bisect_left(buckets, v)] += 1
            self._sum += sum(values)
            self._count += len(values)

    def observe_same(self, value: float, times: int) -> None:
        if times <= 0:
            return
        i = 0
        while i < len(self.buckets) and value > self.buckets[i]:
            i += 1
        with self._lock:
            self._counts[i] += times
            self._sum += value * times
            self._count += times

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    @property
    def sum(self) -> float:
        with self._lock:
            return self._sum

    def quantile(self, q: float) -> float:
        """Upper bound of the bucket holding quantile ``q`` (rough; NaN when empty)."""
        with self._lock:
            counts, total = list(self._counts), self._count
        if not total:
            return math.nan
        rank, seen = q * total, 0
        for i, c in enumerate(counts):
            seen += c
            if seen >= rank:
                return self.buckets[i] if i < len(self.buckets) else math.inf
        return math.inf

    def render(self) -> List[str]:
        out = self.header()
        with self._lock:
            counts, total, s = list(self._counts), self._count, self._sum
        acc = 0
        for bound, c in zip(self.buckets, counts):
            acc += c
            out.append('%s_bucket{le="%s"} %d' % (self.name, _fmt(bound), acc))
        out.append('%s_bucket{le="+Inf"} %d' % (self.name, total))
        out.append("%s_sum %s" % (self.name, _fmt(s)))
        out.append("%s_count %d" % (self.name, total))
        return out


class Registry:
    """A set of metrics rendered together."""

    def __init__(self) -> None:
        self._metrics: Dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def _add(self, metric: _Metric) -> _Metric:
        with self._lock:
            old = self._metrics.get(metric.name)
            if old is not None:
                if type(old) is not type(metric) or old.labelnames != metric.labelnames:
                    raise ValueError("metric %s already registered differently" % metric.name)
                return old
            self._metrics[metric.name] = metric
            return metric

    def counter(self, name: str, doc: str, labelnames: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, doc, labelnames))  # type: ignore[return-value]

    def gauge(self, name: str, doc: str, labelnames: Sequence[str] = (),
              function: Optional[Callable[[], float]] = None) -> Gauge:
        g = self._add(Gauge(name, doc, labelnames))
        if function is not None:
            g.set_function(function)  # type: ignore[union-attr]
        return g  # type: ignore[return-value]

    def histogram(self, name: str, doc: str,
                  buckets: Iterable[float] = DEFAULT_BUCKETS) -> Histogram:
        return self._add(Histogram(name, doc, buckets))  # type: ignore[return-value]

    def get(self, name: str) -> Optional[_Metric]:
        with self._lock:
            return self._metrics.get(name)

    def render(self) -> str:
        """All metrics in Prometheus text exposition format 0.0.4."""
        with self._lock:
            metrics = list(self._metrics.values())
        lines: List[str] = []
        for m in metrics:
            lines.extend(m.render())
        return "\n".join(lines) + "\n"


#: Content type for the HTTP response of ``render()``.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: The process-wide default registry.
REGISTRY = Registry()


class IngestMetrics:
    """The collector's ingest/write metrics, registered in one registry."""

    def __init__(self, registry: Optional[Registry] = None) -> None:
        r = self.registry = registry if registry is not None else REGISTRY
        p = PREFIX
        self.received = r.counter(p + "messages_received_total",
                                  "Messages taken from the broker.")
        self.stored = r.counter(p + "messages_stored_total",
                                "New messages committed to the state store, by kind.", ("kind",))
        self.rejected = r.counter(p + "rejected_total",
                                  "Messages refused, by reason (acknowledged, never stored).",
                                  ("reason",))
        for reason in REASONS:
            self.rejected.precreate(reason=reason)
        self.duplicates = r.counter(p + "duplicates_total",
                                    "Messages whose (device, seq) was already stored.")
        self.seq_gaps = r.counter(p + "seq_gaps_total",
                                  "Sequence numbers found missing per device (loss).")
        self.clock_skew = r.counter(p + "clock_skew_total",
                                    "Messages whose ts was replaced by the receive time.",
                                    ("direction",))
        for d in ("future", "too_old"):
            self.clock_skew.precreate(direction=d)
        self.pending = r.gauge(p + "pending_messages",
                               "Messages received but not yet stored and acknowledged.")
        self.batch_seconds = r.histogram(p + "batch_seconds",
                                         "Time to handle one batch: prepare, time-series "
                                         "write, commit, acknowledge.")
        self.latency = r.histogram(p + "ingest_latency_seconds",
                                   "Per message: receive to stored.")
        self.ts_lines = r.counter(p + "timeseries_lines_total",
                                  "Lines written to the time-series server.")
        self.ts_errors = r.counter(p + "timeseries_write_errors_total",
                                   "Failed time-series write requests.")
        self.ts_retries = r.counter(p + "timeseries_retries_total",
                                    "Time-series write attempts that were retries.")
        self.broker_connected = r.gauge(p + "broker_connected",
                                        "1 while connected to the MQTT broker.")
        self.store_errors = r.counter(p + "store_errors_total",
                                      "Messages the state store or time-series server refused "
                                      "(not an outage); kept aside as dead letters.")
        self.dead_letters = r.counter(p + "dead_letters_total",
                                      "Messages refused for good, kept aside in the dead-letter "
                                      "table and acknowledged, by reason.", ("reason",))
        for reason in ("store_refused", "timeseries_refused"):
            self.dead_letters.precreate(reason=reason)
        self.stage_seconds = r.counter(p + "ingest_stage_seconds_total",
                                       "Wall time spent per ingest stage (decode, prepare, "
                                       "timeseries, commit, ack).", ("stage",))
        for stage in ("decode", "prepare", "timeseries", "commit", "ack"):
            self.stage_seconds.precreate(stage=stage)

    def render(self) -> str:
        return self.registry.render()


_default: Optional[IngestMetrics] = None
_default_lock = threading.Lock()


def default_metrics() -> IngestMetrics:
    """The IngestMetrics of the process-wide REGISTRY (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = IngestMetrics(REGISTRY)
        return _default


def render(registry: Optional[Registry] = None) -> str:
    """Prometheus text of ``registry`` (default: the process-wide one, with every
    schoolmon metric present even before ingest starts)."""
    if registry is None:
        default_metrics()
        registry = REGISTRY
    return registry.render()
