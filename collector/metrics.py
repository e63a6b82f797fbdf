"""The collector's own metrics, on prometheus_client, rendered at ``/metrics``.

prometheus_client holds the registry and writes the standard exposition; the process-wide
default registry also carries its process and platform metrics (``process_*``,
``python_gc_*``, ``python_info``), which is what Prometheus users expect. Tests make a
fresh ``Registry()`` so they do not see each other's counts.

The metrics below are reached through ``IngestMetrics``: each is a prometheus_client
metric behind a few lines that keep ingest's call shape (``inc(n, kind=k)``, and ``get``
and ``total`` for the stats file and tests).

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
    schoolmon_speedtest_leases_granted_total     speed-test leases granted (one per test)
    schoolmon_speedtest_leases_refused_total{reason}  held (another lease) | budget
    schoolmon_speedtest_leases_expired_total     leases whose exp passed without a result
    schoolmon_speedtest_leases_released_total    leases given back by their holder's result
    schoolmon_commands_published_total{cmd}      commands the broker acknowledged
    schoolmon_commands_failed_total{cmd}         commands that could not be published
    schoolmon_speedtest_results_refused_total{reason}  unknown_lease | not_holder | expired
    schoolmon_link_tests_implausible_total{check} speed tests stored but refused
    schoolmon_speedtest_requests_total{outcome}  tests asked for now (Đo ngay): granted |
                                                 held | budget | no_device | rate_limited
    schoolmon_notify_enqueued_total              grouped notifications put in the outbox
    schoolmon_notify_duplicates_total            ones already there (restart, second process)
    schoolmon_notify_route_conflicts_total       routing passes undone (another process first)
    schoolmon_notifications_total{channel,result} delivery attempts: sent | failed | dead
    schoolmon_notifications_queued{state}        outbox rows not yet sent: queued | sending |
                                                 failed | dead
    schoolmon_notifications_oldest_queued_seconds age of the oldest row waiting to be sent
"""
import bisect
import threading
from typing import Callable, Dict, Iterable, Optional, Sequence, Set, Tuple

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as _PromCounter
from prometheus_client import Gauge as _PromGauge
from prometheus_client import Histogram as _PromHistogram
from schoolmon.protocol import REASONS

# Only the counts: a ``*_created`` sample per series doubles /metrics for nothing we use.
prometheus_client.disable_created_metrics()

PREFIX = "schoolmon_"

#: Seconds; suits both a batch write (ms to s) and receive-to-stored latency.
DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0)

#: Content type of ``render()``'s text (the text format 0.0.4 that prometheus_client writes).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: A registry of metrics rendered together.
Registry = CollectorRegistry

#: The process-wide registry (with process and platform metrics).
REGISTRY: CollectorRegistry = prometheus_client.REGISTRY


def _value(metric: object, sample_name: str, labels: Dict[str, str]) -> float:
    for family in metric.collect():  # type: ignore[attr-defined]
        for s in family.samples:
            if s.name == sample_name and s.labels == labels:
                return float(s.value)
    return 0.0


