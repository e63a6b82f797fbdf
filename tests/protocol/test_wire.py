"""The wire format: topics, envelope, validation, limits (stdlib only; runs on 3.8)."""
import json
import math

import pytest
from schoolmon.protocol import (
    FAMILIES,
    MAX_PAYLOAD_BYTES,
    REASONS,
    ProtocolError,
    decode,
    encode,
    envelope,
    parse_topic,
    sanitize,
    topic,
    validate,
)
from schoolmon.protocol.catalogue import ENVELOPE

T = topic("79000001", "79000001-lab-pc07-a1b2", "health")

HEALTH = {
    "cpu_pct": 12.5, "cpu_n": 4, "load": [0.52, 0.41, 0.33], "mem_pct": 45.2, "swap_pct": 0.0,
    "disks": [{"mnt": "C:", "pct": 55.1, "free": 123456789012}],
    "disk_rd": 12345, "disk_wr": 23456,
    "nics": [{"if": "Ethernet", "rx": 1234, "tx": 2345, "err": 0, "drop": 0}],
    "temp": 45.0, "up": 123456, "procs": 215, "users": 1,
}


def health(**changes):
    msg = envelope("health", HEALTH, seq=7, ts=1795356780)
    msg.update(changes)
    return msg


def reason_of(topic_name, raw):
    with pytest.raises(ProtocolError) as exc:
        decode(topic_name, raw)
    return exc.value.reason


def test_round_trip_keeps_every_field():
    m = decode(T, encode(health()))
    assert (m.school, m.device, m.kind, m.v, m.seq, m.ts) == (
        "79000001", "79000001-lab-pc07-a1b2", "health", 1, 7, 1795356780.0)
    assert m.payload == health()


def test_encoding_is_compact_json():
    raw = encode(health())
    assert b" " not in raw
    assert json.loads(raw) == health()


def test_topic_layout():
    assert T == "schoolmon/v1/79000001/79000001-lab-pc07-a1b2/health"
    assert parse_topic(T) == ("79000001", "79000001-lab-pc07-a1b2", "health")


@pytest.mark.parametrize("bad, reason", [
    ("schoolmon/v1/s/d", "bad_topic"),
    ("other/v1/s/d/health", "bad_topic"),
    ("schoolmon/v2/s/d/health", "unknown_version"),
    ("schoolmon/v1/s/d/weather", "unknown_kind"),
    ("schoolmon/v1/s/+/health", "bad_topic"),
    ("schoolmon/v1/s/d/cmd", "unknown_kind"),  # cmd is down only: never accepted as input
])
def test_bad_topics(bad, reason):
    with pytest.raises(ProtocolError) as exc:
        parse_topic(bad)
    assert exc.value.reason == reason


@pytest.mark.parametrize("school, device", [("a/b", "d"), ("s", "#"), ("s", ""), ("s", "x" * 65)])
def test_topic_refuses_ids_that_could_reach_other_topics(school, device):
    with pytest.raises(ProtocolError):
        topic(school, device, "health")


@pytest.mark.parametrize("raw, reason", [
    (b'{"v":1,', "invalid_json"),
    (b"\xff\xfe", "invalid_json"),
    (b"[1,2]", "not_object"),
    (b'"text"', "not_object"),
    (b'{"v":1,"ts":NaN,"seq":1}', "invalid_json"),
    (b'{"v":1,"ts":Infinity,"seq":1}', "invalid_json"),
    (b"{" + b" " * MAX_PAYLOAD_BYTES + b"}", "too_large"),
])
def test_undecodable_payloads(raw, reason):
    assert reason_of(T, raw) == reason


