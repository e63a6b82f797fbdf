"""The outbox: a message is recorded here before anyone tries to send it.

    enqueue(conn, Message(...), now)   # True when new, False when already recorded

``dedup_key`` is unique in the table, so the same message enqueued twice — after a
restart, by a second collector, after the clock jumped back — is stored, and so sent,
once. Whoever builds a message chooses a key that names what it is about (route,
recipient, group and the alert set or the alert transition), never the time it was built.
Delivery (claiming rows, retrying with backoff) reads the same table.
"""
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Set

from sqlalchemy import Connection

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


def enqueue_many(conn: Connection, msgs: Sequence[Message], now: float) -> Set[str]:
    """Like :func:`enqueue` for many messages in few statements (one round trip per
    MANY_CHUNK, not per message); returns the dedup keys that were new."""
    new: Set[str] = set()
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
        new.update(conn.execute(ins.on_conflict_do_nothing(index_elements=["dedup_key"])
                                .returning(notifications.c.dedup_key)).scalars())
    return new


__all__ = ["CHANNELS", "MANY_CHUNK", "Message", "enqueue", "enqueue_many"]
