"""Time series to InfluxDB (or anything that speaks its v2 write API, e.g. VictoriaMetrics).

Design (see docs/timeseries.md):

- One measurement per family; values that come in lists get a sub-measurement with one
  extra tag (``health_disk``, tag ``mnt``). Each family writes the bodies of its own lines
  (``collector/families/<kind>.py``, ``line_bodies``); this module puts the tags in front
  and writes them.
- Tags: ``province``, ``area``, ``school``, ``device``, ``role`` (from the registry, via
  ``Accepted.tags``) and nothing else that grows: cardinality = devices × disks/NICs.
- Fields are numeric only. **Every number is written as a float** (no ``i`` suffix): a
  field that one agent sends as ``45`` and another as ``45.5`` would otherwise be an
  integer/float type conflict in InfluxDB that rejects the whole batch. Integers up to
  2**53 (the wire format's limit) are exact in a float64. Booleans are written as 1 / 0.
- Timestamps in seconds (``precision=s``): ``int(ts)``. A point is keyed by
  (measurement, tags, ts), so writing a batch twice (redelivery after a crash) stores
  nothing twice.

The line protocol is built by plain string formatting (``collector/line_protocol.py``; no
Point objects: that is
about ten times faster) and written with influxdb-client's synchronous write API, gzip,
``influx.batch_lines`` lines per request. ``write()`` retries with exponential backoff
until the server takes the lines or ``stop`` is set: the caller (ingest) does not
acknowledge MQTT messages meanwhile, so the broker keeps them, and memory stays bounded
by the one batch being written.
"""
import concurrent.futures
import gzip as gzip_module
import logging
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from .families import FAMILIES
from .line_protocol import TAG_KEYS, Body, escape_measurement, escape_tag, tag_prefix
from .metrics import IngestMetrics
from .state import Accepted

log = logging.getLogger("schoolmon.collector.timeseries")

#: kind -> function(payload, ts) giving the line bodies of one message (from the families).
BUILDERS: Dict[str, Callable[[Dict[str, Any], int], List[Body]]] = {
    kind: f.line_bodies for kind, f in FAMILIES.items() if f.line_bodies is not None}

_NONE: List[Body] = []


def message_bodies(kind: str, payload: Dict[str, Any], ts: float) -> List[Body]:
    """The line bodies of one message (none for kinds without time series)."""
    builder = BUILDERS.get(kind)
    return builder(payload, int(ts)) if builder is not None else _NONE


#: tag values -> escaped tag set, kept across batches (escaping costs ~5 µs a message).
_PREFIXES: Dict[tuple, str] = {}


def build_lines(accepted: Iterable[Accepted],
                bodies: Optional[Dict[int, List[Body]]] = None) -> List[str]:
    """Line protocol for a batch of accepted messages. ``bodies`` (by ``id(received)``)
    are used when given, computed otherwise."""
    out: List[str] = []
    append = out.append
    cache = _PREFIXES
    if len(cache) > 200_000:  # bounded: a province has ~50,000 devices
        cache.clear()
    for a in accepted:
        r = a.received
        b = bodies.get(id(r)) if bodies is not None else None
        if b is None:
            b = message_bodies(r.message.kind, r.message.payload, r.ts)
        if not b:
            continue
        tags = a.tags
        key = (tags.get("device"), tags.get("school"), tags.get("role"), tags.get("area"),
               tags.get("province"))
        prefix = cache.get(key)
        if prefix is None:
            prefix = cache[key] = tag_prefix(tags)
        for meas, rest in b:
            append(meas + prefix + rest)
    return out


class TimeSeriesUnavailable(Exception):
    """The write was abandoned because the writer is stopping (nothing acknowledged)."""


class TimeSeriesRefused(Exception):
    """The server refuses these lines for what they are (HTTP 400, 413, 422)."""


#: HTTP statuses that refuse the data itself, not the server being unavailable.
REFUSED_STATUS = (400, 413, 422)


class NullTimeSeries:
    """No time-series server configured (``influx.url`` empty): writes nothing."""

    enabled = False

    def write_accepted(self, accepted: Sequence[Accepted],
                       stop: Optional[threading.Event] = None) -> int:
        return 0

    def write_lines(self, lines: Sequence[str], stop: Optional[threading.Event] = None) -> int:
        return 0

    def ready(self) -> Optional[bool]:
        return None

    def close(self) -> None:
        pass


