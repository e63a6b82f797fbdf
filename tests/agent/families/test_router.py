"""The router family against a real net-snmp snmpd (tests/agent/snmpd.py): values read as
served, rates across 32- and 64-bit wraps, a reboot is not a wrap, wrong community, v3,
a port where nothing answers; and the rate arithmetic on its own."""
import json
import os
import socket

import pytest
from schoolmon.agent.families.router import STATE_FILE, RouterFamily
from schoolmon.agent.families.router_snmp import Auth, Counters, counter_delta, model_of, rates
from schoolmon.agent.runner import RecordedRunner
from schoolmon.protocol import envelope, validate

from ..snmpd import COMMUNITY, V3_AUTH, V3_AUTH_USER, SnmpIf

pytest.importorskip("pysnmp")

M32, M64 = 2 ** 32, 2 ** 64


class Clock:
    def __init__(self, t=1_800_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


def _family(snmpd, tmp_path, auth=None, clock=None, **kw):
    return RouterFamily("127.0.0.1", RecordedRunner({}), auth or Auth("v2c", COMMUNITY),
                        port=snmpd.port, timeout=1.0, retries=0, state_dir=str(tmp_path),
                        platform_name="linux", clock=clock or Clock(), **kw)


def _valid(payload):
    validate("router", envelope("router", payload, 1, 1_800_000_000.0))


def test_reads_what_the_router_serves(snmpd, tmp_path):
    snmpd.set(uptime=360000, ifs=[SnmpIf(1, "lo", if_type=24, rx=10 ** 12, mbps=10),
                                  SnmpIf(2, "ether1-wan", rx=5 * 10 ** 9, tx=10 ** 9, mbps=100),
                                  SnmpIf(3, "bridge-lan", rx=10 ** 9, tx=4 * 10 ** 9,
                                         mbps=1000),
                                  SnmpIf(4, "ether5", up=False)],
              descr="RouterOS RB951Ui-2HnD", name="thcs-le-loi")
    got = _family(snmpd, tmp_path).collect()
    _valid(got)
    assert got["snmp_ok"] is True and "snmp_err" not in got
    assert (got["uptime_s"], got["name"], got["descr"]) == (3600, "thcs-le-loi",
                                                            "RouterOS RB951Ui-2HnD")
    assert got["model"] == "MikroTik RB951Ui-2HnD"
    # default WAN: the up, non-loopback interface with the most in-octets
    assert (got["wan_if"], got["wan_up"], got["wan_mbps"]) == ("ether1-wan", True, 100)
    assert (got["counter_bits"], got["rx_octets"], got["tx_octets"]) == (64, 5 * 10 ** 9,
                                                                         10 ** 9)
    assert "rx_bps" not in got  # first poll: nothing to compare with
    assert [(i["name"], i["index"], i["up"], i["mbps"]) for i in got["ifs"]] == [
        ("lo", 1, True, 10), ("ether1-wan", 2, True, 100), ("bridge-lan", 3, True, 1000),
        ("ether5", 4, False, 100)]
    assert got["host"] == "127.0.0.1" and "gw_ok" in got


def test_rates_across_64_bit_wrap_survive_a_restart(snmpd, tmp_path):
    clock = Clock()
    snmpd.set(uptime=100_000, ifs=[SnmpIf(2, "wan", rx=M64 - 1000, tx=500, mbps=100)])
    _family(snmpd, tmp_path, clock=clock).collect()
    assert os.path.exists(tmp_path / STATE_FILE)
    # a new agent process (restart) reads the previous poll from the state folder
    clock.t += 300
    snmpd.set(uptime=130_000, ifs=[SnmpIf(2, "wan", rx=M64 - 1000 + 375_000_000,
                                          tx=500 + 37_500_000, mbps=100)])
    got = _family(snmpd, tmp_path, clock=clock).collect()
    _valid(got)
    assert got["rebooted"] is False
    assert (got["rx_bps"], got["tx_bps"]) == (10_000_000, 1_000_000)  # by sysUpTime: 300 s
    assert (got["rx_util_pct"], got["tx_util_pct"]) == (10.0, 1.0)
    assert got["rx_octets"] == (M64 - 1000 + 375_000_000) % M64  # it wrapped, read as is


def test_32_bit_counters_wrap_and_reboot_is_not_a_wrap(snmpd, tmp_path):
    clock = Clock()
    fam = _family(snmpd, tmp_path, clock=clock, wan_if="wan")
    snmpd.set(uptime=100_000, ifs=[SnmpIf(2, "wan", rx=M32 - 100, tx=10, hc=False, mbps=100)])
    assert fam.collect()["counter_bits"] == 32
    clock.t += 60
    snmpd.set(uptime=106_000, ifs=[SnmpIf(2, "wan", rx=M32 - 100 + 7_500_000, tx=10,
                                          hc=False, mbps=100)])
    got = fam.collect()
    assert got["rx_octets"] == 7_500_000 - 100  # the 32-bit counter wrapped
    assert got["rx_bps"] == 1_000_000 and got["tx_bps"] == 0 and got["rebooted"] is False
    # the router reboots: uptime and counters start again — no rate, not a huge wrap
    clock.t += 60
    snmpd.set(uptime=3000, ifs=[SnmpIf(2, "wan", rx=1000, tx=5, hc=False, mbps=100)])
    got = fam.collect()
    _valid(got)
    assert got["rebooted"] is True and "rx_bps" not in got and "tx_bps" not in got
    clock.t += 60
    snmpd.set(uptime=9000, ifs=[SnmpIf(2, "wan", rx=1000 + 750_000, tx=5, hc=False,
                                       mbps=100)])
    got = fam.collect()
    assert got["rebooted"] is False and got["rx_bps"] == 100_000


def test_wrong_community_looks_like_a_timeout(snmpd, tmp_path):
    got = _family(snmpd, tmp_path, auth=Auth("v2c", "not-the-community")).collect()
    _valid(got)
    assert (got["snmp_ok"], got["snmp_err"]) == (False, "timeout")
    assert "not-the-community" not in json.dumps(got)


def test_v3_user_and_wrong_key(snmpd, tmp_path):
    auth = Auth("v3", user=V3_AUTH_USER, auth_key=V3_AUTH, auth_protocol="sha")
    got = _family(snmpd, tmp_path, auth=auth).collect()
    assert got["snmp_ok"] is True and got["uptime_s"] == 123
    bad = Auth("v3", user=V3_AUTH_USER, auth_key="wrong-pass-phrase", auth_protocol="sha")
    got = _family(snmpd, tmp_path, auth=bad).collect()
    assert (got["snmp_ok"], got["snmp_err"]) == (False, "auth")
    assert "wrong-pass-phrase" not in repr(bad)


def test_nothing_answers_and_unknown_wan(tmp_path, snmpd):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))  # a port that takes the datagrams and never replies
    try:
        fam = RouterFamily("127.0.0.1", RecordedRunner({}), Auth("v2c", "public"),
                           port=sock.getsockname()[1], timeout=0.5, retries=0,
                           platform_name="linux")
        assert fam.collect()["snmp_err"] == "timeout"
    finally:
        sock.close()
    got = _family(snmpd, tmp_path, wan_if="ether9").collect()
    assert got["snmp_ok"] is True and got["snmp_err"].startswith("no such object")
    assert "wan_if" not in got


