"""The simulated schools' links (``simulate.link``): the profile mix is deterministic and
gives every connectivity status its inputs, the payloads validate against the catalogue,
the live fleet answers a grant over a real Mosquitto once (and ignores an expired or a
replayed one), and the 30-day history's rows (SQLite and PostgreSQL) have the medians each
profile means. Fixed clocks throughout: nothing depends on the time of day."""
import json
import random
import statistics
import threading
import time
from typing import Dict, List

import paho.mqtt.client as mqtt
import pytest
from schoolmon.collector.simulate import Simulation, province_fixture
from schoolmon.collector.simulate.history import (
    HISTORY_SEQ,
    build_link_history,
    write_history,
    write_link_history,
)
from schoolmon.collector.simulate.link import (
    deal_links,
    probe_fields,
    profile_mix,
    router_fields,
    router_state,
    speedtest_fields,
    story_start,
)
from schoolmon.collector.store import registry
from schoolmon.collector.store import schema as db
from schoolmon.protocol import command, envelope, validate
from sqlalchemy import func, select

from tests.collector.helpers import wait_until
from tests.e2e_help import fresh_database

#: A fixed Wednesday, 10:00 in Vietnam (03:00 UTC); and the same day at 22:30 local.
NOW = 1_780_974_000.0
LATE = NOW + 12.5 * 3600
DAY = 86400


def test_profiles_are_deterministic_and_cover_every_status():
    p = province_fixture(36, 9, seed=1)
    links = deal_links(p)
    assert links == deal_links(province_fixture(36, 9, seed=1))
    mix = profile_mix(links)
    assert set(mix) == {"meets", "improve", "below", "insufficient"}, mix
    kinds = {lp.kind for lp in links.values()}
    assert kinds == {"near_contract", "below_contract", "mobile", "dead_router", "intl_cut",
                     "silent"}
    # the fixture's router-down school is the dead-router one
    down = {d.school for d in p.devices if d.role == "router" and not d.online}
    assert {c for c, lp in links.items() if lp.kind == "dead_router"} <= down
    for lp in links.values():
        assert lp.metered == (lp.link_type in ("3g", "4g"))
        assert lp.tester is None or lp.tester.startswith(lp.school + "-")


@pytest.mark.parametrize("at", [NOW, LATE])
def test_payloads_validate_against_the_catalogue(at):
    p = province_fixture(36, 9, seed=1)
    links = deal_links(p)
    r = random.Random(3)
    for d in p.devices:
        lp = links[d.school]
        since = story_start(lp, at)
        validate("probe", envelope("probe", probe_fields(lp, d, r, at, since, since), 5, at))
        validate("probe", envelope("probe", probe_fields(lp, d, r, at, since), 5, at))
    for lp in links.values():
        st = router_state(lp, at)
        for k in range(3):
            f = router_fields(lp, st, r, at + 300 * k, 10.0, dead=lp.kind == "dead_router")
            validate("router", envelope("router", f, 9, at + 300 * k))
        for mode in ("full", "short"):
            f = speedtest_fields(lp, r, at, 10.0, mode, budget=50_000_000)
            f.update(lease="x", trigger="slot")
            validate("speedtest", envelope("speedtest", f, 9, at))
            assert f["bytes_rx"] + f["bytes_tx"] <= 50_000_000
            if mode == "short":
                assert f["bytes_rx"] + f["bytes_tx"] <= 10_000_000
        f = speedtest_fields(lp, r, at, 10.0, "full", budget=10)
        assert f["bytes_rx"] + f["bytes_tx"] <= 10


def test_probe_errors_are_the_agents_own_codes():
    """dns_err as the agent's dns_error() says it (nxdomain, no_answer, timeout,
    no_server, servfail), never a made-up "dns"; the other targets time out."""
    from schoolmon.agent.families import probe as agent_probe
    dns_codes = set(agent_probe._EAI.values()) | {"no_server"}
    p = province_fixture(36, 9, seed=1)
    links = deal_links(p)
    r = random.Random(5)
    seen = {}
    for d in p.devices:
        lp = links[d.school]
        since = story_start(lp, NOW)
        for f in (probe_fields(lp, d, r, NOW, since, since), probe_fields(lp, d, r, NOW, since)):
            for key, code in f.items():
                if key.endswith("_err"):
                    seen.setdefault(key, set()).add(code)
    assert seen["dns_err"] and seen["dns_err"] <= dns_codes
    assert {"timeout", "servfail"} == seen["dns_err"]
    for key in ("gw_err", "dom_err", "intl_err"):
        assert seen[key] == {"timeout"}


