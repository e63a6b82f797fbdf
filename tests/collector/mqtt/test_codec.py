"""The hand-built packets, read back by paho's own parser-independent rules."""
import struct

from schoolmon.collector.mqtt.codec import (
    connect_packet,
    header_length,
    puback_packets,
    publish_packet,
    redeliver_packet,
    string,
    varint,
)


def test_varint_boundaries():
    assert varint(0) == b"\x00" and varint(127) == b"\x7f"
    assert varint(128) == b"\x80\x01" and varint(16383) == b"\xff\x7f"
    assert varint(2097152) == b"\x80\x80\x80\x01"


def test_publish_and_its_redelivery():
    topic_b = string("schoolmon/v1/S1/d1/health")
    payload = b"x" * 300  # a two-byte remaining length
    pkt = publish_packet(topic_b, payload, 7)
    assert pkt[0] == 0x32 and header_length(pkt) == 3
    again = redeliver_packet(pkt, 9)
    assert again[0] == 0x3A  # DUP set
    at = 3 + len(topic_b)
    assert struct.unpack("!H", again[at:at + 2]) == (9,)
    assert again[:at][1:] == pkt[:at][1:] and again[at + 2:] == payload


def test_connect_and_pubacks():
    c = connect_packet("sim-1", 60, "u", "p", will=("t", b"w"))
    assert c[0] == 0x10 and b"\x00\x04MQTT\x04" in c
    assert c[header_length(c) + 7] == 0x02 | 0x04 | 0x08 | 0x20 | 0x80 | 0x40
    assert puback_packets([1, 258]) == b"\x40\x02\x00\x01\x40\x02\x01\x02"
