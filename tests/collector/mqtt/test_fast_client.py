"""FastClient's bulk packet reader, unit-tested on a socket pair: whatever way the bytes
are cut into reads, every PUBLISH comes out whole and in order, and every other packet
reaches paho's own handler in its place. (The real-broker tests are in test_ingest*.)"""
import socket
import struct

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import MQTTErrorCode
from schoolmon.collector.mqtt import FastClient


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(topic: bytes, payload: bytes, qos: int, mid: int = 0, props: bytes = b"",
            v5: bool = True) -> bytes:
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", mid)
    if v5:
        body += varint(len(props)) + props
    body += payload
    return bytes([0x30 | (qos << 1)]) + varint(len(body)) + body


PINGRESP = b"\xd0\x00"


def make_client(v5: bool = True):
    client = FastClient(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                        client_id="t", protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                        manual_ack=True)
    got = []
    client.on_raw_batch = got.extend
    a, b = socket.socketpair()
    a.setblocking(False)
    client._sock = a
    return client, got, a, b


def feed(client, sock, data: bytes, cut: int) -> None:
    for i in range(0, len(data), cut):
        sock.sendall(data[i:i + cut])
        assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS


@pytest.mark.parametrize("v5", [True, False])
@pytest.mark.parametrize("cut", [1, 2, 3, 7, 200, 70000, 1 << 20])
def test_any_split_of_the_stream_gives_the_same_messages(v5, cut):
    client, got, a, b = make_client(v5)
    pings = []
    client._handle_pingresp = lambda: pings.append(len(got)) or MQTTErrorCode.MQTT_ERR_SUCCESS
    big = bytes(range(256)) * 80  # 20 KiB: a three-byte remaining length
    expected = []
    stream = b""
    for i in range(40):
        topic = ("schoolmon/v1/S%d/dev-%d/health" % (i % 3, i)).encode()
        payload = big if i == 17 else (b'{"n": %d}' % i)
        qos = i % 2
        props = b"\x02\x00\x00\x02\x58" if v5 and i % 5 == 0 else b""  # message expiry 600
        stream += publish(topic, payload, qos, mid=i + 1 if qos else 0, props=props, v5=v5)
        expected.append((topic, payload, i + 1 if qos else 0, qos))
        if i in (9, 30):
            stream += PINGRESP
    try:
        feed(client, b, stream, cut)
        assert got == expected
        assert pings == [10, 31]  # each PINGRESP handled after the messages before it
        assert client._rbuf == b""
    finally:
        a.close()
        b.close()


def test_partial_packet_waits_and_new_connection_starts_clean():
    client, got, a, b = make_client()
    pkt = publish(b"schoolmon/v1/S1/d1/health", b"{}", 1, mid=5)
    try:
        b.sendall(pkt[:-1])
        client.loop_read()
        assert got == [] and client._rbuf == pkt[:-1]
        # A new connection: what the old one left is dropped.
        a2, b2 = socket.socketpair()
        a2.setblocking(False)
        client._sock = a2
        b2.sendall(pkt)
        client.loop_read()
        assert got == [(b"schoolmon/v1/S1/d1/health", b"{}", 5, 1)]
        a2.close()
        b2.close()
    finally:
        a.close()
        b.close()


def test_closed_connection_and_bad_length_are_reported():
    client, got, a, b = make_client()
    lost = []
    client._loop_rc_handle = lambda rc: lost.append(rc) or rc
    try:
        b.sendall(b"\x30\xff\xff\xff\xff\x01")  # a five-byte remaining length
        client.loop_read()
        assert lost == [MQTTErrorCode.MQTT_ERR_PROTOCOL]
        b.close()
        client._rbuf = b""
        client.loop_read()
        assert lost[-1] == MQTTErrorCode.MQTT_ERR_CONN_LOST
        assert got == []
    finally:
        a.close()


@pytest.mark.parametrize("with_handler", [False, True])
def test_without_manual_ack_paho_delivers_messages(with_handler):
    """No ``on_raw_batch``, or no ``manual_ack``: every packet takes paho's path
    (on_message, automatic PUBACK)."""
    client, got, a, b = make_client()
    if not with_handler:
        client.on_raw_batch = None
    client._manual_ack = False
    seen = []
    client.on_message = lambda c, u, msg: seen.append((msg.topic, msg.payload, msg.qos))
    try:
        feed(client, b, publish(b"a/b", b"x", 1, mid=3) + publish(b"a/c", b"y", 0), 1000)
        assert seen == [("a/b", b"x", 1), ("a/c", b"y", 0)] and got == []
        client.loop_write()
        assert b.recv(100) == b"\x40\x02\x00\x03"  # paho's PUBACK for mid 3
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("bad", [
    b"\x32\x01\x00",                      # QoS 1, one byte: no room for a topic length
    b"\x32\x05\x00\x09abc",               # topic length past the packet's end
    b"\x30\x04\x00\x01a\x85",             # properties length past the end (MQTT 5)
])
def test_malformed_publish_is_a_protocol_error_not_a_crash(bad):
    client, got, a, b = make_client()
    lost = []
    client._loop_rc_handle = lambda rc: lost.append(rc) or rc
    try:
        b.sendall(publish(b"ok/1", b"{}", 1, mid=1) + bad + publish(b"ok/2", b"{}", 0))
        client.loop_read()
        assert lost == [MQTTErrorCode.MQTT_ERR_PROTOCOL]
        assert got == [(b"ok/1", b"{}", 1, 1)]  # what came before it is handed over
    finally:
        a.close()
        b.close()
