"""Each condition of the shipped rules on facts read from a real store (SQLite and
PostgreSQL), filled through the real wire format, the store's commit and the ATTT
evaluator: device offline, school offline, Internet down (router WAN, failing probes),
below the baselines, antivirus off, disk full, CPU hot, reboot pending, agent silent, and
the collector's own health."""
import pytest
from schoolmon.collector.alerting.conditions import (
    CONDITIONS,
    NOTIFY_HEALTH_PREFIX,
    CollectorStats,
    load_facts,
)
from schoolmon.collector.alerting.engine import AlertEngine
from schoolmon.collector.alerting.rules import load_rules
from schoolmon.collector.baseline import load_baseline, load_os_table
from schoolmon.collector.posture import Evaluator, Rules
from schoolmon.collector.store import StateStore, registry
from schoolmon.collector.store import schema as db

from tests.collector.postures import good_security, windows_inventory
from tests.collector.storehelp import engine_for

from .fleet import HOUR, MIN, T0, FakeCalendar, School, open_alerts

DAY = 86400.0


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    for e in engine_for(request.param, tmp_path, postgres):
        db.create_all(e)
        registry.add_schools(e, [
            {"code": code, "name": "Trường " + code, "level": "THCS", "area": "Sa Pa",
             "province": "Lào Cai"} for code in ("S1", "S2", "S3", "S4", "S5")])
        yield e


def disk(pct):
    return [{"mnt": "C:", "pct": pct, "free": 1_000_000, "size": 100_000_000}]


@pytest.fixture
def fleet(engine):
    store = StateStore(engine)
    s1, s2, s3 = (School(store, c, pcs=3, role="office") for c in ("S1", "S2", "S3"))
    s4 = School(store, "S4", pcs=2, role="lab", router=False)
    s1.online(T0 - HOUR)
    s2.online(T0 - HOUR, wan_up=False)  # the router answers: its WAN link is down
    s3.online(T0 - HOUR)
    s4.online(T0 - 9 * DAY)
    # S1: a full disk and a hot CPU on pc0, a reboot pending on pc1, antivirus off on pc2
    s1.send("s1-pc0", "health", T0 - MIN, cpu_pct=20.0, cpu_n=4, mem_pct=40.0, up=100,
            disks=disk(97.5), temp=93.0)
    s1.send("s1-pc1", "health", T0 - MIN, cpu_pct=20.0, cpu_n=4, mem_pct=40.0, up=100,
            disks=disk(40.0), temp=50.0)
    for d in s1.pcs:
        s1.send(d, "inventory", T0 - HOUR, hostname=d.upper(), **windows_inventory("office"))
    s1.send("s1-pc0", "security", T0 - 30 * MIN, **good_security(T0))
    s1.send("s1-pc1", "security", T0 - 30 * MIN, **good_security(T0, reboot_pending=True))
    s1.send("s1-pc2", "security", T0 - 30 * MIN, **good_security(T0, av_on=False, av=[],
                                                                   av_name=""))
    Evaluator(engine, Rules(load_baseline(), load_os_table())).run_once(T0)
    # S3: the PCs are on, their probes reach neither target
    for d in s3.pcs:
        s3.send(d, "probe", T0 - 2 * MIN, gw_ok=True, dom_ok=False, intl_ok=False)
    # S2 with PCs that probe fine (its router says WAN down: that decides)
    for d in s2.pcs:
        s2.send(d, "probe", T0 - 2 * MIN, gw_ok=True, dom_ok=True, intl_ok=True)
    # S5 below both baselines (the evaluators' tables)
    with engine.begin() as c:
        for table in (db.connectivity_schools, db.attt_schools):
            c.execute(table.delete().where(table.c.school_code == "S5"))
            c.execute(table.insert().values(school_code="S5", status="below",
                                            since=T0 - DAY, evaluated_at=T0, detail={}, rev=1))
        c.execute(db.attt_state.insert().values(
            key=NOTIFY_HEALTH_PREFIX + "zalo", updated_at=T0, rev=1,
            value={"ok": False, "since": T0 - 20 * MIN, "error": "HTTP 401 từ Zalo"}))
        c.execute(db.attt_state.insert().values(
            key=NOTIFY_HEALTH_PREFIX + "email", updated_at=T0, rev=1,
            value={"ok": True, "since": T0 - DAY, "error": ""}))
    return {"S1": s1, "S2": s2, "S3": s3, "S4": s4}


