"""probe, speedtest and router messages through the real StateStore (SQLite and the real
PostgreSQL): link_tests rows in the batch's transaction, duplicates stored once, absurd
numbers refused and counted, probe hours summed across batches, the router device."""
import pytest
from schoolmon.collector.families import probe, router, speedtest
from schoolmon.collector.store import StateStore
from schoolmon.collector.store import schema as db
from schoolmon.collector.store.registry import add_schools, approve_device
from sqlalchemy import select

from ..storehelp import T0, engine_for, health, received

S = "79000701"
GOOD = dict(ok=True, down_mbps=42.0, up_mbps=11.5, ping_ms=12.0, jitter_ms=1.5,
            bytes_rx=52_000_000, bytes_tx=14_000_000, dur_s=20.0, link_mbps=1000, wired=True,
            trigger="slot", mode="full", lease="L1", server="http://st/upload.php", isp="VNPT")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    yield from engine_for(request.param, tmp_path, postgres)


@pytest.fixture
def store(engine):
    db.create_all(engine)
    add_schools(engine, [dict(code=S, name="THPT Lê Quý Đôn", level="THPT",
                              area="Huyện Bát Xát", province="Lào Cai")])
    return StateStore(engine, default_hb=60, router_hb=300)


def run(store, batch):
    plan = store.prepare(batch)
    return plan, store.commit(plan)


def rows(engine, table, order=None):
    with engine.connect() as c:
        q = select(table)
        if order is not None:
            q = q.order_by(order)
        return [dict(r._mapping) for r in c.execute(q)]


def test_speedtest_rows_duplicates_and_implausible(store, engine):
    batch = [received(S, "pc-1", "speedtest", 1, T0, **GOOD),
             received(S, "pc-1", "speedtest", 2, T0 + 60, ok=False, reason="timeout",
                      bytes_rx=1000),
             # above the PC's own 100 Mbit/s link × 1.1
             received(S, "pc-1", "speedtest", 3, T0 + 120, **dict(GOOD, link_mbps=100,
                                                                   down_mbps=500.0)),
             # ok with no speeds
             received(S, "pc-1", "speedtest", 4, T0 + 180, ok=True),
             # 40 Mbit/s for 20 s moves ~50 MB, not 10 KB
             received(S, "pc-1", "speedtest", 5, T0 + 240, **dict(GOOD, bytes_rx=5000,
                                                                   bytes_tx=5000))]
    plan, _ = run(store, batch)
    assert len(plan.accepted) == 5
    assert plan.refused == {"above_link": 1, "ok_without_speeds": 1, "bytes_vs_speed": 1}
    got = rows(engine, db.link_tests, db.link_tests.c.seq)
    assert [(r["seq"], r["ok"], r["refused"]) for r in got] == [
        (1, True, None), (2, False, None), (3, True, "implausible"), (4, True, "implausible"),
        (5, True, "implausible")]
    r = got[0]
    assert (r["school_code"], r["device_id"], r["ts"], r["lease"], r["down_mbps"], r["up_mbps"],
            r["bytes_rx"], r["isp"], r["wired"], r["trigger"], r["mode"]) == (
        S, "pc-1", T0, "L1", 42.0, 11.5, 52_000_000, "VNPT", True, "slot", "full")
    assert got[1]["reason"] == "timeout" and got[1]["down_mbps"] is None
    # the same messages again (a redelivery): nothing more stored
    plan, _ = run(store, [received(S, "pc-1", "speedtest", 1, T0, **GOOD),
                          received(S, "pc-1", "speedtest", 2, T0 + 60, ok=False)])
    assert plan.duplicates == 2 and not plan.refused
    assert len(rows(engine, db.link_tests)) == 5
    # and a fresh store (another collector, empty cache) finds the row: stored once
    again = StateStore(engine, default_hb=60)
    run(again, [received(S, "pc-1", "speedtest", 1, T0, **GOOD)])
    assert len(rows(engine, db.link_tests)) == 5


