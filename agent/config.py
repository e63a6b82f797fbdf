"""The agent's configuration: schema, default paths per OS, loading and writing.

Keys are declared once here (``SCHEMA``) and loaded through the shared loader
(``schoolmon.protocol.settings``): a TOML file, then ``SCHOOLMON_SECTION_KEY`` variables.
A missing or broken file, an unknown key, a wrong type or a bad URL raises ConfigError
naming the key; the CLI turns it into exit status 2. ``write_config`` lets a command
(``enroll``, later) write the file; secrets are never echoed in messages or logs.
"""
import os
import sys
from types import SimpleNamespace
from typing import Any, Dict, Mapping, Optional

from schoolmon.protocol.settings import ConfigError, Key, Schema, check_mqtt_url, load
from schoolmon.protocol.topics import valid_id

from .families import config_keys
from .files import write_atomic

ROLES = ("lab", "office", "server", "router")


def _windows() -> bool:
    return sys.platform.startswith("win")


def program_data() -> str:
    """``%ProgramData%\\schoolmon`` on Windows (the folder of the config and the state)."""
    return os.path.join(os.environ.get("PROGRAMDATA", r"C:\ProgramData"), "schoolmon")


def default_config_path() -> str:
    if _windows():
        return os.path.join(program_data(), "agent.toml")
    return "/etc/schoolmon/agent.toml"


def default_state_dir() -> str:
    if _windows():
        return program_data()
    return "/var/lib/schoolmon"


def _check_id(value: Any) -> Optional[str]:
    if value and not valid_id(value):
        return ("must be letters, digits, '.', '_' or '-' (at most 64, starting with a letter "
                "or digit), got %r" % value)
    return None


def _check_file(value: Any) -> Optional[str]:
    if value and not os.path.isfile(value):
        return "file %r does not exist" % value
    return None


SCHEMA: Schema = {
    "agent": {
        "school": Key("str", "", "MOET code of the school (required for `run`).",
                      check=_check_id),
        "device_id": Key("str", "", "Device id = MQTT username = client id; generated and "
                         "kept in the state folder when empty.", check=_check_id),
        "role": Key("choice", "lab", "What this device is.", choices=ROLES),
        "room": Key("str", "", "Room (phòng máy) of a lab PC."),
        "state_dir": Key("str", "", "Folder for the device id and other kept state "
                         "(default `/var/lib/schoolmon`, Windows `%ProgramData%\\schoolmon`)."),
        "log_level": Key("choice", "info", "Log detail.",
                         choices=("debug", "info", "warning", "error")),
    },
    "mqtt": {
        "url": Key("str", "", "Broker, `mqtt://host:port` or `mqtts://host:port` "
                   "(required for `run`).", check=check_mqtt_url),
        "username": Key("str", "", "MQTT user name; the device id when empty (they are "
                        "the same by contract).", check=_check_id),
        "password": Key("str", "", "MQTT password.", secret=True),
        "ca_file": Key("str", "", "CA certificate (PEM) to check the broker with; the "
                       "system's CAs when empty.", check=_check_file),
        "cert_file": Key("str", "", "Client certificate (PEM), optional.", check=_check_file),
        "key_file": Key("str", "", "Private key of the client certificate (PEM).",
                        check=_check_file),
        "keepalive": Key("int", 60, "Seconds between keepalives; the broker publishes the "
                         "Last Will `offline` after about 1.5 × this without traffic.",
                         minimum=2, maximum=3600),
        "reconnect_min": Key("float", 1.0, "First reconnect delay, seconds (doubles up to "
                             "`reconnect_max`, with random jitter).", minimum=0.1,
                             maximum=3600),
        "reconnect_max": Key("float", 120.0, "Longest reconnect delay, seconds.", minimum=0.1,
                             maximum=86400),
        "topic_alias": Key("bool", True, "Use MQTT 5 topic aliases (fewer bytes per "
                           "message) when the broker allows them."),
        "protocol": Key("choice", "5", "MQTT protocol version: `5` (topic aliases, reason "
                        "codes) or `3.1.1` for brokers that speak only that (the demo's "
                        "embedded broker).", choices=("5", "3.1.1")),
    },
    "intervals": {
        # each family's period first (declared with the family: agent/families)
        **config_keys().get("intervals", {}),
        "start_delay_min": Key("float", 5.0, "Shortest random delay before the first "
                               "report, seconds.", minimum=0, maximum=3600),
        "start_delay_max": Key("float", 30.0, "Longest random delay before the first "
                               "report, seconds.", minimum=0, maximum=3600),
        "timeout": Key("float", 30.0, "Longest time one collection of a family may take "
                       "before it is abandoned for this round, seconds.", minimum=0.1,
                       maximum=3600),
    },
    "queue": {
        "dir": Key("str", "", "Store-and-forward folder (default `<state_dir>/queue`)."),
        "max_bytes": Key("int", 20 * 1024 * 1024, "Most bytes of messages kept while the "
                         "broker is unreachable; the oldest are dropped (and counted) first.",
                         minimum=4096, maximum=10 * 1024 ** 3),
        "max_age_days": Key("float", 7.0, "Messages older than this are dropped (and "
                            "counted).", minimum=0.001, maximum=3650),
        "replay_rate": Key("float", 20.0, "Most buffered messages sent per second after a "
                           "reconnect.", minimum=0.1, maximum=10000),
    },
    # the families' own sections (``security``), declared with each family
    **{section: keys for section, keys in config_keys().items() if section != "intervals"},
}