def found(engine, name, stats=None, only=None, **params):
    spec = CONDITIONS[name]
    with engine.connect() as c:
        facts = load_facts(c, T0, stats, only)
    p = dict(spec.params, **params)
    return {f.subject: f for f in spec.run(facts, p)}


def test_device_and_school_offline(engine, fleet):
    s4 = fleet["S4"]
    s4.offline(T0 - 5 * MIN, devices=[s4.pcs[0]])
    got = found(engine, "device_offline")
    assert set(got) == {"device:s4-pc0"}
    assert got["device:s4-pc0"].evidence == {"reason": "lost", "role": "lab"}
    assert got["device:s4-pc0"].since == T0 - 5 * MIN + 0.5
    assert found(engine, "school_offline") == {}
    s4.offline(T0 - 2 * MIN, devices=[s4.pcs[1]])
    got = found(engine, "school_offline")
    assert set(got) == {"school:S4"} and got["school:S4"].since == T0 - 2 * MIN + 0.5


def test_router_timed_out_with_every_pc_off_is_no_finding(engine, fleet):
    """A router is heard only through its PCs' polls: silent because the lab is off (night,
    Tết), it is not "router down"; a poll that answered nothing is."""
    from schoolmon.collector.store import StateStore
    s1 = fleet["S1"]
    s1.offline(T0 - 30 * MIN, router=False)  # the PCs shut down; the router's poll stops
    StateStore(engine).sweep(T0 + 2 * HOUR)  # the router times out (3 × 900 s + 60 s)
    with engine.connect() as c:
        facts = load_facts(c, T0 + 2 * HOUR, None, None)
    assert facts.devices["router.S1"].offline_reason == "timeout"
    got = {f.subject for f in CONDITIONS["device_offline"].run(facts, {})}
    assert "device:router.S1" not in got and "device:s1-pc0" in got
    assert "school:S1" in {f.subject for f in CONDITIONS["school_offline"].run(facts, {})}
    fleet["S2"].offline(T0 - MIN)  # S2's router answered nothing: that is evidence
    assert "device:router.S2" in found(engine, "device_offline")


def test_internet_down_by_router_or_probes(engine, fleet):
    got = found(engine, "school_internet_down")
    assert set(got) == {"school:S2", "school:S3"}
    assert got["school:S2"].evidence["cause"] == "wan_down"
    assert got["school:S3"].evidence == {"cause": "probes_failed", "online_pcs": 3,
                                         "probes": 3, "probes_ok_pct": 0.0}
    # one PC reaches the Internet: not down
    s3 = fleet["S3"]
    s3.send("s3-pc1", "probe", T0 - MIN, gw_ok=True, dom_ok=True, intl_ok=False)
    assert set(found(engine, "school_internet_down")) == {"school:S2"}
    # probes older than probe_max_age_s do not count
    assert set(found(engine, "school_internet_down", probe_max_age_s=30.0)) == {"school:S2"}
    # PCs all off: that is the school-offline rule's case, not this one
    fleet["S2"].offline(T0 - MIN, router=False)
    assert "school:S2" not in found(engine, "school_internet_down")


def test_below_the_baselines(engine, fleet):
    assert set(found(engine, "below_connectivity")) == {"school:S5"}
    # S1 has a PC without antivirus: the real ATTT evaluator judged it below too
    assert set(found(engine, "below_attt")) == {"school:S1", "school:S5"}
    assert found(engine, "below_attt")["school:S5"].since == T0 - DAY
    # other statuses by the rule's parameter (schools with too few PCs reporting)
    assert "school:S5" not in found(engine, "below_attt", statuses=["insufficient"])
    assert "school:S2" in found(engine, "below_attt", statuses=["insufficient"])


