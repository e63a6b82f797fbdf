"""The school's speed-test lease, its budget and the scheduler's pass, on SQLite and the
real PostgreSQL, with an injected clock (a Monday in Lào Cai): one lease at a time even
with many engines granting at once; budget refusal and the short mode on metered links;
slots, boot, device choice, link down, expiry, results refused, a restart that neither
plans again nor tests twice."""
import random
import threading
from typing import Any, Dict, List, Tuple

import pytest
from schoolmon.collector.connectivity import leases
from schoolmon.collector.connectivity.leases import LEASE_KEY, PLAN_KEY, Settings
from schoolmon.collector.connectivity.scheduler import Scheduler, link_down, parse_slot
from schoolmon.collector.metrics import IngestMetrics, Registry
from schoolmon.collector.state import Event
from schoolmon.collector.store import registry, school_state
from schoolmon.collector.store import schema as db

from tests.e2e_help import fresh_database

from .connhelp import MONDAY, Clock, add_device, add_result, local, refused, set_online, set_probe

FIBRE, MOBILE = "79000701", "79000702"
SLOTS = ["08:00-12:00", "12:00-16:00", "16:00-20:00"]
S = Settings(test_timeout=180, lease_margin=60, budget_fibre_mb=30000, budget_mobile_mb=25,
             short_mb=10, server="http://so.example/speedtest/upload.php")


def _url(kind, tmp_path, request):
    if kind == "sqlite":
        return "sqlite:///%s" % (tmp_path / "s.db")
    return fresh_database(request.getfixturevalue("postgres"))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    u = _url(request.param, tmp_path, request)
    eng = db.make_engine(u)
    db.create_all(eng)
    registry.add_schools(eng, [
        {"code": FIBRE, "name": "Trường THPT Lê Quý Đôn", "level": "THPT", "area": "Bát Xát",
         "province": "Lào Cai", "link_type": "fiber", "contracted_down_mbps": 20.0,
         "contracted_up_mbps": 5.0},
        {"code": MOBILE, "name": "Trường Tiểu học Y Tý", "level": "TH", "area": "Bát Xát",
         "province": "Lào Cai", "link_type": "4G", "contracted_down_mbps": 10.0}])
    eng.dispose()
    return u


@pytest.fixture
def engine(url):
    eng = db.make_engine(url)
    yield eng
    eng.dispose()