def load_config(path: Optional[str] = None, env: Optional[Mapping[str, str]] = None,
                require_file: bool = False) -> SimpleNamespace:
    """Load the agent's configuration.

    ``path`` given: that file must exist. ``path`` None: the OS default file if it exists
    (``require_file`` makes its absence an error), else defaults + environment only.
    Adds ``cfg.path`` (the file used or None) and fills derived defaults.
    """
    env = os.environ if env is None else env
    if path is None:
        candidate = default_config_path()
        if os.path.exists(candidate):
            path = candidate
        elif require_file:
            raise ConfigError("config file %s: not found (give --config FILE)" % candidate)
    cfg = load(SCHEMA, path, env)
    if cfg.intervals.start_delay_max < cfg.intervals.start_delay_min:
        raise ConfigError("intervals.start_delay_max: must be at least "
                          "intervals.start_delay_min (%s), got %s"
                          % (cfg.intervals.start_delay_min, cfg.intervals.start_delay_max))
    if cfg.mqtt.reconnect_max < cfg.mqtt.reconnect_min:
        raise ConfigError("mqtt.reconnect_max: must be at least mqtt.reconnect_min")
    if cfg.mqtt.key_file and not cfg.mqtt.cert_file:
        raise ConfigError("mqtt.key_file: given without mqtt.cert_file")
    if cfg.agent.device_id and cfg.mqtt.username and cfg.agent.device_id != cfg.mqtt.username:
        raise ConfigError("mqtt.username: must equal agent.device_id (%r) — the device id is "
                          "the MQTT user name" % cfg.agent.device_id)
    if not cfg.agent.state_dir:
        cfg.agent.state_dir = default_state_dir()
    if not cfg.queue.dir:
        cfg.queue.dir = os.path.join(cfg.agent.state_dir, "queue")
    cfg.path = path
    return cfg


def require_run_keys(cfg: SimpleNamespace) -> None:
    """What ``run`` cannot do without."""
    where = cfg.path or "environment"
    if not cfg.agent.school:
        raise ConfigError("agent.school (%s): required, the school's MOET code" % where)
    if not cfg.mqtt.url:
        raise ConfigError("mqtt.url (%s): required, e.g. mqtts://broker.example:8883" % where)


# --- writing (for commands such as `enroll`) -------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value)
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def render_toml(values: Dict[str, Dict[str, Any]]) -> str:
    lines = []
    for section in sorted(values):
        table = values[section]
        if not table:
            continue
        lines.append("[%s]" % section)
        for key in sorted(table):
            lines.append("%s = %s" % (key, _toml_value(table[key])))
        lines.append("")
    return "\n".join(lines)


def write_config(path: str, updates: Dict[str, Dict[str, Any]]) -> None:
    """Merge ``updates`` into the TOML file at ``path`` (created if absent) and write it
    atomically, readable by its owner only (it holds the MQTT password). Every key is
    checked against SCHEMA first; a bad one raises ConfigError and nothing is written."""
    from schoolmon.protocol.settings import _convert, read_toml

    current: Dict[str, Dict[str, Any]] = read_toml(path) if os.path.exists(path) else {}
    for section, table in updates.items():
        if section not in SCHEMA:
            raise ConfigError("unknown section [%s]" % section)
        for name, value in table.items():
            if name not in SCHEMA[section]:
                raise ConfigError("unknown key %s.%s" % (section, name))
            _convert(SCHEMA[section][name], "%s.%s" % (section, name), value, "update")
            current.setdefault(section, {})[name] = value
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomic(path, render_toml(current), mode=0o600)  # it holds the MQTT password
