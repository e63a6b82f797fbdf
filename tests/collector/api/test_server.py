"""``port_free``: what the demo asks before it picks its port."""
import socket

import pytest
from schoolmon.collector.api.server import port_free


def _time_wait_port() -> int:
    """A loopback port whose only trace is a connection in TIME_WAIT (the server side
    closed first, as a stopped web server does), nothing listening any more. The listener
    sets SO_REUSEADDR as uvicorn's does; its connections inherit it."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = listener.accept()
    conn.close()            # active close: this side keeps the port in TIME_WAIT
    assert client.recv(1) == b""
    client.close()
    listener.close()
    return port


def test_time_wait_does_not_make_a_port_busy():
    port = _time_wait_port()
    plain = socket.socket()
    try:  # the situation is real: a bind without SO_REUSEADDR is refused
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    finally:
        plain.close()
    assert port_free("127.0.0.1", port)


def test_a_listening_port_is_busy():
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        assert not port_free("127.0.0.1", s.getsockname()[1])
