"""One message must not black-hole a device: a seq at the top of the range with a ``ts`` in
2100 (flagged as skew by ingest) neither silences the device nor steers its bookkeeping."""
import pytest
from schoolmon.collector.state import Received
from schoolmon.collector.store import MAX_JUMP, StateStore
from schoolmon.collector.store import schema as db
from schoolmon.collector.store.registry import add_schools
from schoolmon.protocol import decode, encode, envelope, topic
from schoolmon.protocol.catalogue import MAX_SAFE_INT
from sqlalchemy import select

from ..storehelp import T0, engine_for, health, status

S = "79000701"
Y2100 = 4_102_444_800.0  # 2100-01-01T00:00:00Z


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    yield from engine_for(request.param, tmp_path, postgres)


@pytest.fixture
def store(engine):
    db.create_all(engine)
    add_schools(engine, [dict(code=S, name="THPT Lê Quý Đôn", level="THPT",
                              area="Huyện Bát Xát", province="Lào Cai")])
    return StateStore(engine, default_hb=60)


def skewed_health(seq, ts, received_at):
    """As ingest hands it over: ts too far ahead, so stored under the receive time."""
    raw = encode(envelope("health", {"cpu_pct": 1.0, "cpu_n": 1, "mem_pct": 1.0, "up": 1},
                          seq, ts))
    return Received(decode(topic(S, "pc-01", "health"), raw), received_at, received_at,
                    "future", raw)


def run(store, batch):
    plan = store.prepare(batch)
    return plan, store.commit(plan)


def test_top_seq_with_a_future_ts_does_not_silence_the_device(store, engine):
    run(store, [status(S, "pc-01", 0, T0), health(S, "pc-01", 1, T0 + 60)])
    plan, evs = run(store, [skewed_health(MAX_SAFE_INT, Y2100, T0 + 90)])
    assert len(plan.accepted) == 1 and not plan.gaps  # kept, not counted as loss
    jump = [e for e in evs if e.kind == "seq_jump"]
    assert len(jump) == 1 and jump[0].detail == {"from": 1, "to": MAX_SAFE_INT, "held": True}
    dev = store.device("pc-01")
    assert dev is not None
    assert dev.last_seq == 1 and dev.seq_jump == MAX_SAFE_INT
    assert dev.last_ts == T0 + 60  # the year 2100 did not become the device's clock
    # The device's real messages go on being stored, none a duplicate.
    plan, _ = run(store, [health(S, "pc-01", i, T0 + 60 * i) for i in range(2, 12)])
    assert len(plan.accepted) == 10 and plan.duplicates == 0
    # Redelivered, the held message is a duplicate (not stored twice).
    plan, _ = run(store, [skewed_health(MAX_SAFE_INT, Y2100, T0 + 800)])
    assert plan.duplicates == 1 and not plan.accepted
    # A new process reads the same from the row.
    again = StateStore(engine).device("pc-01")
    assert again is not None and (again.last_seq, again.seq_jump) == (11, MAX_SAFE_INT)
    with engine.connect() as c:
        row = c.execute(select(db.devices).where(db.devices.c.id == "pc-01")).one()
    assert row.last_ts == T0 + 660 and row.duplicates_total == 1


def test_a_skewed_ts_does_not_block_the_counter_reset_rule(store):
    """A plausible seq but a ts in 2100: stored, yet a later reset is still recognised."""
    run(store, [status(S, "pc-01", 0, T0), health(S, "pc-01", 500, T0 + 60)])
    plan, _ = run(store, [skewed_health(501, Y2100, T0 + 90)])
    assert len(plan.accepted) == 1
    assert store.device("pc-01").last_ts == T0 + 60  # type: ignore[union-attr]
    # The agent lost its state: it starts again at 1 and says it is online.
    plan, evs = run(store, [status(S, "pc-01", 0, T0 + 200), health(S, "pc-01", 1, T0 + 210)])
    assert [e.kind for e in evs if e.kind == "seq_reset"] == ["seq_reset"]
    assert len(plan.accepted) == 2 and plan.duplicates == 0
    assert store.device("pc-01").last_seq == 1  # type: ignore[union-attr]


def test_a_skewed_status_does_not_reset_the_counter(store):
    run(store, [health(S, "pc-01", 500, T0 + 60)])
    raw = encode(envelope("status", {"state": "online"}, 3, Y2100))
    skewed = Received(decode(topic(S, "pc-01", "status"), raw), T0 + 90, T0 + 90, "future", raw)
    _, evs = run(store, [skewed])
    assert not [e for e in evs if e.kind == "seq_reset"]
    assert store.device("pc-01").last_seq == 500  # type: ignore[union-attr]


def test_a_real_jump_is_followed_once_the_device_confirms_it(store):
    run(store, [health(S, "pc-01", 1, T0)])
    far = 1 + MAX_JUMP + 10
    plan, evs = run(store, [health(S, "pc-01", far, T0 + 60)])
    assert len(plan.accepted) == 1 and store.device("pc-01").last_seq == 1  # type: ignore
    plan, evs = run(store, [health(S, "pc-01", far + 1, T0 + 120)])
    jump = [e for e in evs if e.kind == "seq_jump"]
    assert jump and jump[0].detail == {"from": 1, "to": far + 1, "confirmed": True}
    dev = store.device("pc-01")
    assert dev is not None and dev.last_seq == far + 1 and dev.seq_jump is None
    assert dev.lost_total == 0
    # From here the old numbers are duplicates again.
    plan, _ = run(store, [health(S, "pc-01", 1, T0 + 180), health(S, "pc-01", far, T0 + 180)])
    assert plan.duplicates == 2
