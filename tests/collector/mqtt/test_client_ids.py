"""Client ids: two collector processes on one host never take each other's session."""
import json
import os
import socket
import time

import pytest
from schoolmon.collector.mqtt import ClientIdTaken, claim_client_id
from schoolmon.protocol import encode, envelope, topic

from tests.collector.helpers import (
    CollectorProcess,
    mosquitto_pub,
    school_row,
    seed_schools,
    wait_until,
)

HEALTH = {"cpu_pct": 12.5, "cpu_n": 4, "mem_pct": 40.0, "up": 3600}
DEFAULT_ID = "schoolmon-collector-" + socket.gethostname()[:40]


def test_default_id_gets_a_free_suffix_and_an_explicit_one_is_refused(tmp_path):
    locks = str(tmp_path / "locks")
    a = claim_client_id(DEFAULT_ID, "b:1", locks)
    b = claim_client_id(DEFAULT_ID, "b:1", locks)
    other_broker = claim_client_id(DEFAULT_ID, "b:2", locks)
    try:
        assert a.client_id == DEFAULT_ID
        assert b.client_id == DEFAULT_ID + "-2"
        assert other_broker.client_id == DEFAULT_ID  # another broker: no conflict
        mine = claim_client_id("collector-east", "b:1", locks)
        with pytest.raises(ClientIdTaken, match="mqtt.client_id"):
            claim_client_id("collector-east", "b:1", locks)
        mine.release()
        claim_client_id("collector-east", "b:1", locks).release()  # free again
    finally:
        a.release()
        b.release()
        other_broker.release()
    # The first process to come back takes the plain id again (a stable session).
    again = claim_client_id(DEFAULT_ID, "b:1", locks)
    assert again.client_id == DEFAULT_ID
    again.release()


def _config(path, mqtt_url, store_url, client_id=None):
    lines = ["[mqtt]", 'url = "%s"' % mqtt_url]
    if client_id:
        lines.append('client_id = "%s"' % client_id)
    lines += ["", "[store]", 'url = "%s"' % store_url, "", "[liveness]",
              "sweep_interval = 1.0", "", "[ingest]", 'shared_group = "g"', "batch_wait = 0.05"]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_two_collector_processes_share_a_group_on_one_host(mosquitto, postgres, tmp_path):
    """Two real collector processes with the default client id and a shared group on one
    real Mosquitto: each gets its own id, neither takes the other's session, and every
    message is stored once between them."""
    import uuid

    import psycopg
    name = "t_" + uuid.uuid4().hex[:12]
    admin = postgres.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute("CREATE DATABASE %s" % name)
    store_url = postgres.url.rsplit("/", 1)[0] + "/" + name
    seed_schools(store_url, [school_row("S1")])
    conf = _config(tmp_path / "c.toml", mosquitto.url, store_url)
    procs = [CollectorProcess(conf, stats_path=str(tmp_path / ("s%d.json" % i)),
                              log_path=str(tmp_path / ("c%d.log" % i))) for i in range(2)]
    try:
        for p in procs:
            p.start()
        def stats():
            out = []
            for i in range(2):
                try:
                    with open(str(tmp_path / ("s%d.json" % i))) as fh:
                        out.append(json.load(fh))
                except (OSError, ValueError):
                    return None
            return out

        now = time.time()
        n = 200
        # The device's first message first: seqs below the first one a store ever saw are
        # taken for duplicates (a known limit with two collectors, docs/state-store.md).
        mosquitto_pub(mosquitto.port, topic("S1", "d1", "health"),
                      encode(envelope("health", HEALTH, 1, now - n)))
        wait_until(lambda: stats() and sum(s["stored"] for s in stats()) == 1, timeout=60,
                   what="the device's first message stored")
        mosquitto_pub(mosquitto.port, topic("S1", "d1", "health"),
                      lines=b"\n".join(encode(envelope("health", HEALTH, i, now - n + i))
                                       for i in range(2, n + 1)) + b"\n")

        wait_until(lambda: stats() and sum(s["stored"] + s["duplicates"] for s in stats()) >= n
                   and all(s["pending"] == 0 for s in stats()),
                   timeout=60, what="every message settled")
        assert sum(s["stored"] for s in stats()) == n
        # Each process connected once under its own id; the broker never dropped one for
        # the other (a session takeover shows as a reconnect in the collector's log).
        logs = [p.log() for p in procs]
        ids = sorted(line.split(" as ", 1)[1].split(" ", 1)[0]
                     for log in logs for line in log.splitlines() if "connected to the broker" in line)
        assert ids == [DEFAULT_ID, DEFAULT_ID + "-2"], logs
        for log in logs:
            assert "disconnected from the broker" not in log, log
        assert "already connected" not in mosquitto.log()
    finally:
        for p in procs:
            p.stop()
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute("DROP DATABASE %s WITH (FORCE)" % name)


def test_two_processes_with_one_explicit_id_the_second_is_refused(mosquitto, tmp_path):
    store_url = "sqlite:///%s" % (tmp_path / "state.db")
    seed_schools(store_url, [school_row("S1")])
    conf = _config(tmp_path / "c.toml", mosquitto.url, store_url, client_id="east-1")
    first = CollectorProcess(conf, log_path=str(tmp_path / "c1.log")).start()
    try:
        second = CollectorProcess(conf, log_path=str(tmp_path / "c2.log"))
        with pytest.raises(RuntimeError):
            second.start()
        assert second.proc.wait(20) == 2
        assert "east-1" in second.log() and "mqtt.client_id" in second.log()
        assert first.proc.poll() is None
    finally:
        first.stop()
    assert os.path.exists(conf)
