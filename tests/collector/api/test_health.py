"""/healthz against a real running service: real Mosquitto, PostgreSQL and VictoriaMetrics,
each taken down and brought back while the collector runs."""
import os
import signal
import time

import httpx
from schoolmon.collector.api import create_app
from schoolmon.collector.api.server import ApiServer
from schoolmon.collector.metrics import Registry
from schoolmon.collector.service import CollectorService
from schoolmon.collector.store import schema as db
from schoolmon.protocol import encode, envelope, topic

from tests.collector.helpers import config, mosquitto_pub, school_row, wait_until
from tests.servers import Postgres, free_port

HEALTH = {"cpu_pct": 12.5, "cpu_n": 4, "mem_pct": 40.0, "up": 3600}


def test_healthz_follows_each_dependency_of_a_running_service(mosquitto, victoria):
    postgres = Postgres()  # its own: this test stops it
    from schoolmon.collector.store import registry
    engine = db.make_engine(postgres.url)
    db.create_all(engine)
    registry.add_schools(engine, [school_row("S1")])
    engine.dispose()
    cfg = config(mosquitto.url, postgres.url, victoria.url, client_id="healthz",
                 batch_wait=0.05)
    svc = CollectorService(cfg, registry=Registry(), stall_after=2.0).start()
    server = ApiServer(create_app(svc, cfg), "127.0.0.1", free_port()).start()

    def health():
        r = httpx.get(server.url + "/healthz", timeout=10)
        return r.status_code, r.json()

    def down_is(names):
        def check():
            status, body = health()
            return (status == (503 if names else 200) and body["down"] == names) and body
        return check

    try:
        wait_until(down_is([]), timeout=30, what="ready")
        # Broker down, and back.
        mosquitto.kill(signal.SIGTERM)
        body = wait_until(down_is(["broker"]), timeout=30, what="broker down")
        assert body["checks"]["broker"]["ok"] is False and "broker" in body["message"]
        mosquitto.start()
        wait_until(down_is([]), timeout=90, what="ready after the broker is back")
        assert svc.ingest.wait_subscribed(30)
        # Time-series server down while a message waits: the time series is down, and
        # ingest, which acknowledges nothing meanwhile, says so too.
        victoria.kill()
        mosquitto_pub(mosquitto.port, topic("S1", "h1", "health"),
                      encode(envelope("health", HEALTH, 1, time.time())))
        body = wait_until(down_is(["ingest", "timeseries"]), timeout=60,
                          what="time series down, ingest stalled")
        assert "1 messages waiting" in body["checks"]["ingest"]["detail"]
        victoria.start()
        wait_until(down_is([]), timeout=90, what="ready after the time-series server is back")
        assert svc.store.device("h1").last_seq == 1
        # State store down, and back.
        os.killpg(postgres.proc.pid, signal.SIGINT)  # the server, not only runuser
        postgres.proc.wait(30)
        body = wait_until(down_is(["store"]), timeout=30, what="store down")
        assert body["checks"]["store"]["ok"] is False
        postgres.start()
        wait_until(down_is([]), timeout=60, what="ready after the store is back")
    finally:
        server.stop()
        svc.stop()
        postgres.stop()
