"""The collector's bandwidth-test server (collector/speedtest_server.py) served by create_app
under uvicorn as the collector runs it, tested with the agent's real speedtest family:
full and short mode, the byte budget, streaming (memory does not grow with N), the
concurrency limit (503 + Retry-After, counted), switched off by its key."""
import http.client
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from schoolmon.agent.families import speedtest as st
from schoolmon.agent.families.speedtest import SpeedtestFamily
from schoolmon.agent.message import build_message
from schoolmon.collector.api import create_app
from schoolmon.collector.api.server import ApiServer
from schoolmon.collector.config import load_config as collector_config
from schoolmon.collector.store import schema as db

from tests.collector.api.apihelp import seed
from tests.servers import free_port


def _family(**kw):
    kw.setdefault("speedtest_net", False)
    kw.setdefault("io_timeout", 3.0)
    return SpeedtestFamily(**kw)


def _check_message(fields):
    raw = build_message("speedtest", fields, 1, time.time())
    sent = json.loads(raw)
    assert {k: sent[k] for k in fields} == fields


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




def test_full_and_short_against_the_collector(collector, monkeypatch):
    monkeypatch.setattr(st, "FULL_SECONDS", 1.5)  # the same code path, a shorter test
    r = _family().run(server=collector, mode="full", budget=10 ** 9)
    assert r["ok"] is True, r
    assert r["down_mbps"] > 10 and r["up_mbps"] > 10 and r["ping_ms"] > 0
    assert r["bytes_rx"] > 1e6 and r["bytes_tx"] > 1e6
    assert r["server"] == collector and r["mode"] == "full" and r["trigger"] == "manual"
    # the address the server saw (ip.txt) and the interface of the route to it: loopback
    assert r["ip"] == "127.0.0.1" and r["if"] == "lo" and "wired" not in r
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
    conn.request("GET", "/speedtest/ip.txt")
    assert conn.getresponse().read() == b"ip=127.0.0.1\n"
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
    server = ApiServer(create_app(seed(engine), cfg), "127.0.0.1", free_port()).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/speedtest/latency.txt")
        r = conn.getresponse()
        r.read()
        assert r.status == 404
        conn.close()
    finally:
        server.stop()
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
