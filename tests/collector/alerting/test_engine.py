"""The alert lifecycle on SQLite and the real PostgreSQL, with a controllable clock (``now``
passed in) and a fake calendar: pending → firing after ``for``, windows, one resolution,
hysteresis against flapping, dependencies (router dies → one alert), silences, restarts
from the cursor, a clock that goes back, and two evaluators on one store."""
import threading

import pytest
from schoolmon.collector.alerting.engine import CURSOR_KEY, AlertEngine
from schoolmon.collector.alerting.leader import Leader
from schoolmon.collector.alerting.rules import load_rules
from schoolmon.collector.store import StateStore, registry
from schoolmon.collector.store import schema as db
from sqlalchemy import select, update

from tests.collector.storehelp import engine_for

from .fleet import HOUR, MIN, T0, FakeCalendar, School, alerts, events, open_alerts

RULES = load_rules()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    for e in engine_for(request.param, tmp_path, postgres):
        db.create_all(e)
        registry.add_schools(e, [
            {"code": code, "name": "Trường TH " + code, "level": "TH", "area": "Bát Xát",
             "province": "Lào Cai"} for code in ("S1", "S2", "S3")])
        yield e


def evaluator(engine, calendar=None):
    return AlertEngine(engine, RULES, calendar or FakeCalendar())


def test_school_silent_in_school_hours_fires_after_for_and_resolves_once(engine):
    store = StateStore(engine)
    s1, s2 = School(store, "S1"), School(store, "S2")
    s1.online(T0 - HOUR)
    s2.online(T0 - HOUR)
    ev = evaluator(engine)
    ev.evaluate(T0 - 30 * MIN, full=True)
    assert alerts(engine) == []
    s1.offline(T0)  # 10:00 on a school day: the whole school goes silent
    ev.evaluate(T0 + MIN)
    school = alerts(engine, rule="school_offline")
    assert [(a.subject, a.state) for a in school] == [("school:S1", "pending")]
    ev.evaluate(T0 + 14 * MIN, full=True)
    assert alerts(engine, rule="school_offline")[0].state == "pending"
    ev.evaluate(T0 + 16 * MIN, full=True)
    a = alerts(engine, rule="school_offline")[0]
    assert a.state == "firing" and a.fired_at == T0 + 16 * MIN
    # the value the routing and pages read
    assert a.value["title"]["vi"] == "Trường TH S1: mất kết nối toàn trường"
    assert "Bát Xát" in a.value["text"]["vi"] and "10:00 02/12/2026" in a.value["text"]["vi"]
    assert "since 10:00 02/12/2026 (15 min)" in a.value["text"]["en"]
    assert a.value["school_name"] == "Trường TH S1" and a.value["device_name"] is None
    assert a.value["evidence"]["devices"] == 4 and a.area_code == "lao-cai/bat-xat"
    # the router and the PCs: open, but suppressed by the school's alert; nothing fired
    others = [x for x in alerts(engine) if x.rule != "school_offline"]
    assert {x.rule for x in others} == {"router_down", "lab_pc_offline"}
    assert all(x.suppressed_by == a.id for x in others)
    assert {x.state for x in others if x.rule == "lab_pc_offline"} == {"pending"}
    # it comes back: resolved after clear_for (10 min), once
    ev.evaluate(T0 + 29 * MIN, full=True)
    s1.online(T0 + 30 * MIN)
    ev.evaluate(T0 + 31 * MIN)
    assert alerts(engine, rule="school_offline")[0].state == "firing"
    ev.evaluate(T0 + 45 * MIN, full=True)
    ev.evaluate(T0 + 50 * MIN, full=True)
    a = alerts(engine, rule="school_offline")[0]
    assert a.state == "resolved" and a.resolved_at == T0 + 45 * MIN
    assert events(engine, a.id) == ["pending", "firing", "resolved"]
    assert open_alerts(engine) == {}
    for x in others:  # the router fired too (its rule has no window), unseen: suppressed
        kinds = events(engine, x.id)
        assert kinds[:2] == ["pending", "suppressed"]
        assert kinds[-1] == ("resolved" if x.rule == "router_down" else "cancelled")


