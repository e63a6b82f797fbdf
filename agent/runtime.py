"""The agent's main loop: schedules, timeouts, workers, envelope, queue.

- Each family has a schedule: ``health`` every ``intervals.health`` seconds ±10 %,
  ``inventory`` checked every ``intervals.inventory`` and queued only at start and when it
  changed (retained). The first reports come after a random ``start_delay_min`` ..
  ``start_delay_max`` seconds, so a lab's PCs switched on together do not report together.
  How each family runs (trigger, period key, timeout, slow or not) is its declared spec in
  ``agent/families`` (``SPECS``); families triggered by a command are not scheduled.
- Families never run on the main loop's thread. Each cheap family has its own worker
  thread; slow families share one slow-probe worker. A collection that overruns its
  timeout is abandoned for that round (logged; its late result is thrown away) and the
  family is skipped until its worker is free again — nothing a family does can stall
  ``health`` or the loop.
- A command (agent/commands.py) runs a family once through ``run_now``: on the same
  workers and timeouts, its result queued like a scheduled one. The latest result of each
  kind is kept (``latest``) for the commands that depend on it (no test on a dead link).
- The core adds ``q``/``q_drop`` to health, builds the message (``agent/message.py``:
  envelope, valid text, sanitize, validate, encode) and puts it in the spool; the
  transport sends it.
"""
import logging
import math
import queue
import random
import threading
import time
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Tuple

from schoolmon.protocol import FAMILIES, ProtocolError, topic

from .families import INTERVAL, ON_CHANGE, SPECS, Family, FamilySpec, config_value
from .message import build_message
from .spool import Spool

log = logging.getLogger("schoolmon.agent.runtime")

JITTER = 0.10
#: How often the age bound of the queue is applied.
EXPIRE_EVERY = 600.0


class Result(NamedTuple):
    kind: str
    token: int
    ts: float
    fields: Optional[Dict[str, Any]]
    error: Optional[str]


class Worker:
    """A daemon thread that runs collections one after the other."""

    def __init__(self, name: str, results: queue.Queue) -> None:
        self.jobs = queue.Queue()  # type: queue.Queue[Optional[tuple]]
        self.results = results
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def submit(self, kind: str, token: int, family: Any) -> None:
        self.jobs.put((kind, token, family))

    def close(self) -> None:
        self.jobs.put(None)

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            kind, token, family = job
            ts = time.time()
            try:
                fields = family.collect()
                if fields is None:  # nothing to report (a command refused at its start)
                    self.results.put(Result(kind, token, ts, None, None))
                    continue
                if not isinstance(fields, dict):
                    raise TypeError("collect() returned %s, not a dict" % type(fields).__name__)
                self.results.put(Result(kind, token, ts, fields, None))
            except Exception as exc:  # a broken family must not kill its worker
                log.exception("collecting %s failed", kind)
                self.results.put(Result(kind, token, ts, None, "%s: %s" % (
                    exc.__class__.__name__, exc)))


class Schedule:
    def __init__(self, kind: str, family: Any, interval: float, timeout: float, slow: bool,
                 on_change: bool, first_due: float) -> None:
        self.kind = kind
        self.family = family
        self.interval = interval
        self.timeout = timeout
        self.slow = slow
        self.on_change = on_change
        self.due = first_due
        self.running_since: Optional[float] = None
        self.token = 0
        self.timed_out = False
        self.last_fields: Optional[Dict[str, Any]] = None


