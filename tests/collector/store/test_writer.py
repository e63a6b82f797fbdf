"""StateStore against SQLite and the real PostgreSQL: registry, duplicates, loss, liveness,
rollups."""
import pytest
from schoolmon.collector.read import org, schools, summary
from schoolmon.collector.store import StateStore
from schoolmon.collector.store import schema as db
from schoolmon.collector.store.registry import add_school, add_schools, approve_device
from sqlalchemy import func, select

from ..storehelp import T0, engine_for, health, received, status


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    yield from engine_for(request.param, tmp_path, postgres)


@pytest.fixture
def store(engine):
    db.create_all(engine)
    add_schools(engine, [
        dict(code="79000701", name="THPT Lê Quý Đôn", level="THPT", area="Huyện Bát Xát",
             province="Lào Cai"),
        dict(code="79000702", name="TH Kim Đồng", level="Tiểu học", area="Huyện Bát Xát",
             province="Lào Cai"),
        dict(code="79000801", name="MN Hoa Sen", level="Mầm non", area="Xã Tả Phìn",
             province="Lào Cai"),
    ])
    return StateStore(engine, default_hb=60)


S = "79000701"


def run(store, batch):
    plan = store.prepare(batch)
    evs = store.commit(plan)
    return plan, evs


def device_row(engine, did):
    with engine.connect() as c:
        r = c.execute(select(db.devices).where(db.devices.c.id == did)).first()
        return r._mapping if r else None


def count(engine, table):
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(table)).scalar()


def test_unknown_device_registered_pending_with_tags(store, engine):
    plan, evs = run(store, [received(S, "pc-01", "inventory", 1, T0, role="office", room="P1"),
                            health(S, "pc-01", 2, T0 + 60)])
    assert plan.new_devices == ["pc-01"]
    assert len(plan.accepted) == 2 and not plan.rejected and plan.duplicates == 0
    assert plan.accepted[1].tags == {"province": "lao-cai", "area": "lao-cai/huyen-bat-xat",
                                     "school": S, "device": "pc-01", "role": "office"}
    row = device_row(engine, "pc-01")
    assert row.state == "pending" and row.school_code == S and row.role == "office"
    assert row.room == "P1" and row.last_seq == 2 and row.online
    assert [e.kind for e in evs][:2] == ["device_registered", "device_online"]
    assert count(engine, db.device_latest) == 2
    assert approve_device(engine, "pc-01")
    assert device_row(engine, "pc-01").state == "active"


def test_unknown_school_rejected(store, engine):
    plan, evs = run(store, [health("99999999", "pc-x", 1, T0), health(S, "pc-01", 1, T0)])
    assert [reason for _, reason in plan.rejected] == ["unknown_school"]
    assert plan.rejected[0][0].message.school == "99999999"
    assert len(plan.accepted) == 1
    assert device_row(engine, "pc-x") is None


def test_school_added_later_becomes_known(store, engine, monkeypatch):
    from schoolmon.collector.store import writer
    monkeypatch.setattr(writer, "SCHOOL_REFRESH", 0.0)
    assert run(store, [health("80000001", "pc-1", 1, T0)])[0].rejected
    add_school(engine, "80000001", "THCS Mới", "THCS", "Huyện Sa Pa", "Lào Cai")
    plan, _ = run(store, [health("80000001", "pc-1", 1, T0)])
    assert not plan.rejected and plan.new_devices == ["pc-1"]


def test_device_under_another_school(store, engine):
    run(store, [status(S, "pc-01", 0, T0), health(S, "pc-01", 1, T0)])
    # Still pending: the device follows its (corrected) configuration to the other school.
    plan, evs = run(store, [health("79000702", "pc-01", 2, T0 + 60)])
    assert not plan.rejected and len(plan.accepted) == 1
    assert plan.accepted[0].tags["school"] == "79000702"
    assert ("device_moved", {"from": S, "to": "79000702"}) in [(e.kind, e.detail) for e in evs]
    assert {(e.school, e.detail["status"]) for e in evs if e.kind == "school_status"} == {
        (S, "no_devices"), ("79000702", "online")}
    assert device_row(engine, "pc-01").school_code == "79000702"
    # Once approved it is bound to its school: another school in its topic is refused.
    approve_device(engine, "pc-01")
    plan, _ = run(store, [health(S, "pc-01", 3, T0 + 120)])
    assert [reason for _, reason in plan.rejected] == ["topic_mismatch"]