class Sent:
    def __init__(self) -> None:
        self.grants: List[Tuple[str, str, Dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, school, device, fields, ts):
        with self.lock:
            self.grants.append((school, device, fields))
        return True


def scheduler(engine, clock, sent, metrics=None, seed=1):
    return Scheduler(engine, S, SLOTS, 900, sent, metrics, clock=clock,
                     rng=random.Random(seed))


# --------------------------------------------------------------------------- leases

def test_parse_slot_and_link_down():
    assert parse_slot("08:00-12:00") == (480, 720)
    for bad in ("8-12", "12:00-08:00", "08:00", "25:00-26:00"):
        with pytest.raises(ValueError):
            parse_slot(bad)
    assert link_down({"gw_ok": False})
    assert link_down({"gw_ok": True, "dns_ok": False, "dom_ok": False, "intl_ok": False})
    assert not link_down({"gw_ok": True, "dom_ok": False, "intl_ok": True})
    assert not link_down({"gw_ok": True})


def test_many_engines_granting_at_once_one_wins(url):
    """Sixteen threads, each with its own engine (as many collector processes), grant the
    same school's lease at the same moment: exactly one gets it, the others are told held."""
    n = 16
    engines = [db.make_engine(url) for _ in range(n)]
    barrier = threading.Barrier(n)
    got: List[leases.Grant] = []
    lock = threading.Lock()

    def race(i):
        barrier.wait(30)
        with engines[i].begin() as c:
            g = leases.grant(c, FIBRE, "pc-%02d" % i, local(9), S)
        with lock:
            got.append(g)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        winners = [g for g in got if g.lease]
        assert len(got) == n and len(winners) == 1
        assert {g.refused for g in got if not g.lease} == {"held"}
        with engines[0].connect() as c:
            stored = school_state.read(c, FIBRE, LEASE_KEY).value
        assert stored["id"] == winners[0].lease["id"]
        assert stored["device"] == winners[0].lease["device"]
    finally:
        for e in engines:
            e.dispose()


def test_lease_expiry_release_and_budget(engine):
    now = local(9)
    with engine.begin() as c:
        g = leases.grant(c, FIBRE, "pc-01", now, S)
        assert g.lease["mode"] == "full" and g.lease["exp"] == now + 240
        # 20/5 contracted: about 31 MB expected, the grant allows twice that
        assert g.expected == 31_250_000 and g.lease["budget"] == 62_500_000
        assert leases.grant(c, FIBRE, "pc-02", now + 10, S).refused == "held"
        assert leases.expire(c, FIBRE, now + 239) is None
        assert leases.expire(c, FIBRE, now + 240)["expired_at"] == now + 240
        assert not leases.release(c, FIBRE, g.lease["id"], "pc-01", now + 250)
        g2 = leases.grant(c, FIBRE, "pc-02", now + 300, S)
        assert g2.lease and leases.find(school_state.read(c, FIBRE, LEASE_KEY).value,
                                        g.lease["id"])["ended"] == "expired"
        assert not leases.release(c, FIBRE, g2.lease["id"], "pc-01", now + 310)  # not holder
        assert leases.release(c, FIBRE, g2.lease["id"], "pc-02", now + 310)
        state = leases.lease_state(c, FIBRE, now + 311, S)
        assert state["lease"] is None and state["budget"]["limit"] == 30_000 * 10 ** 6


def test_metered_link_short_mode_and_budget_refusal(engine):
    """4G: the short mode (10 MB); the 25 MB month holds two tests (bytes of every stored
    test, by hand too), the third is refused as budget."""
    now = local(9)
    with engine.begin() as c:
        g = leases.grant(c, MOBILE, "pc-m1", now, S)
        assert g.lease["mode"] == "short" and g.lease["budget"] == 10_000_000
        assert leases.release(c, MOBILE, g.lease["id"], "pc-m1", now + 60)
    add_result(engine, MOBILE, "pc-m1", now + 50, g.lease["id"], bytes_rx=8_000_000,
               bytes_tx=2_000_000, mode="short")
    add_result(engine, MOBILE, "pc-m1", now + 100, None, bytes_rx=6_000_000, bytes_tx=0,
               trigger="manual")
    with engine.begin() as c:
        assert leases.month_usage(c, MOBILE, now, S.timezone)[1:] == (16_000_000, 2)
        g = leases.grant(c, MOBILE, "pc-m1", now + 200, S)
        assert g.refused == "budget" and g.used == 16_000_000 and g.limit == 25_000_000
        # next month: a fresh budget
        assert leases.grant(c, MOBILE, "pc-m1", local(9, day=MONDAY + 31 * 86400), S).lease


def test_expected_cost_from_the_last_full_test(engine):
    add_result(engine, FIBRE, "pc-01", local(8), None, bytes_rx=120_000_000, bytes_tx=30_000_000)
    with engine.begin() as c:
        g = leases.grant(c, FIBRE, "pc-01", local(9), S)
    assert g.expected == 150_000_000 and g.lease["budget"] == 300_000_000


def test_grant_budget_after_a_slow_test_is_not_starved(engine):
    """After a slow test (2.2 MB at 0.8/0.8) the next grant is not twice its bytes: the
    contracted 20/5 is the floor, so the first fast test after an upgrade runs full; a
    school without a contract gets 100/30's; a test that stopped at its budget (few bytes,
    a high rate) sizes the next from its rate. The month's budget still caps the grant."""
    add_result(engine, FIBRE, "pc-01", local(8), None, bytes_rx=1_100_000,
               bytes_tx=1_100_000, down_mbps=0.8, up_mbps=0.8)
    with engine.begin() as c:
        g = leases.grant(c, FIBRE, "pc-01", local(9), S)
        assert g.expected == 2_200_000  # the refusal rule: what a test here costs
        assert g.lease["budget"] == 2 * 31_250_000  # 20/5 × 10 s each way, twice
        c.execute(db.schools.update().where(db.schools.c.code == FIBRE).values(
            contracted_down_mbps=None, contracted_up_mbps=None))
        leases.release(c, FIBRE, g.lease["id"], "pc-01", local(9, 1))
        g = leases.grant(c, FIBRE, "pc-01", local(9, 5), S)
        assert g.lease["budget"] == 2 * 162_500_000  # no contract: 100/30 assumed
        leases.release(c, FIBRE, g.lease["id"], "pc-01", local(9, 6))
    # upgraded to 300/100; its first test stopped at 40 MB, its rates say more is needed
    add_result(engine, FIBRE, "pc-01", local(10), None, bytes_rx=30_000_000,
               bytes_tx=10_000_000, down_mbps=290.0, up_mbps=95.0)
    with engine.begin() as c:
        g = leases.grant(c, FIBRE, "pc-01", local(11), S)
        assert g.lease["budget"] == 2 * 481_250_000
        leases.release(c, FIBRE, g.lease["id"], "pc-01", local(11, 1))
        small = S._replace(budget_fibre_mb=200)  # the month's rest caps it
        g = leases.grant(c, FIBRE, "pc-01", local(11, 5), small)
        used = 2_200_000 + 40_000_000
        assert g.lease["budget"] == 200_000_000 - used


# --------------------------------------------------------------------------- scheduler

def _devices(engine):
    wired = {"wired": True, "gw_ok": True, "dom_ok": True}
    add_device(engine, FIBRE, "lab-01", "lab", probe=wired)
    add_device(engine, FIBRE, "srv-01", "server", probe=wired)
    add_device(engine, FIBRE, "off-wifi", "office", probe={"wired": False, "gw_ok": True})
    add_device(engine, FIBRE, "off-01", "office", probe=wired)
    add_device(engine, FIBRE, "pending", "office", state="pending", probe=wired)


def test_one_test_per_slot_through_the_day_and_device_choice(engine):
    """Devices online since 07:00: the boot test within 15 min, then one per slot as the
    clock moves through the day; the wired office PC each time (never the Wi-Fi one, nor
    a pending one); a restarted scheduler neither plans again nor tests twice."""
    _devices(engine)
    for d in ("lab-01", "srv-01", "off-wifi", "off-01"):
        set_online(engine, d, True, local(7))
    clock, sent = Clock(local(7)), Sent()
    m = IngestMetrics(Registry())
    sch = scheduler(engine, clock, sent, m)
    sch.run_once()
    with engine.connect() as c:
        plan = school_state.read(c, FIBRE, PLAN_KEY).value
    assert plan["day"] == "2026-03-02" and local(7) <= plan["boot"] <= local(7, 15)
    for i, (lo, hi) in enumerate(((8, 12), (12, 16), (16, 20))):
        assert local(lo) <= plan["slots"][str(i)] <= local(hi)
    t = local(7)
    while t < local(21):
        t += 300
        clock.t = t
        before = len(sent.grants)
        sch.run_once()
        if len(sent.grants) > before:  # the holder reports a minute later
            lease = _lease(engine)
            add_result(engine, FIBRE, lease["device"], t + 50, lease["id"])
            clock.t = t + 60
            sch.run_once()
    assert [g[1] for g in sent.grants] == ["off-01"] * 4
    assert [g[2]["trigger"] for g in sent.grants] == ["boot", "slot", "slot", "slot"]
    assert all(g[2]["server"] == S.server and g[2]["mode"] == "full" for g in sent.grants)
    assert m.leases_granted.get() == 4 and m.leases_released.get() == 4
    with engine.connect() as c:
        done = school_state.read(c, FIBRE, PLAN_KEY).value["done"]
        state = leases.lease_state(c, FIBRE, t, S)
    assert sorted(d["slot"] for d in done) == ["0", "1", "2", "boot"]
    assert state["budget"]["tests"] == 4 and state["next_test"] is None
    again = scheduler(engine, clock, sent, seed=99)
    again.run_once()
    assert len(sent.grants) == 4


def _lease(engine):
    with engine.connect() as c:
        return school_state.read(c, FIBRE, LEASE_KEY).value


def test_tester_first_then_wired_and_wifi_only_when_alone(engine):
    _devices(engine)
    set_probe(engine, "lab-01", {"wired": True, "tester": True, "gw_ok": True}, local(8))
    clock, sent = Clock(local(12, 5)), Sent()
    sch = scheduler(engine, clock, sent)
    with engine.connect() as c:
        assert sch.choose_device(c, FIBRE, clock.t) == "lab-01"
    # a designated tester on Wi-Fi is passed over while a wired PC is online
    set_probe(engine, "lab-01", {"wired": False, "tester": True, "gw_ok": True}, local(8))
    with engine.connect() as c:
        assert sch.choose_device(c, FIBRE, clock.t) == "off-01"
    for d in ("lab-01", "srv-01", "off-01"):
        set_online(engine, d, False, local(9))
    with engine.connect() as c:
        assert sch.choose_device(c, FIBRE, clock.t) == "off-wifi"  # the only one left
    set_online(engine, "off-wifi", False, local(9))
    with engine.connect() as c:
        assert sch.choose_device(c, FIBRE, clock.t) is None


def test_link_down_skips_the_heavy_test(engine):
    add_device(engine, FIBRE, "off-01", "office",
               probe={"wired": True, "gw_ok": True, "dom_ok": False, "intl_ok": False,
                      "dns_ok": False}, probe_at=local(9, 55), since=local(7))
    clock, sent = Clock(local(10)), Sent()
    sch = scheduler(engine, clock, sent)
    clock.t = local(11, 59)
    set_probe(engine, "off-01", {"wired": True, "gw_ok": False}, local(11, 55))
    sch.run_once()
    with engine.connect() as c:
        done = school_state.read(c, FIBRE, PLAN_KEY).value["done"]
    # the boot moment (07:00–07:15) passed long ago: missed; the 08–12 test: link down
    assert {d["slot"]: d.get("skipped") for d in done} == {"boot": "missed", "0": "link_down"}
    assert sent.grants == []


def test_holder_vanishes_lease_expires_another_device_gets_the_next_slot(engine):
    add_device(engine, FIBRE, "off-01", "office", probe={"wired": True}, since=local(7))
    add_device(engine, FIBRE, "lab-01", "lab", probe={"wired": True}, since=local(7))
    clock, sent = Clock(local(7, 15)), Sent()
    m = IngestMetrics(Registry())
    sch = scheduler(engine, clock, sent, m)
    sch.run_once()
    assert [g[1] for g in sent.grants] == ["off-01"]
    first = sent.grants[0][2]
    set_online(engine, "off-01", False, clock.t + 30)  # switched off mid-test
    clock.t = first["exp"] + 1
    assert sch.run_once()["expired"] == 1 and m.leases_expired.get() == 1
    # Back on before the next slot: still passed over, its last lease expired unreported.
    set_online(engine, "off-01", True, clock.t + 60)
    clock.t = local(19, 56)  # the latest moment of the 16–20 slot
    sch.run_once()
    assert [g[1] for g in sent.grants][1:] == ["lab-01"]
    # Its late result, run before exp, still counts; one after exp does not.
    add_result(engine, FIBRE, "off-01", first["exp"] - 10, first["id"])
    add_result(engine, FIBRE, "off-01", first["exp"] + 10, first["id"])
    sch.run_once()
    assert [r[2] for r in refused(engine)] == [None, "expired"]
    assert m.results_refused.get(reason="expired") == 1


def test_replayed_and_foreign_results_are_refused(engine):
    add_device(engine, FIBRE, "off-01", "office", probe={"wired": True}, since=local(7))
    add_device(engine, FIBRE, "lab-01", "lab", probe={"wired": True}, since=local(7))
    clock, sent = Clock(local(7, 15)), Sent()
    m = IngestMetrics(Registry())
    sch = scheduler(engine, clock, sent, m)
    sch.run_once()
    lid = sent.grants[0][2]["id"]
    add_result(engine, FIBRE, "lab-01", clock.t + 60, lid)  # not the holder
    add_result(engine, FIBRE, "off-01", clock.t + 60, "made-up")  # no such lease
    add_result(engine, FIBRE, "off-01", clock.t + 70, lid)  # the holder: releases
    clock.t += 80
    sch.run_once()
    add_result(engine, FIBRE, "off-01", clock.t + 5, lid)  # run again under a spent grant? still
    sch.run_once()
    assert [r[2] for r in refused(engine)] == ["not_holder", "unknown_lease", None, None]
    assert m.results_refused.get(reason="not_holder") == 1
    assert m.results_refused.get(reason="unknown_lease") == 1
    assert m.leases_released.get() == 1
    assert not leases.held(_lease(engine), clock.t)


def test_boot_from_the_online_event_and_resend_only_while_valid(engine):
    add_device(engine, FIBRE, "off-01", "office", probe={"wired": True}, online=False)
    clock, sent = Clock(local(6, 30)), Sent()
    sch = scheduler(engine, clock, sent)
    sch.run_once()
    assert _plan(engine) is None  # nobody online: nothing planned
    set_online(engine, "off-01", True, local(6, 31))
    sch.on_event(Event(local(6, 31), "device_online", FIBRE, "off-01", {}))
    clock.t = local(6, 31)
    sch.run_once()
    assert local(6, 31) <= _plan(engine)["boot"] <= local(6, 46)
    clock.t = local(6, 47)
    sch.run_once()
    assert len(sent.grants) == 1
    g = sent.grants[0][2]
    clock.t += 100
    sch.on_event(Event(clock.t, "device_online", FIBRE, "off-01", {}))
    sch.run_once()
    assert len(sent.grants) == 2 and sent.grants[1][2]["id"] == g["id"]
    assert sent.grants[1][2]["ttl"] == pytest.approx(g["exp"] - clock.t)
    clock.t = g["exp"] + 1
    sch.on_event(Event(clock.t, "device_online", FIBRE, "off-01", {}))
    sch.run_once()
    assert len(sent.grants) == 2  # expired: never sent again


def test_boot_test_for_a_pc_approved_after_it_came_online(engine):
    """The school's only PC comes on at 07:00 still pending (its device_online plans
    nothing); it is approved at 10:00: the boot test follows the approval, not 07:00."""
    add_device(engine, FIBRE, "off-01", "office", state="pending", probe={"wired": True},
               since=local(7))
    clock, sent = Clock(local(7, 1)), Sent()
    sch = scheduler(engine, clock, sent)
    sch.on_event(Event(local(7), "device_online", FIBRE, "off-01", {}))
    sch.run_once()
    assert _plan(engine) is None
    clock.t = local(9, 55)
    sch.run_once()
    registry.approve_device(engine, "off-01")
    clock.t = local(10) + 30
    sch.run_once()
    plan = _plan(engine)
    assert local(9, 55) <= plan["boot"] <= local(9, 55) + 900, plan
    clock.t = local(10, 11)  # the boot moment has come (granted at once if it had)
    sch.run_once()
    assert [(g[1], g[2]["trigger"]) for g in sent.grants][:1] == [("off-01", "boot")]


@pytest.mark.parametrize("how", ["device", "school"])
def test_boot_test_for_a_pc_approved_while_no_collector_ran(engine, how):
    """The school's only PC comes on at 07:00 still pending; it is approved at 09:00 (the
    CLI, or the school's "approve all") while no collector runs; a collector starts at
    09:05 with no pass behind it. The boot test follows the approval (the audit log's
    time), not the 07:00 of while it was pending — then it would be long missed."""
    from schoolmon.collector.store import audit
    add_device(engine, FIBRE, "off-01", "office", state="pending", probe={"wired": True},
               since=local(7))
    with engine.begin() as c:
        if how == "device":
            registry.set_device_state(c, "off-01", "active")
            audit.record(c, "cli:root", "device_approve", "off-01",
                         {"school": FIBRE, "from": "pending"}, now=local(9))
        else:
            ids = registry.approve_school_devices(c, FIBRE)
            audit.record(c, "admin", "school_approve", FIBRE, {"devices": ids}, now=local(9))
        # yesterday's approval of another device says nothing about today
        audit.record(c, "admin", "device_approve", "lab-99", {}, now=local(9) - 86400)
    clock, sent = Clock(local(9, 5)), Sent()
    sch = scheduler(engine, clock, sent)
    sch.run_once()
    plan = _plan(engine)
    assert local(9) <= plan["boot"] <= local(9) + 900, plan
    clock.t = max(plan["boot"], clock.t)  # (granted in the first pass if it had come)
    sch.run_once()
    assert [(g[1], g[2]["trigger"]) for g in sent.grants] == [("off-01", "boot")]


def _plan(engine):
    with engine.connect() as c:
        return school_state.read(c, FIBRE, PLAN_KEY).value


def test_sunday_is_no_school_day(engine):
    add_device(engine, FIBRE, "off-01", "office", probe={"wired": True}, since=local(7))
    clock, sent = Clock(local(9, day=MONDAY - 86400)), Sent()
    scheduler(engine, clock, sent).run_once()
    assert _plan(engine) is None and sent.grants == []


def test_the_default_fibre_budget_holds_a_month_of_full_fibre_tests(engine):
    """The shipped defaults: a fibre test moves 340-470 MB (10 s each way at 150-200 Mbit),
    the schedule gives up to 4 a school day (boot and three slots), March 2026 has 26
    school days: the 104th test of the month is still granted. MB are 10^6 bytes."""
    from schoolmon.collector.config import load_config
    s = leases.settings_from_config(load_config(None, env={}, demo=True), S.server)
    assert s.budget_mobile_mb == 1000
    for i in range(4 * 26 - 1):
        add_result(engine, FIBRE, "lab-01", MONDAY - 86400 + i * 900, None,
                   bytes_rx=380_000_000, bytes_tx=90_000_000)
    add_device(engine, FIBRE, "lab-01", "lab")
    with engine.begin() as c:
        got = leases.grant(c, FIBRE, "lab-01", local(8), s)
    assert got.refused is None, (got.used, got.limit, got.expected)
    assert got.limit == s.budget_fibre_mb * 10 ** 6


def test_a_router_on_for_days_is_no_pc_left_on_overnight(engine):
    """The school's router (router.{school}, always on) says nothing about when the PCs
    came on: the boot test is planned from the first PC of the day."""
    add_device(engine, FIBRE, "router." + FIBRE, "router", since=MONDAY - 5 * 86400)
    add_device(engine, FIBRE, "off-01", "office", since=local(7))
    sch = scheduler(engine, Clock(local(7, 1)), Sent())
    sch.run_once()
    plan = _plan(engine)
    assert local(7) <= plan["boot"] <= local(7, 15), plan
    assert not [d for d in plan["done"] if d.get("skipped") == "online_overnight"]
