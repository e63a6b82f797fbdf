"""Bad input and faults, through a real Mosquitto into the real collector (state store on
SQLite, time series in a real VictoriaMetrics). Bad messages are published with
``mosquitto_pub``, a client none of us wrote."""
import json
import sqlite3
import subprocess
import threading
import time

import pytest
from schoolmon.collector.metrics import Registry
from schoolmon.collector.service import CollectorService
from schoolmon.collector.simulate import Simulation, province_fixture
from schoolmon.collector.store import schema as db
from schoolmon.collector.timeseries import NullTimeSeries
from schoolmon.protocol import encode, envelope, topic
from sqlalchemy import select

from tests.collector.fakes import FakeStore
from tests.collector.helpers import (
    CollectorProcess,
    config,
    mosquitto_pub,
    school_row,
    seed_schools,
    wait_until,
    write_config,
)

HEALTH = {"cpu_pct": 12.5, "cpu_n": 4, "mem_pct": 40.0, "up": 3600,
          "disks": [{"mnt": "C:", "pct": 50.0, "free": 10 ** 10}],
          "nics": [{"if": "Ethernet", "rx": 1000, "tx": 200}]}


def health(seq, ts, **over):
    fields = dict(HEALTH, **over)
    return encode(envelope("health", fields, seq, ts))


def raw_health(seq, ts, **over):
    """JSON text without the encoder's checks (for payloads the encoder would refuse)."""
    obj = dict(HEALTH, v=1, ts=ts, seq=seq)
    obj.update(over)
    return json.dumps(obj).encode()