def test_probe_hours_summed_in_the_batch_and_across_batches(store, engine):
    def pr(dev, seq, ts, **kw):
        base = dict(gw_ok=True, gw_ms=2.0, dns_ok=True, dns_ms=10.0, dom_ok=True, dom_ms=30.0,
                    intl_ok=False, intl_err="timeout")
        base.update(kw)
        return received(S, dev, "probe", seq, ts, **base)
    plan, _ = run(store, [pr("pc-1", 1, T0 + 10), pr("pc-2", 1, T0 + 20, dom_ok=False,
                                                      dom_ms=None),
                          pr("pc-1", 2, T0 + 3700)])
    got = rows(engine, db.link_probe_hours, db.link_probe_hours.c.hour_start)
    assert [(r["hour_start"], r["n"]) for r in got] == [(T0, 2), (T0 + 3600, 1)]
    h = got[0]
    assert (h["gw_n"], h["gw_ok"], h["gw_ms"], h["dom_n"], h["dom_ok"], h["dom_ms"],
            h["intl_n"], h["intl_ok"], h["intl_ms"]) == (2, 2, 4.0, 2, 1, 30.0, 2, 0, 0.0)
    run(store, [pr("pc-2", 2, T0 + 30, dns_ok=None, dns_ms=None)])  # DNS not configured
    h = rows(engine, db.link_probe_hours, db.link_probe_hours.c.hour_start)[0]
    assert (h["n"], h["gw_n"], h["gw_ms"], h["dns_n"], h["dns_ok"]) == (3, 3, 6.0, 2, 2)
    # a duplicate adds nothing
    run(store, [pr("pc-2", 2, T0 + 30)])
    assert rows(engine, db.link_probe_hours, db.link_probe_hours.c.hour_start)[0]["n"] == 3


ROUTER = dict(host="192.168.1.1", gw_ok=True, gw_ms=0.8, snmp_ok=True, name="gw-lqd",
              model="MikroTik RB4011", firmware="RouterOS 7.14", wan_if="ether1", wan_up=True,
              wan_mbps=1000, rx_bps=12_000_000, tx_bps=3_000_000)


def test_router_device_registered_online_offline(store, engine):
    rid = router.router_id(S)
    assert rid == "router." + S
    plan, evs = run(store, [health(S, "pc-1", 1, T0),
                            received(S, "pc-1", "router", 2, T0 + 5, received_at=T0 + 6,
                                     **ROUTER)])
    assert sorted(plan.new_devices) == ["pc-1", rid]
    assert plan.accepted[1].tags["device"] == rid and plan.accepted[1].tags["role"] == "router"
    r = store.device(rid)
    assert (r.role, r.hostname, r.os, r.hb, r.state, r.online, r.last_seq) == (
        "router", "gw-lqd", "MikroTik RB4011 RouterOS 7.14", 300, "pending", True, None)
    poller = store.device("pc-1")
    assert poller.last_seq == 2 and poller.hostname is None  # the seq stays the poller's
    with engine.connect() as c:
        latest = {(x.device_id, x.kind) for x in c.execute(select(db.device_latest))}
    assert (rid, "router") in latest and ("pc-1", "router") not in latest
    assert {e.kind for e in evs} >= {"device_registered", "device_online"}
    # SNMP fails but the ping answers: still online
    run(store, [received(S, "pc-1", "router", 3, T0 + 300, received_at=T0 + 301,
                         **dict(ROUTER, snmp_ok=False, snmp_err="timeout"))])
    assert store.device(rid).online
    # both fail: offline, unreachable
    _, evs = run(store, [received(S, "pc-1", "router", 4, T0 + 600, received_at=T0 + 601,
                                  **dict(ROUTER, gw_ok=False, snmp_ok=False))])
    r = store.device(rid)
    assert (r.online, r.offline_reason) == (False, "unreachable")
    assert [e.detail for e in evs if e.kind == "device_offline"] == [{"reason": "unreachable"}]
    # answers again, then polls stop: the sweep's timeout (3 × hb + 60 s)
    run(store, [received(S, "pc-1", "router", 5, T0 + 900, received_at=T0 + 901, **ROUTER)])
    assert store.device(rid).online
    assert not [e for e in store.sweep(T0 + 901 + 3 * 300 + 30) if e.device == rid]
    evs = store.sweep(T0 + 901 + 3 * 300 + 61)
    assert [(e.device, e.detail["reason"]) for e in evs if e.kind == "device_offline"] == [
        (rid, "timeout")]
    # a duplicate router message changes nothing
    plan, _ = run(store, [received(S, "pc-1", "router", 5, T0 + 900, **ROUTER)])
    assert plan.duplicates == 1 and not store.device(rid).online