def test_router_counters_grow_and_a_reboot_resets_them():
    p = province_fixture(12, 9, seed=1)
    lp = next(v for v in deal_links(p).values() if v.kind == "near_contract")
    st = router_state(lp, NOW)
    r = random.Random(1)
    first = router_fields(lp, st, r, NOW, 10.0)
    assert "rx_bps" not in first  # one poll gives no rate
    second = router_fields(lp, st, r, NOW + 300, 10.0)
    assert second["rx_octets"] > first["rx_octets"] and second["rx_bps"] > 0
    assert second["uptime_s"] == first["uptime_s"] + 300
    seen = False
    for k in range(2, 3000):  # a reboot now and then (one in 400 polls)
        f = router_fields(lp, st, r, NOW + 300 * k, 10.0)
        if f.get("rebooted"):
            assert f["uptime_s"] < 200 and "rx_bps" not in f
            seen = True
            break
    assert seen


def _medians(tests: List[Dict], since: float) -> Dict[str, float]:
    by: Dict[str, List[float]] = {}
    for t in tests:
        if t["ok"] and t["ts"] >= since:
            by.setdefault(t["school_code"], []).append(t["down_mbps"])
    return {k: statistics.median(v) for k, v in by.items()}


def test_history_inputs_give_each_status():
    p = province_fixture(36, 9, seed=1)
    links = deal_links(p)
    tests, hours, latest = build_link_history(p, NOW)
    assert (tests, hours) == build_link_history(p, NOW)[:2]
    week = NOW - 7 * DAY
    med = _medians(tests, week)
    recent = {t["school_code"] for t in tests if t["ts"] >= week}
    for code, lp in links.items():
        s = next(x for x in p.schools if x.code == code)
        if lp.kind == "silent":
            assert code not in recent  # no test in 7 days
            assert any(t["school_code"] == code for t in tests)  # but some before
        elif lp.kind == "dead_router":
            last = sorted((t for t in tests if t["school_code"] == code), key=lambda t: t["ts"])
            assert last and not any(t["ok"] for t in last[-3:])
        elif lp.kind == "mobile":
            assert med[code] < (1.0 if lp.link_type == "3g" else 5.0)
            assert all(t["mode"] == "short" and t["bytes_rx"] + t["bytes_tx"] <= 10 ** 7
                       for t in tests if t["school_code"] == code)
        elif lp.kind == "below_contract":
            assert med[code] < 0.6 * s.contracted_down_mbps
        else:
            assert 0.85 * s.contracted_down_mbps < med[code] <= s.contracted_down_mbps
    # tests ran in school hours (07:00-17:00 local), a boot test and slot tests per day
    for t in tests:
        hour = ((t["ts"] + 7 * 3600) % DAY) / 3600
        assert 7 <= hour < 17.2, t
        assert t["seq"] > HISTORY_SEQ and t["lease"] and t["refused"] is None
    assert {t["trigger"] for t in tests} == {"boot", "slot"}
    # probes: the cable-cut school's international target fails, domestic does not
    cut = next(c for c, lp in links.items() if lp.kind == "intl_cut")
    rows = [h for h in hours if h[0] == cut and h[1] >= story_start(links[cut], NOW)]
    cols = [c.name for c in db.link_probe_hours.c]
    get = {c: i for i, c in enumerate(cols)}
    assert rows and all(h[get["intl_ok"]] == 0 and h[get["dom_ok"]] > 0 for h in rows)
    assert len(latest) == sum(1 for lp in links.values() if lp.tester)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        e = db.make_engine("sqlite:///%s" % (tmp_path / "s.db"))
    else:
        e = db.make_engine(fresh_database(request.getfixturevalue("postgres")))
    db.create_all(e)
    yield e
    e.dispose()


def test_history_rows_are_written_once(engine):
    p = province_fixture(12, 9, seed=1)
    registry.add_schools(engine, p.school_rows())
    write_history(engine, p, now=NOW)
    n_tests, n_hours = write_link_history(engine, p, now=NOW)
    assert n_tests > 100 and n_hours > 1000
    assert write_link_history(engine, p, now=NOW) == (n_tests, n_hours)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(db.link_tests)).scalar_one()
        hours = conn.execute(select(func.count()).select_from(db.link_probe_hours)).scalar_one()
        routers = conn.execute(select(func.count()).select_from(db.device_latest).where(
            db.device_latest.c.kind == "router")).scalar_one()
        last = conn.execute(select(func.max(db.link_probe_hours.c.hour_start))).scalar_one()
    assert (count, hours) == (n_tests, n_hours) and routers > 0
    assert last < NOW // 3600 * 3600  # the current hour is the live fleet's


