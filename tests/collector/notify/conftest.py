import pytest

from tests.collector.notify.receivers import HttpReceiver, SmtpServer


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def http_receiver():
    server = HttpReceiver()
    yield server
    server.stop()