@pytest.mark.parametrize("changes, reason", [
    ({"v": "1"}, "wrong_type"),
    ({"v": 2}, "unknown_version"),
    ({"seq": -1}, "out_of_range"),
    ({"seq": 1.5}, "wrong_type"),
    ({"ts": "2026-11-22T00:00:00Z"}, "wrong_type"),
    ({"ts": 10 ** 12}, "out_of_range"),  # milliseconds sent as seconds
    ({"cpu_pct": 250}, "out_of_range"),
    ({"cpu_pct": -3}, "out_of_range"),
    ({"cpu_pct": True}, "wrong_type"),
    ({"cpu_pct": "12"}, "wrong_type"),
    ({"mem_pct": None}, "missing_field"),
    ({"disks": {"mnt": "C:"}}, "wrong_type"),
    ({"disks": [{"mnt": "C:", "pct": 5}]}, "missing_field"),
    ({"disks": [{"mnt": "C:", "pct": 5, "free": -1}]}, "out_of_range"),
    ({"nics": [{"if": "e", "rx": 10 ** 15, "tx": 0}]}, "out_of_range"),
    ({"load": [1, "x", 2]}, "wrong_type"),
    ({"device": "someone-else"}, "topic_mismatch"),
    ({"school": "79000002"}, "topic_mismatch"),
])
def test_wrong_fields_are_refused_with_their_reason(changes, reason):
    msg = health()
    for key, value in changes.items():
        if value is None:
            del msg[key]
        else:
            msg[key] = value
    raw = json.dumps(msg, allow_nan=True).encode()
    assert reason_of(T, raw) == reason


def test_overflowing_number_literal_is_non_finite():
    raw = encode(health()).replace(b'"temp":45.0', b'"temp":1e999')
    assert reason_of(T, raw) == "non_finite"


def test_unknown_fields_are_ignored_for_additive_changes():
    m = decode(T, encode(health(gpu_pct=3.0)))
    assert m.payload["gpu_pct"] == 3.0


def test_status_will_payload_is_valid():
    will = envelope("status", {"state": "offline", "reason": "lost"}, seq=41, ts=1795356780)
    validate("status", will)
    with pytest.raises(ProtocolError) as exc:
        validate("status", dict(will, state="sleeping"))
    assert exc.value.reason == "out_of_range"


def test_encode_refuses_oversized_and_non_finite():
    with pytest.raises(ProtocolError) as exc:
        encode(health(disks=[{"mnt": "x" * 100, "pct": 1, "free": 1}] * 1000))
    assert exc.value.reason == "too_large"
    with pytest.raises(ValueError):
        encode(health(temp=math.nan))


@pytest.mark.parametrize("fragment", [
    b'"hostname":"pc\\ud800"', b'"hostname":"\\uDFFF"', b'"hostname":"\\uDbFf x"',
    b'"hostname":"a\\u0000b"', b'"\\u0000":1', b'"pc\\ud800":1', b'"x":{"y":["\\udc00"]}',
    b'"hostname":"\\ude00\\ud83d"',  # a pair in the wrong order is two lone halves
])
@pytest.mark.parametrize("accelerated", [False, True])
def test_text_that_is_not_valid_unicode_or_carries_nul_is_refused(monkeypatch, fragment,
                                                                  accelerated):
    from schoolmon.protocol import wire
    monkeypatch.setattr(wire, "_orjson", None)
    if accelerated and not wire.use_orjson():
        pytest.skip("orjson not installed (the Python 3.8 agent environment)")
    raw = encode(health())
    raw = raw[:-1] + b"," + fragment + b"}"
    json.loads(raw)  # valid JSON grammar: the standard parser takes it
    assert reason_of(T, raw) == "invalid_text"
    assert reason_of(topic("79000001", "79000001-lab-pc07-a1b2", "inventory"),
                     raw.replace(b'"hostname"', b'"host"')) == "invalid_text"


@pytest.mark.parametrize("accelerated", [False, True])
def test_valid_escapes_and_escaped_backslashes_pass(monkeypatch, accelerated):
    from schoolmon.protocol import wire
    monkeypatch.setattr(wire, "_orjson", None)
    if accelerated and not wire.use_orjson():
        pytest.skip("orjson not installed (the Python 3.8 agent environment)")
    raw = encode(health())[:-1] + (b',"a":"\\ud83d\\ude00 \\u00e9","b":"\\\\u0000",'
                                   b'"c":"\\\\ud800"}')
    msg = decode(T, raw)
    assert msg.payload["a"] == "\U0001F600 \u00e9"
    assert msg.payload["b"] == "\\u0000" and msg.payload["c"] == "\\ud800"


def test_encode_refuses_text_the_receiver_would_refuse():
    for bad in ("pc\ud800", "a\x00b"):
        for payload in (health(host=bad), health(**{bad: 1}), health(x=[{"y": bad}])):
            with pytest.raises(ProtocolError) as exc:
                encode(payload)
            assert exc.value.reason == "invalid_text"


