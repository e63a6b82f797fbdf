"""Configuration: a TOML file plus ``SCHOOLMON_SECTION_KEY`` environment overrides.

Both programs declare their keys as a schema (section -> key -> Key) and load them here,
so the rules are the same on both sides: unknown sections and keys, wrong types and bad
values raise ConfigError naming the key and its source; the CLIs turn that into exit 2.
The environment wins over the file. Secrets are never echoed in messages.
"""
import math
import os
import sys
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.8-3.10 agents
    import tomli as tomllib

ENV_PREFIX = "SCHOOLMON_"


class ConfigError(Exception):
    """A configuration problem; ``str()`` names the key and what is wrong."""


class Key(NamedTuple):
    type: str  # str | int | float | bool | list | choice
    default: Any
    doc: str
    choices: Optional[Tuple[str, ...]] = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    secret: bool = False
    #: extra check on the converted value; returns an error text or None
    check: Optional[Callable[[Any], Optional[str]]] = None


Schema = Dict[str, Dict[str, Key]]


def redact_url(value: str) -> str:
    """A URL fit for an error message or a log: any password replaced by ``***``."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:  # unparseable (e.g. a broken [IPv6] host): hide all userinfo
        head, at, tail = value.rpartition("@")
        return ("%s://***@%s" % (head.partition("://")[0], tail)) if at else value
    if not password:
        return value
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc="%s:***@%s" % (user, host)).geturl()


def check_mqtt_url(value: Any) -> Optional[str]:
    if not value:
        return None
    shown = redact_url(value)
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return "không phải URL hợp lệ / is not a valid URL: %r" % shown
    if parts.scheme not in ("mqtt", "mqtts"):
        return "phải bắt đầu bằng mqtt:// hoặc mqtts:// / must start with mqtt:// or mqtts://, " \
               "got %r" % shown
    try:
        port = parts.port
    except ValueError:
        return "cổng không phải số 1-65535 / has a port that is not a number 1-65535: %r" % shown
    if not host:
        return "thiếu tên máy / has no host: %r" % shown
    if port is not None and not 0 < port < 65536:
        return "cổng phải từ 1 đến 65535 / port must be 1-65535: %r" % shown
    return None


def check_http_url(value: Any) -> Optional[str]:
    if not value:
        return None
    shown = redact_url(value)
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "không phải URL hợp lệ / is not a valid URL: %r" % shown
    if parts.scheme not in ("http", "https") or not host:
        return "phải là URL http:// hoặc https:// có tên máy / must be an http:// or " \
               "https:// URL with a host, got %r" % shown
    return None


def check_listen(value: Any) -> Optional[str]:
    host, sep, port = str(value).rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit() \
            or not 0 < int(port) < 65536:
        return "phải có dạng host:cổng / must be host:port, got %r" % value
    return None


def mqtt_endpoint(url: str) -> Tuple[str, int, bool]:
    """(host, port, tls) of an mqtt:// or mqtts:// URL; default ports 1883 / 8883."""
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    return parts.hostname or "localhost", parts.port or (8883 if tls else 1883), tls


def _convert(key: Key, name: str, value: Any, source: str) -> Any:
    where = "%s (%s)" % (name, source)
    from_env = source.startswith(ENV_PREFIX)
    t = key.type
    try:
        if t in ("str", "choice"):
            if not isinstance(value, str):
                raise ConfigError("%s: must be a string, got %s" % (where, _shown(key, value)))
        elif t == "bool":
            if from_env and isinstance(value, str):
                low = value.strip().lower()
                if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ConfigError("%s: must be true or false, got %s"
                                      % (where, _shown(key, value)))
                value = low in ("1", "true", "yes", "on")
            elif not isinstance(value, bool):
                raise ConfigError("%s: must be true or false, got %s" % (where, _shown(key, value)))
        elif t in ("int", "float"):
            if from_env and isinstance(value, str):
                value = int(value) if t == "int" else float(value)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    t == "int" and not isinstance(value, int)):
                raise ConfigError("%s: must be %s, got %s"
                                  % (where, "an integer" if t == "int" else "a number",
                                     _shown(key, value)))
            # nan passes every comparison with a bound, and inf as a timeout or an
            # interval means "never": neither is a setting anyone means.
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError("%s: phải là một số hữu hạn / must be a finite number, got %s"
                                  % (where, _shown(key, value)))
            if key.minimum is not None and value < key.minimum:
                raise ConfigError("%s: must be at least %s, got %s" % (where, key.minimum, value))
            if key.maximum is not None and value > key.maximum:
                raise ConfigError("%s: must be at most %s, got %s" % (where, key.maximum, value))
        elif t == "list":
            if from_env and isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError("%s: must be a list of strings" % where)
    except ValueError:
        raise ConfigError("%s: must be %s, got %s" % (where, "an integer" if t == "int"
                                                      else "a number", _shown(key, value))) from None
    if key.choices and value not in key.choices:
        raise ConfigError("%s: must be one of %s, got %s"
                          % (where, ", ".join(key.choices), _shown(key, value)))
    if key.check is not None:
        try:
            problem = key.check(value)
        except Exception:  # a check that trips over odd input still names the key
            problem = "không hợp lệ / is not valid"
        if problem:
            raise ConfigError("%s: %s" % (where, "is not valid" if key.secret else problem))
    return value