class Runtime:
    def __init__(self, cfg: Any, school: str, device: str, families: Mapping[str, Family],
                 spool: Spool, notify: Callable[[], None] = lambda: None,
                 rand: Optional[random.Random] = None,
                 specs: Mapping[str, FamilySpec] = SPECS) -> None:
        self.cfg = cfg
        self.school = school
        self.device = device
        self.spool = spool
        self.notify = notify
        self.rand = rand or random.Random()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._asked = set()  # type: set
        self.results = queue.Queue()  # type: queue.Queue[Result]
        self._workers: Dict[str, Worker] = {}
        self.queued: Dict[str, int] = {}
        #: kind -> (monotonic time, fields) of its latest result
        self._latest: Dict[str, Tuple[float, Dict[str, Any]]] = {}
        #: one-off runs asked from other threads (commands), started by the loop
        self._requests = queue.Queue()  # type: queue.Queue[Tuple[str, Any, float, bool]]
        now = time.monotonic()
        delay = self.rand.uniform(cfg.intervals.start_delay_min, cfg.intervals.start_delay_max)
        log.info("first report in %.1f s", delay)
        self.schedules: Dict[str, Schedule] = {}
        for kind, family in families.items():
            spec = specs.get(kind)
            if kind not in FAMILIES or spec is None:
                log.warning("family %s is not in this wire format version: not scheduled", kind)
                continue
            if spec.trigger not in (INTERVAL, ON_CHANGE):
                continue  # collected when a command asks for it
            interval = config_value(cfg, spec.period_key)
            timeout = spec.timeout or cfg.intervals.timeout
            first = delay + (float(config_value(cfg, spec.first_delay_key))
                             if spec.first_delay_key else 0.0)
            self.schedules[kind] = Schedule(kind, family, float(interval), float(timeout),
                                            spec.slow, spec.trigger == ON_CHANGE, now + first)

    # --- control ------------------------------------------------------------------------

    def request_stop(self, *_: Any) -> None:
        self.stopping.set()

    def run_now(self, kind: str, family: Any, timeout: Optional[float] = None) -> bool:
        """Collect ``kind`` once with ``family`` (anything with ``collect()``; it may return
        None: nothing is queued), on the worker its spec names, with its timeout; the
        result is queued like a scheduled one. Safe from any thread (the loop starts it).
        False when a collection of that kind is already running or asked for."""
        spec = SPECS.get(kind)
        if spec is None or kind not in FAMILIES:
            raise ValueError("no family %r" % kind)
        with self._lock:
            sched = self.schedules.get(kind)
            if kind in self._asked or (sched is not None and sched.running_since is not None):
                return False
            self._asked.add(kind)
        self._requests.put((kind, family, float(timeout or spec.timeout
                                                or self.cfg.intervals.timeout), spec.slow))
        self.results.put(Result("", 0, 0.0, None, None))  # wake the loop
        return True

    def busy(self, kind: str) -> bool:
        """A collection of ``kind`` is running or asked for."""
        with self._lock:
            sched = self.schedules.get(kind)
            return kind in self._asked or (sched is not None and sched.running_since is not None)

    def latest(self, kind: str, max_age: float) -> Optional[Dict[str, Any]]:
        """The fields of the latest result of ``kind`` if it is at most ``max_age`` s old."""
        got = self._latest.get(kind)
        if got is None or time.monotonic() - got[0] > max_age:
            return None
        return got[1]

    def _start_requested(self) -> None:
        while True:
            try:
                kind, family, timeout, slow = self._requests.get_nowait()
            except queue.Empty:
                return
            now = time.monotonic()
            with self._lock:
                sched = self.schedules.get(kind)
                if sched is None:  # a command-only family: a schedule that is never due
                    sched = self.schedules[kind] = Schedule(kind, family, math.inf, timeout,
                                                            slow, False, math.inf)
                self._asked.discard(kind)
                # a scheduled family keeps its own object and timeout: this run only
                # passes ``family`` to the worker
                sched.token += 1
                sched.running_since = now
                sched.timed_out = False
            self._worker(sched).submit(kind, sched.token, family)

    def _worker(self, sched: Schedule) -> Worker:
        name = "slow" if sched.slow else "family-" + sched.kind
        worker = self._workers.get(name)
        if worker is None:
            worker = self._workers[name] = Worker(name, self.results)
        return worker

    def _next_interval(self, sched: Schedule) -> float:
        if sched.on_change:
            return sched.interval
        return sched.interval * self.rand.uniform(1 - JITTER, 1 + JITTER)

    # --- the loop -----------------------------------------------------------------------

    def run(self) -> None:
        next_expire = time.monotonic() + EXPIRE_EVERY
        try:
            while not self.stopping.is_set():
                self._start_requested()
                now = time.monotonic()
                for sched in list(self.schedules.values()):
                    self._tick(sched, now)
                if now >= next_expire:
                    self.spool.expire()
                    next_expire = now + EXPIRE_EVERY
                wait = min([s.due for s in self.schedules.values()] + [now + 1.0]) - now
                try:
                    result = self.results.get(timeout=max(0.01, min(wait, 1.0)))
                except queue.Empty:
                    continue
                self._handle(result)
        finally:
            for worker in self._workers.values():
                worker.close()

    def _tick(self, sched: Schedule, now: float) -> None:
        if sched.running_since is not None:
            if not sched.timed_out and now - sched.running_since > sched.timeout:
                sched.timed_out = True
                log.warning("%s: no result within %.0f s: abandoned for this round (the "
                            "family is skipped until it returns)", sched.kind, sched.timeout)
            return
        if now < sched.due:
            return
        sched.token += 1
        sched.running_since = now
        sched.timed_out = False
        sched.due = now + self._next_interval(sched)
        self._worker(sched).submit(sched.kind, sched.token, sched.family)

    def _handle(self, result: Result) -> None:
        sched = self.schedules.get(result.kind)
        if sched is None or result.token != sched.token:
            return
        with self._lock:
            sched.running_since = None
        if sched.timed_out:
            log.info("%s: late result thrown away", result.kind)
            return
        if result.fields is None:
            return
        self._latest[result.kind] = (time.monotonic(), result.fields)
        if sched.on_change:
            if result.fields == sched.last_fields:
                return
            sched.last_fields = result.fields
        self.queue_message(result.kind, result.fields, result.ts)

    def queue_message(self, kind: str, fields: Dict[str, Any], ts: float) -> Optional[int]:
        """Build and queue one message; returns its seq (None when it cannot be sent)."""
        fields = dict(fields)
        if kind == "health":
            fields["q"] = self.spool.count
            fields["q_drop"] = self.spool.dropped
        name = topic(self.school, self.device, kind)

        def build(seq: int) -> bytes:
            return build_message(kind, fields, seq, ts, log)

        try:
            seq = self.spool.put(name, build, retain=FAMILIES[kind].retained)
        except ProtocolError as exc:
            log.error("%s message not sent: %s", kind, exc)
            return None
        except (TypeError, ValueError) as exc:  # a value JSON cannot carry: the family's bug
            log.error("%s message not sent: %s: %s", kind, exc.__class__.__name__, exc)
            return None
        self.queued[kind] = self.queued.get(kind, 0) + 1
        log.debug("%s queued as seq %d (%d waiting)", kind, seq, self.spool.count)
        self.notify()
        return seq