@pytest.mark.parametrize("when,holidays", [(T0 + 11 * HOUR, ()),  # 21:00
                                           (T0, ("2026-12-02",))])  # a holiday
def test_school_silent_outside_school_hours_opens_nothing(engine, when, holidays):
    store = StateStore(engine)
    s1 = School(store, "S1")
    s1.online(when - HOUR)
    ev = evaluator(engine, FakeCalendar(holidays))
    s1.offline(when)
    for t in (when + MIN, when + 20 * MIN, when + 2 * HOUR):
        ev.evaluate(t, full=True)
    # the router follows its own rule (always): one warning, nothing about the school
    assert [(a.rule, a.state) for a in alerts(engine)] == [("router_down", "firing")]


def test_flapping_device_gives_one_alert(engine):
    store = StateStore(engine)
    s = School(store, "S1", pcs=2, role="server", router=False)
    s.online(T0 - HOUR)  # the second server stays on: not a school outage
    ev = evaluator(engine)
    ev.evaluate(T0 - HOUR + MIN, full=True)
    srv = s.pcs[0]
    t = T0
    for _ in range(10):  # offline 2 min, online 1 min, ten times (30 min)
        s.offline(t, devices=[srv])
        ev.evaluate(t + 30, full=True)
        ev.evaluate(t + 90, full=True)
        s.online(t + 2 * MIN, devices=[srv])
        ev.evaluate(t + 2 * MIN + 30, full=True)
        t += 3 * MIN
    ev.evaluate(t + 2 * MIN, full=True)
    ev.evaluate(t + 6 * MIN, full=True)
    rows = alerts(engine, rule="server_offline")
    assert len(rows) == 1
    assert rows[0].state == "resolved"
    assert events(engine, rows[0].id) == ["pending", "firing", "resolved"]


def test_pending_that_clears_before_for_is_cancelled(engine):
    store = StateStore(engine)
    s = School(store, "S1", pcs=2, role="server", router=False)
    s.online(T0 - HOUR)
    ev = evaluator(engine)
    s.offline(T0, devices=s.pcs[:1])
    ev.evaluate(T0 + MIN, full=True)
    s.online(T0 + 3 * MIN, devices=s.pcs[:1])
    ev.evaluate(T0 + 4 * MIN, full=True)
    ev.evaluate(T0 + 9 * MIN, full=True)
    rows = alerts(engine, rule="server_offline")
    assert [r.state for r in rows] == ["resolved"] and rows[0].fired_at is None
    assert events(engine, rows[0].id) == ["pending", "cancelled"]


def test_router_dies_one_alert_not_one_per_pc(engine):
    store = StateStore(engine)
    s1 = School(store, "S1", pcs=30)
    s1.online(T0 - HOUR)
    ev = evaluator(engine)
    s1.offline(T0)
    for t in (T0 + MIN, T0 + 20 * MIN, T0 + 4 * HOUR):
        ev.evaluate(t, full=True)
    rows = [r for r in alerts(engine) if r.state == "firing"]
    unsuppressed = [r for r in rows if r.suppressed_by is None]
    assert [r.rule for r in unsuppressed] == ["school_offline"]
    # lab PCs fired by now (3 h), and the router: all suppressed by the school's alert
    assert len(rows) == 32 and all(r.suppressed_by == unsuppressed[0].id
                                   for r in rows if r is not unsuppressed[0])


