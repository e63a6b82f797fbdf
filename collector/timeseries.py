"""Time series to InfluxDB (or anything that speaks its v2 write API, e.g. VictoriaMetrics).

Design (see docs/timeseries.md):

- One measurement per family: ``health`` and ``status``; values that come in lists get a
  sub-measurement with one extra tag: ``health_disk`` (tag ``mnt``) and ``health_nic``
  (tag ``if``).
- Tags: ``province``, ``area``, ``school``, ``device``, ``role`` (from the registry, via
  ``Accepted.tags``) and nothing else that grows: cardinality = devices × disks/NICs.
- Fields are numeric only. **Every number is written as a float** (no ``i`` suffix): a
  field that one agent sends as ``45`` and another as ``45.5`` would otherwise be an
  integer/float type conflict in InfluxDB that rejects the whole batch. Integers up to
  2**53 (the wire format's limit) are exact in a float64. Booleans are written as 1 / 0.
- Timestamps in seconds (``precision=s``): ``int(ts)``. A point is keyed by
  (measurement, tags, ts), so writing a batch twice (redelivery after a crash) stores
  nothing twice.

The line protocol is built here by plain string formatting (no Point objects: that is
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
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from schoolmon.protocol.catalogue import HEALTH

from .metrics import IngestMetrics
from .state import Accepted

log = logging.getLogger("schoolmon.collector.timeseries")

#: Tag keys, in the (sorted) order InfluxDB likes best.
TAG_KEYS = ("area", "device", "province", "role", "school")

#: Scalar health fields written to ``health`` (all numeric on the wire; ``ac`` bool → 1/0).
HEALTH_FIELDS = ("cpu_pct", "cpu_n", "mem_pct", "swap_pct", "disk_rd", "disk_wr", "temp", "fan",
                 "batt", "ac", "up", "procs", "users", "q", "q_drop")
#: ``load`` list → load1, load5, load15.
LOAD_FIELDS = ("load1", "load5", "load15")
DISK_FIELDS = ("pct", "free")
NIC_FIELDS = ("rx", "tx", "err", "drop")

_TAG_ESCAPE = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\ ", "\r": "\\ ",
                             "\t": "\\ ", "\\": "/"})


def escape_tag(value: str) -> str:
    """Escape a tag key or value (and field keys) for line protocol.

    Commas, equals signs and spaces are backslash-escaped; newlines and tabs become
    (escaped) spaces; a backslash becomes ``/`` (a Windows ``C:\\`` would otherwise end
    in an escape character; InfluxDB and VictoriaMetrics disagree on backslashes).
    """
    return value.translate(_TAG_ESCAPE)


def escape_measurement(value: str) -> str:
    return value.replace("\\", "/").replace(",", "\\,").replace(" ", "\\ ")


def tag_prefix(tags: Dict[str, str]) -> str:
    """``,area=...,device=...`` (empty values left out: line protocol forbids them)."""
    parts = []
    for k in TAG_KEYS:
        v = tags.get(k)
        if v:
            parts.append("," + k + "=" + escape_tag(str(v)))
    return "".join(parts)


#: A line without its tags: (measurement, "[,extra=tag] fields ts"); the full line is
#: measurement + tag_prefix + rest. Bodies need only the payload, so ingest builds them
#: while decoding, before the store has said which tags a message gets.
Body = Tuple[str, str]


def _field_code(name: str, field_type: str, source: str, required: bool, indent: str) -> List[str]:
    """Code appending ``name=value`` for one numeric field of ``source`` to ``a``."""
    value = "%s[%r]" % (source, name) if required else "%s_get(%r)" % (source, name)
    code = [indent + "v = " + value]
    if field_type == "bool":
        put = "a(%r if v else %r)" % (name + "=1", name + "=0")
    else:  # int or float on the wire: repr() is exact, and without "i" a float field
        put = "a(%r %% (v,))" % (name + "=%r")
    if required:
        return code + [indent + put]
    return code + [indent + "if v is not None:", indent + "    " + put]


def _compile_health_bodies() -> Callable[[Dict[str, Any], int], List[Body]]:
    """``health_bodies(payload, ts)`` as straight-line code written from the catalogue
    (the payload was validated, so every field has its catalogue type): a third faster
    than a loop over the field names, and this runs for every health message."""
    fields = {f.name: f for f in HEALTH.fields}
    L = ["def health_bodies(p, ts):", "    p_get = p.get", "    f = []", "    a = f.append"]
    for name in HEALTH_FIELDS:
        L += _field_code(name, fields[name].type, "p", fields[name].required, "    ")
    L += ["    load = p_get('load')",
          "    if load:",
          "        for n, x in zip(%r, load):" % (LOAD_FIELDS,),
          "            a(n + '=' + repr(x))",
          "    suffix = ' %d' % ts",
          "    out = [('health', ' ' + ','.join(f) + suffix)] if f else []"]
    # One sub-measurement line per list item, tagged by the item's name field.
    for listed, measurement, tag, names in (("disks", "health_disk", "mnt", DISK_FIELDS),
                                            ("nics", "health_nic", "if", NIC_FIELDS)):
        item = {f.name: f for f in fields[listed].items or ()}
        L += ["    for o in p_get(%r) or ():" % listed,
              "        f = []",
              "        a = f.append",
              "        o_get = o.get"]
        for name in names:
            L += _field_code(name, item[name].type, "o", item[name].required, "        ")
        L += ["        if o[%r]:  # an empty tag value would make the line invalid" % tag,
              "            out.append((%r, %r + escape_tag(str(o[%r])) + ' ' + ','.join(f) + suffix))"
              % (measurement, "," + tag + "=", tag)]
    L.append("    return out")
    ns: Dict[str, Any] = {"escape_tag": escape_tag}
    exec("\n".join(L), ns)
    fn = ns["health_bodies"]
    fn.__doc__ = "Line bodies of one validated health payload (generated from the catalogue)."
    return fn  # type: ignore[no-any-return]


health_bodies = _compile_health_bodies()


def status_bodies(payload: Dict[str, Any], ts: int) -> List[Body]:
    state = payload.get("state")
    if state in ("online", "offline"):
        return [("status", " online=%d %d" % (state == "online", ts))]
    return []


#: kind -> function(payload, ts) giving the line bodies of one message.
BUILDERS: Dict[str, Callable[[Dict[str, Any], int], List[Body]]] = {
    "health": health_bodies,
    "status": status_bodies,
}

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
        self._precision = WritePrecision.S
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