def test_device_critical(engine, fleet):
    assert set(found(engine, "device_disk_full")) == {"device:s1-pc0"}
    assert found(engine, "device_disk_full")["device:s1-pc0"].evidence["disk_pct"] == 97.5
    assert found(engine, "device_disk_full", pct=98) == {}
    assert set(found(engine, "device_cpu_hot")) == {"device:s1-pc0"}
    assert found(engine, "device_cpu_hot", celsius=95) == {}
    assert set(found(engine, "device_reboot_pending")) == {"device:s1-pc1"}
    assert set(found(engine, "device_av_off")) == {"device:s1-pc2"}
    got = found(engine, "agent_silent")
    assert set(got) == {"device:s4-pc0", "device:s4-pc1"}
    assert got["device:s4-pc0"].evidence["silent_days"] == 8  # 8.99 days: whole days


def test_collector_health(engine, fleet):
    assert found(engine, "ingest_stalled") == {}
    stalled = CollectorStats(ingest_stalled_s=300.0, ingest_pending=1234,
                             timeseries_ok=False)
    assert set(found(engine, "ingest_stalled", stalled)) == {"collector:ingest"}
    assert set(found(engine, "timeseries_failing", stalled)) == {"collector:timeseries"}
    assert found(engine, "timeseries_failing", CollectorStats(timeseries_ok=None)) == {}
    got = found(engine, "notify_channel_failing")
    assert set(got) == {"collector:notify.zalo"}
    assert got["collector:notify.zalo"].evidence["error"] == "HTTP 401 từ Zalo"
    # an incremental pass (some schools) does not judge the collector
    assert found(engine, "ingest_stalled", stalled, only={"S1"}) == {}


def test_partial_facts_are_the_schools_asked(engine, fleet):
    assert set(found(engine, "device_disk_full", only={"S2"})) == set()
    assert set(found(engine, "device_disk_full", only={"S1"})) == {"device:s1-pc0"}


def test_shipped_rules_end_to_end(engine, fleet):
    """The shipped rules over this fleet: what opens, with texts in both languages."""
    ev = AlertEngine(engine, load_rules(), FakeCalendar(),
                     stats=lambda: CollectorStats(ingest_stalled_s=0.0))
    s1, s3 = fleet["S1"], fleet["S3"]
    for t in range(0, 71, 10):  # every 10 minutes for 70 minutes, the devices reporting
        now = T0 + t * MIN
        s1.send("s1-pc0", "health", now - 30, cpu_pct=20.0, cpu_n=4, mem_pct=40.0, up=100,
                disks=disk(97.5), temp=93.0)
        for d in s3.pcs:
            s3.send(d, "probe", now - 30, gw_ok=True, dom_ok=False, intl_ok=False)
        ev.evaluate(now, full=True)
    got = open_alerts(engine)
    assert got["device_disk_full device:s1-pc0"].state == "firing"
    disk_alert = got["device_disk_full device:s1-pc0"].value
    assert disk_alert["title"]["vi"] == "Trường S1: ổ đĩa S1-PC0 đầy 98 %"
    assert "(ngưỡng 95 %)" in disk_alert["text"]["vi"]
    assert got["device_cpu_hot device:s1-pc0"].value["title"]["en"] == (
        "Trường S1: S1-PC0 CPU too hot (93 °C)")
    assert got["school_internet_down school:S3"].state == "firing"
    assert "không truy cập được Internet" in got["school_internet_down school:S3"].value[
        "text"]["vi"]
    assert got["device_reboot_pending device:s1-pc1"].state == "pending"  # 7 days
    assert got["device_av_off device:s1-pc2"].state == "firing"
    assert got["below_attt school:S5"].state == "firing"
    assert got["notify_channel_failing collector:notify.zalo"].state == "firing"
    assert got["notify_channel_failing collector:notify.zalo"].school_code is None
    assert got["agent_silent device:s4-pc0"].value["title"]["vi"] == (
        "Trường S4: S4-PC0 không báo về 9 ngày")
    assert set(got) >= {"below_attt school:S1", "school_internet_down school:S2"}
