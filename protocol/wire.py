"""Encoding, decoding and validating payloads: the one definition both sides use."""
import json
import math
import re
import sys
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from .catalogue import COMMAND_ENVELOPE, COMMANDS, ENVELOPE, FAMILIES, MAX_PAYLOAD_BYTES, Family, Field
from .errors import ProtocolError
from .topics import Topic, parse_topic

#: orjson once a program has switched it on with ``use_orjson()``: the collector does;
#: the agent does not (importing orjson costs ~2.4 MB of RSS, and it parses little JSON).
_orjson: Any = None


def use_orjson() -> bool:
    """Parse payloads with orjson from now on, if it is installed (see ``parse_json``)."""
    global _orjson
    try:
        import orjson
    except ImportError:
        return False
    _orjson = orjson
    return True


class Message(NamedTuple):
    """A validated message: where it came from and its payload (envelope included)."""

    school: str
    device: str
    kind: str
    v: int
    ts: float
    seq: int
    payload: Dict[str, Any]
    size: int


def envelope(kind: str, fields: Dict[str, Any], seq: int, ts: float) -> Dict[str, Any]:
    """A family's fields wrapped in the envelope, ready for encode()."""
    msg = {"v": family(kind).version, "ts": int(ts) if float(ts).is_integer() else round(ts, 3),
           "seq": seq}
    msg.update(fields)
    return msg


def _refuse_constant(name: str) -> Any:
    raise ValueError("%s is not valid JSON" % name)


def encode(payload: Dict[str, Any]) -> bytes:
    """Compact JSON (no spaces), UTF-8, refusing NaN/Infinity, text the receiver would refuse
    (``invalid_text``) and anything over the limit."""
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        raw = data.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from an OS name that is not UTF-8
        _check_text(payload, "")
        raise
    if _ESCAPE_OF_BAD_TEXT.search(raw) is not None:
        _check_text(payload, "")
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ProtocolError("too_large", "payload of %d bytes is over the %d-byte limit"
                            % (len(raw), MAX_PAYLOAD_BYTES))
    return raw


