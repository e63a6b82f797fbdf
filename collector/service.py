"""The collector service: state store + time series + MQTT ingest + liveness sweeps.

The API serves from this object (``.store``, ``.metrics``, ``.readiness()``,
``.on_event(callback)``). Nothing here is held only in this process: several services
can share one broker subscription (``ingest.shared_group``) and one PostgreSQL store.
"""
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from .ingest import Ingest
from .metrics import IngestMetrics, Registry, default_metrics
from .state import Event
from .timeseries import make_timeseries

log = logging.getLogger("schoolmon.collector.service")

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


def make_store(cfg: Any) -> Any:
    """The StateStore for ``cfg.store`` (``collector/store/``)."""
    from . import store as store_module

    cls = store_module.StateStore
    factory = getattr(cls, "from_config", None)
    if callable(factory):
        return factory(cfg)
    return cls(cfg.store.url)


class CollectorService:
    """Builds and runs the collector's parts; ``start()`` / ``stop()``."""

    def __init__(self, cfg: Any, store: Any = None, timeseries: Any = None,
                 registry: Optional[Registry] = None,
                 maintain_interval: float = MAINTAIN_INTERVAL) -> None:
        self.cfg = cfg
        self.metrics: IngestMetrics = (IngestMetrics(registry) if registry is not None
                                       else default_metrics())
        self.store = store if store is not None else make_store(cfg)
        self.timeseries = (timeseries if timeseries is not None
                           else make_timeseries(cfg, self.metrics))
        self._callbacks: List[Callable[[Event], None]] = []
        self._cb_lock = threading.Lock()
        self.ingest = Ingest(cfg, self.store, self.timeseries, self.metrics,
                             on_events=self._dispatch)
        self.sweep_interval = float(cfg.liveness.sweep_interval)
        self.maintain_interval = float(maintain_interval)
        self._stop = threading.Event()
        self._liveness: Optional[threading.Thread] = None
        self._store_ok: Optional[bool] = None
        self.started = False

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
        self.ingest.start()
        self._liveness = threading.Thread(target=self._liveness_loop, name="schoolmon-liveness",
                                          daemon=True)
        self._liveness.start()
        self.started = True
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly: finish and acknowledge the batch in hand, join the threads."""
        self._stop.set()
        if self.started:
            self.ingest.stop(timeout)
        if self._liveness is not None:
            self._liveness.join(timeout)
            self._liveness = None
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
                maintain = getattr(self.store, "maintain", None)
                if maintain is not None:
                    try:
                        maintain(time.time())
                    except Exception:
                        log.exception("store maintenance failed")

    # ---------------------------------------------------------------- readiness
    def _ping_store(self) -> bool:
        engine = getattr(self.store, "engine", None)
        if engine is None:
            return True
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:
            return False

    def readiness(self) -> Dict[str, Optional[bool]]:
        """``{"broker": bool, "store": bool, "timeseries": bool or None (not configured)}``."""
        # The store's state comes from the liveness thread (a sweep and a ``SELECT 1``
        # every liveness.sweep_interval), so /healthz never waits on a database.
        store_ok = self._store_ok if self._store_ok is not None else self._ping_store()
        ts_ok = self.timeseries.ready() if self.timeseries is not None else None
        return {"broker": self.ingest.connected, "store": store_ok, "timeseries": ts_ok}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m schoolmon.collector.service [--config FILE]``: the ingest service alone
    (no HTTP API), for tests and benchmarks that run the collector as its own process.
    Stops cleanly on SIGTERM or SIGINT. With ``--stats FILE`` it writes a JSON summary
    (counts, latency quantiles) there when it stops."""
    import argparse
    import json
    import os
    import signal

    from .config import load_config
    from .metrics import Registry as _Registry

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
    service.start()
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
