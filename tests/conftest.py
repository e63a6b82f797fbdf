"""Session-wide real servers. Each test that needs a fresh one makes its own instead."""
import os

import pytest

from tests.servers import Mosquitto, Postgres, VictoriaMetrics

# The tests written before the school calendar expect "offline" and "partial" whatever hour
# they run at: by default every test (and every process it starts) gets an always-open
# calendar, configured or not; the calendar's own tests name the real one and a fixed `now`.
os.environ.setdefault("SCHOOLMON_ALERTING_CALENDAR_FILE", "always")
try:
    from schoolmon.collector.alerting import calendar
    calendar.DEFAULT_PATH = "always"
except ImportError:  # the agent's own environment (Python 3.8, no collector): no calendar
    pass


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


# --- Skips are failures unless allowed -------------------------------------------------------
# A test that skips because a server or tool is missing tests nothing, unseen. `make test`
# (SCHOOLMON_STRICT_SKIPS=1) installs everything the suite needs, so there any skip whose
# reason is not below fails the run. Keep this list short; each entry says why it may skip.
ALLOWED_SKIPS = (
    # Windows-only or POSIX-only code paths: one of the two always skips.
    "POSIX shell commands",
    # Interpreters older than 3.11 are optional on a developer's machine (py38 runs separately).
    "no Python older than 3.11 on this machine",
    # deploy/dev/test-py38.sh runs the agent's tests with the agent extra only.
    "orjson not installed (the Python 3.8 agent environment)",
    "could not import 'amqtt'",
)

_skipped = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append((report.nodeid, reason.replace("Skipped: ", "", 1)))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _skipped:
        return
    unexpected = [(n, r) for n, r in _skipped if not any(a in r for a in ALLOWED_SKIPS)]
    terminalreporter.section("skipped tests")
    for nodeid, reason in _skipped:
        mark = "NOT ALLOWED" if (nodeid, reason) in unexpected else "allowed"
        terminalreporter.write_line("%-11s %s: %s" % (mark, nodeid, reason))


def pytest_sessionfinish(session, exitstatus):
    import os

    strict = os.environ.get("SCHOOLMON_STRICT_SKIPS") == "1"
    if strict and any(not any(a in r for a in ALLOWED_SKIPS) for _, r in _skipped) and exitstatus == 0:
        session.exitstatus = 1
