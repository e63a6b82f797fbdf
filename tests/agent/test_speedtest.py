"""The speedtest family against real HTTP servers on loopback: the collector's own test
server (create_app under uvicorn, as the collector runs it), a server that stalls mid-test,
and speedtest.net unreachable (no Internet here: it must fail quickly and fall back)."""
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from schoolmon.agent.families import speedtest as st
from schoolmon.agent.families.speedtest import SpeedtestFamily, SpeedtestFailed
from schoolmon.collector.api import create_app
from schoolmon.collector.api.server import ApiServer
from schoolmon.collector.config import load_config as collector_config
from schoolmon.collector.store import schema as db
from schoolmon.agent.message import build_message

from tests.collector.api.apihelp import seed
from tests.servers import free_port


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    """The collector's app (speedtest_server at its defaults but 2 transfers at once)."""
    folder = tmp_path_factory.mktemp("spd")
    engine = db.make_engine("sqlite:///%s" % (folder / "state.db"))
    cfg = collector_config(env={}, demo=True,
                           overrides={"speedtest_server": {"max_concurrent": 8}})
    server = ApiServer(create_app(seed(engine), cfg), "127.0.0.1", free_port()).start()
    yield server.url + "/speedtest/upload.php"
    server.stop()
    engine.dispose()


def _family(**kw):
    kw.setdefault("speedtest_net", False)
    kw.setdefault("io_timeout", 3.0)
    return SpeedtestFamily(**kw)


def _check_message(fields):
    """The result goes out as the agent sends it (sanitized, validated): nothing dropped."""
    raw = build_message("speedtest", fields, 1, time.time())
    sent = json.loads(raw)
    assert {k: sent[k] for k in fields} == fields


def test_full_and_short_against_the_collector(collector, monkeypatch):
    monkeypatch.setattr(st, "FULL_SECONDS", 1.5)  # the same code path, a shorter test
    r = _family().run(server=collector, mode="full", budget=10 ** 9)
    assert r["ok"] is True, r
    assert r["down_mbps"] > 10 and r["up_mbps"] > 10 and r["ping_ms"] > 0
    assert r["bytes_rx"] > 1e6 and r["bytes_tx"] > 1e6
    assert r["server"] == collector and r["mode"] == "full" and r["trigger"] == "manual"
    _check_message(r)
    s = _family().run(server=collector, mode="short", budget=10 ** 9, lease="L1",
                      trigger="slot")
    assert s["ok"] is True, s
    assert s["bytes_rx"] + s["bytes_tx"] <= st.SHORT_BYTES
    assert s["lease"] == "L1" and s["trigger"] == "slot"
    _check_message(s)


def test_budget_is_respected_and_counted(collector):
    budget = 3 * 10 ** 6
    r = _family().run(server=collector, mode="full", budget=budget)
    assert r["bytes_rx"] + r["bytes_tx"] <= budget
    assert r["bytes_rx"] + r["bytes_tx"] > budget * 0.9  # it used what it had
    assert r["ok"] is True, r  # loopback is fast: 3 MB is enough to measure
    tiny = _family().run(server=collector, mode="full", budget=100)
    assert tiny["ok"] is False and tiny["reason"] == "budget"
    assert tiny["bytes_rx"] + tiny["bytes_tx"] <= 100 + 64 * (st.PINGS + 1)
    assert "down_mbps" not in tiny
    _check_message(tiny)


class _Stall(BaseHTTPRequestHandler):
    """A legacy server that answers latency.txt, then sends (or reads) ``STALL_AFTER``
    bytes of a transfer and stops without closing."""
    protocol_version = "HTTP/1.1"
    STALL_AFTER = 200000
    release = threading.Event()
    where = "download"

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path.startswith("/latency.txt"):
            body = b"test=test\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        size = 32 * 10 ** 6
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.where == "download":
            self.wfile.write(b"x" * self.STALL_AFTER)
            self.wfile.flush()
            self.release.wait(30)
            return
        self.wfile.write(b"x" * size)

    def do_POST(self):
        n = int(self.headers["Content-Length"])
        if self.where == "upload":
            self.rfile.read(min(n, self.STALL_AFTER))
            self.release.wait(30)  # stop reading: the client's send fills and blocks
            return
        self.rfile.read(n)
        body = b"size=%d" % n
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize("where", ["download", "upload"])
def test_server_that_stalls_mid_test(where, monkeypatch):
    monkeypatch.setattr(st, "FULL_SECONDS", 4.0)
    handler = type("H", (_Stall,), {"where": where, "release": threading.Event()})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    url = "http://127.0.0.1:%d/upload.php" % srv.server_address[1]
    try:
        began = time.monotonic()
        r = _family(io_timeout=1.0).run(server=url, mode="full", budget=10 ** 9)
        took = time.monotonic() - began
        assert r["ok"] is False and r["reason"] == "timeout", r
        assert "down_mbps" not in r and "up_mbps" not in r
        if where == "download":
            assert r["bytes_rx"] >= _Stall.STALL_AFTER  # the partial bytes are counted
        else:
            assert r["bytes_tx"] >= _Stall.STALL_AFTER
        # two phases at most + one socket timeout + slack: never a hang
        assert took < 2 * st.FULL_SECONDS + 10, took
        _check_message(r)
    finally:
        handler.release.set()
        srv.shutdown()
        srv.server_close()


