"""Ingest's batch side: decode → prepare → (time-series write ∥ state-store writes) →
commit, with retries for outages and bisection for everything else.

- Decoding uses the one wire-format definition; rejects are counted by reason, kept
  aside as dead letters (up to ``MAX_REJECTS_KEPT`` a batch) and settled: they can never
  become valid. A ``ts`` too far in the future or older than
  ``ingest.max_age`` is replaced by the receive time (flagged, counted).
- The time-series write runs on its own thread while the store writes the batch's rows in
  its transaction; the transaction commits only once the time series are written, so a
  crash or an outage at any point leaves nothing committed whose lines are missing (the
  broker delivers the batch again; both writes are idempotent). Past ``OVERLAP_WAIT`` the
  transaction rolls back and waits outside, so the store's lock is never held by a slow
  time-series server.
- Outages (database or time-series server unreachable) are retried until they end, with
  nothing acknowledged meanwhile. Anything else — a message the store or the time-series
  server refuses, a value a driver cannot encode, a bug it triggers — splits the batch in
  halves down to the one message at fault. That one is kept aside in the dead-letter
  table with its reason and settled (acknowledged), and every other message is stored:
  one device can never stop ingest for the others.
"""
import concurrent.futures
import logging
import threading
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Set, Tuple, TypeVar

from schoolmon.protocol import MAX_PAYLOAD_BYTES, ProtocolError, decode

from ..metrics import IngestMetrics
from ..state import Event, Plan, Received
from ..store.dead_letters import STORE_REFUSED, TIMESERIES_REFUSED, DeadLetter
from ..timeseries import TimeSeriesRefused, TimeSeriesUnavailable, build_lines, message_bodies
from .seam import Store, TimeSeries
from .source import Item

log = logging.getLogger("schoolmon.collector.ingest")

#: How long (s) a commit waits inside its transaction for the batch's time-series write
#: (normally ~0.1–0.3 s); longer, and it rolls back and waits outside.
OVERLAP_WAIT = 2.0

#: Wire-format rejects kept as dead letters per batch; more are only counted (a broken
#: agent version sending garbage must not become database load).
MAX_REJECTS_KEPT = 100

#: Seconds between log lines naming school codes rejected as unknown (per process).
UNKNOWN_SCHOOL_LOG_INTERVAL = 60.0

#: Line bodies by id(received), or None when no time series is written.
Bodies = Optional[Dict[int, List[Any]]]

T = TypeVar("T")


class Decoded(NamedTuple):
    """A decoded batch, on its way from the decode thread to the store thread."""

    items: List[Item]
    received: List[Received]
    #: the position in ``items`` of each of ``received``
    positions: List[int]
    bodies: Bodies
    #: wire-format rejects to keep aside: (position, reason, detail)
    rejects: List[Tuple[int, str, str]]


class Outcome(NamedTuple):
    """What became of a batch (see ``source.settled_mids``, the acknowledgement contract)."""

    #: positions of messages neither written to every output nor kept aside
    unsettled: Set[int]
    events: List[Event]


class _TimeSeriesSlow(Exception):
    """The time-series write outlasted OVERLAP_WAIT: roll back, wait, commit again."""


def is_outage(exc: BaseException) -> bool:
    """An error that means "the database is unreachable, try again" (not "this data is
    wrong"): network and OS errors, SQLAlchemy's operational and disconnection errors."""
    if isinstance(exc, (OSError, TimeoutError, ConnectionError)):
        return True
    from sqlalchemy import exc as sa_exc
    return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError,
                            sa_exc.DisconnectionError, sa_exc.TimeoutError))


def _refusal(exc: BaseException) -> str:
    return TIMESERIES_REFUSED if isinstance(exc, TimeSeriesRefused) else STORE_REFUSED