def test_duplicates_same_batch_and_across_batches(store, engine):
    b = [health(S, "pc-01", 1, T0), health(S, "pc-01", 2, T0 + 60), health(S, "pc-01", 2, T0 + 60)]
    plan, _ = run(store, b)
    assert len(plan.accepted) == 2 and plan.duplicates == 1
    plan, evs = run(store, [health(S, "pc-01", 1, T0), health(S, "pc-01", 3, T0 + 120)])
    assert plan.duplicates == 1 and [a.received.message.seq for a in plan.accepted] == [3]
    row = device_row(engine, "pc-01")
    assert row.duplicates_total == 2 and row.received_total == 3 and row.lost_total == 0


def test_redelivery_after_crash_changes_nothing(store, engine):
    batch = [received(S, "pc-01", "inventory", 1, T0)] + [
        health(S, "pc-01", i, T0 + 60 * i, cpu_pct=float(i)) for i in range(2, 12)]
    run(store, batch)

    def snapshot():
        with engine.connect() as c:
            return ([tuple(r) for r in c.execute(select(db.rollup_5m).order_by(
                        db.rollup_5m.c.bucket_start))],
                    [tuple(r) for r in c.execute(select(db.device_latest).order_by(
                        db.device_latest.c.kind))],
                    c.execute(select(func.count()).select_from(db.events)).scalar())
    before = snapshot()
    # The collector crashed after commit, before the acks: the broker delivers it again,
    # to a freshly started store (cache rebuilt from the database).
    fresh = StateStore(engine)
    plan = fresh.prepare(batch)
    assert plan.accepted == [] and plan.duplicates == len(batch)
    assert fresh.commit(plan) == []
    assert snapshot() == before
    assert device_row(engine, "pc-01").received_total == 11


def test_gap_counted_and_late_fill(store, engine):
    plan, _ = run(store, [health(S, "pc-01", 1, T0), health(S, "pc-01", 5, T0 + 240)])
    assert plan.gaps == {"pc-01": 3}
    row = device_row(engine, "pc-01")
    assert row.lost_total == 3 and row.missing == [[2, 4]]
    plan, _ = run(store, [health(S, "pc-01", 3, T0 + 120)])
    assert len(plan.accepted) == 1 and plan.filled == {"pc-01": 1} and not plan.gaps
    row = device_row(engine, "pc-01")
    assert row.lost_total == 2 and row.missing == [[2, 2], [4, 4]]
    plan, _ = run(store, [health(S, "pc-01", 3, T0 + 120), health(S, "pc-01", 2, T0 + 60)])
    assert plan.duplicates == 1 and len(plan.accepted) == 1
    assert device_row(engine, "pc-01").missing == [[4, 4]]
    # The same late message again, after a restart: duplicate.
    plan = StateStore(engine).prepare([health(S, "pc-01", 2, T0 + 60)])
    assert plan.duplicates == 1


def test_counter_reset_detected(store, engine):
    run(store, [status(S, "pc-01", 0, T0)] +
        [health(S, "pc-01", i, T0 + 60 * i) for i in range(1, 101)])
    # A stale retained status (older than the data) is not a reset.
    plan, evs = run(store, [status(S, "pc-01", 0, T0, received_at=T0 + 6001)])
    assert not [e for e in evs if e.kind == "seq_reset"]
    # The agent lost its state: it reconnects with seq 0 and counts again from 1.
    plan, evs = run(store, [status(S, "pc-01", 0, T0 + 7000),
                            health(S, "pc-01", 1, T0 + 7060), health(S, "pc-01", 2, T0 + 7120)])
    assert [e.kind for e in evs if e.kind == "seq_reset"] == ["seq_reset"]
    assert len(plan.accepted) == 3 and plan.duplicates == 0
    row = device_row(engine, "pc-01")
    assert row.last_seq == 2 and row.resets == 1
    with engine.connect() as c:
        kinds = list(c.execute(select(db.events.c.kind)).scalars())
    assert "seq_reset" in kinds