def test_router_only_down_suppresses_the_school_devices(engine):
    """PCs still on (e.g. the broker is in the province network), the router does not
    answer: its alert suppresses the school's devices' offline alerts (not itself, and not
    what the outage does not explain, like a full disk)."""
    store = StateStore(engine)
    s = School(store, "S1", pcs=2, role="server")
    s.online(T0 - HOUR)
    ev = evaluator(engine)
    s.send(s.pcs[0], "router", T0, host="192.168.1.1", gw_ok=False, snmp_ok=False)
    # the server still on has a full disk: the router's outage does not explain that
    s.send(s.pcs[0], "health", T0, cpu_pct=20.0, cpu_n=4, mem_pct=40.0, up=100,
           disks=[{"mnt": "C:", "pct": 97.5, "free": 1_000_000, "size": 100_000_000}])
    s.offline(T0, devices=[s.pcs[1]])
    ev.evaluate(T0 + 20 * MIN, full=True)
    got = open_alerts(engine)
    router = got["router_down device:router.S1"]
    server = got["server_offline device:s1-pc1"]
    assert router.state == "firing" and router.suppressed_by is None
    assert server.state == "firing" and server.suppressed_by == router.id
    assert "suppressed" in events(engine, server.id)
    disk = got["device_disk_full device:s1-pc0"]
    assert disk.suppressed_by is None and "suppressed" not in events(engine, disk.id)
    s.send(s.pcs[0], "router", T0 + 30 * MIN, host="192.168.1.1", gw_ok=True, wan_up=True)
    ev.evaluate(T0 + 31 * MIN, full=True)
    ev.evaluate(T0 + 42 * MIN, full=True)
    server = open_alerts(engine)["server_offline device:s1-pc1"]
    assert server.suppressed_by is None and events(engine, server.id)[-1] == "unsuppressed"


def test_silences_match_every_given_matcher(engine):
    store = StateStore(engine)
    s1, s2 = School(store, "S1", pcs=2, role="server"), School(store, "S2", pcs=2,
                                                                role="server")
    s1.online(T0 - HOUR)
    s2.online(T0 - HOUR)
    base = dict(rule=None, school_code=None, area_code=None, device_id=None,
                deleted_at=None, deleted_by=None)
    with engine.begin() as c:
        for row in [
            # S1, any rule, until 10:30: matches
            dict(kind="maintenance", school_code="S1", starts_at=T0 - HOUR,
                 ends_at=T0 + 30 * MIN, comment="bảo trì", created_by="ops", created_at=T0),
            # S2 but another rule: does not match
            dict(kind="silence", rule="school_offline", school_code="S2", starts_at=T0,
                 ends_at=T0 + HOUR, comment="x", created_by="ops", created_at=T0),
            # S2 and the area, deleted: does not match
            dict(kind="silence", school_code="S2", area_code="lao-cai/bat-xat",
                 starts_at=T0, ends_at=T0 + HOUR, comment="x", created_by="ops",
                 created_at=T0, deleted_at=T0, deleted_by="ops"),
        ]:
            c.execute(db.silences.insert().values(**dict(base, **row)))
    ev = evaluator(engine)
    s1.offline(T0, devices=s1.pcs[:1])
    s2.offline(T0, devices=s2.pcs[:1])
    ev.evaluate(T0 + 15 * MIN, full=True)
    got = open_alerts(engine)
    a1, a2 = got["server_offline device:s1-pc0"], got["server_offline device:s2-pc0"]
    assert a1.silenced_by is not None and a2.silenced_by is None
    assert a1.state == "firing"  # a silence mutes, it does not stop the lifecycle
    ev.evaluate(T0 + 31 * MIN, full=True)  # the maintenance window ended
    a1 = open_alerts(engine)["server_offline device:s1-pc0"]
    assert a1.silenced_by is None
    assert events(engine, a1.id) == ["pending", "firing", "silenced", "unsilenced"]