def test_speedtest_net_unreachable_falls_back(collector, monkeypatch):
    """The real speedtest-cli discovery, with no Internet: fails cleanly, in time, then the
    configured server is used."""
    monkeypatch.setattr(st, "FULL_SECONDS", 1.0)
    began = time.monotonic()
    with pytest.raises(SpeedtestFailed) as exc:
        st.speedtest_net_servers(3.0)
    assert exc.value.reason == "no_server"
    assert time.monotonic() - began < st.DISCOVER_TIMEOUT + 1
    r = SpeedtestFamily(servers=[collector], speedtest_net=True, io_timeout=3.0).run()
    assert r["ok"] is True and r["server"] == collector, r
    nothing = SpeedtestFamily(servers=[], speedtest_net=True, io_timeout=3.0).run()
    assert nothing["ok"] is False and nothing["reason"] == "no_server"
    _check_message(nothing)


def test_a_dead_server_is_skipped_for_the_next():
    dead = "http://127.0.0.1:%d/upload.php" % free_port()
    r = _family(servers=[dead]).run()
    assert r["ok"] is False and r["reason"] == "no_server"


def test_collector_server_streams_and_limits(collector):
    base = collector.rsplit("/", 1)[0]
    host, port = base.split("//")[1].split("/")[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/speedtest/latency.txt")
    assert conn.getresponse().read() == b"test=test\n"
    conn.request("HEAD", "/speedtest/random4000x4000.jpg")
    r = conn.getresponse()
    r.read()
    assert int(r.getheader("Content-Length")) == 4000 * 4000 * 2
    conn.request("GET", "/speedtest/random123x123.jpg")
    r = conn.getresponse()
    r.read()
    assert r.status == 404
    body = os.urandom(300000)
    conn.request("POST", "/speedtest/upload.php", body=body)
    assert conn.getresponse().read() == b"size=300000"
    conn.close()


def test_concurrency_limit_503(tmp_path):
    engine = db.make_engine("sqlite:///%s" % (tmp_path / "state.db"))
    cfg = collector_config(env={}, demo=True, overrides={"speedtest_server": {
        "max_concurrent": 2}})
    server = ApiServer(create_app(seed(engine), cfg), "127.0.0.1", free_port()).start()
    held = []
    try:
        for _ in range(2):  # two downloads started and not read: both slots taken
            s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            s.sendall(b"GET /speedtest/random4000x4000.jpg HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(12).startswith(b"HTTP/1.1 200")
            held.append(s)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/speedtest/random350x350.jpg")
        r = conn.getresponse()
        r.read()
        assert r.status == 503 and r.getheader("Retry-After") == "30"
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/speedtest/latency.txt")  # latency takes no slot
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b"test=test\n"
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        assert "schoolmon_speedtest_server_refused_total" in text
        conn.close()
    finally:
        for s in held:
            s.close()
        server.stop()
        engine.dispose()


def test_disabled_server_is_not_mounted(tmp_path):
    engine = db.make_engine("sqlite:///%s" % (tmp_path / "state.db"))
    cfg = collector_config(env={}, demo=True, overrides={"speedtest_server": {
        "enabled": False}})
    from starlette.testclient import TestClient
    with TestClient(create_app(seed(engine), cfg)) as c:
        assert c.get("/speedtest/latency.txt").status_code == 404
    engine.dispose()


def test_download_memory_does_not_grow_with_n(collector):
    """Serving the largest file costs no more memory than the smallest: streamed from one
    block (a server process measured from outside: its RSS while 4 large downloads run)."""
    code = r"""
import resource, sys, threading, time, urllib.request
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from schoolmon.collector.speedtest_server import SpeedtestApp
app = Starlette(routes=[Mount("/speedtest", SpeedtestApp(8))])
port = int(sys.argv[1]); n = int(sys.argv[2])
srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                    lifespan="off"))
threading.Thread(target=srv.run, daemon=True).start()
while not srv.started:
    time.sleep(0.02)
def get():
    with urllib.request.urlopen("http://127.0.0.1:%d/speedtest/random%dx%d.jpg" % (port, n, n)) as r:
        while r.read(1 << 20):
            pass
ts = [threading.Thread(target=get) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
srv.should_exit = True
"""
    rss = {}
    for n in (350, 4000):
        out = subprocess.run([sys.executable, "-c", code, str(free_port()), str(n)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        rss[n] = int(out.stdout.split()[-1])
    # 4 × 32 MB built in memory would add > 100 MB; streaming adds next to nothing
    assert rss[4000] - rss[350] < 30 * 1024, rss


def test_cli_speedtest(collector, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    env.update(SCHOOLMON_AGENT_STATE_DIR=str(tmp_path / "st"),
               SCHOOLMON_QUEUE_DIR=str(tmp_path / "q"), SCHOOLMON_AGENT_SCHOOL="79000101",
               SCHOOLMON_SPEEDTEST_SPEEDTEST_NET="false")
    cli = [sys.executable, "-m", "schoolmon.agent.cli"]
    r = subprocess.run(cli + ["speedtest", "--server", collector, "--mode", "short"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr + r.stdout
    line = json.loads(r.stdout)
    assert line["topic"].endswith("/speedtest") and line["payload"]["ok"] is True
    env["SCHOOLMON_SPEEDTEST_SERVERS"] = "http://127.0.0.1:%d/upload.php" % free_port()
    r = subprocess.run(cli + ["speedtest"], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 1
    assert "the bandwidth test failed: no_server" in r.stderr
    assert json.loads(r.stdout)["payload"]["reason"] == "no_server"
    r = subprocess.run(cli + ["speedtest", "--server", "ftp://x"], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 2 and "upload.php" in r.stderr
    env["SCHOOLMON_SPEEDTEST_SERVERS"] = collector
    r = subprocess.run(cli + ["collect", "--family", "speedtest"], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["payload"]["ok"] is True, r.stdout