def test_late_status_is_not_a_counter_reset(store, engine):
    """A connect sends inventory (seq 1), then ``online`` (carrying seq 1), then health (seq 2,
    its ts in whole seconds, so earlier than theirs). Handled out of order (two collectors,
    a redelivery), the ``online`` is newer than the device's last ts by a fraction of a
    second: not a counter reset. Found by two collector processes on one PostgreSQL
    (tests/collector/test_postgres_real.py)."""
    run(store, [received(S, "pc-01", "inventory", 1, T0 + 0.84), health(S, "pc-01", 2, T0)])
    plan, evs = run(store, [status(S, "pc-01", 1, T0 + 0.85)])
    assert not [e for e in evs if e.kind == "seq_reset"]
    run(store, [health(S, "pc-01", 3, T0 + 60)])
    row = device_row(engine, "pc-01")
    assert row.last_seq == 3 and row.missing == [] and row.lost_total == 0 and row.resets == 0


def test_seq_jump_not_counted_as_loss(store, engine):
    plan, evs = run(store, [health(S, "pc-01", 1, T0), health(S, "pc-01", 5_000_000, T0 + 60)])
    assert not plan.gaps and [e.kind for e in evs if e.kind == "seq_jump"] == ["seq_jump"]
    assert device_row(engine, "pc-01").lost_total == 0


def test_status_offline_and_online_events(store, engine):
    _, evs = run(store, [status(S, "pc-01", 0, T0, hb=30)])
    assert [e.kind for e in evs] == ["device_registered", "device_online", "school_status"]
    assert evs[2].detail["status"] == "online"
    row = device_row(engine, "pc-01")
    assert row.online and row.hb == 30
    _, evs = run(store, [status(S, "pc-01", 0, T0, state="offline", reason="lost",
                                received_at=T0 + 100)])
    assert [(e.kind, e.detail.get("reason")) for e in evs][:1] == [("device_offline", "lost")]
    assert evs[1].kind == "school_status" and evs[1].detail["status"] == "offline"
    row = device_row(engine, "pc-01")
    assert not row.online and row.offline_reason == "lost"
    # The retained offline again: no change, no event.
    assert run(store, [status(S, "pc-01", 0, T0, state="offline", reason="lost")])[1] == []
    _, evs = run(store, [status(S, "pc-01", 0, T0 + 200)])
    assert [e.kind for e in evs] == ["device_online", "school_status"]
    # An online while online (a reconnect before the sweep noticed): a device_hello for
    # the callbacks (the scheduler sends a missed grant again), never stored.
    _, evs = run(store, [status(S, "pc-01", 0, T0 + 300, received_at=T0 + 300)])
    assert [(e.kind, e.device, e.ts) for e in evs] == [("device_hello", "pc-01", T0 + 300)]
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(db.events)
                         .where(db.events.c.kind == "device_hello")).scalar() == 0


def test_heartbeat_timeout_sweep(store, engine):
    run(store, [status(S, "pc-01", 0, T0, hb=30, received_at=T0),
                status(S, "pc-02", 0, T0, received_at=T0)])
    # pc-01: 3 × 30 + 60 = 150 s; pc-02: default 3 × 60 + 60 = 240 s
    assert store.sweep(T0 + 149) == []
    evs = store.sweep(T0 + 151)
    assert [(e.kind, e.device) for e in evs] == [("device_offline", "pc-01"),
                                                 ("school_status", None)]
    assert evs[1].detail == {"status": "partial", "previous": "online", "online": 1, "total": 2}
    assert not device_row(engine, "pc-01").online
    assert device_row(engine, "pc-01").offline_reason == "timeout"
    evs = store.sweep(T0 + 241)
    assert [e.device for e in evs if e.kind == "device_offline"] == ["pc-02"]
    assert store.sweep(T0 + 1000) == []
    # Fresh data brings it back online; a replayed old message does not.
    _, evs = run(store, [received(S, "pc-01", "health", 1, T0 - 5000, received_at=T0 + 1000)])
    assert not [e for e in evs if e.kind == "device_online"]
    _, evs = run(store, [health(S, "pc-01", 2, T0 + 1000)])
    assert [e.kind for e in evs if e.kind == "device_online"] == ["device_online"]
    # Events are in the table too.
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(db.events)
                         .where(db.events.c.kind == "device_offline")).scalar() == 2


