"""The simulated province's security facts, judged by the collector's own evaluator, come
out as each school's plan: every school of the demo's province is Đạt, Cần cải thiện,
Không đạt or Không đủ dữ liệu as planned, through the shipped baseline and the real
evaluator over a real store (SQLite and PostgreSQL) read back through the API; the 30
days before show a trend (stories), with one event per change and the current status's
``since`` the day it began."""
import datetime as dt

import pytest
from schoolmon.collector.api import create_app
from schoolmon.collector.posture import Evaluator
from schoolmon.collector.posture.evaluator import rules_from_config
from schoolmon.collector.simulate import province_fixture, write_attt_history, write_history
from schoolmon.collector.simulate.history import build_attt_history
from schoolmon.collector.store import registry
from schoolmon.collector.store import schema as db
from schoolmon.collector.text import parse_time
from sqlalchemy import func, select

from tests.collector.api.apihelp import LiveServer, _cfg, client
from tests.e2e_help import fresh_database

# A pinned moment (a school day morning, Vietnam time): the OS table's dates and the
# stories' days are judged against it, whenever the test runs.
NOW = dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.timezone.utc).timestamp()
DAY = 86400


class _Cfg:
    baseline = None


RULES = rules_from_config(_Cfg())


def test_each_school_comes_out_as_planned_over_the_past_month():
    p = province_fixture(36, 9, seed=1)
    rows, latest, evs, pcs = build_attt_history(p, RULES, now=NOW)
    assert len(rows) == 36 * 30
    # yesterday's status of every school is its plan (the stories happened days before)
    assert {code: v["status"] for code, v in latest.items()} == p.plans
    # a trend, not a flat line: schools whose month holds more than one status
    by_school = {}
    for r in rows:
        by_school.setdefault(r["school_code"], []).append(r["status"])
    changing = {code for code, sts in by_school.items() if len(set(sts)) > 1}
    assert len(changing) >= 6, by_school
    assert {p.plans[c] for c in changing} >= {"meets", "improve", "below"}
    # one event per change (and one for each school's first day)
    changes = sum(1 + sum(a != b for a, b in zip(sts, sts[1:])) for sts in by_school.values())
    assert len(evs) == changes
    # another seed deals other plans, and they come out as planned too
    q = province_fixture(12, 9, seed=7)
    assert {c: v["status"] for c, v in build_attt_history(q, RULES, now=NOW, days=2)[1]
            .items()} == q.plans


@pytest.fixture(params=["sqlite", "postgresql"])
def judged(request, tmp_path):
    if request.param == "sqlite":
        engine = db.make_engine("sqlite:///%s" % (tmp_path / "s.db"))
    else:
        engine = db.make_engine(fresh_database(request.getfixturevalue("postgres")))
    db.create_all(engine)
    p = province_fixture(12, 9, seed=1)
    registry.add_schools(engine, p.school_rows())
    write_history(engine, p, now=NOW)
    write_attt_history(engine, p, RULES, now=NOW)
    again = write_attt_history(engine, p, RULES, now=NOW)  # a restart the same day
    assert again == 12 * 30
    stats, events = Evaluator(engine, RULES).run_once(NOW)
    srv = LiveServer(create_app(engine, _cfg()))
    try:
        yield p, engine, srv, stats, events
    finally:
        srv.stop()
        engine.dispose()


def test_the_evaluator_judges_the_simulated_facts_as_planned(judged):
    p, engine, srv, stats, events = judged
    assert stats.full and stats.schools == 12
    # the evaluator's first pass goes on from the history: no school changed today
    assert events == []
    with client(srv) as c:
        summary = c.get("/api/v1/summary").json()["below_baseline"]
        assert summary["evaluated"] is True
        by = summary["attt_by_status"]
        for plan in ("meets", "improve", "below", "insufficient"):
            assert by[plan] == sum(1 for v in p.plans.values() if v == plan), by
        for s in p.schools:
            a = c.get("/api/v1/schools/" + s.code).json()["attt"]
            assert a["status"] == p.plans[s.code], (s.code, a["status"], a["gates"])
            assert [h["day"] for h in a["history"]] == sorted(h["day"] for h in a["history"])
            assert len(a["history"]) == 30  # 29 days of the past and today
            # since when: the day the status began, not the evaluator's first pass
            if len({h["status"] for h in a["history"]}) == 1:
                assert parse_time(a["since"]).timestamp() < NOW - 20 * DAY
        # the PCs behind the statuses: Windows 7 and the like on an OS out of support
        unsupported = c.get("/api/v1/devices", params={"os_support": "unsupported",
                                                       "per_page": 500}).json()["items"]
        assert unsupported and any("Windows 7" in d["os"] for d in unsupported)
        frozen = [d for d in p.devices if d.sec and d.sec.frozen and d.sec.reports]
        assert frozen
        sec = c.get("/api/v1/devices/" + frozen[0].id).json()["security"]
        assert sec["frozen"] is True
        assert {k["id"] for k in sec["checks"] if k["state"] == "na"} >= {
            "av_signatures", "patch_recent"}
        # evidence sentences name what they show (no "?" where a value was reported)
        for s in p.schools[:4]:
            for check in c.get("/api/v1/schools/" + s.code).json()["attt"]["checks"]:
                for d in check["devices"]:
                    if check["id"] in ("os_supported", "autorun_off", "auto_update"):
                        assert "?" not in d["evidence"], (check["id"], d)
        # since when, per check, as the school's history says (defect 11): a lab re-imaged
        # without antivirus fails av_on since the day its school went below; what held
        # all month is "since the first evaluation" (the history's first day)
        lite = next(d for d in p.devices if d.sec and d.sec.reports and d.sec.story
                    and d.sec.story[1] == "lite_image")
        school = c.get("/api/v1/schools/" + lite.school).json()["attt"]
        assert school["status"] == "below" and school["since_first_evaluation"] is False
        checks = {k["id"]: k for k in c.get("/api/v1/devices/" + lite.id).json()[
            "security"]["checks"]}
        assert checks["av_on"]["state"] == "fail"
        assert checks["av_on"]["since"] == school["since"]
        assert checks["av_on"]["since_first_evaluation"] is False
        held = checks["os_supported"]
        assert held["since_first_evaluation"] is True
        assert parse_time(held["since"]).timestamp() < NOW - 28 * DAY
        steady = next(s.code for s in p.schools if len({h["status"] for h in c.get(
            "/api/v1/schools/" + s.code).json()["attt"]["history"]}) == 1)
        assert c.get("/api/v1/schools/" + steady).json()["attt"]["since_first_evaluation"]
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(db.events).where(
            db.events.c.kind == "attt_status_changed")).scalar_one()
    assert n >= 12  # the history's, written once although written twice
