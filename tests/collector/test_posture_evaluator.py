"""The ATTT evaluator on SQLite and the real PostgreSQL: from scratch, incremental (only
devices with a new security or inventory message), the 7-day silence rule (the daily full
pass), a changed baseline file (its hash), one event per school change, the daily history,
and two evaluators on one store."""
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from schoolmon.collector.baseline import load_baseline, load_os_table, parse_baseline
from schoolmon.collector.baseline.attt import SHIPPED_ATTT_FILE
from schoolmon.collector.posture import Evaluator, Rules, rules_from_config
from schoolmon.collector.store import StateStore, registry
from schoolmon.collector.store import schema as db
from sqlalchemy import func, select

from tests.collector.postures import DAY, good_security, send, windows_inventory

from .storehelp import engine_for, received

T0 = 1_796_180_400.0  # 2026-12-02T03:00:00Z, 10:00 in Hà Nội
RULES = Rules(load_baseline(), load_os_table())


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    for e in engine_for(request.param, tmp_path, postgres):
        db.create_all(e)
        registry.add_schools(e, [
            {"code": code, "name": "Trường " + code, "level": "TH", "area": "Bát Xát",
             "province": "Lào Cai"} for code in ("S1", "S2", "S3")])
        yield e


class School:
    """PCs of one school reporting through the store's real prepare/commit."""

    def __init__(self, store, code, n, office=1):
        self.store, self.code = store, code
        self.ids = ["%s-pc%02d" % (code.lower(), i) for i in range(n)]
        self.seq = {d: 0 for d in self.ids}
        for i, d in enumerate(self.ids):
            self.msg(d, "inventory", T0 - 3600,
                     hostname=d, **windows_inventory(role="office" if i < office else "lab"))

    def msg(self, device, kind, ts, **fields):
        self.seq[device] += 1
        send(self.store, self.code, device, kind, self.seq[device], ts, **fields)

    def report(self, ts, devices=None, **over):
        for d in devices or self.ids:
            self.msg(d, "security", ts, **good_security(ts, **over))


def status(engine, code):
    with engine.connect() as c:
        return c.execute(select(db.attt_schools.c.status).where(
            db.attt_schools.c.school_code == code)).scalar()


def events(engine):
    with engine.connect() as c:
        return [(r.school, r.detail["from"], r.detail["to"]) for r in c.execute(
            select(db.events).where(db.events.c.kind == "attt_status_changed")
            .order_by(db.events.c.id))]


def device(engine, did):
    with engine.connect() as c:
        return c.execute(select(db.attt_devices).where(db.attt_devices.c.device_id == did)).first()


def test_from_scratch_then_incremental(engine):
    store = StateStore(engine)
    s1, s2 = School(store, "S1", 10), School(store, "S2", 4)
    s1.report(T0 - 600)
    s2.report(T0 - 600, av_on=False, av_name="")
    ev = Evaluator(engine, RULES)
    stats, evs = ev.run_once(T0)
    assert stats.full and stats.devices == 14 and stats.schools == 3
    assert (status(engine, "S1"), status(engine, "S2"), status(engine, "S3")) == \
        ("meets", "below", "no_pcs")
    assert sorted((e.school, e.detail["to"]) for e in evs) == [
        ("S1", "meets"), ("S2", "below"), ("S3", "no_pcs")]
    # nothing new: nothing judged, no event
    stats, evs = ev.run_once(T0 + 600)
    assert not stats.full and (stats.devices, stats.schools, evs) == (0, 0, [])
    # a message committed late (received before the watermark, within the overlap) is seen
    # (received at T0-620, before the watermark T0-599.5 the first pass saw)
    late = s1.ids[5]
    s1.seq[late] += 1
    store.commit(store.prepare([received("S1", late, "security", s1.seq[late], T0 - 598,
                                         received_at=T0 - 620,
                                         **good_security(T0 - 598, fw_on=False))]))
    stats, evs = ev.run_once(T0 + 700)
    assert stats.devices == 1 and device(engine, late).fail_n == 1
    s1.report(T0 - 597, devices=[late])
    # two PCs of S1 lose their antivirus: S1 is below
    s1.report(T0 + 900, devices=s1.ids[:2], av_on=False, av_name="")
    stats, evs = ev.run_once(T0 + 1000)
    assert not stats.full and stats.changed_schools == 1
    assert [(e.school, e.detail) for e in evs] == [("S1", {"from": "meets", "to": "below"})]
    # the overlap reads those two again, but their messages were judged: nothing to do
    stats, evs = ev.run_once(T0 + 1100)
    assert (stats.devices, stats.schools, evs) == (0, 0, [])
    d = device(engine, s1.ids[0])
    # one cause fails once: av_on; its signatures and management are not judged then
    assert d.worst == "fail" and d.fail_n == 1
    assert d.result["checks"]["av_signatures"]["state"] == "na"
    assert d.result["checks"]["av_signatures"]["ev"] == {"code": "na_if"}
    av = d.result["checks"]["av_on"]
    assert av["state"] == "fail" and av["since"] == T0 + 1000
    # a change the evaluator saw: since is when; not "since the first evaluation"
    assert "since_first" not in av and d.states["av_on"] == ["fail", T0 + 1000]
    fw = d.result["checks"]["firewall_on"]
    assert fw["since"] == T0 and fw["since_first"] is True  # unchanged: kept, with its flag
    assert d.states["firewall_on"] == ["pass", T0, 1]
    # and back
    s1.report(T0 + 1500, devices=s1.ids[:2])
    ev.run_once(T0 + 1600)
    assert status(engine, "S1") == "meets"
    assert events(engine)[-2:] == [("S1", "meets", "below"), ("S1", "below", "meets")]
    with engine.connect() as c:
        day = c.execute(select(db.attt_school_days).where(
            db.attt_school_days.c.school_code == "S1")).all()
        assert [(r.day, r.status) for r in day] == [("2026-12-02", "meets")]
        since = c.execute(select(db.attt_schools.c.since).where(
            db.attt_schools.c.school_code == "S1")).scalar()
        assert since == T0 + 1600