def test_restart_continues_from_the_cursor(engine):
    store = StateStore(engine)
    s1 = School(store, "S1", pcs=3, role="server", router=False)
    s1.online(T0 - HOUR)
    first = evaluator(engine)
    first.evaluate(T0 - 50 * MIN, full=True)
    s1.offline(T0, devices=s1.pcs[:2])
    first.evaluate(T0 + MIN)  # the events since the cursor
    first.evaluate(T0 + 11 * MIN, full=True)
    cursor = first.cursor()
    assert cursor["event_id"] > 0
    # a new process: the same cursor, nothing new → nothing to do
    second = evaluator(engine)
    assert second.cursor() == cursor
    assert second.evaluate(T0 + 12 * MIN).skipped
    second.evaluate(T0 + 13 * MIN, full=True)
    s1.online(T0 + 14 * MIN, devices=s1.pcs[:2])
    got = second.evaluate(T0 + 14.5 * MIN)  # reacts to the events, one school
    assert not got.full and got.schools == 1
    second.evaluate(T0 + 20 * MIN, full=True)
    third = evaluator(engine)
    third.evaluate(T0 + 21 * MIN, full=True)
    for a in alerts(engine, rule="server_offline"):
        assert events(engine, a.id) == ["pending", "firing", "resolved"]
    assert len(alerts(engine, rule="server_offline")) == 2
    with engine.connect() as c:
        assert c.execute(select(db.attt_state.c.key).where(
            db.attt_state.c.key == CURSOR_KEY)).scalar() == CURSOR_KEY


def test_clock_going_back_neither_resolves_nor_fires_again(engine):
    store = StateStore(engine)
    s1 = School(store, "S1", pcs=2, role="server", router=False)
    s1.online(T0 - HOUR)
    ev = evaluator(engine)
    one = s1.pcs[:1]
    s1.offline(T0, devices=one)
    ev.evaluate(T0 + MIN, full=True)
    ev.evaluate(T0 + 12 * MIN, full=True)
    a = alerts(engine, rule="server_offline")[0]
    assert a.state == "firing"
    s1.online(T0 + 13 * MIN, devices=one)
    ev.evaluate(T0 + 30 * MIN, full=True)  # false for 17 min: resolved
    assert alerts(engine, rule="server_offline")[0].state == "resolved"
    s1.offline(T0 + 31 * MIN, devices=one)
    ev.evaluate(T0 + 32 * MIN, full=True)  # a new occurrence, pending
    b = open_alerts(engine)["server_offline device:s1-pc0"]
    # the clock jumps back an hour: the open alert is left alone
    ev.evaluate(T0 - 28 * MIN, full=True)
    ev.evaluate(T0 - 10 * MIN, full=True)
    b2 = open_alerts(engine)["server_offline device:s1-pc0"]
    assert (b2.state, b2.rev) == (b.state, b.rev)
    assert events(engine, a.id) == ["pending", "firing", "resolved"]
    assert events(engine, b.id) == ["pending"]


def test_ack_written_meanwhile_is_kept(engine):
    store = StateStore(engine)
    s1 = School(store, "S1", pcs=2, role="server", router=False)
    s1.online(T0 - HOUR)
    ev = evaluator(engine)
    s1.offline(T0, devices=s1.pcs[:1])
    ev.evaluate(T0 + 11 * MIN, full=True)
    a = alerts(engine, rule="server_offline")[0]
    with engine.begin() as c:  # what the API does
        c.execute(update(db.alerts).where(db.alerts.c.id == a.id).values(
            ack_by="gv.tinhoc", ack_at=T0 + 12 * MIN, ack_comment="đang xử lý",
            rev=db.alerts.c.rev + 1))
    s1.online(T0 + 13 * MIN, devices=s1.pcs[:1])
    ev.evaluate(T0 + 30 * MIN, full=True)
    a = alerts(engine, rule="server_offline")[0]
    assert a.state == "resolved" and (a.ack_by, a.ack_comment) == ("gv.tinhoc", "đang xử lý")


