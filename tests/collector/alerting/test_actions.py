"""Acknowledgements and silences on a real store, SQLite and PostgreSQL: what they write
(alert row, history event, audit entry), compare-and-set against the evaluator's writes,
validation with its codes, scope, deleting keeps history. ``now`` is passed in."""
from typing import Iterator

import pytest
from schoolmon.collector.alerting import actions
from schoolmon.collector.alerting.actions import ActionError, Matchers
from schoolmon.collector.store.schema import alert_events, alerts, audit_log, silences
from sqlalchemy import Engine, select, update

from tests.collector.alerting.alerthelp import insert_alert
from tests.collector.api.apihelp import seed
from tests.collector.storehelp import T0, engine_for

NOW = T0 + 3 * 3600
BAT_XAT = "lao-cai/bat-xat"
S01_ONLY = frozenset({"S01"})


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path) -> Iterator[Engine]:
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    for e in engine_for(request.param, tmp_path, postgres):
        seed(e)
        yield e


def _code(fn) -> str:
    with pytest.raises(ActionError) as got:
        fn()
    return got.value.code


def test_ack_writes_the_row_its_history_and_the_audit(engine):
    with engine.begin() as conn:
        a = insert_alert(conn, "school_offline", "S01", NOW, area=BAT_XAT)
    with engine.begin() as conn:
        actions.acknowledge(conn, a, "tech", "  Đã gọi cô Lan, đang khởi động lại router  ",
                            NOW, S01_ONLY, "127.0.0.1")
    with engine.connect() as conn:
        row = conn.execute(select(alerts).where(alerts.c.id == a)).one()
        evs = [(e.kind, e.actor) for e in conn.execute(
            select(alert_events).where(alert_events.c.alert_id == a).order_by(alert_events.c.id))]
        audit = conn.execute(select(audit_log).where(audit_log.c.action == "alert_ack")).one()
    assert (row.ack_by, row.ack_at, row.ack_comment, row.rev) == (
        "tech", NOW, "Đã gọi cô Lan, đang khởi động lại router", 2)
    assert evs == [("pending", None), ("firing", None), ("acked", "tech")]
    assert (audit.actor, audit.target, audit.detail["school"], audit.client) == (
        "tech", str(a), "S01", "127.0.0.1")
    # twice is refused, and unack gives it back with its own history
    with engine.begin() as conn:
        assert _code(lambda: actions.acknowledge(conn, a, "boss", "x", NOW + 1)) == \
            "alert_already_acked"
    with engine.begin() as conn:
        actions.unacknowledge(conn, a, "boss", None, NOW + 2)
        assert _code(lambda: actions.unacknowledge(conn, a, "boss", None, NOW + 3)) == \
            "alert_not_acked"
    with engine.connect() as conn:
        row = conn.execute(select(alerts).where(alerts.c.id == a)).one()
        last = conn.execute(select(alert_events).order_by(alert_events.c.id.desc())).first()
    assert (row.ack_by, row.ack_at, row.rev) == (None, None, 3)
    assert (last.kind, last.detail["was_by"]) == ("unacked", "tech")


def test_ack_keeps_the_evaluators_write_and_the_evaluator_keeps_the_ack(engine):
    """Compare-and-set on rev: the evaluator's update of the same row (its own columns, rev
    + 1) between our read and our write makes us read again, never overwrite."""
    with engine.begin() as conn:
        a = insert_alert(conn, "device_disk_full", "S01", NOW, device="d01a")
    # the evaluator moves first (as engine.py does: its columns and rev only)
    with engine.begin() as conn:
        conn.execute(update(alerts).where(alerts.c.id == a, alerts.c.rev == 1)
                     .values(last_true_at=NOW + 5, evaluated_at=NOW + 5, rev=2))
    with engine.begin() as conn:
        actions.acknowledge(conn, a, "boss", "thay ổ đĩa", NOW + 6)
    with engine.begin() as conn:  # the evaluator's next write, with the rev it read
        done = conn.execute(update(alerts).where(alerts.c.id == a, alerts.c.rev == 2)
                            .values(evaluated_at=NOW + 7, rev=3))
        assert done.rowcount == 0  # stale: it reads again and keeps the ack
    with engine.connect() as conn:
        row = conn.execute(select(alerts).where(alerts.c.id == a)).one()
    assert (row.last_true_at, row.ack_by, row.rev) == (NOW + 5, "boss", 3)


def test_ack_refusals(engine):
    with engine.begin() as conn:
        a = insert_alert(conn, "school_offline", "S02", NOW)
        gone = insert_alert(conn, "school_offline", "S01", NOW, state="resolved")
        own = insert_alert(conn, "ingest_stalled", None, NOW, severity="critical")
    with engine.begin() as conn:
        assert _code(lambda: actions.acknowledge(conn, a, "t", "x", NOW, S01_ONLY)) == \
            "alert_not_found"  # another school's: as if it did not exist
        assert _code(lambda: actions.acknowledge(conn, own, "t", "x", NOW, S01_ONLY)) == \
            "alert_not_found"  # the collector's own: the Sở's
        assert _code(lambda: actions.acknowledge(conn, 999999, "t", "x", NOW)) == \
            "alert_not_found"
        assert _code(lambda: actions.acknowledge(conn, gone, "t", "x", NOW)) == "alert_resolved"
        assert _code(lambda: actions.acknowledge(conn, a, "t", "   ", NOW)) == \
            "comment_required"
        assert _code(lambda: actions.acknowledge(conn, a, "t", "x" * 1001, NOW)) == \
            "comment_invalid"
    with engine.connect() as conn:
        assert conn.execute(select(alerts.c.ack_by).where(alerts.c.id == a)).scalar() is None


