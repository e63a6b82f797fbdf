"""Delivery: the outbox's sender. Queued messages arrive once, with retries.

One pass over a channel (:meth:`Sender.run_channel`)::

    for each due row (outbox.due):   claim it (compare-and-set on rev; the attempt counts)
                                     send it on its channel (strict timeout)
                                     finish: sent | failed, due again after the backoff
                                             | dead after notify.max_attempts

- **Exactly once, as far as a sender can know**: a row is claimed by one sender only
  (two collectors on one PostgreSQL race on ``rev``; one wins); a ``sent`` row is never
  selected again — the state is the truth, not the clock, so a restart or a clock jump
  sends nothing twice. A sender that crashed after the server took the message but
  before ``finish`` leaves the row ``sending``; after ``claimed_until`` another sender
  retries it (at least once beats never; the e-mail's Message-ID and the webhook's
  X-Schoolmon-Delivery header stay the same, so the copy is recognisable).
- **Backoff** (:data:`BACKOFF`), deterministic: after the 1st failed attempt 30 s, then
  2 min, 10 min, 30 min, then every hour, until ``notify.max_attempts`` (then ``dead``).
  A refusal that retrying cannot cure (an SMTP 5xx for the address, an unknown
  recipient) is ``dead`` at once.
- **Isolation**: each channel has its own worker thread (:class:`Workers`), so a hanging
  webhook never delays an e-mail; inside a channel every attempt has the channel's
  timeout, so one bad recipient delays the next by at most ``notify.timeout``.
- **Health**: after every attempt, ``attt_state['notify.health.<channel>']`` =
  ``{"ok", "since" (last change of ok), "error", "last_attempt"}`` — what the alert
  evaluator's "notification channel failing" rule reads.
"""
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional

from sqlalchemy import Connection, Engine, func, select

from ..metrics import IngestMetrics
from ..store.schema import attt_state, dialect_insert, notifications
from . import outbox
from .channels import Channel, DeliveryError

log = logging.getLogger("schoolmon.collector.notify")

#: Seconds to wait after the n-th failed attempt (n = 1, 2, …); the last repeats.
BACKOFF = (30.0, 120.0, 600.0, 1800.0, 3600.0)
#: Rows one pass of one channel looks at (the next pass takes the rest).
PASS_LIMIT = 50
HEALTH_PREFIX = "notify.health."


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones (≥ 1)."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


def health_key(channel: str) -> str:
    return HEALTH_PREFIX + channel


def sender_name() -> str:
    """Who claims: host and process, so a row's ``claimed_by`` says which collector."""
    return ("%s:%d" % (socket.gethostname(), os.getpid()))[:64]


@dataclass(frozen=True)
class Attempt:
    """One attempt's outcome: ``result`` sent | failed | dead; ``error`` the stored
    ``"<code>: <detail>"``."""

    id: int
    channel: str
    recipient: str
    result: str
    error: Optional[str] = None
    retry_at: Optional[float] = None


@dataclass
class PassStats:
    attempts: List[Attempt] = field(default_factory=list)

    def count(self, result: str) -> int:
        return sum(1 for a in self.attempts if a.result == result)


