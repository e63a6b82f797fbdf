"""``speedtest``: one bandwidth test. Time series ``speedtest`` (speeds, ping, jitter, bytes,
``ok`` 1/0); every result, failed ones too, one ``link_tests`` row (sink ``link_tests``:
a (device, seq) stored before stores nothing). Numbers no link can give are kept but
refused (``refused = 'implausible'``, metric ``schoolmon_link_tests_implausible_total``)."""
from typing import Any, Dict, List, Optional, Tuple

from ..line_protocol import Body
from .spec import CollectorFamily

NUMERIC = ("down_mbps", "up_mbps", "ping_ms", "jitter_ms", "bytes_rx", "bytes_tx", "dur_s")
#: No school link in the province is faster (Mbit/s): above it the number is wrong.
MAX_MBPS = 10000.0
#: A link reports up to its nominal rate; 10 % slack for rounding and burst.
LINK_SLACK = 1.1
#: Bytes the test says it moved against what its speed over its duration needs: a test
#: needs about speed × time; a factor of 20 either way is no measurement error.
BYTES_FACTOR = 20.0
#: Below this many bytes the bytes/speed check says nothing (short tests, rounding).
BYTES_MIN = 1_000_000


def implausible(p: Dict[str, Any]) -> Optional[str]:
    """Why the numbers of a test cannot be right (None: plausible). Checked:
    1. ``ok`` true without a download or upload speed (a completed test measured both);
    2. a speed above 10 Gbit/s (``MAX_MBPS``), or above the interface's ``link_mbps``
       × 1.1 when the agent knew it (a PC cannot receive faster than its own link);
    3. with ``dur_s`` and both speeds, the bytes moved (rx + tx) more than 20 × or less
       than 1/20 of what the speeds over the test's duration need (speeds made up, or
       bytes counted wrong); skipped under 1 MB (short tests)."""
    down, up = p.get("down_mbps"), p.get("up_mbps")
    if p.get("ok") and (down is None or up is None):
        return "ok_without_speeds"
    link = p.get("link_mbps")
    for v in (down, up):
        if v is None:
            continue
        if v > MAX_MBPS:
            return "above_10g"
        if link and v > link * LINK_SLACK:
            return "above_link"
    dur, rx, tx = p.get("dur_s"), p.get("bytes_rx"), p.get("bytes_tx")
    if p.get("ok") and dur and down is not None and up is not None and rx is not None \
            and tx is not None:
        moved = rx + tx
        # each direction runs about half the test's time: speed × dur / 2, in bytes
        need = (down + up) * 1e6 / 8 * dur / 2
        if max(moved, need) >= BYTES_MIN and (moved > need * BYTES_FACTOR
                                               or moved * BYTES_FACTOR < need):
            return "bytes_vs_speed"
    return None


def line_bodies(p: Dict[str, Any], ts: int) -> List[Body]:
    f = ["ok=%d" % bool(p.get("ok"))]
    for k in NUMERIC:
        v = p.get(k)
        if v is not None:
            f.append("%s=%r" % (k, float(v)))
    return [("speedtest", " " + ",".join(f) + " %d" % ts)]


def rows(school: str, device: str, seq: int, p: Dict[str, Any], ts: float,
         received_at: float) -> List[Tuple[str, Tuple[Any, ...]]]:
    """The ``link_tests`` row (``sinks.LINK_TEST_COLS`` order) and, when refused, a
    count for the metric (sink ``implausible``, written nowhere)."""
    why = implausible(p)
    g = p.get
    row = (school, device, seq, float(ts), float(received_at), g("lease"), bool(g("ok")),
           g("reason"), g("trigger"), g("mode"), g("down_mbps"), g("up_mbps"), g("ping_ms"),
           g("jitter_ms"), g("bytes_rx"), g("bytes_tx"), g("server"), g("isp"), g("wired"),
           None if why is None else "implausible")
    out: List[Tuple[str, Tuple[Any, ...]]] = [("link_tests", row)]
    if why is not None:
        out.append(("implausible", (why,)))
    return out


FAMILY = CollectorFamily("speedtest", line_bodies=line_bodies, rows=rows)
