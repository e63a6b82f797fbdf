"""Grouping with Alertmanager's semantics, as pure functions over a group's state.

A group is one recipient's alerts on one route whose ``group_by`` labels are equal (e.g.
every school-offline alert of Huyện Bát Xát for one officer). Its state says which of its
alerts are firing, which of them the recipient was told about, and which of those resolved
since the last message; :func:`plan` decides, with the route's three intervals and ``now``
passed in, whether a message is due and what it covers:

- ``group_wait`` after the group opened, the first message (what fired meanwhile joins it);
- ``group_interval`` after the last message, an update when something changed (new alerts
  fired, told alerts resolved): 50 down then 50 up is two messages, not 100;
- ``repeat_interval`` after the last message, the still-firing alerts again, unless each of
  them is acknowledged, silenced or suppressed.

A resolution goes only to a recipient who was told the alert fired, and once: it leaves
the state with the message that says it. The message's dedup key names the group, the kind
and the alert sets it covers plus the group's message count, never a wall time, so the
same decision taken again (a restart, a second process, the clock set back) is recorded
once by the outbox.

Written here rather than borrowed: Alertmanager is a Go server with its own store, and no
Python library keeps this state in our database across processes.
"""
import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

#: Labels a route may group by, and the alert column each one reads.
GROUP_LABELS = ("area", "school", "rule", "severity")
#: Severities, least first (alerts.severity; users.notify_min_severity).
SEVERITIES = ("info", "warning", "critical")
DEFAULT_MIN_SEVERITY = "warning"


def severity_rank(severity: Optional[str]) -> int:
    """Position in SEVERITIES; an unknown severity ranks as critical (said, not dropped)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1


@dataclass(frozen=True)
class Timing:
    group_wait: float
    group_interval: float
    repeat_interval: float


@dataclass(frozen=True)
class Recipient:
    """Where one message goes: ``channel`` (outbox.CHANNELS) and ``address`` (e-mail
    address, Zalo chat id, Apprise URL, webhook URL), the reader's language and the least
    severity they want; ``who`` names the user (or "contact:CODE", "config") for people."""
    channel: str
    address: str
    lang: str = "vi"
    min_severity: str = DEFAULT_MIN_SEVERITY
    who: str = ""

    @property
    def key(self) -> str:
        return "%s:%s" % (self.channel, self.address)

    def to_json(self) -> Dict[str, str]:
        return {"channel": self.channel, "address": self.address, "lang": self.lang,
                "min_severity": self.min_severity, "who": self.who}

    @staticmethod
    def from_json(value: Mapping[str, Any]) -> "Recipient":
        return Recipient(str(value["channel"]), str(value["address"]),
                         str(value.get("lang") or "vi"),
                         str(value.get("min_severity") or DEFAULT_MIN_SEVERITY),
                         str(value.get("who") or ""))


@dataclass(frozen=True)
class GroupState:
    """One group as stored in ``notification_groups`` (``state`` holds the JSON part)."""
    key: str
    route: str
    recipient: Recipient
    labels: Tuple[Tuple[str, str], ...]
    opened_at: float
    last_sent_at: Optional[float] = None
    firing: Tuple[int, ...] = ()  # firing alerts of the group (told or not)
    notified: Tuple[int, ...] = ()  # told they fired, resolution not yet said
    resolved: Tuple[int, ...] = ()  # told they fired, now resolved: the next message says so
    sent: int = 0  # messages of this group so far (part of the dedup key)
    repeats: int = 0  # repeats since the last change
    rev: int = 0  # row version (compare-and-set); 0: not stored yet

    @property
    def empty(self) -> bool:
        return not (self.firing or self.notified or self.resolved)

    def state_json(self) -> Dict[str, Any]:
        return {"recipient": self.recipient.to_json(), "labels": [list(p) for p in self.labels],
                "firing": list(self.firing), "notified": list(self.notified),
                "resolved": list(self.resolved), "sent": self.sent, "repeats": self.repeats}

    @staticmethod
    def from_row(row: Any) -> "GroupState":
        s = row.state or {}
        return GroupState(
            key=row.group_key, route=row.route, recipient=Recipient.from_json(s["recipient"]),
            labels=tuple((str(k), str(v)) for k, v in s.get("labels", ())),
            opened_at=float(row.opened_at),
            last_sent_at=None if row.last_sent_at is None else float(row.last_sent_at),
            firing=tuple(int(i) for i in s.get("firing", ())),
            notified=tuple(int(i) for i in s.get("notified", ())),
            resolved=tuple(int(i) for i in s.get("resolved", ())),
            sent=int(s.get("sent", 0)), repeats=int(s.get("repeats", 0)), rev=int(row.rev))


def group_key(route: str, recipient: Recipient, labels: Sequence[Tuple[str, str]]) -> str:
    """Readable where it can be (route and label values), a hash for the recipient (an
    address or URL may be long or hold a token), within the column's 255 characters."""
    h = hashlib.sha256(json.dumps([route, recipient.key, list(labels)]).encode()).hexdigest()
    shown = ",".join(v for _, v in labels)
    return ("%s|%s|%s" % (route, shown[:200], h[:24]))[:255]


