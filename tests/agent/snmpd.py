"""A real net-snmp ``snmpd`` for tests: private, on a free loopback UDP port, with its own
config (a v2c community, a v3 user, a view) and a ``pass_persist`` script serving the system
group (sysDescr, sysUpTime, sysName) and IF-MIB ifTable/ifXTable from a JSON file the test
writes, so a test can make counters wrap and the router "reboot".

    with Snmpd() as agent:                       # or the ``snmpd`` fixture (tests/agent/conftest.py)
        agent.set(uptime=100, ifs=[SnmpIf(1, "ether1-wan", rx=10, tx=20, hc=True)])
        ... poll 127.0.0.1:agent.port, community agent.community ...

Served values are read from the file on every request: ``set`` takes effect at once.
The script registers 1.3.6.1.2.1.1, .2.2 and .31.1.1 at a higher priority than snmpd's
built-in modules, so every value there is the test's.
"""
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, NamedTuple, Optional

SNMPD = "/usr/sbin/snmpd"
COMMUNITY = "schoolro-test"
V3_USER = "smonv3"
V3_AUTH = "authpass-123"
V3_PRIV = "privpass-456"
#: a v3 user with authentication only (authNoPriv): AES needs the `cryptography` package
V3_AUTH_USER = "smonauth"


class SnmpIf(NamedTuple):
    index: int
    name: str
    rx: int = 0
    tx: int = 0
    up: bool = True
    mbps: int = 100
    #: serve ifXTable's 64-bit counters (ifHCInOctets/ifHCOutOctets) for this interface
    hc: bool = True
    if_type: int = 6  # ethernetCsmacd; 24 = softwareLoopback