def test_rollup_values(store, engine):
    b = [health(S, "pc-01", 1, T0 + 10, cpu_pct=10.0, mem_pct=40.0, temp=50.0,
                disks=[{"mnt": "C:", "pct": 30.0, "free": 10}, {"mnt": "D:", "pct": 70.0, "free": 5}],
                nics=[{"if": "eth0", "rx": 100, "tx": 10}, {"if": "wlan0", "rx": 50, "tx": 5}]),
         health(S, "pc-01", 2, T0 + 70, cpu_pct=30.0, mem_pct=60.0)]
    run(store, b)
    run(store, [health(S, "pc-01", 3, T0 + 130, cpu_pct=20.0, mem_pct=50.0, temp=60.0),
                health(S, "pc-01", 4, T0 + 310, cpu_pct=90.0, mem_pct=90.0)])
    with engine.connect() as c:
        rows = [r._mapping for r in c.execute(select(db.rollup_5m).order_by(
            db.rollup_5m.c.bucket_start))]
    assert [r["bucket_start"] for r in rows] == [T0, T0 + 300]
    r = rows[0]
    assert r["n"] == 3 and r["cpu_pct_n"] == 3
    assert (r["cpu_pct_min"], r["cpu_pct_max"], r["cpu_pct_sum"]) == (10.0, 30.0, 60.0)
    assert (r["temp_n"], r["temp_min"], r["temp_max"], r["temp_sum"]) == (2, 50.0, 60.0, 110.0)
    assert (r["disk_pct_n"], r["disk_pct_max"]) == (1, 70.0)
    assert (r["rx_sum"], r["tx_sum"]) == (150.0, 15.0)
    assert rows[1]["n"] == 1 and rows[1]["temp_n"] == 0 and rows[1]["temp_min"] is None


def test_hourly_maintain_and_retention(store, engine):
    batch = [health(S, "pc-01", i + 1, T0 + 60 * i, cpu_pct=float(i % 50)) for i in range(120)]
    run(store, batch)
    out = store.maintain(T0 + 7200)
    assert out["hours"] == 2
    with engine.connect() as c:
        rows = [r._mapping for r in c.execute(select(db.rollup_1h).order_by(
            db.rollup_1h.c.bucket_start))]
    assert [(r["bucket_start"], r["n"]) for r in rows] == [(T0, 60), (T0 + 3600, 60)]
    assert rows[0]["cpu_pct_min"] == 0 and rows[0]["cpu_pct_max"] == 49
    assert rows[0]["cpu_pct_sum"] == sum(float(i % 50) for i in range(60))
    # Idempotent, and late data re-dirties its hour.
    assert store.maintain(T0 + 7200)["hours"] == 0
    run(store, [health(S, "pc-02", 1, T0 + 30, cpu_pct=99.0)])
    assert store.maintain(T0 + 7200)["hours"] == 1
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(db.rollup_1h)).scalar() == 3
    # Retention: 5-minute rollups go after 30 days, hourly after 365.
    out = store.maintain(T0 + 31 * 86400)
    assert out["pruned_5m"] == 25 and out["pruned_1h"] == 0
    out = store.maintain(T0 + 366 * 86400)
    assert out["pruned_1h"] == 3


def test_liveness_as_the_read_side_sees_it(store, engine):
    """What the store writes is what the API's read path counts (one liveness rule)."""
    run(store, [status(S, "pc-01", 0, T0), status(S, "pc-02", 0, T0),
                status(S, "pc-02", 0, T0, state="offline", reason="shutdown"),
                status("79000702", "pc-03", 0, T0)])
    with engine.connect() as c:
        assert summary.summary(c, None, now=T0 + 10)["schools"]["by_status"] == {
            "online": 1, "partial": 1, "offline": 0, "off_hours": 0, "no_devices": 1}
        school = schools.get_school(c, S, None)
        assert school is not None and school["status"] == "partial"
        (prov,) = org.org_tree(c, None)["roots"]
        assert prov["code"] == "lao-cai"
        assert {k: prov["counts"][k] for k in ("devices", "online", "offline", "pending")} == {
            "devices": 3, "online": 2, "offline": 1, "pending": 3}
        assert (prov["counts"]["schools_online"], prov["counts"]["schools_partial"],
                prov["counts"]["schools_no_devices"]) == (1, 1, 1)
        areas = {a["code"]: a for a in prov["children"]}
        assert areas["lao-cai/huyen-bat-xat"]["counts"]["schools"] == 2
        statuses = {k["code"]: k["status"] for a in areas.values() for k in a["children"]}
        assert statuses == {S: "partial", "79000702": "online", "79000801": "no_devices"}


