"""Ingest behaviour through a real Mosquitto with in-memory stores."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest
from schoolmon.collector.metrics import Registry
from schoolmon.collector.mqtt import subscription
from schoolmon.collector.service import CollectorService
from schoolmon.collector.timeseries import NullTimeSeries
from schoolmon.protocol import encode, envelope, topic

from tests.collector.fakes import FakeStore
from tests.collector.helpers import config, mosquitto_pub, wait_until
from tests.servers import Mosquitto, free_port, make_test_pki

HEALTH = {"cpu_pct": 1.0, "cpu_n": 2, "mem_pct": 10.0, "up": 60}


def test_subscription_filter():
    assert subscription("") == "schoolmon/v1/+/+/+"
    assert subscription("collectors") == "$share/collectors/schoolmon/v1/+/+/+"


def test_shared_subscription_splits_the_load(mosquitto):
    """Two collectors in one shared group: every message is handled once, by one of them."""
    stores = [FakeStore(), FakeStore()]
    services = [CollectorService(config(mosquitto.url, "sqlite://", client_id="shared-%d" % i,
                                        shared_group="g", batch_wait=0.05),
                                 store=s, timeseries=NullTimeSeries(), registry=Registry())
                for i, s in enumerate(stores)]
    try:
        for svc in services:
            svc.start()
            assert svc.ingest.wait_subscribed(10)
        now = time.time()
        lines = b"\n".join(encode(envelope("health", HEALTH, i, now - 400 + i))
                           for i in range(1, 201)) + b"\n"
        mosquitto_pub(mosquitto.port, topic("S1", "d1", "health"), lines=lines)
        wait_until(lambda: sum(len(s.stored()) for s in stores) == 200, timeout=20,
                   what="200 messages stored")
        seqs = sorted(r.message.seq for s in stores for r in s.stored())
        assert seqs == list(range(1, 201))
        assert all(s.stored() for s in stores)  # both took a share
    finally:
        for svc in services:
            svc.stop()


def test_events_and_readiness(mosquitto):
    store = FakeStore()
    svc = CollectorService(config(mosquitto.url, "sqlite://", client_id="events", batch_wait=0.05),
                           store=store, timeseries=NullTimeSeries(), registry=Registry())
    seen = []
    svc.on_event(seen.append)
    assert svc.readiness()["broker"]["ok"] is False
    svc.start()
    try:
        assert svc.ingest.wait_subscribed(10)
        mosquitto_pub(mosquitto.port, topic("S1", "new1", "health"),
                      encode(envelope("health", HEALTH, 1, time.time())))
        wait_until(lambda: seen, timeout=10, what="a device_registered event")
        assert seen[0].kind == "device_registered" and seen[0].device == "new1"
        assert svc.readiness() == {"broker": {"ok": True}, "store": {"ok": True}, "ingest": {"ok": True},
                                   "timeseries": {"ok": True, "configured": False}}
        wait_until(lambda: store.sweeps >= 1, timeout=5, what="a liveness sweep")
    finally:
        svc.stop()
    assert svc.readiness()["broker"]["ok"] is False


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")
def test_tls_broker_every_message_arrives(tmp_path):
    """``mqtts://`` with a CA file: FastClient's bulk reader on a TLS socket (records of
    16 KiB, data waiting inside the TLS layer) delivers every message whole and in order."""
    pki = tempfile.mkdtemp(prefix="schoolmon-pki-")
    try:
        make_test_pki(pki)
        tls_port = free_port()
        broker = Mosquitto("listener %d 127.0.0.1\ncafile %s/ca.crt\ncertfile %s/server.crt\n"
                           "keyfile %s/server.key\n" % (tls_port, pki, pki, pki))
        store = FakeStore()
        cfg = config("mqtts://127.0.0.1:%d" % tls_port, "sqlite://", client_id="tls-test",
                     batch_wait=0.05)
        cfg.mqtt.ca_file = os.path.join(pki, "ca.crt")
        svc = CollectorService(cfg, store=store, timeseries=NullTimeSeries(), registry=Registry())
        try:
            svc.start()
            assert svc.ingest.wait_subscribed(10)
            now = time.time()
            pad = "x" * 3000  # messages that straddle TLS records
            lines = b"\n".join(encode(envelope("health", dict(HEALTH, pad=pad), i, now - 4000 + i))
                               for i in range(1, 2001)) + b"\n"
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(tls_port), "--cafile",
                            os.path.join(pki, "ca.crt"), "-q", "1", "-t",
                            topic("S1", "tls1", "health"), "-l"], input=lines, check=True,
                           timeout=60)
            wait_until(lambda: len(store.stored()) == 2000, timeout=30, what="2000 over TLS")
            assert [r.message.seq for r in store.stored()] == list(range(1, 2001))
        finally:
            svc.stop()
            broker.stop()
    finally:
        shutil.rmtree(pki, ignore_errors=True)