def test_silence_validation_and_scope(engine):
    day = 86400.0
    with engine.begin() as conn:
        def make(m: Matchers, start: float = NOW, end: float = NOW + day, scope=None,
                 comment: str = "bảo trì", kind: str = "silence") -> int:
            return actions.create_silence(conn, m, start, end, comment, "u", kind=kind,
                                          now=NOW, scope=scope)
        assert _code(lambda: make(Matchers())) == "silence_no_matcher"
        assert _code(lambda: make(Matchers(school_code="S01"), start=NOW + day, end=NOW + 60)) == \
            "silence_ends_before_start"
        assert _code(lambda: make(Matchers(school_code="S01"), start=NOW - 2 * day,
                                  end=NOW - day)) == "silence_in_past"
        assert _code(lambda: make(Matchers(school_code="S01"), end=NOW + 91 * day)) == \
            "silence_too_long"
        assert _code(lambda: make(Matchers(school_code="S01"), comment="")) == \
            "comment_required"
        assert _code(lambda: make(Matchers(school_code="S01"), kind="nap")) == \
            "silence_kind_invalid"
        assert _code(lambda: make(Matchers(school_code="NOPE"))) == "school_not_found"
        assert _code(lambda: make(Matchers(area_code="lao-cai/nowhere"))) == "unit_not_found"
        assert _code(lambda: make(Matchers(device_id="nope"))) == "device_not_found"
        # a scoped user: inside their units only; a rule alone would silence the province
        assert _code(lambda: make(Matchers(rule="school_offline"), scope=S01_ONLY)) == \
            "silence_outside_scope"
        assert _code(lambda: make(Matchers(area_code=BAT_XAT), scope=S01_ONLY)) == \
            "silence_outside_scope"
        assert _code(lambda: make(Matchers(school_code="S02"), scope=S01_ONLY)) == \
            "school_not_found"
        assert _code(lambda: make(Matchers(device_id="d02a"), scope=S01_ONLY)) == \
            "device_not_found"
        own = make(Matchers(rule="school_offline", school_code="S01"), scope=S01_ONLY)
        dev = make(Matchers(device_id="d01a"), scope=S01_ONLY, kind="maintenance")
        area = make(Matchers(area_code=BAT_XAT),
                    scope=frozenset({"S01", "S02", "S03", "S04"}))
        province = make(Matchers(rule="below_attt"))
        sapa = make(Matchers(school_code="S05"))
    with engine.connect() as conn:
        mine = {s["id"] for s in actions.list_silences(conn, NOW, S01_ONLY)}
        everything = actions.list_silences(conn, NOW)
        audit = [r.action for r in conn.execute(select(audit_log.c.action)
                                                .where(audit_log.c.action == "silence_create"))]
    assert mine == {own, dev, area, province}  # not Sa Pa's school
    assert {s["id"] for s in everything} == {own, dev, area, province, sapa}
    assert [s["silence_state"] for s in everything] == ["active"] * 5
    assert len(audit) == 5


def test_delete_keeps_history_and_stays_in_scope(engine):
    with engine.begin() as conn:
        own = actions.create_silence(conn, Matchers(school_code="S01"), NOW, NOW + 3600,
                                     "mất điện", "tech", now=NOW, scope=S01_ONLY)
        area = actions.create_silence(conn, Matchers(area_code=BAT_XAT), NOW, NOW + 3600,
                                      "bão", "boss", now=NOW)
        other = actions.create_silence(conn, Matchers(school_code="S05"), NOW, NOW + 3600,
                                       "x", "boss", now=NOW)
    with engine.begin() as conn:
        assert _code(lambda: actions.delete_silence(conn, other, "tech", NOW, S01_ONLY)) == \
            "silence_not_found"
        assert _code(lambda: actions.delete_silence(conn, area, "tech", NOW, S01_ONLY)) == \
            "silence_outside_scope"  # seen (it covers S01) but wider than their school
        actions.delete_silence(conn, own, "tech", NOW + 10, S01_ONLY)
        assert _code(lambda: actions.delete_silence(conn, own, "tech", NOW + 11)) == \
            "silence_deleted"
    with engine.connect() as conn:
        row = conn.execute(select(silences).where(silences.c.id == own)).one()
        current = {s["id"] for s in actions.list_silences(conn, NOW + 20)}
        past = {s["id"]: s["silence_state"]
                for s in actions.list_silences(conn, NOW + 20, include_past=True)}
    assert (row.deleted_by, row.deleted_at) == ("tech", NOW + 10)
    assert current == {area, other}
    assert past[own] == "deleted"