def test_cache_matches_database_after_restart(store, engine):
    run(store, [status(S, "pc-01", 0, T0, hb=30), health(S, "pc-01", 1, T0 + 10),
                health(S, "pc-01", 4, T0 + 20)])
    a, b = store.device("pc-01"), StateStore(engine).device("pc-01")
    assert a.row() == b.row()


def test_two_processes_share_one_database(store, engine):
    """Two collectors (two caches) over one database: each sees what the other stored."""
    other = StateStore(engine)
    run(store, [status(S, "pc-01", 0, T0, received_at=T0)] +
        [health(S, "pc-01", i, T0 + 60 * i, received_at=T0 + 60 * i) for i in range(1, 6)])
    # `other` cached nothing about pc-01: its commit re-reads the row and decides again.
    plan = other.prepare([health(S, "pc-01", 3, T0 + 180), health(S, "pc-01", 6, T0 + 360,
                                                                  received_at=T0 + 360)])
    assert plan.new_devices == ["pc-01"]  # what the stale cache thought
    evs = other.commit(plan)
    assert plan.duplicates == 1 and [a.received.message.seq for a in plan.accepted] == [6]
    assert not plan.new_devices and not plan.gaps
    assert not [e for e in evs if e.kind == "device_registered"]
    row = device_row(engine, "pc-01")
    assert row.last_seq == 6 and row.received_total == 6 and row.lost_total == 0
    # `store` is now the stale one: seq 6 is a duplicate for it too.
    plan = store.prepare([health(S, "pc-01", 6, T0 + 360), health(S, "pc-01", 7, T0 + 420,
                                                                   received_at=T0 + 420)])
    store.commit(plan)
    assert plan.duplicates == 1 and device_row(engine, "pc-01").last_seq == 7
    # `other` last heard pc-01 at T0 + 360; `store` at T0 + 420: other's sweep at
    # T0 + 360 + 241 must not mark it offline (the row says T0 + 420).
    assert other.sweep(T0 + 360 + 241) == []
    assert device_row(engine, "pc-01").online
    assert [e.device for e in other.sweep(T0 + 420 + 241)] == ["pc-01", None]


def test_approval_survives_running_store(store, engine):
    run(store, [health(S, "pc-01", 1, T0)])
    assert approve_device(engine, "pc-01", role="office")
    run(store, [health(S, "pc-01", 2, T0 + 60)])
    row = device_row(engine, "pc-01")
    assert row.state == "active" and row.last_seq == 2 and row.role == "office"
    assert store.device("pc-01").state == "active"


def test_batch_of_5000_commits_in_few_statements(store, engine):
    """A guard against an accidental per-row round trip, counted in statements sent to the
    database, not timed (a timed test fails when the machine is busy; the figures are in
    docs/state-store.md and bench/store_commit.py)."""
    from sqlalchemy import event
    batches = [[health(S, "pc-%04d" % d, r + 1, T0 + 60 * r) for d in range(5000)]
               for r in range(2)]
    run(store, batches[0])
    plan = store.prepare(batches[1])
    sent = []

    def count(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)
    event.listen(engine, "before_cursor_execute", count)
    try:
        store.commit(plan)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(plan.accepted) == 5000
    # bulk statements (executemany and multi-row VALUES), not one per message
    assert len(sent) < 100, "commit of 5,000 messages sent %d statements" % len(sent)


def test_failed_commit_leaves_nothing_and_can_be_retried(store, engine, monkeypatch):
    run(store, [health(S, "pc-01", 1, T0)])
    plan = store.prepare([health(S, "pc-01", 2, T0 + 60), health(S, "pc-02", 1, T0 + 60)])

    def boom(*a, **kw):
        raise RuntimeError("disk full")
    monkeypatch.setattr(store._st_rollup, "run_tuples", boom)
    with pytest.raises(RuntimeError):
        store.commit(plan)
    # Nothing of the batch is stored, the cache did not move.
    assert device_row(engine, "pc-02") is None and device_row(engine, "pc-01").last_seq == 1
    assert store.device("pc-01").last_seq == 1 and store.device("pc-02") is None
    monkeypatch.undo()
    evs = store.commit(plan)  # ingest retries the same plan
    assert device_row(engine, "pc-01").last_seq == 2 and device_row(engine, "pc-02").last_seq == 1
    assert [e.device for e in evs if e.kind == "device_registered"] == ["pc-02"]
    assert store.prepare([health(S, "pc-02", 1, T0 + 60)]).duplicates == 1