class Counter:
    """A counter with labels given as keywords: ``inc(2, kind="health")``."""

    def __init__(self, registry: CollectorRegistry, name: str, doc: str,
                 labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.labelnames = tuple(labelnames)
        self._m = _PromCounter(name, doc, self.labelnames, registry=registry)

    def inc(self, amount: float = 1, **labels: str) -> None:
        (self._m.labels(**labels) if labels else self._m).inc(amount)

    def precreate(self, **labels: str) -> None:
        """Show this label set at 0 before anything is counted."""
        self._m.labels(**labels)

    def get(self, **labels: str) -> float:
        return _value(self._m, self.name, labels)

    def samples(self) -> Dict[Tuple[str, ...], float]:
        out: Dict[Tuple[str, ...], float] = {}
        for family in self._m.collect():
            for s in family.samples:
                if s.name == self.name:
                    out[tuple(s.labels[n] for n in self.labelnames)] = float(s.value)
        return out

    def total(self) -> float:
        return sum(self.samples().values())


class Gauge:
    """A label-less gauge: ``set(v)``, or read from a function at render time."""

    def __init__(self, registry: CollectorRegistry, name: str, doc: str,
                 function: Optional[Callable[[], float]] = None) -> None:
        self.name = name
        self._m = _PromGauge(name, doc, registry=registry)
        if function is not None:
            self.set_function(function)

    def set(self, value: float) -> None:
        self._m.set(value)

    def set_function(self, function: Callable[[], float]) -> None:
        self._m.set_function(function)

    def get(self) -> float:
        return _value(self._m, self.name, {})


class LabelledGauge:
    """A gauge with labels: ``set(v, state="firing")``; ``replace`` sets the whole family
    (label sets absent from it go to 0)."""

    def __init__(self, registry: CollectorRegistry, name: str, doc: str,
                 labelnames: Sequence[str]) -> None:
        self.name = name
        self.labelnames = tuple(labelnames)
        self._m = _PromGauge(name, doc, self.labelnames, registry=registry)
        self._seen: Set[Tuple[str, ...]] = set()

    def set(self, value: float, **labels: str) -> None:
        self._m.labels(**labels).set(value)
        self._seen.add(tuple(labels[n] for n in self.labelnames))

    def replace(self, values: Dict[Tuple[str, ...], float]) -> None:
        for key in self._seen - set(values):
            self._m.labels(*key).set(0)
        for key, v in values.items():
            self._m.labels(*key).set(v)
        self._seen |= set(values)

    def get(self, **labels: str) -> float:
        return _value(self._m, self.name, labels)


class Histogram:
    """Cumulative buckets, sum and count (label-less)."""

    def __init__(self, registry: CollectorRegistry, name: str, doc: str,
                 buckets: Iterable[float] = DEFAULT_BUCKETS) -> None:
        self.name = name
        self._m = _PromHistogram(name, doc, buckets=tuple(buckets), registry=registry)

    def observe(self, value: float) -> None:
        self._m.observe(value)

    def observe_many(self, values: Iterable[float]) -> None:
        """Observe a batch's values with one increment per bucket touched, not one
        ``observe()`` per value: the ingest-latency histogram takes every message, and
        prometheus_client's observe (a lock and a bucket scan each) cost 1–2 µs a message,
        the largest part of what replacing the hand-written registry added to ingest
        (docs/benchmarks.md). Uses the histogram's bucket values as prometheus_client
        keeps them; falls back to observe() one by one where they are not there."""
        m = self._m
        bounds = getattr(m, "_upper_bounds", None)
        buckets = getattr(m, "_buckets", None)
        total = getattr(m, "_sum", None)
        if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
            for v in values:
                m.observe(v)
            return
        counts = [0] * len(bounds)
        amount = 0.0
        find = bisect.bisect_left
        for v in values:
            counts[find(bounds, v)] += 1  # the first bound >= v, as observe() picks it
            amount += v
        total.inc(amount)
        for i, n in enumerate(counts):
            if n:
                buckets[i].inc(n)

    @property
    def count(self) -> float:
        return _value(self._m, self.name + "_count", {})

    @property
    def sum(self) -> float:
        return _value(self._m, self.name + "_sum", {})


class IngestMetrics:
    """The collector's ingest/write metrics, registered in one registry."""

    def __init__(self, registry: Optional[CollectorRegistry] = None) -> None:
        r = self.registry = registry if registry is not None else REGISTRY
        p = PREFIX
        self.received = Counter(r, p + "messages_received_total",
                                "Messages taken from the broker.")
        self.stored = Counter(r, p + "messages_stored_total",
                              "New messages committed to the state store, by kind.", ("kind",))
        self.rejected = Counter(r, p + "rejected_total",
                                "Messages refused, by reason (acknowledged, never stored).",
                                ("reason",))
        for reason in REASONS:
            self.rejected.precreate(reason=reason)
        self.duplicates = Counter(r, p + "duplicates_total",
                                  "Messages whose (device, seq) was already stored.")
        self.seq_gaps = Counter(r, p + "seq_gaps_total",
                                "Sequence numbers found missing per device (loss).")
        self.clock_skew = Counter(r, p + "clock_skew_total",
                                  "Messages whose ts was replaced by the receive time.",
                                  ("direction",))
        for d in ("future", "too_old"):
            self.clock_skew.precreate(direction=d)
        self.pending = Gauge(r, p + "pending_messages",
                             "Messages received but not yet stored and acknowledged.")
        self.batch_seconds = Histogram(r, p + "batch_seconds",
                                       "Time to handle one batch: prepare, time-series "
                                       "write, commit, acknowledge.")
        self.latency = Histogram(r, p + "ingest_latency_seconds",
                                 "Per message: receive to stored.")
        self.ts_lines = Counter(r, p + "timeseries_lines_total",
                                "Lines written to the time-series server.")
        self.ts_errors = Counter(r, p + "timeseries_write_errors_total",
                                 "Failed time-series write requests.")
        self.ts_retries = Counter(r, p + "timeseries_retries_total",
                                  "Time-series write attempts that were retries.")
        self.broker_connected = Gauge(r, p + "broker_connected",
                                      "1 while connected to the MQTT broker.")
        self.store_errors = Counter(r, p + "store_errors_total",
                                    "Messages the state store or time-series server refused "
                                    "(not an outage); kept aside as dead letters.")
        self.dead_letters = Counter(r, p + "dead_letters_total",
                                    "Messages refused for good, kept aside in the dead-letter "
                                    "table and acknowledged, by reason.", ("reason",))
        for reason in ("store_refused", "timeseries_refused"):
            self.dead_letters.precreate(reason=reason)
        self.implausible = Counter(r, p + "link_tests_implausible_total",
                                   "Speed-test results stored but refused (refused = "
                                   "'implausible'), by the check that failed.", ("check",))
        for check in ("ok_without_speeds", "above_10g", "above_link", "bytes_vs_speed"):
            self.implausible.precreate(check=check)
        self.stage_seconds = Counter(r, p + "ingest_stage_seconds_total",
                                     "Wall time spent per ingest stage (decode, prepare, "
                                     "timeseries, commit, ack).", ("stage",))
        for stage in ("decode", "prepare", "timeseries", "commit", "ack"):
            self.stage_seconds.precreate(stage=stage)
        # connectivity (collector/connectivity, collector/mqtt/publisher.py)
        self.leases_granted = Counter(r, p + "speedtest_leases_granted_total",
                                      "Speed-test leases granted (one per test).")
        self.leases_refused = Counter(r, p + "speedtest_leases_refused_total",
                                      "Speed-test leases refused, by reason: held (another "
                                      "collector was first) or budget (the month's data).",
                                      ("reason",))
        for reason in ("held", "budget"):
            self.leases_refused.precreate(reason=reason)
        self.leases_expired = Counter(r, p + "speedtest_leases_expired_total",
                                      "Speed-test leases that expired without a result.")
        self.leases_released = Counter(r, p + "speedtest_leases_released_total",
                                       "Speed-test leases given back by the holder's result.")
        self.commands_published = Counter(r, p + "commands_published_total",
                                          "Commands the broker acknowledged, by command.",
                                          ("cmd",))
        self.commands_failed = Counter(r, p + "commands_failed_total",
                                       "Commands that could not be published, by command.",
                                       ("cmd",))
        self.commands_published.precreate(cmd="speedtest")
        self.commands_failed.precreate(cmd="speedtest")
        self.results_refused = Counter(r, p + "speedtest_results_refused_total",
                                       "Speed-test results that do not count, by reason: "
                                       "unknown_lease, not_holder, expired.", ("reason",))
        for reason in ("unknown_lease", "not_holder", "expired"):
            self.results_refused.precreate(reason=reason)
        self.speedtest_requests = Counter(r, p + "speedtest_requests_total",
                                          "Speed tests asked for now (Đo ngay), by outcome: "
                                          "granted, held, budget, no_device, rate_limited.",
                                          ("outcome",))
        for outcome in ("granted", "held", "budget", "no_device", "rate_limited"):
            self.speedtest_requests.precreate(outcome=outcome)
        # notification routing (collector/notify/routing.py)
        self.notify_enqueued = Counter(r, p + "notify_enqueued_total",
                                       "Grouped notifications routing put in the outbox.")
        self.notify_duplicates = Counter(r, p + "notify_duplicates_total",
                                         "Notifications routing found already in the outbox "
                                         "(a restart or a second process; sent once).")
        self.notify_conflicts = Counter(r, p + "notify_route_conflicts_total",
                                        "Routing passes undone because another process moved "
                                        "the cursor or a group first.")

        # alerting (collector/alerting)
        self.alert_pass_seconds = Histogram(r, p + "alert_evaluation_seconds",
                                            "Wall time of one pass of the alert rules.",
                                            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                                     10, 30))
        self.alert_passes = Counter(r, p + "alert_evaluations_total",
                                    "Passes of the alert rules, by kind: full (every school) "
                                    "or changes (schools named by new events).", ("kind",))
        for kind in ("full", "changes"):
            self.alert_passes.precreate(kind=kind)
        self.alert_rule_errors = Counter(r, p + "alert_rule_errors_total",
                                         "Alert rules whose condition raised, by rule (their "
                                         "open alerts are kept as they are).", ("rule",))
        self.alert_eval_errors = Counter(r, p + "alert_evaluation_errors_total",
                                         "Passes of the alert rules that failed (store error).")
        self.alerts_open = LabelledGauge(r, p + "alerts", "Open alerts by state (pending, "
                                         "firing) and severity.", ("state", "severity"))
        # notification delivery (collector/notify/delivery.py)
        self.notifications = Counter(r, p + "notifications_total",
                                     "Notification delivery attempts, by channel and result: "
                                     "sent, failed (retried later), dead (given up).",
                                     ("channel", "result"))
        from .notify.outbox import CHANNELS
        for channel in CHANNELS:
            for result in ("sent", "failed", "dead"):
                self.notifications.precreate(channel=channel, result=result)
        self.notify_queue = LabelledGauge(r, p + "notifications_queued",
                                       "Outbox rows not sent, by state: queued, sending, "
                                       "failed (waiting for a retry), dead.", ("state",))
        for state in ("queued", "sending", "failed", "dead"):
            self.notify_queue.set(0, state=state)
        self.notify_oldest = Gauge(r, p + "notifications_oldest_queued_seconds",
                                   "Age of the oldest outbox row waiting to be sent (queued, "
                                   "sending or failed), seconds; 0 when none waits.")
        # alerts (api/alerts.py): acknowledgements and silences, done or refused (the refusal's
        # code: alert_resolved, silence_too_long, silence_outside_scope, ...)
        self.alert_actions = Counter(r, p + "alert_actions_total",
                                     "Alert acknowledgements and silences asked for through "
                                     "the API, by action (ack, unack, silence_create, "
                                     "silence_delete) and outcome (done, or the refusal's "
                                     "code).", ("action", "outcome"))
        for action in ("ack", "unack", "silence_create", "silence_delete"):
            self.alert_actions.precreate(action=action, outcome="done")

    def render(self) -> str:
        return render(self.registry)


_default: Optional[IngestMetrics] = None
_default_lock = threading.Lock()


def default_metrics() -> IngestMetrics:
    """The IngestMetrics of the process-wide REGISTRY (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = IngestMetrics(REGISTRY)
        return _default


def render(registry: Optional[CollectorRegistry] = None) -> str:
    """Prometheus text of ``registry`` (default: the process-wide one, with every
    schoolmon metric present even before ingest starts)."""
    if registry is None:
        default_metrics()
        registry = REGISTRY
    return prometheus_client.generate_latest(registry).decode("utf-8")