def test_fleet_answers_a_grant_once_and_ignores_expired_and_replayed(shared_mosquitto):
    prov = province_fixture(4, 6, seed=11, province_code="96")
    links = deal_links(prov, seed=11)
    lp = next(v for v in links.values() if v.tester and v.kind not in ("silent",))
    got: List = []
    lock = threading.Lock()
    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                    protocol=mqtt.MQTTv5)

    def on_message(client, userdata, m):
        if m.topic.startswith("schoolmon/v1/96") and not m.topic.endswith("/cmd"):
            with lock:
                got.append((m.topic, json.loads(m.payload)))
    c.on_message = on_message
    c.connect("127.0.0.1", shared_mosquitto.port)
    c.subscribe("schoolmon/v1/+/+/+", qos=1)
    c.loop_start()
    sim = Simulation(shared_mosquitto.url, prov, rate=20, connections=2, connectivity=True,
                     seed=11, probe_interval=0.5, router_interval=0.5, speedtest_delay=0.2)
    sim.start()
    try:
        base = "schoolmon/v1/%s/%s/" % (lp.school, lp.tester)

        def kinds(kind):
            with lock:
                return [p for t, p in got if t.endswith("/" + kind)]
        wait_until(lambda: kinds("probe") and kinds("router"), what="probes and routers")
        for t, pl in list(got):
            kind = t.rsplit("/", 1)[1]
            if kind in ("probe", "router"):
                validate(kind, pl)
        now = time.time()
        grant = {"id": "L-1", "exp": now + 120, "ttl": 120, "server": "", "budget": 40_000_000,
                 "mode": "full", "trigger": "slot"}
        c.publish(base + "cmd", command("speedtest", grant, now), qos=1).wait_for_publish(10)
        c.publish(base + "cmd", command("speedtest", grant, now), qos=1).wait_for_publish(10)
        old = dict(grant, id="L-0", exp=now - 5)
        c.publish(base + "cmd", command("speedtest", old, now - 60), qos=1).wait_for_publish(10)
        c.publish(base + "cmd", b'{"v":1,"cmd":"speedtest"}', qos=1).wait_for_publish(10)
        wait_until(lambda: kinds("speedtest"), what="a speedtest result")
        wait_until(lambda: sum(sim.stats.grants_ignored.values()) >= 3,
                   what=lambda: "ignored %r" % sim.stats.grants_ignored)
        res = kinds("speedtest")
        assert len(res) == 1 and res[0]["lease"] == "L-1" and res[0]["trigger"] == "slot"
        validate("speedtest", res[0])
        assert res[0]["bytes_rx"] + res[0]["bytes_tx"] <= 40_000_000
        assert sim.stats.grants_ignored == {"replayed": 1, "expired": 1, "invalid": 1}
        assert sim.stats.tests_sent == 1
    finally:
        sim.stop()
        sim.join(20)
        c.loop_stop()
        c.disconnect()


def test_benchmark_mix_is_unchanged_without_connectivity(shared_mosquitto):
    prov = province_fixture(2, 5, seed=12, province_code="95")
    stats = Simulation(shared_mosquitto.url, prov, rate=50, duration=1.0).run()
    assert stats.probe_sent == stats.router_sent == stats.tests_sent == 0
    assert stats.acked == stats.sent


def _scheduler(engine):
    from schoolmon.collector.connectivity.leases import Settings
    from schoolmon.collector.connectivity.scheduler import Scheduler
    return Scheduler(engine, Settings(), ["08:00-12:00"], 900, lambda *a: True,
                     clock=lambda: NOW)


def test_history_tests_count_and_unknown_live_leases_are_still_refused(engine):
    """The history's tests ran "under leases in the past": the results processor does not
    refuse them (unknown_lease), while a live result under a lease never granted still is."""
    from schoolmon.collector.simulate import connectivity_province
    p = province_fixture(12, 9, seed=1)
    registry.add_schools(engine, p.school_rows())
    write_history(engine, connectivity_province(p), now=NOW)
    n_tests, _ = write_link_history(engine, p, now=NOW)
    sched = _scheduler(engine)
    assert sched.process_results(NOW) == 0  # nothing new to look at
    with engine.connect() as conn:
        refused = conn.execute(select(func.count()).select_from(db.link_tests).where(
            db.link_tests.c.refused.isnot(None))).scalar_one()
        total = conn.execute(select(func.count()).select_from(db.link_tests)).scalar_one()
        tester = conn.execute(select(db.link_tests.c.school_code, db.link_tests.c.device_id)
                              .limit(1)).one()
    assert (refused, total) == (0, n_tests)
    with engine.begin() as conn:
        conn.execute(db.link_tests.insert().values(
            school_code=tester.school_code, device_id=tester.device_id, seq=5, ts=NOW,
            received_at=NOW + 1, lease="never-granted", ok=True, down_mbps=50.0,
            up_mbps=20.0, bytes_rx=10 ** 7, bytes_tx=10 ** 6))
    assert sched.process_results(NOW + 2) == 1
    with engine.connect() as conn:
        got = conn.execute(select(db.link_tests.c.refused).where(
            db.link_tests.c.lease == "never-granted")).scalar_one()
    assert got == "unknown_lease"
    # written again: nothing new, the cursor stays where the processor left it
    write_link_history(engine, p, now=NOW)
    assert sched.process_results(NOW + 3) == 0


