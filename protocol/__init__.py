"""Wire format shared by agent and collector (stdlib only, runs on Python 3.8+).

- ``topics``: the MQTT topic layout.
- ``catalogue``: every field of every family, with unit and meaning.
- ``wire``: encode / decode / validate, the size limit.
- ``settings``: the TOML + ``SCHOOLMON_*`` configuration loader both programs use.
"""
from .catalogue import COMMANDS, FAMILIES, MAX_PAYLOAD_BYTES
from .errors import REASONS, ProtocolError
from .topics import CMD_KIND, PREFIX, SUBSCRIPTION, UP_KINDS, Topic, parse_topic, topic
from .wire import Message, command, decode, encode, envelope, parse_json, sanitize, validate, validate_command

__all__ = [
    "CMD_KIND", "COMMANDS", "FAMILIES", "MAX_PAYLOAD_BYTES", "PREFIX", "REASONS", "SUBSCRIPTION",
    "UP_KINDS", "Message", "ProtocolError", "Topic", "decode", "encode", "envelope", "parse_json",
    "parse_topic", "sanitize", "topic", "validate", "command", "validate_command",
]