def test_sanitize_drops_bad_optional_fields_and_items_only():
    clean = sanitize("health", health(temp=999.0, fan=None, disks=[
        {"mnt": "C:", "pct": 101, "free": 1}, {"mnt": "D:", "pct": 5.0, "free": 10}]))
    assert "temp" not in clean and "fan" not in clean
    assert clean["disks"] == [{"mnt": "D:", "pct": 5.0, "free": 10}]
    validate("health", clean)


def test_catalogue_is_well_formed():
    allowed_types = {"int", "float", "str", "bool", "list", "objects"}
    names = [f.name for f in ENVELOPE]
    for fam in FAMILIES.values():
        fields = [f.name for f in fam.fields]
        assert len(fields) == len(set(fields)), fam.kind
        assert not set(fields) & set(names), "family redefines an envelope field"
        for f in fam.fields:
            assert f.type in allowed_types, f
            assert f.description.strip(), f
            assert (f.items is not None) == (f.type == "objects"), f
            if f.type == "list":
                assert f.item_type in allowed_types - {"list", "objects"}, f


def test_reasons_are_unique():
    assert len(REASONS) == len(set(REASONS))


def test_deeply_nested_json_is_invalid_not_a_crash():
    for raw in (b"[" * 30000 + b"]" * 30000, b'{"a":' * 5000 + b"1" + b"}" * 5000):
        assert reason_of(T, raw) in ("invalid_json", "not_object", "too_large")
    assert reason_of(T, b'{"v":1,"x":' + b"[" * 30000 + b"]" * 30000 + b"}") == "invalid_json"


def _mutations(rng, base):
    """Payloads near a valid one: byte edits, truncations, odd numbers and strings."""
    specials = [b"NaN", b"-Infinity", b"1e999", b"-0", b"1" * 30, b"18446744073709551616",
                b'"\\ud800"', b'"\\u00e9"', b"null", b"true", b"[]", b"{}", b"1.5e3", b'"x"',
                b"9007199254740993", b"0.1", b"-1", b'"\\u0000"', b'"a\\udfff"',
                b'"\\ud83d\\ude00"', b'"\\\\u0000"']
    for _ in range(3000):
        raw = bytearray(base)
        op = rng.randrange(5)
        if op == 0:
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        elif op == 1:
            del raw[rng.randrange(len(raw)):]
        elif op == 2:  # replace a value (after a colon) by something special
            colons = [i for i, b in enumerate(raw) if b == 0x3A]
            i = rng.choice(colons) + 1
            j = i
            while j < len(raw) and raw[j] not in b",}]":
                j += 1
            raw[i:j] = rng.choice(specials)
        elif op == 3:
            i = rng.randrange(len(raw))
            raw[i:i] = rng.choice(specials + [b",", b'"', b"{", b"\\", b'"a":1,'])
        else:  # a duplicate key: the last one counts, in both parsers
            raw[1:1] = b'"cpu_pct":%s,' % rng.choice([b"7", b"500", b'"7"'])
        yield bytes(raw)


def test_accelerated_decode_agrees_with_the_plain_checks(monkeypatch):
    """orjson (when installed and switched on) and the compiled per-family checkers are only shortcuts:
    on thousands of payloads near a valid one, ``decode`` gives the same message or the
    same reason with them and without them (the standard parser, the generic checks)."""
    import random

    from schoolmon.protocol import wire
    monkeypatch.setattr(wire, "_orjson", None)
    wire.use_orjson()  # when installed (not in the Python 3.8 agent environment)
    rng = random.Random(5)
    bases = [encode(health()), encode(envelope("status", {"state": "offline", "reason": "lost",
                                                          "hb": 60}, 3, 1795356780))]
    cases = [(T, raw) for raw in _mutations(rng, bases[0])]
    t_status = topic("79000001", "79000001-lab-pc07-a1b2", "status")
    cases += [(t_status, raw) for raw in _mutations(rng, bases[1])]

    def outcome(t, raw):
        try:
            return decode(t, raw)
        except ProtocolError as exc:
            return exc.reason

    fast = [outcome(t, raw) for t, raw in cases]
    monkeypatch.setattr(wire, "_orjson", None)
    monkeypatch.setattr(wire, "_FAST", {})
    plain = [outcome(t, raw) for t, raw in cases]
    differ = [(raw, a, b) for (_t, raw), a, b in zip(cases, fast, plain) if a != b]
    assert not differ, differ[:3]
    kinds = {x if isinstance(x, str) else "ok" for x in plain}
    assert {"ok", "invalid_json", "invalid_text", "wrong_type", "out_of_range"} <= kinds
