"""The PostgreSQL state store under real load: two collector processes writing the same
devices' rows at the same time, and the database going away under a running collector.
Everything real: Mosquitto, PostgreSQL, the collector's own service process, the simulator
speaking the wire format."""
import json
import os
import signal
import time

import pytest
from schoolmon.collector.simulate import Simulation, province_fixture
from schoolmon.collector.store import StateStore
from schoolmon.collector.store import schema as db
from sqlalchemy import func, select

from tests.collector.helpers import CollectorProcess, seed_schools, wait_until, write_config
from tests.e2e_help import Collector, fresh_database
from tests.servers import Postgres

pytestmark = pytest.mark.slow


def _province(schools, devices):
    prov = province_fixture(schools, devices, seed=11)
    for d in prov.devices:  # every device publishes
        if d.profile == "offline":
            d.profile = "normal"
    return prov


def _stored(store_url):
    """(health messages counted in the 5-minute rollups, devices' bookkeeping) from the store."""
    engine = db.make_engine(store_url)
    try:
        with engine.connect() as conn:
            n = conn.execute(select(func.coalesce(func.sum(db.rollup_5m.c.n), 0))).scalar_one()
        store = StateStore(engine)
        return int(n), store
    finally:
        engine.dispose()


def _check_every_device(store, prov, stats):
    for d in prov.devices:
        st = store.device(d.id)
        assert st is not None, d.id
        assert st.last_seq == stats.acked_upto[d.id], (d.id, st.last_seq, stats.acked_upto[d.id])
        assert st.missing == [] and st.lost_total == 0, (d.id, st.missing, st.lost_total)


def test_two_collectors_write_one_postgres_concurrently(postgres, mosquitto, tmp_path):
    """A shared subscription hands each device's messages to both processes in turn, so both
    update the same device rows at once: every message is counted exactly once, no seq is
    taken for lost, and both processes really committed."""
    store_url = fresh_database(postgres)
    prov = _province(10, 20)  # 200 devices
    seed_schools(store_url, prov.school_rows())
    procs = []
    for i in range(2):
        path = write_config(str(tmp_path / ("c%d.toml" % i)), mosquitto.url, store_url,
                            client_id="pg-shared-%d" % i, shared_group="pg", batch_wait=0.05)
        procs.append(CollectorProcess(path, stats_path=str(tmp_path / ("c%d.json" % i))).start())
    sim = Simulation(mosquitto.url, prov, rate=400, duration=8, seed=3, final_status=False)
    try:
        stats = sim.start().join(60)
        assert stats.acked == stats.sent and stats.health_sent > 2000
        want = stats.acked_pairs()
        wait_until(lambda: _stored(store_url)[0] >= want, timeout=60, every=0.5,
                   what=lambda: "%d health messages in the rollups (have %d)" % (want, _stored(store_url)[0]))
        for p in procs:
            assert p.stop() == 0, p.log()
        n, store = _stored(store_url)
        assert n == want
        _check_every_device(store, prov, stats)
        stored_by = [json.loads((tmp_path / ("c%d.json" % i)).read_text())["stored"] for i in range(2)]
        assert all(s > want // 10 for s in stored_by), stored_by  # both processes did real work
    finally:
        sim.stop()
        for p in procs:
            p.kill()


def test_postgres_outage_under_a_running_collector(mosquitto, tmp_path):
    """The database stops (fast shutdown: every connection cut) while devices keep sending:
    /healthz says the store is down, nothing is acknowledged that was not stored, and once
    PostgreSQL is back every message is stored, none twice."""
    pg = Postgres()
    try:
        store_url = pg.url
        prov = _province(5, 20)  # 100 devices
        seed_schools(store_url, prov.school_rows())
        coll = Collector(str(tmp_path), mosquitto.url, store_url, "").start()
        sim = Simulation(mosquitto.url, prov, rate=200, duration=12, seed=5, final_status=False)
        try:
            sim.start()
            wait_until(lambda: _stored(store_url)[0] > 200, timeout=30, every=0.2,
                       what="the first messages stored")
            _fast_shutdown(pg)
            down = wait_until(lambda: _healthz(coll)[0] == 503, timeout=60, every=0.5,
                              what=lambda: "/healthz 503 while PostgreSQL is down (last %r)\n%s"
                              % (_healthz(coll), coll.log()))
            assert down
            assert "store" in _healthz(coll)[1]["down"]
            time.sleep(3)  # devices keep sending while the database is away
            pg.start()
            stats = sim.join(60)
            assert stats.acked == stats.sent
            want = stats.acked_pairs()
            wait_until(lambda: _stored(store_url)[0] >= want, timeout=90, every=0.5,
                       what=lambda: "%d health messages stored after the outage" % want)
            wait_until(lambda: _healthz(coll)[0] == 200, timeout=60, every=0.5,
                       what="/healthz 200 again")
            rc, _ = coll.terminate()
            assert rc == 0, coll.log()
            n, store = _stored(store_url)
            assert n == want
            _check_every_device(store, prov, stats)
        finally:
            sim.stop()
            coll.close()
    finally:
        pg.stop()


def _fast_shutdown(pg):
    """PostgreSQL's fast shutdown (SIGINT to the postmaster: every connection cut), sent to
    the server's process group: `runuser` in between forwards no signal."""
    os.killpg(pg.proc.pid, signal.SIGINT)
    pg.proc.wait(30)


def _healthz(coll):
    import httpx
    try:
        r = httpx.get(coll.url + "/healthz", timeout=5)
        return r.status_code, r.json()
    except httpx.HTTPError:
        return 0, {}
