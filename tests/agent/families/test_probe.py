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
    dns_check,
    domestic_url,
    http_check,
    parse_ping,
    ping_check,
)
from schoolmon.agent.families.route import (
    ROUTE,
    Route,
    default_route,
    linux_link,
    linux_route,
    route_to,
)
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
    # the real resolver: the name does not exist (or, without a network here, no answer)
    assert got["dns_ok"] is False and got["dns_err"] in ("nxdomain", "timeout"), got
    assert (got["dom_ok"], got["dom_err"]) == (False, "http 503")
    assert (got["intl_ok"], got["intl_err"]) == (False, "refused")


def test_no_route_and_unconfigured_targets_are_left_out(caplog):
    fam = _family(_settings(dns_name=""), route=lambda: None)
    with caplog.at_level("WARNING", logger="schoolmon.agent.families.probe"):
        got = fam.collect()
        again = fam.collect()
    # no domestic target: said (not an attempt: no dom_ok), and a warning, once
    assert got == again == {"gw_ok": False, "gw_err": "no route", "dom_err": "not_configured"}
    _valid(got)
    warned = [r for r in caplog.records if "no domestic target" in r.getMessage()]
    assert len(warned) == 1, caplog.records
    assert "probe.domestic_url" in warned[0].getMessage()


def _gai(errno):
    def resolve(*a):
        raise socket.gaierror(errno, "resolver says no")
    return resolve


@pytest.mark.parametrize("errno, expected", [
    (socket.EAI_NONAME, "nxdomain"), (11001, "nxdomain"),  # glibc; Windows WSAHOST_NOT_FOUND
    (getattr(socket, "EAI_NODATA", -5), "no_answer"), (11004, "no_answer"),
    (socket.EAI_AGAIN, "timeout"), (11002, "timeout"),
    (socket.EAI_FAIL, "servfail"), (11003, "servfail"),
    (-11, "error: resolver says no"),  # EAI_SYSTEM: the resolver's own words
])
def test_dns_errors_are_specific(tmp_path, errno, expected):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# written by a DHCP client\nsearch school.lan\nnameserver 10.0.0.1\n")
    got = dns_check("moet.gov.vn", 1.0, resolve=_gai(errno), resolv_conf=str(conf))
    assert got == Check(False, None, expected)


def test_dns_without_any_server_is_no_server(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("search school.lan\n")  # a DHCP lease that gave no DNS server
    for errno in (socket.EAI_AGAIN, socket.EAI_FAIL):
        assert dns_check("moet.gov.vn", 1.0, resolve=_gai(errno),
                         resolv_conf=str(conf)).err == "no_server"
        assert dns_check("moet.gov.vn", 1.0, resolve=_gai(errno),
                         resolv_conf=str(tmp_path / "missing")).err == "no_server"
    # a name that does not exist is that, whatever the configuration
    assert dns_check("x", 1.0, resolve=_gai(socket.EAI_NONAME),
                     resolv_conf=str(conf)).err == "nxdomain"
    # the real resolver, a real name from /etc/hosts
    assert dns_check("localhost", 2.0).ok


def test_http_target_whose_name_does_not_resolve_says_why():
    got = http_check("http://no-such-host.invalid/generate_204", 2.0)
    assert got.ok is False and got.err in ("dns: nxdomain", "dns: timeout", "timeout"), got


# --- the route to one server (the speed test's interface) ------------------------------------

def test_route_to_a_loopback_server_is_lo_wired_unknown():
    assert route_to("127.0.0.1", 8080) == Route("lo", "", None, None)
    assert route_to("localhost", 8080).iface == "lo"
    assert route_to("no-such-host.invalid", 80) is None  # unknown: left out
    assert linux_link("lo").wired is None  # /sys/class/net/lo: loopback, no link


def test_route_to_another_interface(monkeypatch):
    """Not the default route's interface: its own facts (Linux /sys; elsewhere psutil's
    speed, wired unknown); the default route's interface: the default route."""
    from schoolmon.agent.families import route as rt

    monkeypatch.setattr(rt, "local_address", lambda host, port: "10.8.0.5")
    addrs = {"enp3s0": [SimpleNamespace(address="192.168.0.23")],
             "tun0": [SimpleNamespace(address="10.8.0.5")]}
    wired = os.path.join(ROUTE_LINUX, "wired", "sys")
    dflt = lambda: Route("enp3s0", "192.168.0.1", True, 1000)  # noqa: E731
    assert route_to("so.example", 80, platform_name="linux", default=dflt, addrs=addrs,
                    sys_root=wired) == Route("tun0", "", None, None)
    addrs["enp3s0"].append(SimpleNamespace(address="10.8.0.5"))
    addrs.pop("tun0")
    assert route_to("so.example", 80, platform_name="linux", default=dflt,
                    addrs=addrs) == dflt()
    addrs = {"Wi-Fi": [SimpleNamespace(address="10.8.0.5")]}
    assert route_to("so.example", 80, platform_name="win32", default=dflt, addrs=addrs,
                    stats={"Wi-Fi": SimpleNamespace(speed=144)}) == \
        Route("Wi-Fi", "", None, 144)


def test_domestic_default_is_the_collectors_speedtest_server():
    s = _settings()
    assert domestic_url(s, "mqtts://collector.sgd.example:8883") == \
        "http://collector.sgd.example:8080/speedtest/latency.txt"
    assert domestic_url(s, "mqtt://[fd00::1]:1883").startswith("http://[fd00::1]:8080/")
    assert domestic_url(s, "") == ""
    assert domestic_url(_settings(domestic_url="http://x/l.txt"), "mqtt://a") == \
        "http://x/l.txt"


def test_cli_collect_probe_without_a_domestic_target_says_so(tmp_path, http_server):
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    env.update(SCHOOLMON_AGENT_STATE_DIR=str(tmp_path / "st"), SCHOOLMON_AGENT_SCHOOL="79000101",
               SCHOOLMON_PROBE_DNS_NAME="localhost", SCHOOLMON_PROBE_INTL_URL="",
               SCHOOLMON_PROBE_TIMEOUT="2")
    cli = [sys.executable, "-m", "schoolmon.agent.cli", "collect", "--family", "probe"]
    r = subprocess.run(cli, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    payload = json.loads(r.stdout)["payload"]
    assert payload["dom_err"] == "not_configured" and "dom_ok" not in payload, payload
    assert payload["dns_ok"] is True
    assert r.stderr.count("no domestic target") == 1, r.stderr
    env["SCHOOLMON_PROBE_DOMESTIC_URL"] = http_server + "/speedtest/latency.txt"
    r = subprocess.run(cli, capture_output=True, text=True, timeout=60, env=env)
    payload = json.loads(r.stdout)["payload"]
    assert payload["dom_ok"] is True and "dom_err" not in payload, payload
    assert "no domestic target" not in r.stderr