#: json.loads(..., parse_constant=...) builds a decoder per call; this one is built once.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def parse_json(raw: bytes) -> Dict[str, Any]:
    """Bytes to a JSON object, with the size limit checked before any parsing.

    After ``use_orjson()``, orjson parses first (about twice as fast on a health message;
    ``bench/ingest_micro.py``). orjson is
    stricter than the standard parser (no NaN, integers within 64 bits, no lone
    surrogates, nesting under 1024), and where both succeed they give equal objects; so
    whenever orjson refuses, the standard parser decides, and the result and any error
    reason are exactly what they would be without orjson (tests/protocol/test_wire.py
    holds the two paths to that). Strings and keys carrying NUL or a lone surrogate are
    refused (``invalid_text``) on both paths."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ProtocolError("too_large", "payload of %d bytes is over the %d-byte limit"
                            % (len(raw), MAX_PAYLOAD_BYTES))
    obj: Any = None
    if _orjson is not None:
        try:
            obj = _orjson.loads(raw)
        except Exception:  # orjson.JSONDecodeError: let the standard parser name the fault
            obj = None
    if obj is None:
        obj = _parse_json_stdlib(raw)
    if type(obj) is not dict:
        raise ProtocolError("not_object", "payload is JSON %s, not an object" % type(obj).__name__)
    # Text JSON allows but nothing downstream can store: NUL (PostgreSQL refuses it) and
    # lone surrogates (no UTF-8 encoding). Raw bytes cannot carry either (the UTF-8 decoder
    # and both parsers refuse them), only a \u escape can: one scan of the bytes for such an
    # escape, and the object is walked only when one is there.
    if _ESCAPE_OF_BAD_TEXT.search(raw) is not None:
        _check_text(obj, "")
    return obj


#: A \u escape that may denote NUL or a surrogate (valid pairs too: the walk decides).
#: A false hit (an escaped backslash before "u0000") only costs the walk.
_ESCAPE_OF_BAD_TEXT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
#: NUL or any surrogate code point in a decoded str (valid pairs were joined by the parser).
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def _check_text(value: Any, path: str) -> None:
    """Raise invalid_text naming the first key or string that carries NUL or a lone
    surrogate."""
    if isinstance(value, str):
        if _BAD_TEXT.search(value) is not None:
            raise ProtocolError("invalid_text", "%s carries NUL or a lone surrogate"
                                % (path or "the payload"))
    elif isinstance(value, dict):
        for key, item in value.items():
            name = "%s.%s" % (path, key) if path else str(key)
            if isinstance(key, str) and _BAD_TEXT.search(key) is not None:
                raise ProtocolError("invalid_text", "a key under %s carries NUL or a lone "
                                    "surrogate" % (path or "the payload"))
            _check_text(item, name)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_text(item, "%s[%d]" % (path, i))


def _parse_json_stdlib(raw: bytes) -> Any:
    try:
        return _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError("invalid_json", str(exc)[:200]) from None
    except RecursionError:  # "[[[[..." within 64 KiB is deeper than Python's stack
        raise ProtocolError("invalid_json", "JSON nested too deeply") from None


def decode(topic: str, raw: bytes) -> Message:
    """Validate a received message completely; raise ProtocolError naming the first fault."""
    where = parse_topic(topic)
    obj = parse_json(raw)
    validate(where.kind, obj)
    _check_identity(where, obj)
    return Message(where.school, where.device, where.kind, obj["v"], float(obj["ts"]),
                   obj["seq"], obj, len(raw))


def command(name: str, fields: Dict[str, Any], ts: float) -> bytes:
    """A command (catalogue ``COMMANDS``) ready to publish on a device's ``cmd`` topic;
    raises ProtocolError when ``fields`` do not validate (the sender's bug)."""
    msg = {"v": command_family(name).version, "ts": round(float(ts), 3), "cmd": name}
    msg.update(fields)
    validate_command(msg)
    return encode(msg)


def command_family(name: str) -> Family:
    try:
        return COMMANDS[name]
    except KeyError:
        raise ProtocolError("unknown_kind", "no command %r in this version of the wire "
                            "format" % name) from None


def validate_command(obj: Dict[str, Any]) -> Dict[str, Any]:
    """Check a received command completely (the agent's side); returns it. Raises
    ProtocolError naming the first fault (unknown command, newer version, bad field)."""
    _check_fields(COMMAND_ENVELOPE, obj, "")
    fam = command_family(obj["cmd"])
    if obj["v"] > fam.version:
        raise ProtocolError("unknown_version", "command %s version %d is newer than the %d "
                            "this side knows" % (obj["cmd"], obj["v"], fam.version))
    _check_fields(fam.fields, obj, "")
    return obj


def _check_identity(where: Topic, obj: Dict[str, Any]) -> None:
    # Payloads need not repeat their origin, but one that does must agree with its topic:
    # a device must not speak for another.
    for key, expected in (("school", where.school), ("device", where.device)):
        claimed = obj.get(key)
        if claimed is not None and claimed != expected:
            raise ProtocolError("topic_mismatch", "payload %s %r differs from topic %s %r"
                                % (key, claimed, key, expected))


def family(kind: str) -> Family:
    try:
        return FAMILIES[kind]
    except KeyError:
        raise ProtocolError("unknown_kind", "no message family %r in this version of the "
                            "wire format" % kind) from None


def validate(kind: str, obj: Dict[str, Any]) -> None:
    """Check an envelope + family payload against the catalogue. Unknown fields are allowed
    (additive changes within v1); known fields must be right."""
    fam = family(kind)
    fast = _FAST.get(kind)
    if fast is not None and fast(obj):
        return  # every field right: the checks below would find nothing
    _check_fields(ENVELOPE, obj, "")
    if obj["v"] > fam.version:
        raise ProtocolError("unknown_version", "%s payload version %d is newer than the %d "
                            "this side knows" % (kind, obj["v"], fam.version))
    _check_fields(fam.fields, obj, "")


def _check_fields(fields: Tuple[Field, ...], obj: Dict[str, Any], path: str) -> None:
    for f in fields:
        value = obj.get(f.name)
        if value is None:
            if f.required:
                raise ProtocolError("missing_field", "%s%s is required" % (path, f.name))
            continue
        _check_value(f, value, path + f.name)


def _check_value(f: Field, value: Any, name: str) -> None:
    t = f.type
    if t == "objects":
        if not isinstance(value, list):
            raise ProtocolError("wrong_type", "%s must be a list of objects" % name)
        if len(value) > f.max_items:
            raise ProtocolError("out_of_range", "%s has %d items, at most %d"
                                % (name, len(value), f.max_items))
        assert f.items is not None
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ProtocolError("wrong_type", "%s[%d] must be an object" % (name, i))
            _check_fields(f.items, item, "%s[%d]." % (name, i))
        return
    if t == "list":
        if not isinstance(value, list):
            raise ProtocolError("wrong_type", "%s must be a list" % name)
        if len(value) > f.max_items:
            raise ProtocolError("out_of_range", "%s has %d items, at most %d"
                                % (name, len(value), f.max_items))
        item_field = f._replace(type=f.item_type or "str")
        for i, item in enumerate(value):
            _check_value(item_field, item, "%s[%d]" % (name, i))
        return
    _check_scalar(f, t, value, name)


def _check_scalar(f: Field, t: str, value: Any, name: str) -> None:
    if t == "str":
        if not isinstance(value, str):
            raise ProtocolError("wrong_type", "%s must be a string" % name)
        if len(value) > f.max_len:
            raise ProtocolError("out_of_range", "%s is longer than %d characters"
                                % (name, f.max_len))
        if f.choices and value not in f.choices:
            raise ProtocolError("out_of_range", "%s=%r is not one of %s"
                                % (name, value, ", ".join(f.choices)))
        return
    if t == "bool":
        if not isinstance(value, bool):
            raise ProtocolError("wrong_type", "%s must be true or false" % name)
        return
    # Numbers. bool is an int subclass in Python but not a number on the wire.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError("wrong_type", "%s must be a number" % name)
    # An integral float (7.0, as some JSON writers emit) counts as an integer.
    if t == "int" and isinstance(value, float) and not value.is_integer():
        raise ProtocolError("wrong_type", "%s must be an integer" % name)
    if isinstance(value, float) and not math.isfinite(value):
        raise ProtocolError("non_finite", "%s is not a finite number" % name)
    if f.minimum is not None and value < f.minimum:
        raise ProtocolError("out_of_range", "%s=%s is below %s" % (name, value, f.minimum))
    if f.maximum is not None and value > f.maximum:
        raise ProtocolError("out_of_range", "%s=%s is above %s" % (name, value, f.maximum))


# --- fast path -----------------------------------------------------------------------------
# validate() first asks a checker compiled once per family (straight-line code, constants
# inlined) whether the payload is entirely valid. It only answers True when the checks
# above would pass (exact JSON types, bounds that also exclude NaN and infinities); for
# anything else, including every fault, the checks above run and name the first fault.

_FLOAT_MAX = sys.float_info.max


def _fast_expr(f: Field, t: str, v: str, consts: List[Any]) -> str:
    """A Python expression, True only if value ``v`` passes the checks of ``f`` as type t."""
    def const(value: Any) -> str:
        consts.append(value)
        return "_c%d" % (len(consts) - 1)

    if t == "str":
        e = "type(%s) is str and len(%s) <= %d" % (v, v, f.max_len)
        if f.choices:
            e += " and %s in %s" % (v, const(frozenset(f.choices)))
        return e
    if t == "bool":
        return "type(%s) is bool" % v
    lo = -_FLOAT_MAX if f.minimum is None else f.minimum
    hi = _FLOAT_MAX if f.maximum is None else f.maximum
    rng = "%s <= %s <= %s" % (const(lo), v, const(hi))  # NaN and ±inf fail it
    if t == "int":
        return "type(%s) is int and %s" % (v, rng)
    return "(type(%s) is float or type(%s) is int) and %s" % (v, v, rng)


def _fast_fields(fields: Tuple[Field, ...], name: str, consts: List[Any],
                 out: List[str], max_version: Optional[int] = None) -> None:
    """Append the source of ``def name(obj)``: True if every field of obj is right."""
    body = ["def %s(obj):" % name, "    g = obj.get"]
    for i, f in enumerate(fields):
        v = "v%d" % i
        body.append("    %s = g(%r)" % (v, f.name))
        if f.type == "objects":
            assert f.items is not None
            sub = "%s_%d" % (name, i)
            _fast_fields(f.items, sub, consts, out)
            ok = ("type(%s) is list and len(%s) <= %d and _all_objects(%s, %s)"
                  % (v, v, f.max_items, v, sub))
        elif f.type == "list":
            item = _fast_expr(f, f.item_type or "str", "x", consts)
            ok = ("type(%s) is list and len(%s) <= %d and all([%s for x in %s])"
                  % (v, v, f.max_items, item, v))
        else:
            ok = _fast_expr(f, f.type, v, consts)
            if f.name == "v" and max_version is not None:
                ok += " and %s <= %d" % (v, max_version)
        if f.required:
            body.append("    if %s is None or not (%s):" % (v, ok))
        else:
            body.append("    if %s is not None and not (%s):" % (v, ok))
        body.append("        return False")
    body.append("    return True")
    out.append("\n".join(body))


def _all_objects(items: List[Any], ok: Callable[[Dict[str, Any]], bool]) -> bool:
    return all([type(x) is dict and ok(x) for x in items])


def _compile_fast(fam: Family) -> Callable[[Dict[str, Any]], bool]:
    consts: List[Any] = []
    out: List[str] = []
    _fast_fields(ENVELOPE + fam.fields, "ok", consts, out, max_version=fam.version)
    ns: Dict[str, Any] = {"_all_objects": _all_objects}
    ns.update(("_c%d" % i, c) for i, c in enumerate(consts))
    exec("\n\n".join(out), ns)
    return ns["ok"]  # type: ignore[no-any-return]


#: kind -> compiled "is this payload entirely valid?" checker.
_FAST: Dict[str, Callable[[Dict[str, Any]], bool]] = {
    kind: _compile_fast(fam) for kind, fam in FAMILIES.items()}


def sanitize(kind: str, payload: Dict[str, Any], log: Optional[Any] = None) -> Dict[str, Any]:
    """Agent side: drop optional fields (and list items) that would not validate, so one bad
    sensor reading never costs the whole message. Required fields are left for validate()."""
    fam = family(kind)
    return _sanitize_fields(fam.fields, payload, kind + ".", log)


def _sanitize_fields(fields: Tuple[Field, ...], obj: Dict[str, Any], path: str,
                     log: Optional[Any]) -> Dict[str, Any]:
    out = dict(obj)
    for f in fields:
        if f.name not in out:
            continue
        value = out[f.name]
        if value is None:
            del out[f.name]
            continue
        if f.type == "objects" and isinstance(value, list):
            kept = []
            assert f.items is not None
            for item in value[: f.max_items]:
                if not isinstance(item, dict):
                    continue
                item = _sanitize_fields(f.items, item, path + f.name + "[].", log)
                try:
                    _check_fields(f.items, item, "")
                except ProtocolError:
                    continue
                kept.append(item)
            out[f.name] = kept
            continue
        try:
            _check_value(f, value, path + f.name)
        except ProtocolError as exc:
            if f.required:
                continue
            if log is not None:
                log.warning("dropping field %s%s: %s", path, f.name, exc.detail)
            del out[f.name]
    return out