# The pass_persist script: stdlib only, reads the state file on every request.
_SCRIPT = r'''
import json, sys

STATE = %(state)r
SYS = "1.3.6.1.2.1.1."
IFT = "1.3.6.1.2.1.2.2.1."
IFX = "1.3.6.1.2.1.31.1.1.1."


def table():
    with open(STATE) as fh:
        s = json.load(fh)
    rows = [(SYS + "1.0", "string", s["descr"]), (SYS + "3.0", "timeticks", s["uptime"]),
            (SYS + "5.0", "string", s["name"])]
    ifs = sorted(s["ifs"], key=lambda i: i["index"])
    m32 = 2 ** 32
    for col, typ, get in ((1, "integer", lambda i: i["index"]),
                          (2, "string", lambda i: i["name"]),
                          (3, "integer", lambda i: i["if_type"]),
                          (5, "gauge", lambda i: min(i["mbps"] * 10 ** 6, m32 - 1)),
                          (8, "integer", lambda i: 1 if i["up"] else 2),
                          (10, "counter", lambda i: i["rx"] %% m32),
                          (16, "counter", lambda i: i["tx"] %% m32)):
        rows += [(IFT + "%%d.%%d" %% (col, i["index"]), typ, get(i)) for i in ifs]
    for col, typ, get, hc_only in ((1, "string", lambda i: i["name"], False),
                                   (6, "counter64", lambda i: i["rx"] %% 2 ** 64, True),
                                   (10, "counter64", lambda i: i["tx"] %% 2 ** 64, True),
                                   (15, "gauge", lambda i: i["mbps"], False)):
        rows += [(IFX + "%%d.%%d" %% (col, i["index"]), typ, get(i)) for i in ifs
                 if i["hc"] or not hc_only]
    key = lambda oid: tuple(int(p) for p in oid.split("."))
    return sorted(((key(o), o, t, v) for o, t, v in rows))


def main():
    out = sys.stdout
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        cmd = line.strip()
        if cmd == "PING":
            out.write("PONG\n")
        elif cmd in ("get", "getnext"):
            oid = sys.stdin.readline().strip().lstrip(".")
            want = tuple(int(p) for p in oid.split(".") if p)
            rows = table()
            hit = None
            for k, o, t, v in rows:
                if (cmd == "get" and k == want) or (cmd == "getnext" and k > want):
                    hit = (o, t, v)
                    break
            if hit is None:
                out.write("NONE\n")
            else:
                out.write(".%%s\n%%s\n%%s\n" %% hit)
        elif cmd == "set":
            sys.stdin.readline(); sys.stdin.readline()
            out.write("not-writable\n")
        out.flush()


main()
'''


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Snmpd:
    """A private snmpd; ``stop()`` is idempotent and removes its folder."""

    def __init__(self) -> None:
        if not os.path.exists(SNMPD):
            raise RuntimeError("snmpd is not installed: run `make servers` (Debian snmpd)")
        self.dir = tempfile.mkdtemp(prefix="schoolmon-snmpd-")
        self.port = _free_udp_port()
        self.community = COMMUNITY
        self.state_path = os.path.join(self.dir, "state.json")
        self.log_path = os.path.join(self.dir, "snmpd.log")
        self.proc: Optional[subprocess.Popen] = None
        self.set(uptime=12345, ifs=[SnmpIf(1, "lo", if_type=24, mbps=10),
                                    SnmpIf(2, "ether1-wan", rx=1000, tx=500)])

    def set(self, uptime: int, ifs: List[SnmpIf],
            descr: str = "RouterOS RB951Ui-2HnD", name: str = "truong-thcs-test") -> None:
        """What the router says from now on; uptime in hundredths of a second."""
        state: Dict[str, Any] = {"uptime": uptime % 2 ** 32, "descr": descr, "name": name,
                                 "ifs": [i._asdict() for i in ifs]}
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(state, fh)
        os.replace(tmp, self.state_path)  # the script never reads half a file

    def start(self) -> "Snmpd":
        script = os.path.join(self.dir, "serve.py")
        with open(script, "w") as fh:
            fh.write("#!%s\n" % sys.executable + _SCRIPT % {"state": self.state_path})
        os.chmod(script, os.stat(script).st_mode | stat.S_IXUSR)
        persist = os.path.join(self.dir, "persist")
        os.mkdir(persist)
        conf = os.path.join(self.dir, "snmpd.conf")
        with open(conf, "w") as fh:
            fh.write("\n".join((
                "[snmp] persistentDir %s" % persist,
                "agentaddress udp:127.0.0.1:%d" % self.port,
                "view schoolview included .1.3.6.1.2.1.1",
                "view schoolview included .1.3.6.1.2.1.2",
                "view schoolview included .1.3.6.1.2.1.31",
                "rocommunity %s 127.0.0.1 -V schoolview" % self.community,
                "createUser %s SHA %s AES %s" % (V3_USER, V3_AUTH, V3_PRIV),
                "rouser %s priv -V schoolview" % V3_USER,
                "createUser %s SHA %s" % (V3_AUTH_USER, V3_AUTH),
                "rouser %s auth -V schoolview" % V3_AUTH_USER,
                # one per scalar: snmpd's own system group registers each scalar, and a
                # more specific registration wins over priority
                "pass_persist -p 1 .1.3.6.1.2.1.1.1 %s" % script,
                "pass_persist -p 1 .1.3.6.1.2.1.1.3 %s" % script,
                "pass_persist -p 1 .1.3.6.1.2.1.1.5 %s" % script,
                "pass_persist -p 1 .1.3.6.1.2.1.2.2 %s" % script,
                "pass_persist -p 1 .1.3.6.1.2.1.31.1.1 %s" % script,
                "")))
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - open while snmpd runs
        # -C: only our file; our script's registrations (priority 1) shadow the built-in
        # system and interfaces modules
        self.proc = subprocess.Popen(
            [SNMPD, "-f", "-r", "-C", "-c", conf, "-Lo"],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, SNMP_PERSISTENT_DIR=persist, MIBS=""))
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 20.0) -> None:
        """snmpd logs its version line once it listens."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError("snmpd exited with %s: %s" % (self.proc.returncode,
                                                                 self.log()))
            if "NET-SNMP version" in self.log():
                return
            time.sleep(0.05)
        raise TimeoutError("snmpd on udp 127.0.0.1:%d not ready after %.0f s: %s"
                           % (self.port, timeout, self.log()))

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Snmpd":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