class BatchWriter:
    """Decodes batches and writes them to the state store and the time series."""

    def __init__(self, store: Store, timeseries: TimeSeries, metrics: IngestMetrics,
                 stop: threading.Event, max_future_skew: float, max_age: float,
                 keep_aside: Optional[Callable[[List[DeadLetter]], int]] = None) -> None:
        self.store = store
        self.timeseries = timeseries
        self.ts_enabled = bool(timeseries.enabled)
        self.metrics = metrics
        self._stop = stop
        self.max_future_skew = max_future_skew
        self.max_age = max_age
        self.keep_aside = keep_aside if keep_aside is not None else log_only
        self._ts_writer: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._unknown_schools: Set[str] = set()
        self._unknown_said: Set[str] = set()
        self._unknown_logged_at = time.monotonic()

    def start(self) -> None:
        self._ts_writer = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="schoolmon-ingest-ts")

    def stop(self) -> None:
        if self._ts_writer is not None:
            self._ts_writer.shutdown(wait=False)

    # ---------------------------------------------------------------- decode thread
    def decode(self, batch: List[Item]) -> Decoded:
        m = self.metrics
        m.received.inc(len(batch))
        received: List[Received] = []
        positions: List[int] = []
        rejected: Dict[str, int] = {}
        rejects: List[Tuple[int, str, str]] = []
        skew = {"future": 0, "too_old": 0}
        now_limit_future = self.max_future_skew
        max_age = self.max_age
        for pos, (topic_b, payload, _mid, _qos, _gen, rt) in enumerate(batch):
            try:
                topic = topic_b.decode("utf-8")
                msg = decode(topic, payload)
            except ProtocolError as exc:
                rejected[exc.reason] = rejected.get(exc.reason, 0) + 1
                if len(rejects) < MAX_REJECTS_KEPT:
                    rejects.append((pos, exc.reason, exc.detail))
                continue
            except UnicodeDecodeError:
                rejected["bad_topic"] = rejected.get("bad_topic", 0) + 1
                if len(rejects) < MAX_REJECTS_KEPT:
                    rejects.append((pos, "bad_topic", "topic is not UTF-8"))
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
        bodies = {id(r): message_bodies(r.message.kind, r.message.payload, r.ts)
                  for r in received} if self.ts_enabled else None
        return Decoded(batch, received, positions, bodies, rejects)

    # ---------------------------------------------------------------- store thread
    def write(self, d: Decoded) -> Outcome:
        """Write a decoded batch; raises TimeSeriesUnavailable when stopped meanwhile."""
        out = Outcome(set(), [])
        refused: List[Tuple[int, str, str]] = []
        if d.received:
            self._store(d.received, d.positions, d.bodies, out.events, refused)
        if refused:
            self._keep_aside(d.items, refused, out.unsettled)
        if d.rejects:
            # Settled whether or not they can be kept: they are counted already.
            self._keep_aside(d.items, d.rejects, set())
        return out

    def _store(self, received: List[Received], positions: List[int], bodies: Bodies,
               events: List[Event], refused: List[Tuple[int, str, str]]) -> None:
        """prepare → (time-series write ∥ state-store writes) → commit; on a refusal,
        bisect down to the message at fault and add it to ``refused`` as
        (position, reason, detail)."""
        clock = time.perf_counter
        stage = self.metrics.stage_seconds
        written: Optional[concurrent.futures.Future[int]] = None
        try:
            t0 = clock()
            plan = self._retry("prepare", lambda: self.store.prepare(received))
            t1 = clock()
            stage.inc(t1 - t0, stage="prepare")
            if plan.accepted and self.ts_enabled:
                lines = build_lines(plan.accepted, bodies)
                if lines:
                    assert self._ts_writer is not None, "start() first"
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
                log.error("refused for good, kept aside as a dead letter: %s/%s/%s seq %s: %r",
                          msg.school, msg.device, msg.kind, msg.seq, exc)
                self.metrics.store_errors.inc()
                refused.append((positions[0], _refusal(exc), repr(exc)))
                return
            log.warning("storing a batch of %d failed (%r); splitting it", len(received), exc)
            half = len(received) // 2
            self._store(received[:half], positions[:half], bodies, events, refused)
            self._store(received[half:], positions[half:], bodies, events, refused)
            return
        if ev:
            events.extend(ev)
        self._count(plan)

    def _keep_aside(self, items: List[Item], refused: List[Tuple[int, str, str]],
                    unsettled: Set[int]) -> None:
        letters = []
        for pos, reason, detail in refused:
            topic_b, payload, _mid, _qos, _gen, rt = items[pos]
            if len(payload) > MAX_PAYLOAD_BYTES:  # too_large: keep its head
                detail = "%s (first %d of %d bytes kept)" % (detail, MAX_PAYLOAD_BYTES,
                                                             len(payload))
                payload = payload[:MAX_PAYLOAD_BYTES]
            parts = topic_b.split(b"/")
            letters.append(DeadLetter(
                received_at=rt, topic=topic_b.decode("utf-8", "backslashreplace"),
                payload=payload, reason=reason, detail=detail,
                school_code=parts[2].decode("utf-8", "backslashreplace") if len(parts) > 2
                else None,
                device_id=parts[3].decode("utf-8", "backslashreplace") if len(parts) > 3
                else None))
        try:
            self._retry("dead letters", lambda: self.keep_aside(letters))
        except TimeSeriesUnavailable:
            raise
        except Exception:
            # Not even kept aside: leave them unacknowledged (the broker offers them again).
            log.exception("cannot keep %d dead letter(s); left unacknowledged", len(letters))
            unsettled.update(pos for pos, _r, _d in refused)
            return
        for letter in letters:
            self.metrics.dead_letters.inc(reason=letter.reason)

    def _retry(self, what: str, fn: Callable[[], T]) -> T:
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
        for received, reason in plan.rejected:
            m.rejected.inc(reason=reason)
            if reason == "unknown_school" and len(self._unknown_said) < 1000:
                self._unknown_schools.add(received.message.school)
        if self._unknown_schools:
            self._log_unknown_schools()
        gaps = sum(plan.gaps.values()) if plan.gaps else 0
        if gaps:
            m.seq_gaps.inc(gaps)
        for check, n in plan.refused.items():
            m.implausible.inc(n, check=check)

    def _log_unknown_schools(self) -> None:
        """Agents started before their school was imported: say which codes (the count
        is in /metrics) — a code at once the first time, repeats at most once a minute."""
        now = time.monotonic()
        if now - self._unknown_logged_at >= UNKNOWN_SCHOOL_LOG_INTERVAL:
            self._unknown_said.clear()
            self._unknown_logged_at = now
        codes = sorted(self._unknown_schools - self._unknown_said)
        self._unknown_schools.clear()
        if not codes:
            return
        self._unknown_said.update(codes)
        shown = ", ".join(codes[:20]) + (" (+%d more)" % (len(codes) - 20) if len(codes) > 20
                                         else "")
        log.warning("messages from %d school code(s) not in the registry were refused "
                    "(unknown_school; import the schools): %s", len(codes), shown)


def log_only(letters: List[DeadLetter]) -> int:
    """Where dead letters go when there is no database to keep them in (test fakes)."""
    for x in letters:
        log.error("dead letter (no database to keep it in): %s %s %r", x.reason, x.topic,
                  x.payload[:200])
    return len(letters)
