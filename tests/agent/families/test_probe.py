"""The light probe and the default route: real HTTP servers on loopback (one that accepts
and never answers), DNS failure, recorded ping outputs (Linux, English and Vietnamese
Windows), fixture /proc + /sys trees and recorded Windows route answers."""
import http.server
import os
import socket
import threading
import time
from types import SimpleNamespace

import pytest
from schoolmon.agent.families.probe import (
    Check,
    ProbeFamily,
    domestic_url,
    parse_ping,
    ping_check,
)
from schoolmon.agent.families.route import ROUTE, Route, default_route, linux_route
from schoolmon.agent.runner import CommandResult, CommandTimeout, RecordedRunner
from schoolmon.protocol import envelope, validate

FIX = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")
PING_WIN = os.path.join(FIX, "windows", "ping")
ROUTE_WIN = os.path.join(FIX, "windows", "route")
ROUTE_LINUX = os.path.join(FIX, "linux", "route")


def _read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


# --- ping -----------------------------------------------------------------------------------

def test_parse_ping_linux_and_windows_outputs():
    assert parse_ping(_read(os.path.join(FIX, "linux", "ping", "reply.txt"))) == 0.412
    assert parse_ping(_read(os.path.join(PING_WIN, "en-reply-lt1ms.txt"))) == 0.5
    assert parse_ping(_read(os.path.join(PING_WIN, "vi-reply-3ms.txt"))) == 3.0
    # "Destination host unreachable" is a reply without TTL: no answer from the gateway
    assert parse_ping(_read(os.path.join(PING_WIN, "vi-host-unreachable.txt"))) is None
    assert parse_ping("") is None


def test_ping_check_windows_vietnamese():
    runner = RecordedRunner({"ping -n 1 -w 1000 192.168.1.1": "vi-reply-3ms.txt"},
                            root=PING_WIN)
    got = ping_check(runner, "192.168.1.1", 1.0, "win32", tcp=_no_tcp)
    assert got == Check(True, 3.0)


def _no_tcp(host, timeout):
    return Check(False, None, "timeout")


def test_ping_unanswered_or_missing_falls_back_to_tcp():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    try:
        from schoolmon.agent.families import probe

        def tcp(host, timeout):
            return probe.tcp_check(host, timeout, ports=(port,))

        unreachable = RecordedRunner({"ping -n 1 -w 1000 127.0.0.1": CommandResult(
            0, _read(os.path.join(PING_WIN, "vi-host-unreachable.txt")), "")})
        assert ping_check(unreachable, "127.0.0.1", 1.0, "win32", tcp=tcp).ok
        missing = RecordedRunner({})  # rc 127: ping is not installed
        assert ping_check(missing, "127.0.0.1", 1.0, "linux", tcp=tcp).ok
        hung = RecordedRunner({"ping -c 1 -W 1 127.0.0.1": CommandTimeout(["ping"], 2.0)})
        assert ping_check(hung, "127.0.0.1", 1.0, "linux", tcp=tcp).ok
    finally:
        listener.close()
    # a closed port answers RST: the host is there
    assert probe.tcp_check("127.0.0.1", 1.0, ports=(port,)).ok
    got = ping_check(RecordedRunner({}), "127.0.0.1", 1.0, "linux", tcp=_no_tcp)
    assert got == Check(False, None, "timeout")


# --- route ----------------------------------------------------------------------------------

def test_linux_route_from_proc_and_sysfs():
    root = os.path.join(ROUTE_LINUX, "wired")
    assert linux_route(os.path.join(root, "proc"), os.path.join(root, "sys")) == Route(
        "enp3s0", "192.168.0.1", True, 1000)
    # two default routes: the lower metric (Wi-Fi here) wins; wlan has no speed file
    root = os.path.join(ROUTE_LINUX, "wifi")
    assert linux_route(os.path.join(root, "proc"), os.path.join(root, "sys")) == Route(
        "wlp2s0", "10.10.0.1", False, None)
    assert linux_route("/nonexistent", "/nonexistent") is None


@pytest.mark.parametrize("recordings, expected", [
    ({"route-cim": "win11-wifi-and-ethernet.json"},
     Route("Ethernet", "10.10.0.1", True, 1000)),
    ({"route-cim": "win10-vi-ethernet.json"},
     Route("Kết nối Cục bộ", "192.168.100.1", True, 100)),
    ({"route-cim": "win10-3g-usb-modem.json"}, Route("Cellular", "", False, 21)),
    ({"route-cim": CommandResult(1, "", "Get-CimInstance : not recognized"),
      "route-wmi": "win7-sp1-wmi.txt"},
     Route("Local Area Connection", "192.168.0.1", None, 100)),
])
def test_windows_route_recordings(recordings, expected):
    ROUTE.legacy = None  # the reader remembers Windows 7 per process
    try:
        runner = RecordedRunner(recordings, root=ROUTE_WIN)
        assert default_route(runner, platform_name="win32") == expected
    finally:
        ROUTE.legacy = None


