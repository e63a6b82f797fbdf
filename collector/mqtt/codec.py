"""The few MQTT packets the collector builds by hand: the simulator's CONNECT and PUBLISH
(MQTT 3.1.1) and ingest's batched PUBACKs. Decoding lives inline in FastClient's parser
(one loop over the buffer is the hot path; a function call per field costs ~10%)."""
import struct
from typing import List, Optional, Tuple, Union

#: PUBACK (MQTT 5 with reason "success" left out, as in 3.1.1): 0x40, length 2, packet id.
PUBACK = 0x40
_puback = struct.Struct("!BBH").pack


def varint(n: int) -> bytes:
    """A variable byte integer (the remaining length of a packet)."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def string(s: Union[str, bytes]) -> bytes:
    """A UTF-8 string with its 2-byte length prefix."""
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id: str, keepalive: int = 60, username: str = "", password: str = "",
                   will: Optional[Tuple[str, bytes]] = None, clean: bool = True) -> bytes:
    """CONNECT, MQTT 3.1.1; ``will`` = (topic, payload) at QoS 1, retained."""
    flags = 0x02 if clean else 0
    payload = string(client_id)
    if will:
        flags |= 0x04 | (1 << 3) | 0x20  # will, will QoS 1, will retain
        payload += string(will[0]) + string(will[1])
    if username:
        flags |= 0x80
        payload += string(username)
        if password:
            flags |= 0x40
            payload += string(password)
    var = b"\x00\x04MQTT\x04" + bytes([flags]) + struct.pack("!H", keepalive)
    body = var + payload
    return b"\x10" + varint(len(body)) + body


def publish_packet(topic_b: bytes, payload: bytes, mid: int, retain: bool = False,
                   dup: bool = False) -> bytes:
    """PUBLISH at QoS 1 (``topic_b`` is the topic with its 2-byte length prefix)."""
    header = 0x32 | (0x01 if retain else 0) | (0x08 if dup else 0)
    n = len(topic_b) + 2 + len(payload)
    return bytes([header]) + varint(n) + topic_b + struct.pack("!H", mid) + payload


def header_length(pkt: bytes) -> int:
    """Bytes of a packet's fixed header: the type byte and the remaining-length varint."""
    i = 1
    while pkt[i] & 0x80:
        i += 1
    return i + 1


def redeliver_packet(pkt: bytes, mid: int) -> bytes:
    """A QoS 1 PUBLISH sent again: DUP set, under packet id ``mid``."""
    at = header_length(pkt)
    at += 2 + struct.unpack("!H", pkt[at:at + 2])[0]  # past the topic
    return bytes([pkt[0] | 0x08]) + pkt[1:at] + struct.pack("!H", mid) + pkt[at + 2:]


def puback_packets(mids: List[int]) -> bytes:
    """PUBACKs for ``mids``, back to back (one write acknowledges a whole batch)."""
    pack = _puback
    return b"".join([pack(PUBACK, 2, mid) for mid in mids])
