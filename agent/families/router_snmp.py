"""SNMP reads of the school router (pysnmp 7, asyncio) and the rate arithmetic.

``poll(...)`` asks sysDescr/sysUpTime/sysName and walks ifTable/ifXTable in its own event
loop with an overall timeout and returns a ``Snapshot``; ``rates(prev, cur)`` turns two
snapshots of the WAN counters into bit rates. pysnmp is imported lazily: it is the optional
``snmp`` extra, only the one agent polling the router needs it.
"""
import asyncio
import re
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

SYS_DESCR, SYS_UPTIME, SYS_NAME = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0"
_IFT, _IFX = "1.3.6.1.2.1.2.2.1.", "1.3.6.1.2.1.31.1.1.1."
COLUMNS = {  # our name: OID of the column
    "descr": _IFT + "2", "type": _IFT + "3", "speed": _IFT + "5", "oper": _IFT + "8",
    "in32": _IFT + "10", "out32": _IFT + "16",
    "name": _IFX + "1", "in64": _IFX + "6", "out64": _IFX + "10", "high": _IFX + "15",
}
_LOOPBACK = 24  # ifType softwareLoopback

#: sysDescr → model and firmware, for routers common in schools: (vendor, pattern). The
#: pattern's ``model``/``fw`` groups; the model is reported as "vendor model".
MODELS: Tuple[Tuple[str, str], ...] = (
    ("MikroTik", r"^RouterOS\s+(?P<model>\S+)"),
    ("DrayTek", r"Router Model:\s*(?P<model>[^,]+?)\s*,\s*Version:\s*(?P<fw>[^,\s]+)"),
    ("TP-Link", r"(?P<model>\b(?:TL-[A-Z0-9]+[A-Z0-9+-]*|ER\d{3,4}[A-Z0-9-]*|Archer\s?[A-Z]\d+))"
                r"(?:.*?(?P<fw>\d+\.\d+\.\d+(?:\s+Build\s+\d+)?))?"),
    ("Cisco", r"Cisco IOS.*?,\s*(?P<model>\S+) Software.*?Version\s+(?P<fw>[^,\s]+)"),
    ("Huawei", r"Huawei Versatile Routing Platform.*?Version\s+(?P<fw>[\d.]+)\s+\((?P<model>"
               r"\S+)"),
    ("Ubiquiti", r"^(?P<model>EdgeOS|EdgeRouter\S*)\s+v?(?P<fw>[\d.]+)"),
)


def model_of(descr: str) -> Dict[str, str]:
    for vendor, pattern in MODELS:
        m = re.search(pattern, descr or "", re.IGNORECASE | re.DOTALL)
        if m:
            out = {"model": ("%s %s" % (vendor, m.group("model").strip()))[:128]}
            fw = m.groupdict().get("fw")
            if fw:
                out["firmware"] = fw.strip()[:128]
            return out
    return {}


