"""The running collector service sends the outbox on threads of its own: with a real
Mosquitto and a webhook receiver that hangs, messages published meanwhile are stored
(ingest is not blocked), and the webhook is delivered once the receiver answers; with
``notify.enabled = false`` nothing is sent."""
import time

from schoolmon.collector.config import load_config
from schoolmon.collector.metrics import Registry
from schoolmon.collector.notify import outbox
from schoolmon.collector.service import CollectorService
from schoolmon.collector.store import schema as db
from schoolmon.protocol import encode, envelope, topic
from sqlalchemy import select

from tests.collector.helpers import mosquitto_pub, school_row, seed_schools, wait_until


def _config(mqtt_url, store_url, webhook_url, enabled=True):
    return load_config(env={}, demo=True, overrides={
        "mqtt": {"url": mqtt_url, "client_id": "notify-service"},
        "store": {"url": store_url}, "liveness": {"sweep_interval": 1.0},
        "ingest": {"batch_wait": 0.05},
        "notify": {"enabled": enabled, "webhook_url": webhook_url,
                   "webhook_secret": "s3cret-webhook-key", "timeout": 120,
                   "poll_interval": 0.2}})


def _enqueue(url, key):
    engine = db.make_engine(url)
    with engine.begin() as conn:
        outbox.enqueue(conn, outbox.Message(key, "webhook", "so", "Cảnh báo",
                                            "Trường mất kết nối"), time.time())
    return engine


def _state(engine, key):
    with engine.connect() as conn:
        return conn.execute(select(db.notifications.c.state).where(
            db.notifications.c.dedup_key == key)).scalar_one()


def test_a_hanging_webhook_never_blocks_ingest(mosquitto, tmp_path, http_receiver):
    url = "sqlite:///%s" % (tmp_path / "state.db")
    seed_schools(url, [school_row("S1")])
    engine = _enqueue(url, "svc-1")
    http_receiver.hold()
    svc = CollectorService(_config(mosquitto.url, url, http_receiver.url),
                           registry=Registry()).start()
    try:
        assert svc.ingest.wait_subscribed(10)
        wait_until(http_receiver.arrived.is_set, timeout=30, what="the webhook request")
        mosquitto_pub(mosquitto.port, topic("S1", "pc1", "status"),
                      encode(envelope("status", {"state": "online", "hb": 60, "agent": "t"},
                                      1, time.time())))
        wait_until(lambda: svc.store.device("pc1") is not None, timeout=30,
                   what="pc1 stored while the webhook hangs")
        assert _state(engine, "svc-1") == "sending"
        http_receiver.release()
        wait_until(lambda: _state(engine, "svc-1") == "sent", timeout=30, what="sent")
        assert svc.metrics.notifications.get(channel="webhook", result="sent") == 1
    finally:
        http_receiver.release()
        svc.stop()
        engine.dispose()
    assert len(http_receiver.got()) == 1


def test_notify_disabled_sends_nothing(mosquitto, tmp_path, http_receiver):
    url = "sqlite:///%s" % (tmp_path / "state.db")
    seed_schools(url, [school_row("S1")])
    engine = _enqueue(url, "svc-off")
    svc = CollectorService(_config(mosquitto.url, url, http_receiver.url, enabled=False),
                           registry=Registry()).start()
    try:
        assert svc.delivery is None
    finally:
        svc.stop()
    assert _state(engine, "svc-off") == "queued" and http_receiver.got() == []
    engine.dispose()
