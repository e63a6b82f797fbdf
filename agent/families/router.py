"""The ``router`` family: the school router, polled by the one agent configured with
``router.host``. Always the gateway check (``ping_check``: ICMP, else TCP 80/53); SNMP v2c/v3
when ``router.snmp`` is set (agent/families/router_snmp.py).

WAN rates come from the difference of two polls; the previous poll's counters are kept in
memory and in ``<state_dir>/router-counters.json`` so an agent restart does not cost a
rate. SNMP secrets never reach a log line or a message (``Auth.__repr__`` hides them).
"""
import json
import logging
import os
import time
from typing import Any, Dict, List, Optional

from ..files import write_atomic
from .probe import ping_check
from .router_snmp import Auth, Counters, Snapshot, SnmpError, model_of, poll, rates

log = logging.getLogger(__name__)

STATE_FILE = "router-counters.json"


def pick_wan(snap: Snapshot, wan_if: str) -> Optional[int]:
    """ifIndex of the WAN: ``router.wan_if`` as a name (ifName or ifDescr) or an index;
    else the up, non-loopback interface with the most in-octets."""
    if wan_if:
        for idx, i in snap.ifs.items():
            if wan_if in (i.get("name"), i.get("descr")) or wan_if == str(idx):
                return idx
        return None
    best = None
    for idx, i in sorted(snap.ifs.items()):
        if i.get("oper") != 1 or i.get("type") == 24:
            continue
        octets = i.get("in64", i.get("in32", 0))
        if best is None or octets > best[0]:
            best = (octets, idx)
    return best[1] if best else None


def _mbps(i: Dict[str, Any]) -> Optional[int]:
    if i.get("high"):
        return int(i["high"])
    if i.get("speed"):
        return int(i["speed"]) // 10 ** 6
    return None


class RouterFamily:
    def __init__(self, host: str, runner: Any, auth: Optional[Auth] = None, port: int = 161,
                 wan_if: str = "", timeout: float = 2.0, retries: int = 1,
                 state_dir: str = "", platform_name: Optional[str] = None,
                 clock: Any = time.time) -> None:
        self.host = host
        self.runner = runner
        self.auth = auth
        self.port = port
        self.wan_if = wan_if
        self.timeout = timeout
        self.retries = retries
        self.platform_name = platform_name
        self.clock = clock
        self.state_path = os.path.join(state_dir, STATE_FILE) if state_dir else ""
        self.prev: Optional[Counters] = None
        self.prev_wall: Optional[float] = None
        self._warned_missing = False
        self._load()

    def _load(self) -> None:
        if not self.state_path:
            return
        try:
            with open(self.state_path, encoding="utf-8") as fh:
                doc = json.load(fh)
            self.prev = Counters(**doc["counters"])
            self.prev_wall = float(doc["wall"])
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("router: ignoring %s (%s): the next poll gives no rate",
                        self.state_path, exc)

    def _save(self, cur: Counters, wall: float) -> None:
        self.prev, self.prev_wall = cur, wall
        if not self.state_path:
            return
        try:
            write_atomic(self.state_path, json.dumps(
                {"counters": cur._asdict(), "wall": wall}).encode("utf-8"))
        except OSError as exc:
            log.warning("router: cannot keep the counters in %s: %s", self.state_path, exc)

    def collect(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"host": self.host}
        out.update(ping_check(self.runner, self.host, self.timeout,
                              self.platform_name).fields("gw"))
        if self.auth is not None:
            out.update(self._snmp())
        return out

    def _snmp(self) -> Dict[str, Any]:
        try:
            snap = poll(self.host, self.port, self.auth, self.timeout, self.retries)  # type: ignore[arg-type]
        except ImportError:
            if not self._warned_missing:
                log.warning("router: SNMP is configured but pysnmp is not installed "
                            "(install the agent with the `snmp` extra)")
                self._warned_missing = True
            return {"snmp_ok": False, "snmp_err": "pysnmp not installed"}
        except SnmpError as exc:
            return {"snmp_ok": False, "snmp_err": exc.code}
        except Exception as exc:  # pysnmp's own faults: one poll lost, never the agent
            log.warning("router: SNMP poll failed: %s", exc.__class__.__name__)
            return {"snmp_ok": False, "snmp_err": "error: %s" % exc.__class__.__name__}
        wall = self.clock()
        out: Dict[str, Any] = {"snmp_ok": True, "uptime_s": snap.uptime // 100}
        if snap.missing:
            out["snmp_err"] = "no such object: %s" % ", ".join(snap.missing)
        if snap.descr:
            out["descr"] = snap.descr
            out.update(model_of(snap.descr))
        if snap.name:
            out["name"] = snap.name
        ifs: List[Dict[str, Any]] = []
        for idx, i in sorted(snap.ifs.items())[:64]:
            item: Dict[str, Any] = {"name": i.get("name") or i.get("descr") or str(idx),
                                    "index": idx}
            if "oper" in i:
                item["up"] = i["oper"] == 1
            mbps = _mbps(i)
            if mbps is not None:
                item["mbps"] = mbps
            ifs.append(item)
        if ifs:
            out["ifs"] = ifs
        wan = pick_wan(snap, self.wan_if)
        if wan is None:
            if self.wan_if:
                out["snmp_err"] = "no such object: WAN interface %s" % self.wan_if
            return out
        i = snap.ifs[wan]
        out["wan_if"] = i.get("name") or i.get("descr") or str(wan)
        if "oper" in i:
            out["wan_up"] = i["oper"] == 1
        mbps = _mbps(i)
        if mbps is not None:
            out["wan_mbps"] = mbps
        if "in64" in i and "out64" in i:
            bits, rx, tx = 64, i["in64"], i["out64"]
        elif "in32" in i and "out32" in i:
            bits, rx, tx = 32, i["in32"], i["out32"]
        else:
            return out
        out.update(counter_bits=bits, rx_octets=rx, tx_octets=tx)
        cur = Counters(self.host, wan, bits, snap.uptime, rx, tx)
        got = rates(self.prev, cur, wall - (self.prev_wall or wall),
                    mbps * 1e6 if mbps else None)
        out.update(got)
        if mbps:
            for key, util in (("rx_bps", "rx_util_pct"), ("tx_bps", "tx_util_pct")):
                if key in got:
                    out[util] = round(min(100.0, got[key] / (mbps * 1e6) * 100.0), 2)
        self._save(cur, wall)
        return out
