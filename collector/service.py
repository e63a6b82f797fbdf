"""The collector service: state store + time series + MQTT ingest + liveness sweeps.

The API serves from this object (``.store``, ``.metrics``, ``.readiness()``,
``.on_event(callback)``). Nothing here is held only in this process: several services
can share one broker subscription (``ingest.shared_group``) and one PostgreSQL store.
"""
import logging
import threading
import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, TypedDict

from .alerting.calendar import calendar_from_config
from .alerting.conditions import CollectorStats
from .alerting.engine import AlertEngine, PassStats
from .alerting.leader import Leader
from .alerting.rules import load_rules
from .connectivity.evaluator import Evaluator as ConnectivityEvaluator
from .connectivity.evaluator import RunStats as ConnectivityRunStats
from .connectivity.evaluator import evaluator_from_config as connectivity_from_config
from .connectivity.leases import settings_from_config
from .connectivity.scheduler import Scheduler, test_server_url
from .ingest import Ingest
from .ingest.seam import Store, TimeSeries
from .metrics import IngestMetrics, Registry, default_metrics
from .mqtt.publisher import CommandPublisher, publisher_client_id
from .notify.delivery import Workers as DeliveryWorkers
from .posture import Evaluator, RunStats, rules_from_config
from .state import Event
from .store import StateStore, dead_letters
from .timeseries import make_timeseries

log = logging.getLogger("schoolmon.collector.service")

#: Messages waiting in ingest above which the ATTT evaluator waits between chunks.
EVALUATE_BACKLOG = 2000

#: Seconds between ``store.maintain(now)`` calls (rollups, retention).
MAINTAIN_INTERVAL = 300.0

#: Cyclic garbage collector thresholds for a collector process (Python's default is
#: (700, 10, 10)). Ingest allocates tens of container objects per message (parsed JSON,
#: tuples, rows) that reference counting frees at once; with the default, a young
#: collection ran every ~15 messages and a full one (walking the device cache and the
#: pending queue) every few hundred: about a quarter of the collector's CPU in the
#: throughput benchmark (119 → 89 µs per message with these; docs/benchmarks.md).
GC_THRESHOLDS = (20000, 10, 10)


def tune_gc() -> None:
    """For a process that runs a collector: move everything allocated so far (modules,
    the loaded configuration and registry) out of the collector's sight with
    ``gc.freeze()`` and collect young objects less often. Call once, after start-up."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


#: Seconds messages may wait with nothing acknowledged before /healthz says ingest is
#: stuck (a batch normally takes well under a second; a store's outage also shows as that
#: store being down).
STALL_AFTER = 120.0


class ServiceStore(Store, Protocol):
    """The state store as the service uses it: ingest's seam plus the periodic work."""

    def sweep(self, now: float) -> List[Event]: ...

    def maintain(self, now: float) -> Any: ...


class Check(TypedDict, total=False):
    """One dependency's readiness as /healthz shows it."""

    ok: bool
    #: False: not configured (and so not needed)
    configured: bool
    detail: str


def make_store(cfg: SimpleNamespace) -> StateStore:
    """The StateStore for ``cfg.store``."""
    return StateStore.from_config(cfg)


