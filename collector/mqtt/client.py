"""An MQTT client for the collector, set up from ``cfg.mqtt`` (ingest now; the command
publisher to come uses the same): protocol version, credentials, TLS, reconnect delays,
a persistent session, and a client id no other collector process on this host holds.

Why the client id is claimed: the broker keeps a persistent session per client id and
drops the older connection when a second one arrives with the same id. The default id is
``schoolmon-collector-{host name}``, so two collector processes on one host (e.g. sharing a
subscription with ``ingest.shared_group``) would take each other's session, back and forth.
``claim_client_id`` holds an exclusive lock per (broker, id) on this host: the default id gets the
first free ``-2``, ``-3`` ... suffix (stable across restarts: the first process takes the
plain id again), and an id set explicitly in ``mqtt.client_id`` that another process
already holds is refused.
"""
import os
import socket
import ssl
import tempfile
from types import SimpleNamespace
from typing import IO, Optional, Tuple

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from schoolmon.protocol import SUBSCRIPTION
from schoolmon.protocol.settings import mqtt_endpoint

from .fast_client import FastClient

#: How long the broker keeps our session (and queues for it) while we are away: 7 days,
#: as long as an agent's own queue. The broker may cap it (persistent_client_expiration).
SESSION_EXPIRY = 7 * 86400

#: Receive Maximum is a 16-bit field.
MAX_RECEIVE_MAXIMUM = 65535

#: Where the client-id locks live (one empty file per broker and id, locked while a
#: process uses it); one folder per user, so no user can block another's files.
LOCK_DIR = os.path.join(tempfile.gettempdir(),
                        "schoolmon-collector-client-ids-%d" % (os.getuid()
                                                               if hasattr(os, "getuid") else 0))


def default_client_id() -> str:
    return "schoolmon-collector-" + socket.gethostname()[:40]


def subscription(shared_group: str = "") -> str:
    """The topic filter to subscribe to (``$share/{group}/...`` with a shared group)."""
    if shared_group:
        return "$share/%s/%s" % (shared_group, SUBSCRIPTION)
    return SUBSCRIPTION


class ClientIdTaken(Exception):
    """``mqtt.client_id`` is already used by another collector process on this host."""


class ClientIdClaim:
    """A client id held by this process until ``release()``."""

    def __init__(self, client_id: str, handle: Optional[IO[bytes]]) -> None:
        self.client_id = client_id
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing drops the lock
            self._handle = None


def _try_lock(client_id: str, broker: str, lock_dir: str) -> Optional[IO[bytes]]:
    import fcntl

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in broker + "_" + client_id)
    fh = open(os.path.join(lock_dir, safe + ".lock"), "ab")  # noqa: SIM115 - held until release()
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    return fh


def claim_client_id(configured: str, broker: str, lock_dir: str = LOCK_DIR) -> ClientIdClaim:
    """Claim ``configured`` (or the default id when it is the default or empty) on the
    broker ``broker`` ("host:port") for this process. Raises ClientIdTaken when an
    explicitly configured id is held by another process."""
    base = configured or default_client_id()
    try:
        import fcntl  # noqa: F401  (POSIX only; elsewhere ids are not checked)
        os.makedirs(lock_dir, exist_ok=True)
    except (ImportError, OSError):
        return ClientIdClaim(base, None)
    handle = _try_lock(base, broker, lock_dir)
    if handle is not None:
        return ClientIdClaim(base, handle)
    if base != default_client_id():
        raise ClientIdTaken("mqtt.client_id: %r is already used by another collector process "
                            "on this host; give each process its own id (the broker keeps one "
                            "session per id and would switch between them)" % base)
    for n in range(2, 1000):
        cid = "%s-%d" % (base, n)
        handle = _try_lock(cid, broker, lock_dir)
        if handle is not None:
            return ClientIdClaim(cid, handle)
    raise ClientIdTaken("mqtt.client_id: no free id %s-N on this host" % base)


def make_client(mc: SimpleNamespace, client_id: str, fast: bool = True
                ) -> Tuple[mqtt.Client, str, int]:
    """A paho client (FastClient when ``fast``) for ``cfg.mqtt`` with manual
    acknowledgements and a persistent session; returns it with the broker's host and port.
    Callbacks are the caller's."""
    v5 = mc.protocol == "5"
    cls = FastClient if fast else mqtt.Client
    client = cls(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                 client_id=client_id, protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                 manual_ack=True,
                 # MQTT 3.1.1 keeps the session with clean_session=False (v5: clean_start)
                 clean_session=None if v5 else False)
    if mc.username:
        client.username_pw_set(mc.username, mc.password or None)
    host, port, tls = mqtt_endpoint(mc.url or "mqtt://127.0.0.1:1883")
    if tls:
        client.tls_set(ca_certs=mc.ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
    client.reconnect_delay_set(1, 30)
    return client, host, port


def connect(client: mqtt.Client, mc: SimpleNamespace, host: str, port: int,
            receive_maximum: int) -> None:
    """Connect in the background (paho's loop thread reconnects), keeping the session."""
    if mc.protocol == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY
        props.ReceiveMaximum = max(1, min(receive_maximum, MAX_RECEIVE_MAXIMUM))
        client.connect_async(host, port, keepalive=mc.keepalive, clean_start=False,
                             properties=props)
    else:
        client.connect_async(host, port, keepalive=mc.keepalive)
    client.loop_start()