def samples(victoria, selector):
    """(device, ts) -> value for every stored sample, duplicates folded."""
    out = {}
    for series in victoria.export(selector):
        dev = series["metric"].get("device")
        for ts_ms, v in zip(series["timestamps"], series["values"]):
            out[(dev, ts_ms // 1000)] = v
    return out


@pytest.fixture
def sqlite_url(tmp_path):
    return "sqlite:///%s" % (tmp_path / "state.db")


def test_bad_input_is_counted_and_good_input_kept(mosquitto, victoria, sqlite_url, tmp_path):
    seed_schools(sqlite_url, [school_row("S1"), school_row("S2", area="Huyện Bắc Hà")])
    cfg = config(mosquitto.url, sqlite_url, victoria.url, batch_wait=0.05)
    svc = CollectorService(cfg, registry=Registry()).start()
    try:
        assert svc.ingest.wait_subscribed(10)
        now = time.time()
        t_good = topic("S1", "good1", "health")
        t_bad = topic("S1", "bad1", "health")
        big = tmp_path / "big.json"
        big.write_bytes(b'{"v":1,"ts":%d,"seq":1,"pad":"' % now + b"x" * (10 * 2 ** 20) + b'"}')
        bad = [
            (t_bad, b"{not json", "invalid_json"),
            (t_bad, b"\xff\xfe\x00garbage", "invalid_json"),
            (t_bad, b"[1, 2, 3]", "not_object"),
            # 60 KB of nesting: deeper than Python's stack, under the size limit
            (t_bad, b'{"v":1,"x":' + b"[" * 30000 + b"]" * 30000 + b"}", "invalid_json"),
            (t_bad, raw_health(1, now, cpu_pct="high"), "wrong_type"),
            (t_bad, raw_health(1, now, cpu_n=4.5), "wrong_type"),
            (t_bad, json.dumps({"v": 1, "ts": now, "seq": 1}).encode(), "missing_field"),
            (t_bad, raw_health(1, now).replace(b'"cpu_pct": 12.5', b'"cpu_pct": NaN'),
             "invalid_json"),
            (t_bad, raw_health(1, now).replace(b'"mem_pct": 40.0', b'"mem_pct": Infinity'),
             "invalid_json"),
            (t_bad, raw_health(1, now).replace(b'"mem_pct": 40.0', b'"mem_pct": 1e999'),
             "non_finite"),
            (t_bad, raw_health(1, now, cpu_pct=-5), "out_of_range"),
            (t_bad, raw_health(1, now, mem_pct=1e6), "out_of_range"),
            (t_bad, raw_health(-1, now), "out_of_range"),
            (t_bad, None, "too_large"),  # 10 MB, from a file
            (topic("S1", "bad1", "health").replace("/health", "/weather"), health(1, now),
             "unknown_kind"),
            (t_bad, raw_health(1, now, v=99), "unknown_version"),
            (t_bad, raw_health(1, now, device="good1"), "topic_mismatch"),
            (t_bad, raw_health(1, now, school="S2"), "topic_mismatch"),
            (topic("S999", "bad1", "health"), health(1, now), "unknown_school"),
            ("schoolmon/v1/S1/bad%1/health", health(1, now), "bad_topic"),
        ]
        expected = {}
        published = 0
        good_seq = 0
        for t, payload, reason in bad:
            good_seq += 1
            mosquitto_pub(mosquitto.port, t_good, health(good_seq, now - 600 + good_seq))
            published += 1
            if payload is None:
                mosquitto_pub(mosquitto.port, t, file=str(big))
            else:
                mosquitto_pub(mosquitto.port, t, payload)
            if reason is not None:
                expected[reason] = expected.get(reason, 0) + 1
                published += 1
        # Timestamps: far future and older than 7 days are stored with the receive time
        # (flagged); two days old (an agent replaying its queue) keeps its own.
        mosquitto_pub(mosquitto.port, topic("S2", "fut1", "health"), health(1, now + 3600))
        mosquitto_pub(mosquitto.port, topic("S2", "old1", "health"), health(1, now - 8 * 86400))
        replay_ts = int(now - 2 * 86400)
        mosquitto_pub(mosquitto.port, topic("S2", "replay1", "health"), health(1, replay_ts))
        published += 3
        # A flood from one device (3000 messages in one connection), good ones interleaved.
        flood = b"\n".join(health(i, now - 4000 + i) for i in range(1, 3001)) + b"\n"
        th = threading.Thread(target=mosquitto_pub, args=(mosquitto.port,
                                                          topic("S2", "flood1", "health")),
                              kwargs={"lines": flood})
        th.start()
        for _ in range(5):
            good_seq += 1
            mosquitto_pub(mosquitto.port, t_good, health(good_seq, now - 600 + good_seq))
        th.join()
        published += 3000 + 5

        m = svc.metrics
        wait_until(lambda: m.received.get() >= published and svc.ingest.pending() == 0,
                   timeout=30, what=lambda: "every message handled (%d published, %s received, "
                   "%d pending)" % (published, m.received.get(), svc.ingest.pending()))
        assert m.received.get() == published
        for reason, n in expected.items():
            assert m.rejected.get(reason=reason) == n, reason
        assert m.rejected.total() == sum(expected.values())
        assert m.clock_skew.get(direction="future") == 1
        assert m.clock_skew.get(direction="too_old") == 1
        assert m.stored.get(kind="health") == good_seq + 3 + 3000

        # Nothing partial: the bad device is unknown to the store and has no series.
        assert svc.store.device("bad1") is None
        assert victoria.export('{__name__=~"health.*",device="bad1"}') == []
        # Every good message is there, in the state store and in the time series.
        assert svc.store.device("good1").last_seq == good_seq
        assert svc.store.device("good1").lost_total == 0
        assert svc.store.device("flood1").last_seq == 3000
        good = samples(victoria, 'health_cpu_pct{device="good1"}')
        assert sorted(ts for _d, ts in good) == [int(now - 600 + i) for i in range(1, good_seq + 1)]
        assert len(samples(victoria, 'health_cpu_pct{device="flood1"}')) == 3000
        assert len(samples(victoria, 'health_nic_rx{device="flood1",if="Ethernet"}')) == 3000
        assert len(samples(victoria, 'health_disk_pct{device="flood1",mnt="C:"}')) == 3000

        # Skewed timestamps: stored under the receive time, flagged; replay keeps its ts.
        with svc.store.engine.connect() as conn:
            latest = {r.device_id: r for r in conn.execute(
                select(db.device_latest).where(db.device_latest.c.kind == "health"))}
        assert latest["fut1"].skew == "future" and abs(latest["fut1"].ts - now) < 120
        assert latest["old1"].skew == "too_old" and abs(latest["old1"].ts - now) < 120
        assert latest["replay1"].skew is None and latest["replay1"].ts == replay_ts
        for dev in ("fut1", "old1"):
            (ts,) = [ts for _d, ts in samples(victoria, 'health_cpu_pct{device="%s"}' % dev)]
            assert abs(ts - now) < 120, dev
        assert [ts for _d, ts in samples(victoria, 'health_cpu_pct{device="replay1"}')] == \
            [replay_ts]

        # Still running: one more good message goes through.
        assert svc.ingest.alive()
        mosquitto_pub(mosquitto.port, t_good, health(good_seq + 1, now))
        wait_until(lambda: svc.store.device("good1").last_seq == good_seq + 1, timeout=10,
                   what="a good message after the bad ones")
        assert svc.readiness() == {"broker": {"ok": True}, "store": {"ok": True},
                                   "timeseries": {"ok": True}, "ingest": {"ok": True}}
        text = m.render()
        assert 'schoolmon_rejected_total{reason="too_large"} 1' in text
    finally:
        svc.stop()


def test_retained_status_properties_and_qos0(mosquitto, victoria, sqlite_url):
    """Retained status delivered at subscribe is normal input; MQTT 5 properties on a
    PUBLISH (skipped by FastClient's parser) and QoS 0 messages are handled."""
    seed_schools(sqlite_url, [school_row("S1")])
    now = time.time()
    status = encode(envelope("status", {"state": "online", "hb": 60, "agent": "1.0"}, 0, now))
    mosquitto_pub(mosquitto.port, topic("S1", "ret1", "status"), status, retain=True)
    cfg = config(mosquitto.url, sqlite_url, victoria.url, batch_wait=0.05)
    svc = CollectorService(cfg, registry=Registry()).start()
    try:
        assert svc.ingest.wait_subscribed(10)
        subprocess.run(["mosquitto_pub", "-V", "mqttv5", "-p", str(mosquitto.port), "-q", "1",
                        "-t", topic("S1", "prop1", "health"), "-D", "publish", "user-property",
                        "origin", "x" * 300, "-D", "publish", "message-expiry-interval", "600",
                        "-D", "publish", "content-type", "application/json",
                        "-m", health(1, now).decode()], check=True, timeout=30)
        mosquitto_pub(mosquitto.port, topic("S1", "q0", "health"), health(1, now), qos=0)
        wait_until(lambda: svc.metrics.received.get() >= 3 and svc.ingest.pending() == 0,
                   timeout=15, what="three messages")
        assert svc.store.device("ret1").online
        assert svc.store.device("prop1").last_seq == 1
        assert svc.store.device("q0").last_seq == 1
        assert samples(victoria, 'health_cpu_pct{device="prop1"}') == {("prop1", int(now)): 12.5}
        assert samples(victoria, 'status_online{device="ret1"}') == {("ret1", int(now)): 1}
    finally:
        svc.stop()
    # The broker holds nothing unacknowledged for the collector's session: after a
    # reconnect, the first message to arrive is one published after it.
    cfg2 = config(mosquitto.url, sqlite_url, victoria.url, batch_wait=0.05)
    svc2 = CollectorService(cfg2, registry=Registry()).start()
    try:
        assert svc2.ingest.wait_subscribed(10)
        mosquitto_pub(mosquitto.port, topic("S1", "marker", "health"), health(1, now))
        wait_until(lambda: svc2.metrics.received.get() >= 1 and svc2.ingest.pending() == 0,
                   timeout=15, what="the marker message")
        assert svc2.metrics.received.get() == 1
        assert svc2.store.device("marker").last_seq == 1
    finally:
        svc2.stop()


def test_store_outage_retried_and_poison_message_isolated(mosquitto):
    """A database outage is waited out (nothing lost); a message the store cannot take
    is found by splitting the batch, counted, kept aside and acknowledged, and the others
    in its batch are stored. The broker does not offer it again."""
    store = FakeStore(fail_times=3)
    store.poison.add("poison1")
    letters = []
    cfg = config(mosquitto.url, "sqlite://", client_id="poison-test", batch_wait=0.5)
    svc = CollectorService(cfg, store=store, timeseries=NullTimeSeries(),
                           registry=Registry(), keep_aside=lambda xs: letters.extend(xs) or len(xs)
                           ).start()
    now = time.time()
    try:
        assert svc.ingest.wait_subscribed(10)
        lines = b"\n".join(health(i, now - 100 + i) for i in range(1, 8)) + b"\n"
        mosquitto_pub(mosquitto.port, topic("S1", "good1", "health"), lines=lines)
        mosquitto_pub(mosquitto.port, topic("S1", "poison1", "health"), health(1, now))
        mosquitto_pub(mosquitto.port, topic("S1", "good2", "health"), health(1, now))
        wait_until(lambda: len(store.stored()) == 8, timeout=20, what="the good messages")
        wait_until(lambda: svc.metrics.dead_letters.get(reason="store_refused") == 1,
                   timeout=10, what="one dead letter")
        assert svc.metrics.store_errors.get() == 1
        assert sorted(r.message.device for r in store.stored()) == ["good1"] * 7 + ["good2"]
        assert store.fail_times == 0  # the outage was retried
        assert [(x.reason, x.device_id, x.payload) for x in letters] == [
            ("store_refused", "poison1", health(1, now))]
        wait_until(lambda: svc.ingest.pending() == 0, timeout=10, what="all settled")
    finally:
        svc.stop()
    # Acknowledged: after a reconnect, the first message is one published after it.
    store2 = FakeStore()
    svc2 = CollectorService(cfg, store=store2, timeseries=NullTimeSeries(),
                            registry=Registry()).start()
    try:
        assert svc2.ingest.wait_subscribed(10)
        mosquitto_pub(mosquitto.port, topic("S1", "marker", "health"), health(1, now))
        wait_until(lambda: store2.stored(), timeout=20, what="the marker message")
        assert [r.message.device for r in store2.stored()] == ["marker"]
    finally:
        svc2.stop()


def _province(schools, devices):
    prov = province_fixture(schools, devices, seed=7)
    for d in prov.devices:  # every device publishes (none of the "offline" profile)
        if d.profile == "offline":
            d.profile = "normal"
    return prov


def _collector_for(prov, mosquitto, victoria, sqlite_url):
    """The province's schools in the registry and a running collector (real stores)."""
    seed_schools(sqlite_url, prov.school_rows())
    cfg = config(mosquitto.url, sqlite_url, victoria.url, batch_wait=0.1)
    return prov, CollectorService(cfg, registry=Registry()).start()


def _stored_health(victoria, province):
    """Distinct (device, ts) of stored health messages, from VictoriaMetrics."""
    return samples(victoria, "health_up")


def test_sigkill_collector_loses_nothing(mosquitto, victoria, tmp_path):
    store_url = "sqlite:///%s" % (tmp_path / "state.db")
    prov = _province(40, 25)  # 1000 devices
    seed_schools(store_url, prov.school_rows())
    path = write_config(str(tmp_path / "collector.toml"), mosquitto.url, store_url, victoria.url,
                        client_id="kill-test", batch_wait=0.1)
    proc = CollectorProcess(path).start()
    # 500 msg/s for 8 s: each device every 2 s, so every health message has its own second.
    sim = Simulation(mosquitto.url, prov, rate=500, duration=8, seed=7, final_status=False)
    try:
        sim.start()
        time.sleep(3)
        proc.kill()  # SIGKILL in the middle of the stream
        time.sleep(1.5)
        proc = CollectorProcess(path).start()
        stats = sim.join(30)
        assert stats.acked == stats.sent and stats.health_sent > 3000
        want = stats.acked_pairs()

        def all_stored():
            return len(_stored_health(victoria, prov)) >= want
        wait_until(all_stored, timeout=40, every=0.5, what="every acknowledged health message")
        assert proc.stop() == 0
        got = _stored_health(victoria, prov)
        assert len(got) == want
        from schoolmon.collector.store import StateStore
        store = StateStore(db.make_engine(store_url))
        for d in prov.devices:
            st = store.device(d.id)
            assert st is not None and st.last_seq == stats.acked_upto[d.id], d.id
            assert st.missing == [] and st.lost_total == 0, d.id
    finally:
        sim.stop()
        sim.join(10)
        proc.kill()


def test_timeseries_down_then_backlog_written(mosquitto, victoria, sqlite_url):
    prov, svc = _collector_for(_province(10, 20), mosquitto, victoria, sqlite_url)  # 200 devices
    try:
        assert svc.ingest.wait_subscribed(10)
        victoria.kill()
        down_at = time.monotonic()
        # 100 msg/s for 6 s while the time-series server is down
        stats = Simulation(mosquitto.url, prov, rate=100, duration=6, seed=3,
                           final_status=False).run()
        assert stats.acked == stats.sent
        # Nothing is committed or acknowledged while it is down; the writer retries.
        wait_until(lambda: svc.metrics.ts_errors.get() >= 2, timeout=10, what="write errors")
        assert svc.metrics.stored.total() == 0
        assert svc.readiness()["timeseries"]["ok"] is False
        # Nothing is committed meanwhile, and the store is not held by the waiting batch:
        # a liveness sweep runs, and another writer gets SQLite's write lock.
        swept = threading.Event()
        threading.Thread(target=lambda: (svc.store.sweep(), swept.set()), daemon=True).start()
        assert swept.wait(10), "a liveness sweep waited for the time-series server"
        with sqlite3.connect(sqlite_url[len("sqlite:///"):], timeout=10) as db:
            assert db.execute("SELECT count(*) FROM device_latest").fetchone() == (0,)
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
        time.sleep(max(0.0, 20 - (time.monotonic() - down_at)))  # down for ~20 s
        assert svc.metrics.stored.total() == 0
        assert svc.ingest.pending() > 0
        victoria.start()
        want = stats.acked_pairs()
        wait_until(lambda: svc.metrics.stored.get(kind="health") >= want, timeout=60,
                   what="backlog committed")
        assert len(_stored_health(victoria, prov)) == want
        assert svc.metrics.ts_retries.get() >= 1
        assert svc.readiness()["timeseries"]["ok"] is True
    finally:
        svc.stop()


def test_broker_restart(mosquitto, victoria, sqlite_url):
    prov, svc = _collector_for(_province(10, 30), mosquitto, victoria, sqlite_url)  # 300 devices
    sim = Simulation(mosquitto.url, prov, rate=150, duration=9, seed=5, final_status=False)
    try:
        assert svc.ingest.wait_subscribed(10)
        sim.start()
        time.sleep(3)
        mosquitto.restart(down_seconds=2)
        wait_until(lambda: svc.ingest.connected, timeout=40, what="collector reconnected")
        stats = sim.join(40)
        assert stats.reconnects >= 1
        want = stats.acked_pairs()
        wait_until(lambda: len(_stored_health(victoria, prov)) >= want, timeout=40, every=0.5,
                   what="every acknowledged health message stored")
        for d in prov.devices:
            st = svc.store.device(d.id)
            assert st is not None and st.last_seq >= stats.acked_upto[d.id], d.id
        assert svc.metrics.broker_connected.get() == 1
    finally:
        sim.stop()
        sim.join(10)
        svc.stop()