def test_gateway_only_without_snmp():
    fam = RouterFamily("127.0.0.1", RecordedRunner({}), None, platform_name="linux")
    got = fam.collect()
    assert set(got) <= {"host", "gw_ok", "gw_ms", "gw_err"} and "snmp_ok" not in got


# --- the arithmetic -------------------------------------------------------------------------

def _c(uptime, rx, tx=0, bits=64):
    return Counters("r", 2, bits, uptime, rx, tx)


def test_rate_rules():
    # a 64-bit counter going down without reboot: a reset, no rate
    assert "rx_bps" not in rates(_c(100, 10 ** 9), _c(30100, 10), 300, 1e8)
    # a 32-bit wrap that would mean more than the interface's speed: no rate
    assert counter_delta(10, 5, 32, 300, 1e6) is None
    assert counter_delta(M32 - 10, 5, 32, 300, 1e9) == 15
    # speed unknown: a wrap is plausible below half the range
    assert counter_delta(M32 - 10, 5, 32, 300, None) == 15
    assert counter_delta(2 ** 30, 5, 32, 300, None) is None
    # sysUpTime itself wraps after 497 days: not a reboot when the wall clock agrees
    assert rates(_c(M32 - 1000, 0), _c(29000, 375_000), 300.0, 1e8)["rebooted"] is False
    assert rates(_c(M32 - 1000, 0), _c(29000, 0), 3.0, 1e8) == {"rebooted": True}
    # another interface or counter width: start again
    assert rates(_c(100, 0), Counters("r", 3, 64, 200, 5, 5), 1.0, None) == {}


@pytest.mark.parametrize("descr, expected", [
    ("RouterOS RB951Ui-2HnD", {"model": "MikroTik RB951Ui-2HnD"}),
    ("DrayTek Corporation, Router Model: Vigor2925 Series, Version: 3.9.2, Build Date/Time:"
     "Dec 21 2019", {"model": "DrayTek Vigor2925 Series", "firmware": "3.9.2"}),
    ("Cisco IOS Software, C880 Software (C880DATA-UNIVERSALK9-M), Version 15.1(4)M4, "
     "RELEASE SOFTWARE (fc1)", {"model": "Cisco C880", "firmware": "15.1(4)M4"}),
    ("TL-ER6120 3.0.1 Build 20170512", {"model": "TP-Link TL-ER6120",
                                        "firmware": "3.0.1 Build 20170512"}),
    ("Linux gw 5.4.0", {}),
])
def test_model_table(descr, expected):
    assert model_of(descr) == expected
