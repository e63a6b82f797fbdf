"""MQTT topic layout: ``schoolmon/v1/{school}/{device}/{kind}``.

A breaking change to the envelope or the topic layout is a new topic version
(``schoolmon/v2/...``); additive changes stay on v1 (see docs/protocol.md).
"""
import re
from typing import NamedTuple

from .errors import ProtocolError

ROOT = "schoolmon"
TOPIC_VERSION = "v1"
PREFIX = ROOT + "/" + TOPIC_VERSION

#: Kinds a device publishes (up), in the contract's order.
UP_KINDS = ("status", "health", "inventory", "security", "probe", "speedtest", "router")
#: The one kind sent down to a device.
CMD_KIND = "cmd"

#: School codes and device ids: letters, digits, ``-``, ``_`` and ``.``; never MQTT
#: wildcards or separators, so one id can never reach into another's topics.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

#: What the collector subscribes to: every kind of every device.
SUBSCRIPTION = PREFIX + "/+/+/+"


class Topic(NamedTuple):
    school: str
    device: str
    kind: str


def valid_id(value: str) -> bool:
    return bool(_ID.match(value))


def topic(school: str, device: str, kind: str) -> str:
    """The topic a device publishes ``kind`` on (or receives commands on)."""
    for what, value in (("school", school), ("device", device)):
        if not valid_id(value):
            raise ProtocolError("bad_topic", "%s id %r is not a valid identifier" % (what, value))
    if kind not in UP_KINDS and kind != CMD_KIND:
        raise ProtocolError("unknown_kind", "kind %r is not one of %s" % (kind, ", ".join(UP_KINDS)))
    return "/".join((PREFIX, school, device, kind))


def device_prefix(school: str, device: str) -> str:
    """Everything below this belongs to one device (the broker's ACL pattern)."""
    return "/".join((PREFIX, school, device)) + "/"


def parse_topic(name: str) -> Topic:
    """Split a topic into school, device and kind; raise ProtocolError if it is not ours."""
    parts = name.split("/")
    if len(parts) != 5 or parts[0] != ROOT:
        raise ProtocolError("bad_topic", "topic %r is not schoolmon/v1/{school}/{device}/{kind}" % name)
    if parts[1] != TOPIC_VERSION:
        raise ProtocolError("unknown_version", "topic version %r is not supported" % parts[1])
    school, device, kind = parts[2], parts[3], parts[4]
    if not valid_id(school) or not valid_id(device):
        raise ProtocolError("bad_topic", "topic %r has an invalid school or device id" % name)
    if kind not in UP_KINDS:
        raise ProtocolError("unknown_kind", "kind %r is not one of %s" % (kind, ", ".join(UP_KINDS)))
    return Topic(school, device, kind)