class InfluxTimeSeries:
    """Writes line protocol through influxdb-client's synchronous write API, with retry."""

    enabled = True

    def __init__(self, url: str, org: str, bucket: str, token: str = "", batch_lines: int = 5000,
                 gzip: bool = True, timeout: float = 10.0, metrics: Optional[IngestMetrics] = None,
                 backoff_initial: float = 0.5, backoff_max: float = 10.0,
                 parallel: int = 2) -> None:
        from influxdb_client import InfluxDBClient, WritePrecision
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.url, self.org, self.bucket = url.rstrip("/"), org, bucket
        self.batch_lines = max(1, int(batch_lines))
        self.metrics = metrics
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        # retries=0: we retry ourselves (unbounded, with backoff, interruptible by stop).
        self._client = InfluxDBClient(url=self.url, token=token or "none", org=org,
                                      timeout=int(timeout * 1000), enable_gzip=gzip, retries=0)
        if gzip:
            _fast_gzip(self._client)
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        # WritePrecision holds plain strings; the client's annotation says the class.
        self._precision: Any = WritePrecision.S
        self._ok: Optional[bool] = None
        #: concurrent write requests for one call of write_lines (1: one after another)
        self.parallel = max(1, int(parallel))
        self._pool = (concurrent.futures.ThreadPoolExecutor(
            self.parallel, thread_name_prefix="schoolmon-tswrite") if self.parallel > 1 else None)

    @classmethod
    def from_config(cls, cfg: Any, metrics: Optional[IngestMetrics] = None
                    ) -> "InfluxTimeSeries | NullTimeSeries":
        """The writer for ``cfg.influx``; a NullTimeSeries when ``influx.url`` is empty."""
        return make_timeseries(cfg, metrics)

    def ready(self) -> Optional[bool]:
        """Whether the last write (or a ping when none yet) succeeded."""
        if self._ok is None:
            try:
                import urllib.request
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    return r.status < 500
            except Exception:
                return False
        return self._ok

    def write_accepted(self, accepted: Sequence[Accepted],
                       stop: Optional[threading.Event] = None) -> int:
        return self.write_lines(build_lines(accepted), stop)

    def write_lines(self, lines: Sequence[str], stop: Optional[threading.Event] = None) -> int:
        """Write every line (in requests of ``batch_lines``), retrying each request with
        exponential backoff until it succeeds. Raises TimeSeriesUnavailable when ``stop``
        is set before all lines are written. Returns the number of lines written."""
        n = len(lines)
        step = self.batch_lines
        bodies = [("\n".join(lines[i:i + step]), min(step, n - i)) for i in range(0, n, step)]
        if len(bodies) <= 1 or self._pool is None:
            for body, count in bodies:
                self._write_with_retry(body, count, stop)
            return n
        # Several requests at once: the server parses them in parallel and this thread
        # mostly waits. Every one must succeed before the caller commits.
        futures = [self._pool.submit(self._write_with_retry, body, count, stop)
                   for body, count in bodies]
        errors = [f.exception() for f in futures]
        for exc in errors:
            if exc is not None:
                raise exc
        return n

    def _write_with_retry(self, body: str, count: int, stop: Optional[threading.Event]) -> None:
        delay = self.backoff_initial
        attempt = 0
        while True:
            if attempt and self.metrics is not None:
                self.metrics.ts_retries.inc()
            attempt += 1
            try:
                self._write_api.write(bucket=self.bucket, org=self.org, record=body,
                                      write_precision=self._precision)
            except Exception as exc:
                status = getattr(exc, "status", None)
                if self.metrics is not None:
                    self.metrics.ts_errors.inc()
                if status is None and isinstance(exc, (ValueError, TypeError)):
                    # Not an outage: lines that cannot even be sent (e.g. a lone surrogate
                    # UTF-8 cannot encode). Refused, so the caller isolates the message.
                    raise TimeSeriesRefused("cannot send the lines: %r" % exc) from None
                if status not in REFUSED_STATUS:
                    self._ok = False
                if status in REFUSED_STATUS:
                    # These lines are refused and always will be (malformed, too large):
                    # the caller splits the batch to find the message at fault.
                    raise TimeSeriesRefused("HTTP %s: %s" % (status, str(exc)[:300])) from None
                if status is not None and 400 <= status < 500 and status not in (408, 429):
                    # Bucket, token or permissions: a misconfiguration. Keep retrying
                    # slowly so nothing is acknowledged and lost, and say so loudly.
                    log.error("time-series server refuses the write (HTTP %s): %s", status,
                              str(exc)[:300])
                else:
                    log.warning("time-series write failed (%s); retrying in %.1fs",
                                str(exc)[:200], delay)
                if stop is not None:
                    if stop.wait(delay):
                        raise TimeSeriesUnavailable("stopping with %d lines unwritten" % count) \
                            from None
                else:
                    time.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            self._ok = True
            if self.metrics is not None:
                self.metrics.ts_lines.inc(count)
            return

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        try:
            self._write_api.close()
        finally:
            self._client.close()


def _fast_gzip(client: Any) -> None:
    """influxdb-client compresses write bodies with gzip level 9: ~30 MB/s of CPU here.
    Level 1 is about 6x faster for ~1.4x the bytes (line protocol still shrinks ~5x)."""
    conf = getattr(client, "conf", None)
    original = getattr(conf, "update_request_body", None)
    if conf is None or original is None:  # pragma: no cover - another client version
        return

    def update_request_body(path: str, body: Any) -> Any:
        if path == "/api/v2/write" and isinstance(body, (str, bytes)):
            raw = body.encode("utf-8") if isinstance(body, str) else body
            return gzip_module.compress(raw, compresslevel=1)
        return original(path, body)

    conf.update_request_body = update_request_body


def make_timeseries(cfg: Any, metrics: Optional[IngestMetrics] = None
                    ) -> "InfluxTimeSeries | NullTimeSeries":
    """The writer for a loaded configuration: InfluxTimeSeries when ``influx.url`` is set."""
    ic = cfg.influx
    if not ic.url:
        return NullTimeSeries()
    return InfluxTimeSeries(ic.url, ic.org, ic.bucket, ic.token, batch_lines=ic.batch_lines,
                            gzip=ic.gzip, timeout=ic.timeout, metrics=metrics)


__all__ = ["TimeSeriesUnavailable", "TimeSeriesRefused", "NullTimeSeries", "InfluxTimeSeries",
           "make_timeseries", "build_lines", "message_bodies", "BUILDERS", "REFUSED_STATUS",
           "TAG_KEYS", "Body", "escape_tag", "escape_measurement", "tag_prefix"]
