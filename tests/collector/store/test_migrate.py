"""Schema migrations on SQLite and the real PostgreSQL: an empty database, a database
made by the code before migrations (the committed fixture), and the schema they reach."""
import shutil
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from schoolmon.collector.read import schools as read_schools
from schoolmon.collector.store import StateStore, migrate
from schoolmon.collector.store import schema as db
from sqlalchemy import inspect, select, text

from ..storehelp import T0, engine_for, health

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "state_before_migrations.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    yield from engine_for(request.param, tmp_path, postgres)


def schema_diff(engine):
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), db.metadata)


def test_empty_database_upgrades_to_the_metadata(engine):
    assert migrate.current(engine) is None
    assert migrate.upgrade(engine) == migrate.head() == "0008_alert_notifications"
    assert migrate.current(engine) == migrate.head()
    assert schema_diff(engine) == []
    names = set(inspect(engine).get_table_names())
    assert {"dead_letters", "devices", "events", "school_state", "alembic_version"} <= names
    idx = {i["name"] for i in inspect(engine).get_indexes("dead_letters")}
    assert idx == {"ix_dead_letters_received_at", "ix_dead_letters_reason"}
    assert migrate.upgrade(engine) == migrate.head()  # idempotent


def test_a_database_made_before_migrations_is_stamped_then_upgraded(engine):
    """The old code's create_all made exactly the baseline; no alembic_version table."""
    with engine.begin() as conn:
        command.upgrade(migrate._config(conn), migrate.BASELINE)
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("INSERT INTO org_units (level, code, name) "
                          "VALUES ('province', 'lao-cai', 'Lào Cai')"))
    assert migrate.current(engine) is None
    assert migrate.upgrade(engine) == migrate.head()
    assert schema_diff(engine) == []
    with engine.connect() as conn:
        assert conn.execute(select(db.org_units.c.code)).scalars().all() == ["lao-cai"]


def test_the_fixture_written_by_the_old_code_upgrades_and_reads_back(tmp_path):
    path = tmp_path / "state.db"
    shutil.copy(FIXTURE, path)
    engine = db.make_engine("sqlite:///%s" % path)
    try:
        assert "alembic_version" not in inspect(engine).get_table_names()
        store = StateStore(engine)  # upgrades at start, as the collector does
        assert migrate.current(engine) == migrate.head()
        assert schema_diff(engine) == []
        dev = store.device("pc-0-0")
        assert dev is not None and dev.state == "active" and dev.role == "lab"
        assert dev.last_seq == 10 and dev.missing == [[7, 9]] and dev.lost_total == 3
        assert dev.seq_jump is None
        off = store.device("pc-1-2")
        assert off is not None and not off.online and off.offline_reason == "shutdown"
        with engine.connect() as conn:
            school = read_schools.get_school(conn, "79000102", None)
            assert school is not None and school["name"] == "Trường THCS Bảo Thắng"
            assert school["status"] == "partial"
            assert conn.execute(select(db.rollup_1h)).first() is not None
            kinds = set(conn.execute(select(db.events.c.kind)).scalars())
            assert {"device_registered", "device_online", "device_offline"} <= kinds
            lease = conn.execute(select(db.school_state.c.value)).scalar_one()
            assert lease["device"] == "pc-0-0"
        # ... and the upgraded store keeps working: a late message fills the gap.
        plan = store.prepare([health("79000101", "pc-0-0", 8, T0 + 480)])
        store.commit(plan)
        assert plan.filled == {"pc-0-0": 1}
        assert store.device("pc-0-0").missing == [[7, 7], [9, 9]]  # type: ignore[union-attr]
    finally:
        engine.dispose()


@pytest.fixture
def pg_engine(postgres, tmp_path):
    yield from engine_for("postgresql", tmp_path, postgres)


def test_two_processes_upgrading_at_once_on_postgresql(pg_engine):
    """Two collectors starting together on one database: both end at the head."""
    engine = pg_engine
    import threading
    errors = []

    def up():
        try:
            migrate.upgrade(engine)
        except Exception as exc:  # pragma: no cover - the failure this test is about
            errors.append(exc)

    threads = [threading.Thread(target=up) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and migrate.current(engine) == migrate.head()
    assert schema_diff(engine) == []
