"""The black-hole defect through the real broker and the real store: one message with the
top seq and a ``ts`` in 2100 arrives among a device's real messages; every real message is
still stored, the device's mark and clock stay its own."""
import time

from schoolmon.collector.metrics import Registry
from schoolmon.collector.service import CollectorService
from schoolmon.collector.store import StateStore
from schoolmon.collector.store import schema as db
from schoolmon.collector.timeseries import NullTimeSeries
from schoolmon.protocol import encode, envelope, topic
from schoolmon.protocol.catalogue import MAX_SAFE_INT

from ..helpers import config, mosquitto_pub, school_row, seed_schools, wait_until

HEALTH = {"cpu_pct": 1.0, "cpu_n": 2, "mem_pct": 10.0, "up": 60}
Y2100 = 4_102_444_800


def test_one_stray_message_does_not_black_hole_a_device(mosquitto, tmp_path):
    url = "sqlite:///%s" % (tmp_path / "state.db")
    seed_schools(url, [school_row("79000701")])
    svc = CollectorService(config(mosquitto.url, url, client_id="blackhole", batch_wait=0.05),
                           timeseries=NullTimeSeries(), registry=Registry())
    svc.start()
    try:
        assert svc.ingest.wait_subscribed(10)
        now = time.time()
        t = topic("79000701", "pc-01", "health")
        before = [encode(envelope("health", HEALTH, i, now - 600 + i)) for i in range(1, 6)]
        stray = encode(envelope("health", HEALTH, MAX_SAFE_INT, Y2100))
        after = [encode(envelope("health", HEALTH, i, now - 600 + i)) for i in range(6, 11)]
        mosquitto_pub(mosquitto.port, t, lines=b"\n".join(before + [stray] + after) + b"\n")

        def row():
            store = svc.store
            assert isinstance(store, StateStore)
            return store.device("pc-01")

        wait_until(lambda: (row() is not None and row().received_total == 11), timeout=30,
                   what=lambda: "11 messages of pc-01 stored (row: %r)" % (
                       row() and row().row(),))
        dev = row()
        assert dev.duplicates_total == 0
        assert dev.last_seq == 10 and dev.seq_jump == MAX_SAFE_INT
        assert dev.last_ts is not None and dev.last_ts < now + 60
        # Later real messages are still new.
        mosquitto_pub(mosquitto.port, t, encode(envelope("health", HEALTH, 11, now)))
        wait_until(lambda: row().received_total == 12, timeout=30, what="the 12th message")
        assert row().duplicates_total == 0 and row().last_seq == 11
    finally:
        svc.stop()
    engine = db.make_engine(url)
    try:
        with engine.connect() as c:
            kinds = [r.detail for r in c.execute(db.events.select().where(
                db.events.c.kind == "seq_jump"))]
        assert kinds == [{"from": 5, "to": MAX_SAFE_INT, "held": True}]
    finally:
        engine.dispose()
