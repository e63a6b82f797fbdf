"""The collector service's own claims, through a real Mosquitto and a real state store:
backpressure (``ingest.max_pending``), devices going offline by heartbeat timeout, the
periodic rollup/retention maintenance, and ingest that stops making progress."""
import threading
import time

from schoolmon.collector.metrics import Registry
from schoolmon.collector.service import CollectorService
from schoolmon.collector.store import schema as db
from schoolmon.collector.timeseries import NullTimeSeries
from schoolmon.protocol import encode, envelope, topic
from sqlalchemy import func, select

from tests.collector.fakes import FakeStore
from tests.collector.helpers import config, mosquitto_pub, school_row, seed_schools, wait_until

HEALTH = {"cpu_pct": 12.5, "cpu_n": 4, "mem_pct": 40.0, "up": 3600}


def health(seq, ts):
    return encode(envelope("health", HEALTH, seq, ts))


class GatedStore(FakeStore):
    """A FakeStore whose prepare waits until ``gate`` is set (a slow database)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def prepare(self, batch):
        self.gate.wait(60)
        return super().prepare(batch)


def test_max_pending_bounds_what_the_broker_sends(mosquitto):
    """With the store stuck, the broker sends no more than ``ingest.max_pending``
    unacknowledged messages (our Receive Maximum); the rest wait in the broker and all
    arrive once the store moves again.

    Only the stuck phase is bounded here: once acknowledgements flow, Mosquitto 2.0.11
    was seen sending hundreds past the Receive Maximum in one burst (340 over a window of
    40); then the collector's own bound (it stops reading while its queue is full) is
    what holds memory."""
    store = GatedStore()
    cfg = config(mosquitto.url, "sqlite://", client_id="backpressure", max_pending=100,
                 batch_size=10, batch_wait=0.05)
    svc = CollectorService(cfg, store=store, timeseries=NullTimeSeries(),
                           registry=Registry()).start()
    highest = [0]
    watching = threading.Event()

    def watch():
        while not watching.is_set():
            highest[0] = max(highest[0], svc.ingest.pending())
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    now = time.time()
    try:
        assert svc.ingest.wait_subscribed(10)
        mosquitto_pub(mosquitto.port, topic("S1", "bp1", "health"),
                      lines=b"\n".join(health(i, now - 500 + i) for i in range(1, 1001)) + b"\n")
        wait_until(lambda: svc.ingest.pending() == 100, timeout=20, what="100 messages held")
        assert highest[0] <= 100
        store.gate.set()
        wait_until(lambda: len(store.stored()) == 1000, timeout=60, what="all 1000 stored")
        wait_until(lambda: svc.ingest.pending() == 0, timeout=20, what="nothing pending")
    finally:
        watching.set()
        store.gate.set()
        svc.stop()
    assert sorted(r.message.seq for r in store.stored()) == list(range(1, 1001))


def test_device_goes_offline_by_heartbeat_timeout(mosquitto, tmp_path):
    """A device that said online with a 5 s heartbeat (the least the wire format allows)
    and then went silent is marked offline (reason timeout) by the running service's
    liveness sweep (3 × hb + 60 s)."""
    url = "sqlite:///%s" % (tmp_path / "state.db")
    seed_schools(url, [school_row("S1")])
    cfg = config(mosquitto.url, url, client_id="heartbeat", batch_wait=0.05)
    svc = CollectorService(cfg, registry=Registry())
    offline = threading.Event()
    seen = []

    def on_event(ev):
        seen.append(ev)
        if ev.kind == "device_offline" and ev.device == "hb1":
            offline.set()

    svc.on_event(on_event)
    svc.start()
    try:
        assert svc.ingest.wait_subscribed(10)
        t0 = time.time()
        mosquitto_pub(mosquitto.port, topic("S1", "hb1", "status"),
                      encode(envelope("status", {"state": "online", "hb": 5, "agent": "t"},
                                      1, t0)))
        wait_until(lambda: svc.store.device("hb1") and svc.store.device("hb1").online,
                   timeout=20, what="hb1 online")
        assert offline.wait(180), "no device_offline event for hb1"
        ev = [e for e in seen if e.kind == "device_offline"][0]
        assert ev.detail["reason"] == "timeout"
        assert time.time() - t0 >= 75  # never before its timeout
        dev = svc.store.device("hb1")
        assert not dev.online and dev.offline_reason == "timeout"
    finally:
        svc.stop()


def test_maintenance_runs_periodically_and_builds_hourly_rollups(mosquitto, tmp_path):
    url = "sqlite:///%s" % (tmp_path / "state.db")
    seed_schools(url, [school_row("S1")])
    cfg = config(mosquitto.url, url, client_id="maintain", batch_wait=0.05)
    svc = CollectorService(cfg, registry=Registry(), maintain_interval=0.5).start()
    engine = db.make_engine(url)
    try:
        assert svc.ingest.wait_subscribed(10)
        now = time.time()
        mosquitto_pub(mosquitto.port, topic("S1", "m1", "health"), health(1, now))
        wait_until(lambda: svc.store.device("m1") is not None, timeout=20, what="m1 stored")
        first = svc.maintained

        def hourly_rows():
            with engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(db.rollup_1h)
                                    .where(db.rollup_1h.c.device_id == "m1")).scalar()

        wait_until(hourly_rows, timeout=90, what="an hourly rollup for m1")
        wait_until(lambda: svc.maintained >= first + 2, timeout=90, what="maintenance repeats")
    finally:
        svc.stop()
        engine.dispose()


def test_healthz_ingest_not_progressing(mosquitto):
    """Messages waiting and nothing acknowledged for ``stall_after`` seconds: not ready,
    with a reason; ready again once batches are settled."""
    store = GatedStore()
    cfg = config(mosquitto.url, "sqlite://", client_id="stall", batch_wait=0.05)
    svc = CollectorService(cfg, store=store, timeseries=NullTimeSeries(), registry=Registry(),
                           stall_after=1.0).start()
    try:
        assert svc.ingest.wait_subscribed(10)
        assert svc.readiness()["ingest"] == {"ok": True}
        mosquitto_pub(mosquitto.port, topic("S1", "st1", "health"), health(1, time.time()))
        check = wait_until(lambda: not svc.readiness()["ingest"]["ok"]
                           and svc.readiness()["ingest"], timeout=30, what="ingest stalled")
        assert "1 messages waiting" in check["detail"] and "tin nhắn đang chờ" in check["detail"]
        assert svc.readiness()["broker"]["ok"] and svc.readiness()["store"]["ok"]
        store.gate.set()
        wait_until(lambda: svc.readiness()["ingest"]["ok"], timeout=30, what="ingest moving")
        assert len(store.stored()) == 1
    finally:
        store.gate.set()
        svc.stop()


def test_no_mqtt_url_says_ingest_is_off(tmp_path, caplog):
    import logging
    cfg = config("", "sqlite:///%s" % (tmp_path / "state.db"), client_id="no-url")
    with caplog.at_level(logging.WARNING, logger="schoolmon.collector.service"):
        svc = CollectorService(cfg, registry=Registry()).start()
        try:
            assert "mqtt.url is not set: ingest is off" in caplog.text
            assert svc.readiness()["broker"] == {"ok": False}
        finally:
            svc.stop()


def test_unknown_school_codes_are_logged(mosquitto, tmp_path, caplog):
    """Agents started before their school was imported: the log names the codes (the
    count alone is in /metrics)."""
    import logging
    url = "sqlite:///%s" % (tmp_path / "state.db")
    seed_schools(url, [school_row("S1")])
    cfg = config(mosquitto.url, url, client_id="unknown", batch_wait=0.05)
    with caplog.at_level(logging.WARNING, logger="schoolmon.collector.ingest"):
        svc = CollectorService(cfg, registry=Registry()).start()
        try:
            assert svc.ingest.wait_subscribed(10)
            now = time.time()
            mosquitto_pub(mosquitto.port, topic("NEW-77", "u1", "health"), health(1, now))
            mosquitto_pub(mosquitto.port, topic("NEW-78", "u2", "health"), health(1, now))
            wait_until(lambda: svc.metrics.rejected.get(reason="unknown_school") == 2,
                       timeout=20, what="two unknown_school rejects")
            wait_until(lambda: "NEW-78" in caplog.text, timeout=20, what="the log line")
            assert "NEW-77" in caplog.text and "unknown_school" in caplog.text
        finally:
            svc.stop()