def test_silence_rule_on_the_daily_pass(engine):
    store = StateStore(engine)
    s1 = School(store, "S1", 10)
    s1.report(T0)
    ev = Evaluator(engine, RULES)
    ev.run_once(T0 + 60)
    assert status(engine, "S1") == "meets"
    # 8 days later nobody reported: the day's first pass judges everything again
    stats, evs = ev.run_once(T0 + 8 * DAY)
    assert stats.full
    d = device(engine, s1.ids[3])
    assert d.stale and d.unknown_n == 12
    assert status(engine, "S1") == "insufficient"
    assert [(e.school, e.detail["to"]) for e in evs] == [("S1", "insufficient")]
    with engine.connect() as c:
        days = c.execute(select(db.attt_school_days.c.day, db.attt_school_days.c.status)
                         .where(db.attt_school_days.c.school_code == "S1")
                         .order_by(db.attt_school_days.c.day)).all()
    assert [tuple(r) for r in days] == [("2026-12-02", "meets"), ("2026-12-10", "insufficient")]


def test_a_changed_baseline_judges_everything_again(engine, tmp_path):
    store = StateStore(engine)
    s1 = School(store, "S1", 10)
    s1.report(T0, lock_s=1200)  # screen lock 20 min: fails a medium/low check only
    Evaluator(engine, RULES).run_once(T0 + 60)
    assert status(engine, "S1") == "meets"
    text = Path(SHIPPED_ATTT_FILE).read_text(encoding="utf-8")
    stricter = text.replace(
        'severity = "medium"\nseverity_by_role = { lab = "low" }',
        'severity = "critical"\nseverity_by_role = {}')
    assert stricter != text
    rules = Rules(parse_baseline(stricter, str(tmp_path / "mine.toml")), load_os_table())
    assert rules.hash != RULES.hash
    stats, evs = Evaluator(engine, rules).run_once(T0 + 120)
    assert stats.full and stats.devices == 10
    assert status(engine, "S1") == "below"
    assert Evaluator(engine, rules).state()["rules_hash"] == rules.hash


def test_retired_device_leaves_its_school(engine):
    store = StateStore(engine)
    s1 = School(store, "S1", 3)
    s1.report(T0)
    s1.report(T0, devices=s1.ids[2:], fw_on=False)  # one in three fails a high check
    ev = Evaluator(engine, RULES)
    ev.run_once(T0 + 60)
    assert status(engine, "S1") == "improve"
    with engine.begin() as c:
        assert registry.set_device_state(c, s1.ids[2], "retired")
    ev.run_once(T0 + 120)
    assert status(engine, "S1") == "meets" and device(engine, s1.ids[2]) is None


def test_two_evaluators_on_one_store_one_event_per_change(engine):
    store = StateStore(engine)
    s1 = School(store, "S1", 10)
    s1.report(T0)
    a, b = Evaluator(engine, RULES), Evaluator(engine, RULES)
    barrier = threading.Barrier(2)
    errors = []

    def run(ev, now):
        try:
            barrier.wait(10)
            ev.run_once(now)
        except Exception as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e, T0 + 60)) for e in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    s1.report(T0 + 100, devices=s1.ids[:3], av_on=False)
    threads = [threading.Thread(target=run, args=(e, T0 + 200)) for e in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    a.run_once(T0 + 300)  # whichever was skipped or lost: the store is current now
    assert status(engine, "S1") == "below"
    s1_events = [e for e in events(engine) if e[0] == "S1"]
    assert s1_events == [("S1", "not_evaluated", "meets"), ("S1", "meets", "below")]
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(db.attt_devices)).scalar() == 10


def test_rules_from_config_default_and_override(tmp_path):
    assert rules_from_config(SimpleNamespace()).baseline.source == "shipped"
    mine = tmp_path / "attt.toml"
    mine.write_text(Path(SHIPPED_ATTT_FILE).read_text(encoding="utf-8"))
    cfg = SimpleNamespace(baseline=SimpleNamespace(attt_file=str(mine), os_support_file=""))
    assert rules_from_config(cfg).baseline.source == str(mine)
