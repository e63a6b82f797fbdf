"""``health``: metrics every interval. Time series ``health``, ``health_disk`` (tag ``mnt``)
and ``health_nic`` (tag ``if``); 5-minute rollups of ``ROLLUP_METRICS``; no device columns."""
from typing import Any, Callable, Dict, List, Optional

from schoolmon.protocol.catalogue import HEALTH

from ..line_protocol import Body, escape_tag, field_code
from .spec import CollectorFamily

#: Scalar health fields written to ``health`` (all numeric on the wire; ``ac`` bool → 1/0).
HEALTH_FIELDS = ("cpu_pct", "cpu_n", "mem_pct", "swap_pct", "disk_rd", "disk_wr", "temp", "fan",
                 "batt", "ac", "up", "procs", "users", "q", "q_drop")
#: ``load`` list → load1, load5, load15.
LOAD_FIELDS = ("load1", "load5", "load15")
DISK_FIELDS = ("pct", "free")
NIC_FIELDS = ("rx", "tx", "err", "drop")

#: Scalar health metrics kept in rollups: name -> (unit, how it is taken from a payload).
#: The rollup tables have these columns (``store/schema.py``), in this order.
ROLLUP_METRICS: Dict[str, str] = {
    "cpu_pct": "% CPU busy (health.cpu_pct)",
    "mem_pct": "% memory in use (health.mem_pct)",
    "swap_pct": "% swap in use (health.swap_pct)",
    "disk_pct": "% used of the fullest fixed volume (max of health.disks[].pct)",
    "temp": "°C highest CPU temperature (health.temp)",
    "rx": "B/s received, all interfaces together (sum of health.nics[].rx); a router: "
          "through its WAN (router.rx_bps / 8)",
    "tx": "B/s sent, all interfaces together (sum of health.nics[].tx); a router: "
          "through its WAN (router.tx_bps / 8)",
}


def _compile_line_bodies() -> Callable[[Dict[str, Any], int], List[Body]]:
    """``line_bodies(payload, ts)`` as straight-line code written from the catalogue
    (the payload was validated, so every field has its catalogue type): a third faster
    than a loop over the field names, and this runs for every health message."""
    fields = {f.name: f for f in HEALTH.fields}
    L = ["def health_bodies(p, ts):", "    p_get = p.get", "    f = []", "    a = f.append"]
    for name in HEALTH_FIELDS:
        L += field_code(name, fields[name].type, "p", fields[name].required, "    ")
    L += ["    load = p_get('load')",
          "    if load:",
          "        for n, x in zip(%r, load):" % (LOAD_FIELDS,),
          "            a(n + '=' + repr(x))",
          "    suffix = ' %d' % ts",
          "    out = [('health', ' ' + ','.join(f) + suffix)] if f else []"]
    # One sub-measurement line per list item, tagged by the item's name field.
    for listed, measurement, tag, names in (("disks", "health_disk", "mnt", DISK_FIELDS),
                                            ("nics", "health_nic", "if", NIC_FIELDS)):
        item = {f.name: f for f in fields[listed].items or ()}
        L += ["    for o in p_get(%r) or ():" % listed,
              "        f = []",
              "        a = f.append",
              "        o_get = o.get"]
        for name in names:
            L += field_code(name, item[name].type, "o", item[name].required, "        ")
        L += ["        if o[%r]:  # an empty tag value would make the line invalid" % tag,
              "            out.append((%r, %r + escape_tag(str(o[%r])) + ' ' + ','.join(f) + suffix))"
              % (measurement, "," + tag + "=", tag)]
    L.append("    return out")
    ns: Dict[str, Any] = {"escape_tag": escape_tag}
    exec("\n".join(L), ns)
    fn: Callable[[Dict[str, Any], int], List[Body]] = ns["health_bodies"]
    fn.__doc__ = "Line bodies of one validated health payload (generated from the catalogue)."
    return fn


health_bodies = _compile_line_bodies()


def rollup_values(p: Dict[str, Any]) -> List[Optional[float]]:
    """The rollup metrics of one health payload, in ``ROLLUP_METRICS`` order (None: not
    sent). Plain code: this runs for every message."""
    g = p.get
    cpu, mem, swap, temp = g("cpu_pct"), g("mem_pct"), g("swap_pct"), g("temp")
    disk = rx = tx = None
    disks = g("disks")
    if disks:
        disk = disks[0]["pct"]
        for d in disks:
            if d["pct"] > disk:
                disk = d["pct"]
    nics = g("nics")
    if nics:
        rx = tx = 0
        for n in nics:
            rx += n["rx"]
            tx += n["tx"]
    return [None if x is None else float(x) for x in (cpu, mem, swap, disk, temp, rx, tx)]


# rollup_values gives the metrics in this order; ROLLUP_METRICS must agree (checked here).
_ROLLUP_VALUE_ORDER = ("cpu_pct", "mem_pct", "swap_pct", "disk_pct", "temp", "rx", "tx")
if tuple(ROLLUP_METRICS) != _ROLLUP_VALUE_ORDER:  # pragma: no cover - a programming error
    raise RuntimeError("families.health.rollup_values is out of step with ROLLUP_METRICS")

FAMILY = CollectorFamily("health", line_bodies=health_bodies, rollup_values=rollup_values)
