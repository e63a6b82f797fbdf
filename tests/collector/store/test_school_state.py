"""Per-school compare-and-set state on SQLite and the real PostgreSQL."""
import pytest
from schoolmon.collector.store import schema as db
from schoolmon.collector.store import school_state
from schoolmon.collector.store.registry import add_school

from ..storehelp import engine_for

S = "79000701"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    for e in engine_for(request.param, tmp_path, postgres):
        db.create_all(e)
        add_school(e, S, "THPT Lê Quý Đôn", "THPT", "Huyện Bát Xát", "Lào Cai")
        yield e


def test_compare_and_set_grants_once(engine):
    lease = "speedtest_lease"
    with engine.begin() as c:
        assert school_state.read(c, S, lease) == (None, school_state.ABSENT)
        assert school_state.compare_and_set(c, S, lease, {"device": "pc-01"}, 0) == 1
        # A second writer that also read "absent" loses.
        assert school_state.compare_and_set(c, S, lease, {"device": "pc-02"}, 0) is None
        assert school_state.compare_and_set(c, S, lease, {"device": "pc-02"}, 1) == 2
        # Stale version: refused, nothing changed.
        assert school_state.compare_and_set(c, S, lease, None, 1) is None
        assert school_state.read(c, S, lease) == ({"device": "pc-02"}, 2)


def test_write_is_last_writer_wins(engine):
    with engine.begin() as c:
        assert school_state.write(c, S, "budget_mb", {"left": 900}) == 1
        assert school_state.write(c, S, "budget_mb", {"left": 870}) == 2
        got = school_state.read(c, S, "budget_mb")
        assert got.value == {"left": 870} and got.version == 2


def test_two_connections_race_for_one_lease(engine):
    """Two processes read the same version; only one compare-and-set commits."""
    with engine.begin() as c:
        school_state.write(c, S, "speedtest_lease", None)
    with engine.connect() as a, engine.connect() as b:
        va = school_state.read(a, S, "speedtest_lease").version
        vb = school_state.read(b, S, "speedtest_lease").version
        a.commit()
        b.commit()
        assert va == vb == 1
        assert school_state.compare_and_set(a, S, "speedtest_lease", {"device": "A"}, va) == 2
        a.commit()
        assert school_state.compare_and_set(b, S, "speedtest_lease", {"device": "B"}, vb) is None
        b.commit()
    with engine.connect() as c:
        assert school_state.read(c, S, "speedtest_lease").value == {"device": "A"}