def test_router_active_with_its_poller(store, engine):
    run(store, [health(S, "pc-1", 1, T0)])
    approve_device(engine, "pc-1")
    store.reload()
    run(store, [received(S, "pc-1", "router", 2, T0 + 5, **ROUTER)])
    assert store.device(router.router_id(S)).state == "active"


def test_line_bodies():
    assert probe.line_bodies(dict(gw_ok=True, gw_ms=1.5, intl_ok=False, wired=True), 7) == [
        ("probe", " gw_ok=1,gw_ms=1.5,intl_ok=0,wired=1 7")]
    assert speedtest.line_bodies(dict(ok=True, down_mbps=20.0, bytes_rx=10), 7) == [
        ("speedtest", " ok=1,down_mbps=20.0,bytes_rx=10.0 7")]
    assert router.line_bodies(dict(gw_ok=True, snmp_ok=False, rx_bps=5), 7) == [
        ("router", " gw_ok=1,snmp_ok=0,rx_bps=5.0 7")]
    assert speedtest.implausible(dict(ok=True, down_mbps=20000.0, up_mbps=1.0)) == "above_10g"
    assert speedtest.implausible(dict(GOOD)) is None
    assert speedtest.implausible(dict(ok=False, reason="timeout")) is None


def test_a_router_first_heard_dead_is_offline_since_that_message(store, engine):
    """A router whose first message says unreachable (the dead-router school) has its
    ``since``: the pages say "mất kết nối từ ...", never "từ —"."""
    rid = router.router_id(S)
    run(store, [received(S, "pc-1", "router", 2, T0 + 5, received_at=T0 + 6,
                         **dict(ROUTER, gw_ok=False, snmp_ok=False))])
    r = store.device(rid)
    assert (r.online, r.offline_reason, r.online_changed_at) == (False, "unreachable", T0 + 6)
    with engine.connect() as c:
        row = c.execute(select(db.devices).where(db.devices.c.id == rid)).one()
    assert (row.online, row.online_changed_at) == (False, T0 + 6)


def test_router_wan_rates_go_to_the_router_devices_rollups(store, engine):
    """The poller's router messages feed router.{school}'s rollups (rx/tx in bytes/s, the
    WAN rates / 8), never the poller's own (its health NICs): the device page's WAN chart
    reads them. A poll without rates counts with no value; hourly rollups follow."""
    rid = router.router_id(S)
    base = T0 // 300 * 300
    run(store, [health(S, "pc-1", 1, base + 10),
                received(S, "pc-1", "router", 2, base + 20, received_at=base + 21,
                         host="192.168.1.1", gw_ok=True, snmp_ok=True),  # first poll: no rates yet
                received(S, "pc-1", "router", 3, base + 80, received_at=base + 81,
                         host="192.168.1.1", gw_ok=True, snmp_ok=True, rx_bps=8_000_000, tx_bps=800_000),
                received(S, "pc-1", "router", 4, base + 140, received_at=base + 141,
                         host="192.168.1.1", gw_ok=True, snmp_ok=True, rx_bps=16_000_000, tx_bps=1_600_000)])
    got = {r["device_id"]: r for r in rows(engine, db.rollup_5m)}
    r = got[rid]
    assert r["bucket_start"] == base and r["n"] == 3
    assert (r["rx_n"], r["rx_min"], r["rx_max"], r["rx_sum"]) == (2, 1e6, 2e6, 3e6)
    assert (r["tx_n"], r["tx_sum"]) == (2, 3e5)
    assert r["cpu_pct_n"] == 0 and r["temp_n"] == 0
    assert got["pc-1"]["n"] == 1  # the poller's own rollup: its one health message
    store.maintain(base + 7200)
    hourly = {x["device_id"]: x for x in rows(engine, db.rollup_1h)}
    assert hourly[rid]["rx_sum"] == 3e6 and hourly[rid]["rx_n"] == 2
