"""The command publisher: commands down to one device (``schoolmon/v1/{school}/{device}/cmd``),
QoS 1, never retained, built and checked by ``protocol.wire.command``.

Its own MQTT connection, set up from ``cfg.mqtt`` like ingest's (``client.make_client``:
protocol, credentials, TLS, reconnect delays), under the client id of ingest + ``-cmd``:
never a device's id, and not ingest's, whose persistent session the broker would hand
over to it. paho's loop thread reconnects; a command published while the broker is away
stays in paho's queue and goes when it is back. Counted: ``commands_published_total``
(the broker acknowledged) and ``commands_failed_total`` (refused, or not valid).

Nothing relies on a command arriving: the scheduler publishes a grant again when its
holder's next ``online`` arrives, while the grant is still valid.
"""
import logging
import threading
from types import SimpleNamespace
from typing import Any, Dict

import paho.mqtt.client as mqtt
from schoolmon.protocol import ProtocolError, topic
from schoolmon.protocol.wire import command

from .client import connect, make_client

log = logging.getLogger("schoolmon.collector.commands")


def publisher_client_id(ingest_client_id: str) -> str:
    return ingest_client_id + "-cmd"


class CommandPublisher:
    """``publish(school, device, name, fields, ts)``; ``start()`` / ``stop()``."""

    def __init__(self, mqtt_cfg: SimpleNamespace, client_id: str, metrics: Any = None) -> None:
        self.mqtt_cfg = mqtt_cfg
        self.client_id = client_id
        self.metrics = metrics
        self.connected = threading.Event()
        self._pending: Dict[int, str] = {}  # mid -> command name, until PUBACK
        self._early: Dict[int, bool] = {}  # mid -> failed, PUBACK before publish() returned
        self._lock = threading.Lock()
        self.client, self.host, self.port = make_client(mqtt_cfg, client_id, fast=False)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.published = 0
        self.failed = 0

    def start(self) -> "CommandPublisher":
        connect(self.client, self.mqtt_cfg, self.host, self.port, receive_maximum=100)
        return self

    def stop(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
            self.connected.clear()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self.connected.wait(timeout)

    # -------------------------------------------------------------------- callbacks
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("command publisher: broker refused the connection: %s", reason)
            return
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        self.connected.clear()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any = None,
                    properties: Any = None) -> None:
        failure = reason is not None and getattr(reason, "is_failure", False)
        with self._lock:
            name = self._pending.pop(mid, None)
            if name is None:  # acknowledged before publish() noted the mid
                self._early[mid] = bool(failure)
                return
        self._settle(name, failure, reason)

    def _settle(self, name: str, failure: bool, reason: Any = None) -> None:
        if failure:
            self._count(False, name)
            log.warning("command %s refused by the broker: %s", name, reason)
        else:
            self._count(True, name)

    def _count(self, ok: bool, name: str) -> None:
        if ok:
            self.published += 1
        else:
            self.failed += 1
        if self.metrics is not None:
            (self.metrics.commands_published if ok else self.metrics.commands_failed).inc(
                cmd=name)

    # -------------------------------------------------------------------- publish
    def publish(self, school: str, device: str, name: str, fields: Dict[str, Any],
                ts: float) -> bool:
        """Queue one command for the device (QoS 1, not retained). False when it is not
        valid or paho refused it outright (counted failed); True when it is on its way
        (counted published when the broker acknowledges)."""
        try:
            payload = command(name, fields, ts)
        except ProtocolError as exc:
            log.error("command %s for %s not sent: %s", name, device, exc)
            self._count(False, name)
            return False
        # Not under self._lock: paho calls on_publish holding its own lock.
        info = self.client.publish(topic(school, device, "cmd"), payload, qos=1,
                                   retain=False)
        if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # NO_CONN: queued by paho, sent when it is connected again
            with self._lock:
                early = self._early.pop(info.mid, None)
                if early is None:
                    self._pending[info.mid] = name
            if early is not None:
                self._settle(name, early)
            return True
        self._count(False, name)
        log.warning("command %s for %s not published: %s", name, device,
                    mqtt.error_string(info.rc))
        return False

    def send_grant(self, school: str, device: str, fields: Dict[str, Any],
                   ts: float) -> bool:
        """The scheduler's ``send``: a ``speedtest`` grant."""
        return self.publish(school, device, "speedtest", fields, ts)


__all__ = ["CommandPublisher", "publisher_client_id"]
