"""probe, speedtest and router messages through the real pipeline: Mosquitto's own client
→ the real broker → CollectorService with its StateStore on a SQLite file: link_tests rows
(a duplicate stored once, an absurd result refused and counted in /metrics), probe hours,
the router device, and the connectivity evaluator's pass on ``evaluate_soon()``."""
import time

from schoolmon.collector.config import load_config
from schoolmon.collector.metrics import Registry
from schoolmon.collector.service import CollectorService
from schoolmon.collector.store import schema as db
from schoolmon.collector.store.registry import add_schools
from schoolmon.collector.timeseries import NullTimeSeries
from schoolmon.protocol import encode, envelope, topic
from sqlalchemy import func, select

from tests.collector.helpers import mosquitto_pub, wait_until

S = "79000901"
TEST = dict(ok=True, down_mbps=42.0, up_mbps=11.5, ping_ms=12.0, bytes_rx=52_000_000,
            bytes_tx=14_000_000, dur_s=20.0, link_mbps=1000, wired=True, trigger="slot",
            mode="full")
PROBE = dict(gw_ok=True, gw_ms=1.0, dom_ok=True, dom_ms=25.0, intl_ok=True, intl_ms=180.0)
ROUTER = dict(host="192.168.1.1", gw_ok=True, snmp_ok=True, name="gw-s", model="ER605")


def test_families_through_the_broker(mosquitto, tmp_path):
    url = "sqlite:///%s" % (tmp_path / "state.db")
    engine = db.make_engine(url)
    db.create_all(engine)
    add_schools(engine, [dict(code=S, name="THCS Test", level="THCS", area="Huyện A",
                              province="Lào Cai")])
    cfg = load_config(env={}, demo=True, overrides={
        "mqtt": {"url": mosquitto.url, "client_id": "conn-test"}, "store": {"url": url},
        "liveness": {"sweep_interval": 1.0}, "ingest": {"batch_wait": 0.05},
        "baseline": {"evaluate_interval": 3600}, "connectivity": {"router_hb": 120}})
    registry = Registry()
    svc = CollectorService(cfg, timeseries=NullTimeSeries(), registry=registry)
    svc.start()
    try:
        assert svc.ingest.wait_subscribed(10)
        now = time.time()

        def pub(kind, seq, fields, ts=None):
            mosquitto_pub(mosquitto.port, topic(S, "pc-1", kind),
                          encode(envelope(kind, fields, seq, ts or now)))
        pub("speedtest", 1, TEST, now - 100)
        pub("speedtest", 2, dict(TEST, down_mbps=20000.0), now - 50)  # above 10 Gbit/s
        pub("speedtest", 1, TEST, now - 100)  # redelivered
        for i in range(3):
            pub("probe", 3 + i, PROBE, now - 30 + i)
        pub("router", 6, ROUTER, now - 10)
        pub("router", 7, dict(ROUTER, gw_ok=False, snmp_ok=False), now - 5)

        def scalar(q):
            with engine.connect() as c:
                return c.execute(q).scalar()
        wait_until(lambda: scalar(select(func.count()).select_from(db.link_tests)) == 2
                   and scalar(select(func.sum(db.link_probe_hours.c.n))) == 3
                   and scalar(select(db.devices.c.offline_reason).where(
                       db.devices.c.id == "router." + S)) == "unreachable",
                   timeout=30, what="tests, probes and the router stored")
        with engine.connect() as c:
            refused = dict(c.execute(select(db.link_tests.c.seq, db.link_tests.c.refused)).all())
            router = c.execute(select(db.devices).where(db.devices.c.id == "router." + S)).one()
        assert refused == {1: None, 2: "implausible"}
        assert (router.role, router.hostname, router.os, router.hb, router.online) == (
            "router", "gw-s", "ER605", 120, False)
        assert svc.metrics.implausible.get(check="above_10g") == 1
        assert 'schoolmon_link_tests_implausible_total{check="above_10g"} 1.0' in \
            svc.metrics.render()
        wait_until(lambda: svc.metrics.duplicates.total() >= 1, timeout=10, what="duplicate")

        svc.evaluate_soon()

        def judged():
            with engine.connect() as c:
                r = c.execute(select(db.connectivity_schools).where(
                    db.connectivity_schools.c.school_code == S)).first()
            return r if r is not None and r.detail["last_test"] else None
        row = wait_until(judged, timeout=30, what="the school judged with its test")
        # the status depends on the weekday (school days only); the evidence does not
        assert row.status in ("meets", "improve")
        assert row.detail["last_test"]["down_mbps"] == 42.0
        assert row.detail["consecutive_failures"] == 0
    finally:
        svc.stop()
        engine.dispose()