class Sender:
    """Sends due outbox rows on ``channels`` (name → Channel). Every method takes ``now``
    (tests drive the clock); the threads of :class:`Workers` pass ``clock()``."""

    def __init__(self, engine: Engine, channels: Mapping[str, Channel], max_attempts: int = 10,
                 claim_seconds: float = 300.0, metrics: Optional[IngestMetrics] = None,
                 name: Optional[str] = None) -> None:
        self.engine = engine
        self.channels = dict(channels)
        self.max_attempts = int(max_attempts)
        self.claim_seconds = float(claim_seconds)
        self.metrics = metrics
        self.name = name or sender_name()

    # ------------------------------------------------------------------ one pass
    def run_once(self, now: float) -> PassStats:
        """Every channel in turn (tests, the CLI); the service runs :class:`Workers`."""
        stats = PassStats()
        for channel in self.channels:
            stats.attempts += self.run_channel(channel, now).attempts
        self.update_gauges(now)
        return stats

    def run_channel(self, channel: str, now: float,
                    only: Optional[List[int]] = None) -> PassStats:
        """One pass over ``channel``'s due rows (or just the rows ``only``)."""
        stats = PassStats()
        with self.engine.connect() as conn:
            ids = outbox.due(conn, channel, now, PASS_LIMIT)
        if only is not None:
            ids = [i for i in ids if i in only]
        for row_id in ids:
            got = self.attempt(row_id, now)
            if got is not None:
                stats.attempts.append(got)
        return stats

    def attempt(self, row_id: int, now: float) -> Optional[Attempt]:
        """Claim row ``row_id``, send it, record the outcome; None when another sender
        has it (or it is no longer due)."""
        with self.engine.begin() as conn:
            held = outbox.claim(conn, row_id, self.name, now, self.claim_seconds)
        if held is None:
            return None
        msg = held.message
        channel = self.channels.get(msg.channel)
        error: Optional[DeliveryError] = None
        try:
            if channel is None:
                raise DeliveryError("not_configured", "channel %r" % msg.channel)
            channel.send(msg)
        except DeliveryError as exc:
            error = exc
        except Exception as exc:  # a channel's bug: this message fails, the sender goes on
            log.exception("notification %d: channel %s failed unexpectedly", held.id,
                          msg.channel)
            error = DeliveryError("crashed", type(exc).__name__)
        if error is None:
            result, stored, retry_at = "sent", None, None
        else:
            stored = str(error)[:1000]
            if error.permanent or held.attempts >= self.max_attempts:
                result, retry_at = "dead", None
            else:
                result, retry_at = "failed", now + backoff(held.attempts)
        with self.engine.begin() as conn:
            if not outbox.finish(conn, held, now, stored, retry_at):
                log.warning("notification %d: the claim was taken over before the outcome "
                            "(%s) was recorded", held.id, result)
            write_health(conn, msg.channel, error is None, stored, now)
        if self.metrics is not None:
            self.metrics.notifications.inc(channel=msg.channel, result=result)
        if error is not None:
            log.warning("notification %d (%s → %s) %s, attempt %d: %s", held.id, msg.channel,
                        msg.recipient[:64], result, held.attempts, stored)
        return Attempt(held.id, msg.channel, msg.recipient, result, stored, retry_at)

    # ------------------------------------------------------------------ gauges
    def update_gauges(self, now: float) -> None:
        if self.metrics is None:
            return
        t = notifications.c
        with self.engine.connect() as conn:
            counts: Dict[str, int] = {
                str(state): int(n) for state, n in conn.execute(
                    select(t.state, func.count()).where(t.state != "sent").group_by(t.state))}
            oldest = conn.execute(select(func.min(t.created_at)).where(
                t.state.in_(("queued", "sending", "failed")))).scalar()
        for state in ("queued", "sending", "failed", "dead"):
            self.metrics.notify_queue.set(float(counts.get(state, 0)), state=state)
        self.metrics.notify_oldest.set(max(0.0, now - float(oldest)) if oldest is not None
                                       else 0.0)


def write_health(conn: Connection, channel: str, ok: bool, error: Optional[str],
                 now: float) -> None:
    """``attt_state['notify.health.<channel>']`` after an attempt; ``since`` moves only
    when ``ok`` changes."""
    key = health_key(channel)
    row = conn.execute(select(attt_state.c.value).where(attt_state.c.key == key)).first()
    before = row.value if row is not None and isinstance(row.value, dict) else None
    since = now if before is None or bool(before.get("ok")) != ok else before.get("since", now)
    value = {"ok": ok, "since": since, "error": None if ok else error, "last_attempt": now}
    ins = dialect_insert(conn, attt_state).values(key=key, value=value, updated_at=now, rev=1)
    conn.execute(ins.on_conflict_do_update(index_elements=["key"], set_={
        "value": ins.excluded.value, "updated_at": now, "rev": attt_state.c.rev + 1}))


class Workers:
    """One thread per channel, each looking at its own due rows every ``interval``
    seconds (or at once after :meth:`wake`): a channel that hangs holds only its own
    thread. Never on the ingest path: the threads share nothing with ingest but the
    database."""

    def __init__(self, sender: Sender, interval: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.sender = sender
        self.interval = float(interval)
        self.clock = clock
        self._stop = threading.Event()
        self._wake: Dict[str, threading.Event] = {c: threading.Event() for c in sender.channels}
        self._threads: List[threading.Thread] = []
        #: passes done per channel (tests wait on it)
        self.passes: Dict[str, int] = {c: 0 for c in sender.channels}

    def start(self) -> "Workers":
        self._stop.clear()
        for channel in self.sender.channels:
            t = threading.Thread(target=self._loop, args=(channel,), daemon=True,
                                 name="schoolmon-notify-%s" % channel)
            t.start()
            self._threads.append(t)
        return self

    def wake(self) -> None:
        for ev in self._wake.values():
            ev.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wake()
        for t in self._threads:
            t.join(timeout)
        self._threads = []

    def _loop(self, channel: str) -> None:
        wake = self._wake[channel]
        while not self._stop.is_set():
            try:
                now = self.clock()
                self.sender.run_channel(channel, now)
                self.sender.update_gauges(now)
            except Exception:
                log.exception("notification delivery (%s) failed; next pass in %.0f s",
                              channel, self.interval)
            self.passes[channel] += 1
            wake.wait(self.interval)
            wake.clear()