def test_history_leaves_a_waiting_live_result_to_the_processor(engine):
    p = province_fixture(4, 6, seed=1)
    registry.add_schools(engine, p.school_rows())
    s = p.schools[0].code
    with engine.begin() as conn:
        conn.execute(db.link_tests.insert().values(
            school_code=s, device_id=s + "-office01", seq=1, ts=NOW - 10, received_at=NOW - 9,
            lease="never-granted", ok=False, bytes_rx=0, bytes_tx=0))
    write_link_history(engine, p, now=NOW)
    assert _scheduler(engine).process_results(NOW) > 0  # the live row is looked at
    with engine.connect() as conn:
        got = conn.execute(select(db.link_tests.c.refused).where(
            db.link_tests.c.lease == "never-granted")).scalar_one()
    assert got == "unknown_lease"


def test_one_router_per_school_with_its_since(engine):
    """With connectivity (the demo): each school's router is router.{school}, registered
    as the collector would, with since when it is up or down; the fixture's own router
    devices are not written."""
    from schoolmon.collector.simulate import connectivity_province
    from schoolmon.collector.simulate.history import offline_since
    from schoolmon.collector.simulate.link import dead_router_at
    p = province_fixture(12, 9, seed=1)
    registry.add_schools(engine, p.school_rows())
    write_history(engine, connectivity_province(p), now=NOW)
    write_link_history(engine, p, now=NOW)
    links = deal_links(p)
    with engine.connect() as conn:
        routers = {r.id: r for r in conn.execute(select(db.devices).where(
            db.devices.c.role == "router"))}
        latest = {r.device_id for r in conn.execute(select(db.device_latest).where(
            db.device_latest.c.kind == "router"))}
        evs = conn.execute(select(db.events.c.device, db.events.c.kind, db.events.c.ts)
                           .where(db.events.c.device.like("router.%"))).all()
    testers = [c for c, lp in links.items() if lp.tester]
    assert sorted(routers) == sorted("router." + c for c in testers)
    assert latest == set(routers)
    gone = offline_since(p, NOW)
    for code in testers:
        r = routers["router." + code]
        assert r.online_changed_at is not None and r.hb == 900
        if links[code].kind == "dead_router":
            assert (r.online, r.offline_reason) == (False, "unreachable")
            assert r.online_changed_at == dead_router_at(gone, code, NOW)
            assert ("router." + code, "device_offline", r.online_changed_at) in evs
        else:
            assert r.online and r.offline_reason is None
    assert any(lp.kind == "dead_router" for lp in links.values())


def test_connectivity_fleet_runs_no_router_device_of_its_own():
    p = province_fixture(6, 9, seed=1)
    with_links = Simulation("mqtt://127.0.0.1:1", p, connectivity=True)
    plain = Simulation("mqtt://127.0.0.1:1", p)
    roles = lambda sim: {d.role for c in sim.conns for d in c.devices}  # noqa: E731
    assert "router" not in roles(with_links)
    assert "router" in roles(plain)  # the ingest benchmark's mix is unchanged
    assert sum(len(c.devices) for c in plain.conns) == len(p.devices)


def test_router_wan_history_is_the_router_devices_rollups():
    """The demo's past of each school router's WAN: hourly rows over the 30 days (12 polls
    an hour), 5-minute rows in the recent window, rx/tx in bytes/s at school-hour levels
    below the contract; the dead router's stop when it died."""
    from schoolmon.collector.simulate.history import build_router_rollups
    from schoolmon.collector.store.schema import ROLLUP_METRICS
    p = province_fixture(12, 9, seed=1)
    links = deal_links(p)
    r5, r1 = build_router_rollups(p, NOW)
    rx_j = 3 + 4 * list(ROLLUP_METRICS).index("rx")
    by = {}
    for row in r1:
        by.setdefault(row[0], []).append(row)
    assert set(by) == {"router." + s for s, lp in links.items() if lp.tester}
    assert len({(row[0], row[1]) for row in r1}) == len(r1)  # one row per router-hour
    for rid, rows in by.items():
        lp = links[rid.split(".", 1)[1]]
        peak = max(row[rx_j + 3] / row[rx_j] for row in rows if row[rx_j]) * 8 / 1e6
        assert 0 < peak <= lp.contract_down * 0.6 * 1.01, (rid, peak)
        if lp.kind != "dead_router":
            assert len(rows) >= 29 * 24
    assert r5 and all(row[2] == 1 for row in r5)
