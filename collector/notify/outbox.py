"""The outbox: a message is recorded here before anyone tries to send it.

    enqueue(conn, Message(...), now)   # True when new, False when already recorded

``dedup_key`` is unique in the table, so the same message enqueued twice — after a
restart, by a second collector, after the clock jumped back — is stored, and so sent,
once. Whoever builds a message chooses a key that names what it is about (route,
recipient, group and the alert set or the alert transition), never the time it was built.
Delivery (claiming rows, retrying with backoff) reads the same table.
"""
from dataclasses import dataclass
from typing import Any, Optional

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


__all__ = ["CHANNELS", "Message", "enqueue"]
