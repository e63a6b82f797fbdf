"""Session-wide real servers. Each test that needs a fresh one makes its own instead."""
import pytest

from tests.servers import Mosquitto, Postgres, VictoriaMetrics


@pytest.fixture
def mosquitto():
    """A fresh private broker for one test (tests restart and kill it)."""
    server = Mosquitto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shared_mosquitto():
    """One broker for tests that only publish and subscribe on their own topics."""
    server = Mosquitto()
    yield server
    server.stop()


@pytest.fixture
def victoria():
    server = VictoriaMetrics()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres():
    server = Postgres()
    yield server
    server.stop()