class SnmpError(Exception):
    """``code`` is the catalogue's snmp_err: ``timeout``, ``auth``, ``no such object``..."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Snapshot(NamedTuple):
    uptime: int  # sysUpTime, hundredths of a second
    descr: str
    name: str
    #: per ifIndex: {"descr", "name", "type", "oper", "speed", "high", "in32", ...}
    ifs: Dict[int, Dict[str, Any]]
    #: objects the agent asked but the router did not have (``no such object``)
    missing: Tuple[str, ...] = ()


class Auth(NamedTuple):
    version: str  # "v2c" | "v3"
    community: str = ""
    user: str = ""
    auth_key: str = ""
    priv_key: str = ""
    auth_protocol: str = "sha"
    priv_protocol: str = "aes"

    def __repr__(self) -> str:  # never a secret in a log line or a traceback
        return "Auth(%s%s)" % (self.version, ", user=%s" % self.user if self.user else "")


def _classify(indication: Any) -> str:
    name = type(indication).__name__.lower()
    text = str(indication).lower()
    if "timeout" in name or "timeout" in text or "no snmp response" in text:
        # v2c: an agent drops a request with a wrong community silently — it looks like this
        return "timeout"
    if any(w in name or w in text for w in ("digest", "unknownuser", "unknown usm user",
                                            "securitylevel", "decrypt", "authentication",
                                            "notintimewindow")):
        return "auth"
    if "cipher" in text or "encryption" in text:
        return "privacy not supported here (install the `cryptography` package)"
    return "error: %s" % (str(indication) or type(indication).__name__)


def _indication(exc: BaseException) -> Any:
    try:  # pysnmp's StatusInformation is a dict of the error's details
        return exc["errorIndication"] or exc  # type: ignore[index]
    except Exception:
        return exc


def _auth_data(auth: Auth) -> Any:
    from pysnmp.hlapi.v3arch import asyncio as hl

    if auth.version == "v2c":
        return hl.CommunityData(auth.community, mpModel=1)
    auth_protos = {"md5": hl.usmHMACMD5AuthProtocol, "sha": hl.usmHMACSHAAuthProtocol,
                   "sha256": hl.usmHMAC192SHA256AuthProtocol,
                   "sha512": hl.usmHMAC384SHA512AuthProtocol}
    priv_protos = {"des": hl.usmDESPrivProtocol, "aes": hl.usmAesCfb128Protocol,
                   "aes256": hl.usmAesCfb256Protocol}
    if not auth.auth_key:
        return hl.UsmUserData(auth.user)
    if not auth.priv_key:
        return hl.UsmUserData(auth.user, auth.auth_key,
                              authProtocol=auth_protos[auth.auth_protocol])
    return hl.UsmUserData(auth.user, auth.auth_key, auth.priv_key,
                          authProtocol=auth_protos[auth.auth_protocol],
                          privProtocol=priv_protos[auth.priv_protocol])


async def _poll(host: str, port: int, auth: Auth, timeout: float, retries: int) -> Snapshot:
    from pysnmp.hlapi.v3arch import asyncio as hl
    from pysnmp.proto import rfc1905

    engine = hl.SnmpEngine()
    try:
        target = await hl.UdpTransportTarget.create((host, port), timeout=timeout,
                                                    retries=retries)
        data = _auth_data(auth)
        ctx = hl.ContextData()
        try:
            ind, status, _, binds = await hl.get_cmd(
                engine, data, target, ctx, *(hl.ObjectType(hl.ObjectIdentity(o))
                                             for o in (SYS_UPTIME, SYS_DESCR, SYS_NAME)))
        except SnmpError:
            raise
        except Exception as exc:  # StatusInformation from the security module
            raise SnmpError(_classify(_indication(exc))) from None
        if ind:
            raise SnmpError(_classify(ind))
        if status:
            raise SnmpError("error: %s" % status.prettyPrint())
        values: Dict[str, Any] = {}
        missing: List[str] = []
        for oid, value in binds:
            if isinstance(value, (rfc1905.NoSuchObject, rfc1905.NoSuchInstance,
                                  rfc1905.EndOfMibView)):
                missing.append(str(oid))
            else:
                values[str(oid)] = value
        if SYS_UPTIME not in values:
            raise SnmpError("no such object: sysUpTime")
        ifs: Dict[int, Dict[str, Any]] = {}
        for col, base in COLUMNS.items():
            async for ind, status, _, rows in hl.bulk_walk_cmd(
                    engine, data, target, ctx, 0, 25, hl.ObjectType(hl.ObjectIdentity(base)),
                    lexicographicMode=False):
                if ind:
                    raise SnmpError(_classify(ind))
                if status:
                    break
                for oid, value in rows:
                    text = str(oid)
                    if not text.startswith(base + ".") or isinstance(
                            value, (rfc1905.NoSuchObject, rfc1905.NoSuchInstance,
                                    rfc1905.EndOfMibView)):
                        continue
                    idx = int(text.rsplit(".", 1)[1])
                    ifs.setdefault(idx, {})[col] = (value.prettyPrint() if col in (
                        "descr", "name") else int(value))
        return Snapshot(int(values[SYS_UPTIME]), values.get(SYS_DESCR, "").prettyPrint()
                        if SYS_DESCR in values else "",
                        values[SYS_NAME].prettyPrint() if SYS_NAME in values else "",
                        ifs, tuple(missing))
    finally:
        engine.close_dispatcher()


def poll(host: str, port: int, auth: Auth, timeout: float = 2.0, retries: int = 1,
         total: float = 60.0) -> Snapshot:
    """One poll in a fresh event loop, at most ``total`` seconds. Raises SnmpError; an
    ImportError when pysnmp is not installed."""
    import pysnmp.hlapi.v3arch.asyncio  # noqa: F401 - fail here, clearly, when missing

    async def bounded() -> Snapshot:
        try:
            return await asyncio.wait_for(_poll(host, port, auth, timeout, retries), total)
        except asyncio.TimeoutError:
            raise SnmpError("timeout") from None

    return asyncio.run(bounded())


# --- rates -------------------------------------------------------------------------------

class Counters(NamedTuple):
    """What a rate needs from one poll (kept in memory and in the state folder)."""
    host: str
    ifindex: int
    bits: int
    uptime: int  # hundredths of a second
    rx: int
    tx: int


_TICKS_WRAP = 2 ** 32  # sysUpTime is TimeTicks: it wraps after 497 days


def elapsed_s(prev: Counters, cur: Counters, wall_s: float) -> Optional[float]:
    """Seconds between the polls by the router's clock; None: the router rebooted.
    sysUpTime going down after ~497 days is its own wrap, not a reboot: told apart by the
    wall time between the polls."""
    ticks = cur.uptime - prev.uptime
    if ticks >= 0:
        return ticks / 100.0
    wrapped = ticks + _TICKS_WRAP
    if wall_s > 0 and abs(wrapped / 100.0 - wall_s) <= max(60.0, wall_s * 0.2):
        return wrapped / 100.0
    return None


def counter_delta(prev: int, cur: int, bits: int, seconds: float,
                  speed_bps: Optional[float]) -> Optional[int]:
    """Octets moved between two reads, or None when the difference cannot be trusted.
    A counter that went down wrapped if the wrapped difference is plausible: at most the
    interface's speed (+5 %), or, speed unknown, less than half the counter's range. A
    counter reset (interface re-created, counters cleared) gives a wrapped difference near
    the whole range: implausible, no rate. The same rule for 32 and 64 bits."""
    delta = cur - prev
    if delta >= 0:
        return delta
    wrapped = delta + 2 ** bits
    if speed_bps:
        return wrapped if wrapped * 8 <= speed_bps * 1.05 * seconds else None
    return wrapped if wrapped < 2 ** (bits - 1) else None


def rates(prev: Optional[Counters], cur: Counters, wall_s: float,
          speed_bps: Optional[float]) -> Dict[str, Any]:
    """``rx_bps``/``tx_bps`` (+ ``rebooted``) from two polls of the same interface."""
    if prev is None or (prev.host, prev.ifindex, prev.bits) != (
            cur.host, cur.ifindex, cur.bits):
        return {}
    seconds = elapsed_s(prev, cur, wall_s)
    if seconds is None:
        return {"rebooted": True}
    out: Dict[str, Any] = {"rebooted": False}
    if seconds <= 0:
        return out
    for key, a, b in (("rx_bps", prev.rx, cur.rx), ("tx_bps", prev.tx, cur.tx)):
        delta = counter_delta(a, b, cur.bits, seconds, speed_bps)
        if delta is not None:
            out[key] = int(delta * 8 / seconds)
    return out