class CollectorService:
    """Builds and runs the collector's parts; ``start()`` / ``stop()``."""

    def __init__(self, cfg: SimpleNamespace, store: Optional[ServiceStore] = None,
                 timeseries: Optional[TimeSeries] = None,
                 registry: Optional[Registry] = None,
                 maintain_interval: float = MAINTAIN_INTERVAL,
                 stall_after: float = STALL_AFTER,
                 keep_aside: Optional[Callable[[List[dead_letters.DeadLetter]], int]] = None,
                 clock: Callable[[], float] = time.time,
                 ingest_clock: Callable[[], float] = time.time
                 ) -> None:
        self.cfg = cfg
        self.metrics: IngestMetrics = (IngestMetrics(registry) if registry is not None
                                       else default_metrics())
        self.store: ServiceStore = store if store is not None else make_store(cfg)
        self.timeseries: TimeSeries = (timeseries if timeseries is not None
                                       else make_timeseries(cfg, self.metrics))
        self._callbacks: List[Callable[[Event], None]] = []
        self._cb_lock = threading.Lock()
        if keep_aside is None and isinstance(self.store, StateStore):
            engine = self.store.engine

            def keep_in_store(letters: List[dead_letters.DeadLetter]) -> int:
                return dead_letters.keep(engine, letters)
            keep_aside = keep_in_store
        self.ingest = Ingest(cfg, self.store, self.timeseries, self.metrics,
                             on_events=self._dispatch, keep_aside=keep_aside,
                             # what stamps received_at (liveness); separate from ``clock``
                             # (the scheduler's and the sender's), whose tests fix the hour
                             # while real agents publish
                             clock=ingest_clock)
        # The ATTT baseline is read here, so a file that cannot be used stops the collector
        # at start (BaselineError is a ConfigError: the CLI prints it and exits 2).
        self.rules = rules_from_config(cfg)
        # The school calendar likewise (CalendarError is a ConfigError): one instance for
        # the pages' liveness (api/app.py), connectivity and alerting.
        self.calendar = calendar_from_config(cfg)
        baseline_cfg = getattr(cfg, "baseline", None)
        self.evaluate_interval = float(getattr(baseline_cfg, "evaluate_interval", 15.0))
        self.evaluator: Optional[Evaluator] = None
        if isinstance(self.store, StateStore):
            province = getattr(cfg, "province", None)
            ingest = self.ingest
            self.evaluator = Evaluator(self.store.engine, self.rules,
                                       getattr(province, "timezone", "Asia/Ho_Chi_Minh"),
                                       busy=lambda: ingest.pending() > EVALUATE_BACKLOG)
        # The connectivity baseline likewise: read at start, a bad file stops the collector.
        self.connectivity: Optional[ConnectivityEvaluator] = None
        if isinstance(self.store, StateStore):
            ingest_ = self.ingest
            self.connectivity = connectivity_from_config(
                cfg, self.store.engine, busy=lambda: ingest_.pending() > EVALUATE_BACKLOG,
                calendar=self.calendar)
        #: the connectivity evaluator's last pass (None before the first)
        self.last_connectivity: Optional[ConnectivityRunStats] = None
        self._posture: Optional[threading.Thread] = None
        # Speed tests (issue 10): the scheduler grants each school's test lease; commands
        # go out through the publisher, connected in start() (its id derives from ingest's).
        self.scheduler: Optional[Scheduler] = None
        self.publisher: Optional[CommandPublisher] = None
        self._scheduling: Optional[threading.Thread] = None
        conn_cfg = getattr(cfg, "connectivity", None)
        if isinstance(self.store, StateStore) and conn_cfg is not None and conn_cfg.scheduler:
            self.scheduler = Scheduler(
                self.store.engine, settings_from_config(cfg, test_server_url(cfg)),
                list(conn_cfg.slots), float(conn_cfg.boot_window), self._send_command,
                self.metrics, clock=clock, calendar=self.calendar)
            self.on_event(self.scheduler.on_event)
        # Alerting (issue 11): the rules are read here, so a file that cannot be used stops
        # the collector at start (RulesError is a ConfigError: the CLI prints it, exits 2).
        alert_cfg = getattr(cfg, "alerting", None)
        self.alerting: Optional[AlertEngine] = None
        self.alert_leader: Optional[Leader] = None
        #: passes run after each evaluation, in order, as ``pass_(engine, now)`` (routing)
        self.after_alerting: List[Callable[[AlertEngine, float], Any]] = []
        #: the alert evaluator's last pass that did something (None before the first)
        self.last_alerting: Optional[PassStats] = None
        self.alert_passes = 0
        self._alerting_thread: Optional[threading.Thread] = None
        if isinstance(self.store, StateStore) and alert_cfg is not None and alert_cfg.enabled:
            tz = getattr(getattr(cfg, "province", None), "timezone", "Asia/Ho_Chi_Minh")
            metrics = self.metrics
            self.alerting = AlertEngine(
                self.store.engine, load_rules(alert_cfg.rules_file or None),
                self.calendar,
                stats=self._collector_stats, timezone=tz,
                on_rule_error=lambda rule: metrics.alert_rule_errors.inc(rule=rule))
            self.alert_leader = Leader(self.store.engine, "alerting")
            # routing and the digest run after each evaluation, under the same leader, so
            # exactly one process turns alert events into messages (notify/routing.py)
            from .notify.digest import digest_pass
            from .notify.routing import route_pass
            from .notify.routing import settings_from_config as notify_settings_from
            notify_settings = notify_settings_from(cfg)
            store_engine = self.store.engine

            def route(_ev: AlertEngine, now: float) -> None:
                stats = route_pass(store_engine, now, notify_settings, metrics)
                if stats.enqueued and self.delivery is not None:
                    self.delivery.wake()  # send now, not at the sender's next poll

            self.after_alerting.append(route)
            self.after_alerting.append(
                lambda _ev, now: digest_pass(store_engine, now, notify_settings))
        # Notification delivery (issue 11): the outbox's sender, one thread per channel,
        # sharing nothing with ingest but the database (notify.enabled).
        self.delivery: Optional[DeliveryWorkers] = None
        notify_cfg = getattr(cfg, "notify", None)
        if isinstance(self.store, StateStore) and notify_cfg is not None and notify_cfg.enabled:
            from .notify.channels import channels_from_config
            from .notify.delivery import Sender
            sender = Sender(self.store.engine, channels_from_config(cfg),
                            int(notify_cfg.max_attempts), float(notify_cfg.claim_seconds),
                            self.metrics)
            self.delivery = DeliveryWorkers(sender, float(notify_cfg.poll_interval), clock)
        self._evaluate_soon = threading.Event()
        #: the ATTT evaluator's last pass (None before the first)
        self.last_evaluation: Optional[RunStats] = None
        self.evaluations = 0
        self.sweep_interval = float(cfg.liveness.sweep_interval)
        self.maintain_interval = float(maintain_interval)
        self.stall_after = float(stall_after)
        self._stop = threading.Event()
        self._liveness: Optional[threading.Thread] = None
        self._store_ok: Optional[bool] = None
        self.started = False
        #: completed maintenance runs (rollups, retention), for /metrics-free checks
        self.maintained = 0

    # ---------------------------------------------------------------- events
    def on_event(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every state change (from commits and sweeps).
        Runs on the ingest or liveness thread: keep it short. Returns an unsubscribe."""
        with self._cb_lock:
            self._callbacks.append(callback)

        def remove() -> None:
            with self._cb_lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)
        return remove

    def _dispatch(self, events: Optional[Sequence[Event]]) -> None:
        if not events:
            return
        with self._cb_lock:
            callbacks = list(self._callbacks)
        for ev in events:
            for cb in callbacks:
                try:
                    cb(ev)
                except Exception:
                    log.exception("event callback %r failed", cb)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> "CollectorService":
        self._stop.clear()
        if self.cfg.mqtt.url:
            self.ingest.start()
            if self.scheduler is not None:
                self.publisher = CommandPublisher(
                    self.cfg.mqtt, publisher_client_id(self.ingest.source.client_id),
                    self.metrics).start()
        else:
            log.warning("mqtt.url is not set: ingest is off, no message will be received "
                        "(set mqtt.url, e.g. \"mqtt://127.0.0.1:1883\")")
        self._liveness = threading.Thread(target=self._liveness_loop, name="schoolmon-liveness",
                                          daemon=True)
        self._liveness.start()
        if self.evaluator is not None:
            self._posture = threading.Thread(target=self._posture_loop,
                                             name="schoolmon-attt", daemon=True)
            self._posture.start()
        if self.alerting is not None:
            self._alerting_thread = threading.Thread(target=self._alerting_loop,
                                                     name="schoolmon-alerting", daemon=True)
            self._alerting_thread.start()
        if self.scheduler is not None:
            interval = float(self.cfg.connectivity.schedule_interval)
            self._scheduling = threading.Thread(target=self.scheduler.loop,
                                                args=(self._stop, interval),
                                                name="schoolmon-speedtests", daemon=True)
            self._scheduling.start()
        if self.delivery is not None:
            self.delivery.start()
        self.started = True
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly: finish and acknowledge the batch in hand, join the threads."""
        self._stop.set()
        if self.started and self.cfg.mqtt.url:
            self.ingest.stop(timeout)
        if self._scheduling is not None and self.scheduler is not None:
            self.scheduler.wake.set()
            self._scheduling.join(timeout)
            self._scheduling = None
        if self.publisher is not None:
            self.publisher.stop()
            self.publisher = None
        if self.delivery is not None:
            self.delivery.stop(timeout)
        if self._liveness is not None:
            self._liveness.join(timeout)
            self._liveness = None
        if self._alerting_thread is not None:
            self._alerting_thread.join(timeout)
            self._alerting_thread = None
        if self.alert_leader is not None:
            self.alert_leader.release()
        if self._posture is not None:
            self._evaluate_soon.set()
            self._posture.join(timeout)
            self._posture = None
        try:
            self.timeseries.close()
        except Exception:
            pass
        self.started = False

    def __enter__(self) -> "CollectorService":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _liveness_loop(self) -> None:
        next_sweep = time.monotonic() + self.sweep_interval
        next_maintain = time.monotonic() + min(self.maintain_interval, 60.0)
        while not self._stop.wait(max(0.0, min(next_sweep, next_maintain) - time.monotonic())):
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + self.sweep_interval
                try:
                    self._dispatch(self.store.sweep(time.time()))
                    self._store_ok = self._ping_store()
                except Exception:
                    self._store_ok = False
                    log.exception("liveness sweep failed")
            if now >= next_maintain:
                next_maintain = now + self.maintain_interval
                try:
                    self.store.maintain(time.time())
                    self.maintained += 1
                except Exception:
                    log.exception("store maintenance failed")

    def _send_command(self, school: str, device: str, fields: Dict[str, Any],
                      ts: float) -> bool:
        """The scheduler's way to a device: a ``speedtest`` grant on its cmd topic."""
        if self.publisher is None:
            log.warning("no broker: speed-test grant for %s not sent", device)
            self.metrics.commands_failed.inc(cmd="speedtest")
            return False
        return self.publisher.send_grant(school, device, fields, ts)

    def evaluate_soon(self) -> None:
        """Run the ATTT and connectivity evaluators' next pass now (tests, after an
        import)."""
        self._evaluate_soon.set()

    def _posture_loop(self) -> None:
        """The ATTT evaluator: a pass at start, then every ``baseline.evaluate_interval``
        seconds (devices whose security or inventory message is new; everything once a
        day and when the rules change); after it the connectivity evaluator's pass
        (schools with new tests or probes). ``evaluations`` counts both passes done."""
        assert self.evaluator is not None
        while not self._stop.is_set():
            try:
                stats, events = self.evaluator.run_once(time.time())
                self.last_evaluation = stats
                self._dispatch(events)
            except Exception:
                log.exception("ATTT evaluation failed")
            if self.connectivity is not None:
                try:
                    cstats, cevents = self.connectivity.run_once(time.time())
                    self.last_connectivity = cstats
                    self._dispatch(cevents)
                except Exception:
                    log.exception("connectivity evaluation failed")
            self.evaluations += 1
            self._evaluate_soon.wait(self.evaluate_interval)
            self._evaluate_soon.clear()

    def _collector_stats(self) -> CollectorStats:
        """What the ``ingest_stalled`` and ``timeseries_failing`` rules read (in-process)."""
        return CollectorStats(self.ingest.stalled_for(), self.ingest.pending(),
                              self.timeseries.ready())

    def _alerting_loop(self) -> None:
        """The alert evaluator: while this process leads (leader.py), a full pass every
        ``alerting.evaluate_interval`` seconds and, between them, a pass over the schools
        named by new store events every ``alerting.poll_interval``; after each pass that
        ran, the ``after_alerting`` passes. Runs beside ingest, which it never waits for:
        it only reads what ingest committed."""
        assert self.alerting is not None and self.alert_leader is not None
        cfg = self.cfg.alerting
        interval, poll = float(cfg.evaluate_interval), float(cfg.poll_interval)
        next_full = time.monotonic()
        m = self.metrics
        while not self._stop.is_set():
            started = time.monotonic()
            full = started >= next_full
            if full and self.ingest.pending() > EVALUATE_BACKLOG \
                    and started < next_full + interval:
                # a full pass is a few seconds of this process's CPU (it shares the GIL
                # with ingest): while ingest has a backlog it waits, at most an interval
                full = False
            try:
                if self.alert_leader.acquire():
                    now = time.time()
                    stats = self.alerting.evaluate(now, full=full)
                    if not stats.skipped:
                        self.last_alerting = stats
                        m.alert_pass_seconds.observe(stats.seconds)
                        m.alert_passes.inc(kind="full" if stats.full else "changes")
                        m.alerts_open.replace({k: float(v) for k, v in
                                               self.alerting.counts().items()})
                        for after in list(self.after_alerting):
                            try:
                                after(self.alerting, now)
                            except Exception:
                                log.exception("pass after alerting (%r) failed", after)
                    self.alert_passes += 1
            except Exception:
                m.alert_eval_errors.inc()
                log.exception("alert evaluation failed")
            if full:
                next_full = started + interval
            self._stop.wait(max(0.0, min(poll, next_full - time.monotonic())))

    # ---------------------------------------------------------------- readiness
    def _ping_store(self) -> bool:
        if not isinstance(self.store, StateStore):
            return True  # a store without a database of its own (tests)
        try:
            with self.store.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:
            return False

    def readiness(self) -> Dict[str, Check]:
        """Every dependency's readiness: ``broker``, ``store``, ``timeseries`` (not
        configured: ok), and ``ingest`` (not ok while messages wait and nothing has been
        acknowledged for ``stall_after`` seconds)."""
        # The store's state comes from the liveness thread (a sweep and a ``SELECT 1``
        # every liveness.sweep_interval), so /healthz never waits on a database.
        store_ok = self._store_ok if self._store_ok is not None else self._ping_store()
        ts_ok = self.timeseries.ready()
        checks: Dict[str, Check] = {
            "broker": {"ok": self.ingest.connected},
            "store": {"ok": bool(store_ok)},
            "timeseries": {"ok": True, "configured": False} if ts_ok is None
            else {"ok": bool(ts_ok)},
        }
        stalled = self.ingest.stalled_for()
        if stalled >= self.stall_after:
            waiting = self.ingest.pending()
            checks["ingest"] = {"ok": False, "detail": (
                "%d tin nhắn đang chờ, không có xác nhận nào trong %d giây (%d messages "
                "waiting, none acknowledged for %d s)" % (waiting, stalled, waiting, stalled))}
        else:
            checks["ingest"] = {"ok": True}
        return checks


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m schoolmon.collector.service [--config FILE]``: the ingest service alone
    (no HTTP API), for tests and benchmarks that run the collector as its own process.
    Stops cleanly on SIGTERM or SIGINT. With ``--stats FILE`` it writes a JSON summary
    (counts, latency quantiles) there when it stops."""
    import argparse
    import json
    import os
    import signal
    import sys

    from .config import load_config
    from .metrics import Registry as _Registry
    from .mqtt import ClientIdTaken

    ap = argparse.ArgumentParser(prog="python -m schoolmon.collector.service")
    ap.add_argument("--config", help="TOML configuration file")
    ap.add_argument("--stats", help="write a JSON summary here on exit")
    ap.add_argument("--log-level", default="WARNING")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # No API is served by this entry point, so the API token rule does not apply.
    cfg = load_config(args.config, demo=True)
    service = CollectorService(cfg, registry=_Registry())
    done = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        service.start()
    except ClientIdTaken as exc:
        print("configuration error: %s" % exc, file=sys.stderr, flush=True)
        return 2
    tune_gc()
    print("ready", flush=True)

    def write_stats() -> None:
        m = service.metrics
        lat = sorted(service.ingest.recent_latencies)

        def q(p: float) -> Optional[float]:
            return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else None

        tmp = args.stats + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"time": time.time(), "received": m.received.get(),
                       "stored": m.stored.total(), "duplicates": m.duplicates.get(),
                       "rejected": m.rejected.total(), "pending": service.ingest.pending(),
                       "latency_p50": q(0.5), "latency_p99": q(0.99),
                       "latency_max": lat[-1] if lat else None,
                       "stages": {k[0]: v for k, v in m.stage_seconds.samples().items()},
                       "cpu_seconds": time.process_time()}, fh)
        os.replace(tmp, args.stats)

    while not done.wait(1.0):
        if args.stats:
            write_stats()
    service.stop()
    if args.stats:
        write_stats()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