def labels_of(group_by: Sequence[str], alert: Mapping[str, Any]) -> Tuple[Tuple[str, str], ...]:
    column = {"area": "area_code", "school": "school_code", "rule": "rule",
              "severity": "severity"}
    return tuple((name, str(alert.get(column[name]) or "-")) for name in group_by)


# --- events -----------------------------------------------------------------------------

def on_firing(state: GroupState, alert_id: int) -> GroupState:
    if alert_id in state.firing:
        return state
    return replace(state, firing=state.firing + (alert_id,))


def on_resolved(state: GroupState, alert_id: int) -> GroupState:
    """Out of ``firing``; into ``resolved`` only when the recipient was told it fired."""
    firing = tuple(i for i in state.firing if i != alert_id)
    if alert_id in state.notified and alert_id not in state.resolved:
        return replace(state, firing=firing, resolved=state.resolved + (alert_id,))
    return replace(state, firing=firing)


# --- flushing ---------------------------------------------------------------------------

@dataclass(frozen=True)
class AlertNow:
    """What routing needs of an alert at the moment it decides: whether it may be said."""
    state: str
    silenced: bool = False
    suppressed: bool = False
    acked: bool = False

    @property
    def quiet(self) -> bool:
        """Silenced or suppressed (by a parent alert): nobody is told, new or again."""
        return self.silenced or self.suppressed


@dataclass(frozen=True)
class Flush:
    """A message that is due: ``kind`` firing (something new fired), resolved (only
    resolutions) or repeat; the alert ids it covers; the group after it is recorded."""
    kind: str
    new: Tuple[int, ...]
    still: Tuple[int, ...]
    resolved: Tuple[int, ...]
    dedup_key: str
    after: GroupState


def _digest(*parts: Sequence[int]) -> str:
    text = "|".join(",".join(str(i) for i in sorted(p)) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def plan(state: GroupState, timing: Timing, alerts: Mapping[int, AlertNow],
         now: float) -> Optional[Flush]:
    """The message due for ``state`` at ``now``, or None. ``alerts`` holds the current row
    of each alert in the group (one missing is treated as not sayable)."""
    def sayable(i: int) -> bool:
        a = alerts.get(i)
        return a is not None and a.state == "firing" and not a.quiet and not a.acked

    new = tuple(i for i in state.firing if i not in state.notified and sayable(i))
    still = tuple(i for i in state.notified if i in state.firing and sayable(i))
    resolved = state.resolved
    changed = bool(new or resolved)
    if state.last_sent_at is None:
        due = changed and now >= state.opened_at + timing.group_wait
    elif changed:
        due = now >= state.last_sent_at + timing.group_interval
    else:
        due = bool(still) and now >= state.last_sent_at + timing.repeat_interval
    if not due:
        return None
    kind = "firing" if new else ("resolved" if resolved else "repeat")
    covered = (new, resolved) if changed else (still,)
    dedup = "notify:%s:%s:%s:%d" % (hashlib.sha256(state.key.encode()).hexdigest()[:24],
                                    kind, _digest(*covered), state.sent + 1)
    after = replace(
        state, last_sent_at=now, sent=state.sent + 1,
        repeats=0 if changed else state.repeats + 1,
        notified=tuple(i for i in state.notified + new if i not in resolved), resolved=())
    return Flush(kind, new, still, resolved, dedup, after)


__all__ = ["AlertNow", "DEFAULT_MIN_SEVERITY", "Flush", "GROUP_LABELS", "GroupState",
           "Recipient", "SEVERITIES", "Timing", "group_key", "labels_of", "on_firing",
           "on_resolved", "plan", "severity_rank"]