def test_leader_lock_one_of_two(engine):
    one, two = Leader(engine, "alerting"), Leader(engine, "alerting")
    try:
        assert one.acquire()
        if engine.dialect.name == "postgresql":
            assert not two.acquire()
            assert one.acquire()  # still held: a check, not a second lock
            one.release()
            assert two.acquire() and not one.acquire()
        else:
            assert two.acquire()  # SQLite: the one process leads
    finally:
        one.release()
        two.release()


@pytest.fixture
def pg_engine(tmp_path, postgres):
    for e in engine_for("postgresql", tmp_path, postgres):
        db.create_all(e)
        registry.add_schools(e, [
            {"code": code, "name": "Trường TH " + code, "level": "TH", "area": "Bát Xát",
             "province": "Lào Cai"} for code in ("S1", "S2", "S3")])
        yield e


def test_two_engines_at_once_one_evaluates(pg_engine):
    """Two collectors on one PostgreSQL store (the SQLite store has one process)."""
    engine = pg_engine
    store = StateStore(engine)
    fleet = [School(store, code, pcs=10, role="server") for code in ("S1", "S2", "S3")]
    for s in fleet:
        s.online(T0 - HOUR)
        s.offline(T0, devices=s.pcs[:9])  # one stays on: device alerts, not the school's
    barrier = threading.Barrier(2)
    ran = []

    def run(name):
        leader = Leader(engine, "alerting")
        ev = evaluator(engine)
        barrier.wait()
        try:
            for t in (T0 + MIN, T0 + 12 * MIN, T0 + 20 * MIN):
                if leader.acquire():
                    ev.evaluate(t, full=True)
                    ran.append(name)
            barrier.wait()
        finally:
            leader.release()

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(set(ran)) == 1 and len(ran) == 3
    # and without the lock, two racing evaluators still record each transition once
    evs = [evaluator(engine), evaluator(engine)]
    for s in fleet:
        s.online(T0 + 25 * MIN, devices=s.pcs[:9])
    threads = [threading.Thread(target=e.evaluate, args=(T0 + 40 * MIN, True)) for e in evs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for a in alerts(engine, rule="server_offline"):
        assert events(engine, a.id) == ["pending", "firing", "resolved"]


def test_clear_for_counts_from_the_last_time_seen_true(engine):
    """``last_true_at`` is written at most once a minute while true (TOUCH), but the
    resolution waits ``clear_for`` (5 min for servers) from the last pass that saw it true."""
    store = StateStore(engine)
    s1 = School(store, "S1", pcs=2, role="server", router=False)
    s1.online(T0 - HOUR)
    ev = evaluator(engine)
    one = s1.pcs[:1]
    s1.offline(T0, devices=one)
    ev.evaluate(T0 + 11 * MIN, full=True)
    ev.evaluate(T0 + 11 * MIN + 50, full=True)  # true, not written (under a minute)
    s1.online(T0 + 12 * MIN, devices=one)
    ev.evaluate(T0 + 12 * MIN + 5, full=True)
    ev.evaluate(T0 + 16 * MIN + 30, full=True)  # 4 min 40 s since last seen true
    assert alerts(engine, rule="server_offline")[0].state == "firing"
    ev.evaluate(T0 + 17 * MIN, full=True)
    a = alerts(engine, rule="server_offline")[0]
    assert a.state == "resolved" and a.last_true_at == T0 + 11 * MIN + 50


def test_a_failing_rule_is_counted_and_keeps_its_alerts(engine, monkeypatch):
    from schoolmon.collector.alerting import conditions
    store = StateStore(engine)
    s1 = School(store, "S1", pcs=2, role="server", router=False)
    s1.online(T0 - HOUR)
    failed = []
    ev = AlertEngine(engine, RULES, FakeCalendar(), on_rule_error=failed.append)
    s1.offline(T0, devices=s1.pcs[:1])
    ev.evaluate(T0 + 11 * MIN, full=True)
    assert alerts(engine, rule="server_offline")[0].state == "firing"

    def broken(facts, params):  # half-way: one finding, then a bug
        yield conditions.Finding("device:s1-pc1", "S1", "s1-pc1", {"reason": "x"})
        raise RuntimeError("bug")

    spec = conditions.CONDITIONS["device_offline"]
    monkeypatch.setitem(conditions.CONDITIONS, "device_offline",
                        conditions.ConditionSpec(broken, spec.subject, spec.params,
                                                 spec.placeholders, spec.doc))
    got = ev.evaluate(T0 + 30 * MIN, full=True)
    assert "server_offline" in got.rule_errors and "server_offline" in failed
    # an error is no evidence of recovery, and what it found before failing is not used
    assert [(a.subject, a.state) for a in alerts(engine, rule="server_offline")] == [
        ("device:s1-pc0", "firing")]


def test_scope_limits_a_rule_to_its_org_units(engine, tmp_path):
    from schoolmon.collector.alerting.rules import load_rules as load
    registry.add_schools(engine, [{"code": "X1", "name": "Trường X1", "level": "TH",
                                   "area": "Sa Pa", "province": "Lào Cai"}])
    path = tmp_path / "rules.toml"
    path.write_text('''version = 1
[[rule]]
id = "server_offline_bat_xat"
condition = "device_offline"
severity = "critical"
scope = ["lao-cai/bat-xat"]
title = { vi = "{device_name}", en = "{device_name}" }
text = { vi = "{device_name}", en = "{device_name}" }
''', encoding="utf-8")
    store = StateStore(engine)
    s1, x1 = School(store, "S1", pcs=2, router=False), School(store, "X1", pcs=2,
                                                              router=False)
    s1.online(T0 - HOUR)
    x1.online(T0 - HOUR)
    s1.offline(T0, devices=s1.pcs[:1])
    x1.offline(T0, devices=x1.pcs[:1])
    AlertEngine(engine, load(str(path)), FakeCalendar()).evaluate(T0 + MIN, full=True)
    assert [a.subject for a in alerts(engine)] == ["device:s1-pc0"]



def test_a_school_still_dark_in_the_first_hour_of_school_is_not_yet_offline(engine):
    """The shipped school_offline rule has grace = 60m: a school whose PCs are all still
    off at 07:15 (they went off the evening before) raises nothing; still dark after 08:00
    it opens then and fires ``for`` (15 min) later."""
    assert next(r for r in RULES.rules if r.id == "school_offline").grace_s == HOUR
    store = StateStore(engine)
    s1 = School(store, "S1")
    s1.online(T0 - 17 * HOUR)  # 17:00 the day before
    s1.offline(T0 - 16 * HOUR)  # switched off at 18:00
    ev = evaluator(engine)
    for t in (T0 - 3 * HOUR, T0 - 3 * HOUR + 16 * MIN, T0 - 2 * HOUR - MIN):  # 07:00–07:59
        ev.evaluate(t, full=True)
        assert alerts(engine, rule="school_offline") == []
    ev.evaluate(T0 - 2 * HOUR + MIN, full=True)  # 08:01
    assert [a.state for a in alerts(engine, rule="school_offline")] == ["pending"]
    ev.evaluate(T0 - 2 * HOUR + 17 * MIN, full=True)  # 08:17
    assert [a.state for a in alerts(engine, rule="school_offline")] == ["firing"]


def test_grace_needs_a_window(tmp_path):
    from schoolmon.collector.alerting.rules import RulesError
    path = tmp_path / "rules.toml"
    path.write_text('version = 1\n[[rule]]\nid = "x"\ncondition = "school_offline"\n'
                    'severity = "critical"\ngrace = "1h"\n'
                    'title = { vi = "a", en = "a" }\ntext = { vi = "b", en = "b" }\n',
                    encoding="utf-8")
    with pytest.raises(RulesError, match=r"rules.toml:6: .*grace"):
        load_rules(str(path))
