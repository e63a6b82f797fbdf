"""Fixtures of the API tests: a real SQLite state store seeded through the store's own
prepare/commit, the app over it, and uvicorn serving it on a free loopback port."""
from typing import Iterator

import pytest
from schoolmon.collector.api import create_app
from schoolmon.collector.store import schema as db

from tests.collector.api.apihelp import LiveServer, _cfg, seed


@pytest.fixture
def engine(tmp_path):
    e = db.make_engine("sqlite:///%s" % (tmp_path / "state.db"))
    yield e
    e.dispose()


@pytest.fixture
def app(engine):
    store = seed(engine)
    return create_app(store, _cfg())


@pytest.fixture
def live(app) -> Iterator[LiveServer]:
    srv = LiveServer(app)
    yield srv
    srv.stop()