def test_route_fields_leave_unknowns_out():
    assert Route("ppp0", "", None, None).fields() == {"if": "ppp0"}
    assert Route("eth0", "1.2.3.4", True, 100).fields() == {"if": "eth0", "wired": True,
                                                            "link_mbps": 100}


# --- HTTP/DNS, the whole family ---------------------------------------------------------------

class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path.startswith("/speedtest/latency.txt"):
            body = b"test=test\n"
            self.send_response(200)
        elif self.path == "/generate_204":
            body = b""
            self.send_response(204)
        else:
            body = b"no"
            self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_server():
    """Accepts connections (the kernel completes the handshake) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield "http://127.0.0.1:%d/generate_204" % sock.getsockname()[1]
    sock.close()


def _settings(**kw):
    base = dict(timeout=1.0, dns_name="localhost", domestic_url="", domestic_port=8080,
                intl_url="")
    base.update(kw)
    return SimpleNamespace(**base)


def _family(settings, dom="", tester=None, route=None):
    return ProbeFamily(RecordedRunner({"ping -c 1 -W 1 192.0.2.1": os.path.join(
        FIX, "linux", "ping", "reply.txt")}), settings, dom, tester=tester,
        platform_name="linux",
        route=route or (lambda: Route("enp3s0", "192.0.2.1", True, 1000)))


def _valid(payload):
    validate("probe", envelope("probe", payload, 1, time.time()))


def test_probe_all_targets_answer(http_server):
    fam = _family(_settings(intl_url=http_server + "/generate_204"),
                  dom=http_server + "/speedtest/latency.txt", tester=True)
    got = fam.collect()
    _valid(got)
    assert got["gw"] == "192.0.2.1" and got["gw_ok"] and got["gw_ms"] == 0.4
    assert (got["if"], got["wired"], got["link_mbps"]) == ("enp3s0", True, 1000)
    for prefix in ("dns", "dom", "intl"):
        assert got[prefix + "_ok"] is True, got
        assert got[prefix + "_ms"] >= 0
    assert got["dns_name"] == "localhost" and got["tester"] is True
    assert got["dom_url"].endswith("/speedtest/latency.txt")


def test_a_target_that_never_answers_costs_only_itself(http_server, silent_server):
    fam = _family(_settings(timeout=1.0, intl_url=silent_server),
                  dom=http_server + "/speedtest/latency.txt")
    start = time.monotonic()
    got = fam.collect()
    took = time.monotonic() - start
    _valid(got)
    assert took < 1.0 + 1.5, "the family waited %.1f s for a target that never answers" % took
    assert (got["intl_ok"], got["intl_err"]) == (False, "timeout")
    assert got["dom_ok"] is True and got["dns_ok"] is True and got["gw_ok"] is True


def test_http_errors_and_dns_failure(http_server):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: refused
    fam = _family(_settings(dns_name="no-such-host.invalid",
                            intl_url="http://127.0.0.1:%d/" % port),
                  dom=http_server + "/missing")
    got = fam.collect()
    _valid(got)
    assert got["dns_ok"] is False and got["dns_err"] in ("dns", "timeout")
    assert (got["dom_ok"], got["dom_err"]) == (False, "http 503")
    assert (got["intl_ok"], got["intl_err"]) == (False, "refused")


def test_no_route_and_unconfigured_targets_are_left_out():
    got = _family(_settings(dns_name=""), route=lambda: None).collect()
    assert got == {"gw_ok": False, "gw_err": "no route"}
    _valid(got)


def test_domestic_default_is_the_collectors_speedtest_server():
    s = _settings()
    assert domestic_url(s, "mqtts://collector.sgd.example:8883") == \
        "http://collector.sgd.example:8080/speedtest/latency.txt"
    assert domestic_url(s, "mqtt://[fd00::1]:1883").startswith("http://[fd00::1]:8080/")
    assert domestic_url(s, "") == ""
    assert domestic_url(_settings(domestic_url="http://x/l.txt"), "mqtt://a") == \
        "http://x/l.txt"
