"""``probe``: the light link probe (gateway, DNS, domestic and international HTTP) every few
minutes. Time series ``probe`` (per target ``*_ok`` 1/0 and ``*_ms``); counted per school and
UTC hour into ``link_probe_hours`` (sink ``link_probe_hours``: summed, not one row a probe)."""
from typing import Any, Dict, List, Tuple

from ..line_protocol import Body
from .spec import CollectorFamily

TARGETS = ("gw", "dns", "dom", "intl")


def line_bodies(p: Dict[str, Any], ts: int) -> List[Body]:
    f = []
    for t in TARGETS:
        ok = p.get(t + "_ok")
        if ok is not None:
            f.append("%s_ok=%d" % (t, bool(ok)))
        ms = p.get(t + "_ms")
        if ms is not None:
            f.append("%s_ms=%r" % (t, float(ms)))
    if p.get("link_mbps") is not None:
        f.append("link_mbps=%d" % int(p["link_mbps"]))
    if p.get("wired") is not None:
        f.append("wired=%d" % bool(p["wired"]))
    return [("probe", " " + ",".join(f) + " %d" % ts)] if f else []


def rows(school: str, device: str, seq: int, p: Dict[str, Any], ts: float,
         received_at: float) -> List[Tuple[str, Tuple[Any, ...]]]:
    """One count row (school, hour, n, then per target n / ok / sum of ms of the
    successful ones), summed with the batch's others and with the stored row."""
    row: List[Any] = [school, int(ts) // 3600 * 3600, 1]
    for t in TARGETS:
        ok = p.get(t + "_ok")
        if ok is None:  # target not configured: not an attempt
            row += [0, 0, 0.0]
            continue
        ms = p.get(t + "_ms")
        good = bool(ok)
        row += [1, 1 if good else 0, float(ms) if good and ms is not None else 0.0]
    return [("link_probe_hours", tuple(row))]


FAMILY = CollectorFamily("probe", line_bodies=line_bodies, rows=rows)
