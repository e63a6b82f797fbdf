"""Text that is not valid Unicode or carries NUL, through a real Mosquitto into the real
collector (state store on SQLite and on PostgreSQL, time series in a real VictoriaMetrics):
each such message is refused as ``invalid_text`` and counted in ``/metrics``, and the good
messages around it are stored. Published with ``mosquitto_pub``, a client none of us wrote."""
import json
import re
import time

import httpx
import pytest
from schoolmon.collector.api import create_app
from schoolmon.collector.api.server import ApiServer
from schoolmon.collector.service import CollectorService
from schoolmon.protocol import encode, envelope, topic

from tests.collector.helpers import config, mosquitto_pub, school_row, seed_schools, wait_until
from tests.collector.storehelp import engine_for
from tests.servers import free_port

HEALTH = {"cpu_pct": 12.5, "cpu_n": 4, "mem_pct": 40.0, "up": 3600,
          "disks": [{"mnt": "C:", "pct": 50.0, "free": 10 ** 10}],
          "nics": [{"if": "Ethernet", "rx": 1000, "tx": 200}]}
INVENTORY = {"hostname": "pc-01", "role": "lab", "os_name": "Windows", "agent": "0.1.0",
             "room": "Phòng máy 1"}


def _json(kind_fields, seq, ts, **over):
    """JSON text as a careless or hostile sender writes it (the standard encoder with its
    default ensure_ascii, which escapes lone surrogates and NUL as \\uXXXX)."""
    obj = dict(kind_fields, v=1, ts=ts, seq=seq)
    obj.update(over)
    return json.dumps(obj).encode()


def _rejected(metrics_text, reason):
    m = re.search(r'^schoolmon_rejected_total\{reason="%s"\} ([0-9.e+]+)$' % reason,
                  metrics_text, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    gen = engine_for(request.param, tmp_path, postgres)
    engine = next(gen)
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    yield url
    next(gen, None)


def test_lone_surrogates_and_nul_are_refused_counted_and_good_messages_kept(
        mosquitto, victoria, store_url):
    seed_schools(store_url, [school_row("S1")])
    cfg = config(mosquitto.url, store_url, victoria.url, batch_wait=0.05)
    svc = CollectorService(cfg).start()
    api = ApiServer(create_app(svc, cfg), "127.0.0.1", free_port()).start()
    try:
        assert svc.ingest.wait_subscribed(10)
        now = int(time.time())
        t_health = topic("S1", "bad1", "health")
        t_inv = topic("S1", "bad1", "inventory")
        bad = [
            (t_health, _json(HEALTH, 1, now, nics=[{"if": "eth\ud800", "rx": 1, "tx": 2}])),
            (t_health, _json(HEALTH, 2, now, disks=[{"mnt": "/mnt/\udcff", "pct": 1.0,
                                                     "free": 1}])),
            (t_health, _json(HEALTH, 3, now, **{"note\ud800": 1})),
            (t_inv, _json(INVENTORY, 4, now, hostname="pc\u0000-01")),
            (t_inv, _json(INVENTORY, 5, now, room="Ph\udc00ng")),
            (t_inv, _json(INVENTORY, 6, now, agent="0.1\x00")),
        ]
        for _t, raw in bad:  # escaped, so valid JSON grammar the standard parser takes
            assert b"\\ud" in raw or b"\\u0000" in raw
            json.loads(raw)

        def metrics():
            return httpx.get(api.url + "/metrics", timeout=10).text
        # the counter may be process-wide: count from here
        before = _rejected(metrics(), "invalid_text")
        t_good = topic("S1", "good1", "health")
        t_good_inv = topic("S1", "good1", "inventory")
        mosquitto_pub(mosquitto.port, t_good_inv,
                      encode(envelope("inventory", INVENTORY, 1, now)))
        seq = 1
        for t, raw in bad:
            seq += 1
            mosquitto_pub(mosquitto.port, t_good, encode(envelope("health", HEALTH, seq,
                                                                  now - 600 + seq)))
            mosquitto_pub(mosquitto.port, t, raw)
        seq += 1
        mosquitto_pub(mosquitto.port, t_good, encode(envelope("health", HEALTH, seq,
                                                              now - 600 + seq)))
        wait_until(lambda: _rejected(metrics(), "invalid_text") - before >= len(bad)
                   and svc.store.device("good1") is not None
                   and svc.store.device("good1").last_seq == seq,
                   timeout=30, what=lambda: "the bad messages counted and the good ones stored "
                   "(invalid_text=%s)" % (_rejected(metrics(), "invalid_text") - before))
        assert _rejected(metrics(), "invalid_text") - before == len(bad)
        # Nothing of the bad device got in; every good message did, on both stores.
        assert svc.store.device("bad1") is None
        assert svc.store.device("good1").lost_total == 0
        assert victoria.export('{device="bad1"}') == []
        wait_until(lambda: len(victoria.export('health_cpu_pct{device="good1"}')) == 1
                   and len(victoria.export('health_cpu_pct{device="good1"}')[0]["values"])
                   == seq - 1, timeout=30, what="every good health sample in VictoriaMetrics")
        # Ingest is healthy and keeps going: nothing is left unacknowledged or retried.
        assert svc.ingest.alive() and svc.ingest.pending() == 0
        assert httpx.get(api.url + "/healthz", timeout=10).status_code == 200
        mosquitto_pub(mosquitto.port, t_good, encode(envelope("health", HEALTH, seq + 1, now)))
        wait_until(lambda: svc.store.device("good1").last_seq == seq + 1, timeout=20,
                   what="a good message after the bad ones")
    finally:
        api.stop()
        svc.stop()
