"""The outbox: a message is recorded here before anyone tries to send it.

    enqueue(conn, Message(...), now)   # True when new, False when already recorded

``dedup_key`` is unique in the table, so the same message enqueued twice — after a
restart, by a second collector, after the clock jumped back — is stored, and so sent,
once. Whoever builds a message chooses a key that names what it is about (route,
recipient, group and the alert set or the alert transition), never the time it was built.
Delivery (collector/notify/delivery.py) reads the same table through the functions
below: ``due()`` lists what may be sent now, ``claim()`` takes one row by compare-and-set
on ``rev`` (two collectors never both win it), ``finish()`` records the outcome on the
claimed ``rev`` (a sender whose claim was taken over records nothing).

States: queued → sending → sent | failed (retried at next_attempt_at) → … → dead.
The state is the truth, never the time: a ``sent`` or ``dead`` row is never selected
again, whatever the clock says.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from sqlalchemy import Connection, and_, or_, select, update

from ..store.schema import dialect_insert, notifications

#: Channels a message can go out on.
CHANNELS = ("email", "apprise", "webhook", "zalo")


@dataclass(frozen=True)
class Message:
    dedup_key: str
    channel: str  # one of CHANNELS
    recipient: str  # e-mail address, Zalo chat id, Apprise URL name, webhook name
    subject: str
    body: str
    lang: str = "vi"
    route: Optional[str] = None
    group_key: Optional[str] = None
    #: the webhook's JSON body; for other channels what the message covers (alert ids)
    payload: Any = None


def enqueue(conn: Connection, msg: Message, now: float) -> bool:
    """Record ``msg`` as queued, due now; False (and nothing changes) when a message with
    its dedup_key is already recorded, whatever its state."""
    if msg.channel not in CHANNELS:
        raise ValueError("unknown channel %r (one of %s)" % (msg.channel, ", ".join(CHANNELS)))
    ins = dialect_insert(conn, notifications).values(
        dedup_key=msg.dedup_key[:255], created_at=now, channel=msg.channel,
        recipient=msg.recipient[:512], route=msg.route, group_key=msg.group_key,
        lang=msg.lang, subject=msg.subject[:512], body=msg.body, payload=msg.payload,
        state="queued", attempts=0, next_attempt_at=now, rev=1)
    got = conn.execute(ins.on_conflict_do_nothing(index_elements=["dedup_key"])
                       .returning(notifications.c.id)).first()
    return got is not None


#: Rows per INSERT in enqueue_many: 16 columns each stays under SQLite's 32,766 bound
#: parameters, and a province-wide outage (~3,000 messages) is a few statements.
MANY_CHUNK = 500


def enqueue_many(conn: Connection, msgs: Sequence[Message], now: float) -> Dict[str, int]:
    """Like :func:`enqueue` for many messages in few statements (one round trip per
    MANY_CHUNK, not per message); returns the row id of each dedup key that was new (the
    caller links its alerts to those ids, alert_notifications)."""
    new: Dict[str, int] = {}
    for m in msgs:
        if m.channel not in CHANNELS:
            raise ValueError("unknown channel %r (one of %s)" % (m.channel, ", ".join(CHANNELS)))
    for i in range(0, len(msgs), MANY_CHUNK):
        rows = [dict(dedup_key=m.dedup_key[:255], created_at=now, channel=m.channel,
                     recipient=m.recipient[:512], route=m.route, group_key=m.group_key,
                     lang=m.lang, subject=m.subject[:512], body=m.body, payload=m.payload,
                     state="queued", attempts=0, next_attempt_at=now, rev=1)
                for m in msgs[i:i + MANY_CHUNK]]
        ins = dialect_insert(conn, notifications).values(rows)
        new.update((r.dedup_key, int(r.id)) for r in conn.execute(
            ins.on_conflict_do_nothing(index_elements=["dedup_key"])
            .returning(notifications.c.dedup_key, notifications.c.id)))
    return new


@dataclass(frozen=True)
class Claimed:
    """A row this sender holds: what to send, and the ``rev`` its outcome is written on."""

    id: int
    rev: int
    attempts: int  # counting this one
    message: Message


def due(conn: Connection, channel: str, now: float, limit: int = 50) -> List[int]:
    """Ids of ``channel``'s rows that may be sent now, oldest due first: queued or failed
    with ``next_attempt_at <= now``, or ``sending`` whose claim ran out (a sender that
    crashed or hung past ``claimed_until``)."""
    t = notifications.c
    cond = or_(and_(t.state.in_(("queued", "failed")), t.next_attempt_at <= now),
               and_(t.state == "sending", t.claimed_until < now))
    rows = conn.execute(select(t.id).where(t.channel == channel, cond)
                        .order_by(t.next_attempt_at, t.id).limit(limit)).all()
    return [int(r.id) for r in rows]


def claim(conn: Connection, row_id: int, sender: str, now: float,
          hold: float) -> Optional[Claimed]:
    """Take row ``row_id`` for ``hold`` seconds, or None when it is no longer due or
    another sender took it first. The attempt is counted here, at the claim, so a row
    that crashes its sender every time still ends ``dead`` after the last attempt."""
    t = notifications.c
    row = conn.execute(select(notifications).where(t.id == row_id)).first()
    if row is None:
        return None
    if row.state in ("queued", "failed"):
        if row.next_attempt_at > now:
            return None
    elif not (row.state == "sending" and row.claimed_until is not None
              and row.claimed_until < now):
        return None
    got = conn.execute(update(notifications).where(t.id == row_id, t.rev == row.rev).values(
        state="sending", attempts=t.attempts + 1, claimed_by=sender[:64],
        claimed_until=now + hold, rev=t.rev + 1))
    if got.rowcount != 1:
        return None  # another sender's compare-and-set won
    msg = Message(dedup_key=row.dedup_key, channel=row.channel, recipient=row.recipient,
                  subject=row.subject, body=row.body, lang=row.lang, route=row.route,
                  group_key=row.group_key, payload=row.payload)
    return Claimed(id=int(row.id), rev=int(row.rev) + 1, attempts=int(row.attempts) + 1,
                   message=msg)


def finish(conn: Connection, held: Claimed, now: float, error: Optional[str] = None,
           retry_at: Optional[float] = None) -> bool:
    """Record the outcome of ``held``: ``sent`` when ``error`` is None; else ``failed``
    due again at ``retry_at``, or ``dead`` when ``retry_at`` is None. False (nothing
    written) when the claim was taken over meanwhile."""
    t = notifications.c
    values: dict = {"claimed_by": None, "claimed_until": None, "rev": t.rev + 1}
    if error is None:
        values.update(state="sent", sent_at=now, last_error=None)
    elif retry_at is None:
        values.update(state="dead", last_error=error[:1000])
    else:
        values.update(state="failed", last_error=error[:1000], next_attempt_at=retry_at)
    got = conn.execute(update(notifications).where(
        t.id == held.id, t.rev == held.rev, t.state == "sending").values(**values))
    return got.rowcount == 1


def requeue_dead(conn: Connection, now: float, channel: Optional[str] = None) -> int:
    """Give every ``dead`` row (of ``channel``) a new round of attempts, due now (after
    an administrator fixed the channel's configuration). Returns how many."""
    t = notifications.c
    q = update(notifications).where(t.state == "dead")
    if channel is not None:
        q = q.where(t.channel == channel)
    return int(conn.execute(q.values(state="queued", attempts=0, next_attempt_at=now,
                                     rev=t.rev + 1)).rowcount)


__all__ = ["CHANNELS", "MANY_CHUNK", "Claimed", "Message", "claim", "due", "enqueue",
           "enqueue_many", "finish", "requeue_dead"]