def _shown(key: Key, value: Any) -> str:
    return "(hidden)" if key.secret else repr(value)


def read_toml(path: str) -> Dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("config file %s: not found" % path) from None
    except OSError as exc:
        raise ConfigError("config file %s: cannot be read: %s" % (path, exc.strerror)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config file %s: not valid TOML: %s" % (path, exc)) from None


def load(schema: Schema, path: Optional[str] = None,
         env: Optional[Mapping[str, str]] = None,
         overrides: Optional[Dict[str, Dict[str, Any]]] = None) -> SimpleNamespace:
    """Defaults, then the file (if given), then the environment, then ``overrides``
    (values set by the program itself, e.g. demo mode). Returns ``cfg.section.key``."""
    env = os.environ if env is None else env
    data = read_toml(path) if path else {}
    values: Dict[str, Dict[str, Any]] = {s: {k: key.default for k, key in keys.items()}
                                         for s, keys in schema.items()}
    for section, table in data.items():
        if section not in schema:
            raise ConfigError("%s: unknown section [%s] (known: %s)"
                              % (path, section, ", ".join(sorted(schema))))
        if not isinstance(table, dict):
            raise ConfigError("%s: %s must be a table [%s]" % (path, section, section))
        for name, value in table.items():
            if name not in schema[section]:
                raise ConfigError("%s: unknown key %s.%s (known in [%s]: %s)"
                                  % (path, section, name, section,
                                     ", ".join(sorted(schema[section]))))
            values[section][name] = _convert(schema[section][name], "%s.%s" % (section, name),
                                             value, path or "file")
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX):
            continue
        section, _, name = var[len(ENV_PREFIX):].lower().partition("_")
        # Both programs share the prefix, so a variable meant for the other one is not an
        # error here; a variable naming a known section with an unknown key is.
        if section in schema:
            if name not in schema[section]:
                raise ConfigError("%s: unknown key %s.%s" % (var, section, name))
            values[section][name] = _convert(schema[section][name], "%s.%s" % (section, name),
                                             value, var)
    for section, table in (overrides or {}).items():
        values[section].update(table)
    return SimpleNamespace(**{s: SimpleNamespace(**kv) for s, kv in values.items()})


def reference(schema: Schema) -> str:
    """A Markdown table of every key, for the README's configuration reference."""
    lines = ["| key | environment | type | default | meaning |", "|---|---|---|---|---|"]
    for section, keys in schema.items():
        for name, key in keys.items():
            default = "" if key.default in (None, "", []) else "`%s`" % (key.default,)
            kind = "one of %s" % "/".join(key.choices) if key.choices else key.type
            lines.append("| `%s.%s` | `%s%s_%s` | %s | %s | %s |" % (
                section, name, ENV_PREFIX, section.upper(), name.upper(), kind,
                "(hidden)" if key.secret and default else default, key.doc))
    return "\n".join(lines) + "\n"


def unknown_env(schemas: List[Schema], env: Optional[Mapping[str, str]] = None) -> List[str]:
    """SCHOOLMON_* variables that no program knows (for a warning at start)."""
    env = os.environ if env is None else env
    known = {"%s%s_%s" % (ENV_PREFIX, s.upper(), k.upper())
             for schema in schemas for s, keys in schema.items() for k in keys}
    return sorted(v for v in env if v.startswith(ENV_PREFIX) and v not in known)
