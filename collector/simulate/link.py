"""The Internet link of each simulated school: what its bandwidth tests, light probes and
router say, in the live fleet and in the 30-day history alike (one story).

**Link profiles** (``LinkProfile.kind``; dealt deterministically from the fixture, so the
demo shows every connectivity status — the collector's evaluator judges, the simulator
never sends a judgement; ``plan`` is only what the status is meant to come out as):

- ``near_contract`` (Đạt, on fibre): 92–99 % of the contracted download and upload, a
  dip to 70–85 % in some evening tests (16–20), a failed test now and then. ADSL schools
  get the same link, but 8–16 Mbps is below the 20 Mbps rule (Cần cải thiện).
- ``below_contract`` (Cần cải thiện): a fibre school getting 35–55 % of its contract (an
  old line, a saturated ISP node) — every fourth fibre school of each block of ten.
- ``mobile`` (3G/4G): far below any contract, metered, short tests (≤ 10 MB): 3G 0.5–0.95
  Mbps (Không đạt: below 1 Mbps), 4G 1.5–5 Mbps (Cần cải thiện); long pings, jitter.
- ``dead_router`` (Không đạt): the fixture's router-down school. Its router began to hang
  ``DYING_DAYS`` days ago (half the gateway pings fail, every test times out) and has
  been dead since the fixture's router went away (``history.offline_since``): probes fail
  to the gateway, tests fail, the router answers neither ping nor SNMP.
- ``intl_cut`` (Cần cải thiện, ``intl_unreachable``): the 2023 submarine-cable case, one
  school in 25: tests to the Sở's server and domestic probes are fine, the international
  target has been unreachable for ``INTL_CUT_DAYS`` days.
- ``silent`` (Không đủ dữ liệu): the school turned its tests off 9–12 days ago (its
  agents ignore grants); probes go on — one fibre school in ten.

Each school's **tester** (the PC that takes the lease and polls the router) is its first
online office PC, else a server, else a lab PC; tests and router messages come from it.
"""
import random
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .fixture import Province, SimDevice

DAY = 86400
#: The demo's test server as the simulated agents name it (the collector's own endpoints).
SPEEDTEST_SERVER = "http://127.0.0.1/speedtest/upload.php"
#: Probe targets the simulated agents name (they never reach them: the numbers are drawn).
DOMESTIC_URL = "https://schoolmon.sgddt.laocai.gov.vn/healthz"
INTERNATIONAL_URL = "https://www.google.com/generate_204"
DNS_NAME = "vnedu.vn"
GATEWAY = "192.168.1.1"
#: Short mode (metered links) moves at most this many bytes, both directions.
SHORT_BYTES = 10 * 10 ** 6
#: A full test moves about rate × this many seconds each way (speedtest-cli's default).
TEST_SECONDS = 10.0
#: Days the dead-router school's router hung before it died.
DYING_DAYS = 3.5
#: Days the cable-cut school has not reached its international target.
INTL_CUT_DAYS = 6.0
#: Reboot chance of a live router per poll.
REBOOT_CHANCE = 1 / 400.0

KINDS = ("near_contract", "below_contract", "mobile", "dead_router", "intl_cut", "silent")
#: Routers the simulated schools have: (model, sysDescr, firmware).
ROUTERS = (("HG8245H", "Huawei Technologies Co., Ltd. HG8245H V3R017C10S206",
            "V3R017C10S206"),
           ("F670L", "ZTE ZXHN F670L V9.0.10P2N13", "V9.0.10P2N13"),
           ("RB750Gr3", "RouterOS RB750Gr3 7.14.3", "7.14.3"),
           ("Vigor2925", "DrayTek Vigor2925 Series 3.9.6.3", "3.9.6.3"),
           ("ER605", "TP-Link ER605 v2 2.2.3 Build 20231201", "2.2.3"))


def _rng(seed: int, *parts: Any) -> random.Random:
    return random.Random("%d|link|%s" % (seed, "|".join(str(p) for p in parts)))


@dataclass(frozen=True)
class LinkProfile:
    school: str
    kind: str
    #: what the connectivity status is meant to come out as (meets, improve, below,
    #: insufficient): for tests of the inputs; the collector judges
    plan: str
    link_type: str
    contract_down: float
    contract_up: float
    metered: bool
    #: the PC that is given the test lease and polls the router (None: no PC online)
    tester: Optional[str]
    #: the router's model, sysDescr, firmware
    router: Tuple[str, str, str]
    #: kind-specific moments, seconds before ``now``'s day start: dead_router: dying from;
    #: silent: last test; intl_cut: cut since
    story_days: float = 0.0


def _tester(devices: List[SimDevice]) -> Optional[str]:
    for role in ("office", "server", "lab"):
        for d in devices:
            if d.role == role and d.online:
                return d.id
    return None


def deal_links(province: Province, seed: int = 1) -> Dict[str, LinkProfile]:
    """Each school's link profile (see the module doc); deterministic for the province."""
    from .fixture import ROUTER_DOWN_AT, ROUTER_DOWN_EVERY
    by_school: Dict[str, List[SimDevice]] = {}
    for d in province.devices:
        by_school.setdefault(d.school, []).append(d)
    out: Dict[str, LinkProfile] = {}
    fibre_seen = 0
    for i, s in enumerate(province.schools):
        r = _rng(seed, "deal", s.code)
        kind, plan, days = "near_contract", "meets", 0.0
        if i % ROUTER_DOWN_EVERY == ROUTER_DOWN_AT:
            kind, plan, days = "dead_router", "below", DYING_DAYS
        elif s.link_type in ("3g", "4g"):
            kind, plan = "mobile", "below" if s.link_type == "3g" else "improve"
        elif s.link_type == "adsl":
            plan = "improve"  # near its contract, but 8-16 Mbps is below 20
        else:
            p = fibre_seen
            fibre_seen += 1
            if p % 25 == 1:
                kind, plan, days = "intl_cut", "improve", INTL_CUT_DAYS
            elif p % 10 == 4:
                kind, plan = "below_contract", "improve"
            elif p % 10 == 7:
                kind, plan, days = "silent", "insufficient", r.uniform(9, 12)
        out[s.code] = LinkProfile(
            school=s.code, kind=kind, plan=plan, link_type=s.link_type,
            contract_down=s.contracted_down_mbps, contract_up=s.contracted_up_mbps,
            metered=s.link_type in ("3g", "4g"), tester=_tester(by_school.get(s.code, [])),
            router=ROUTERS[r.randrange(len(ROUTERS))], story_days=days)
    return out


def story_start(p: LinkProfile, now: float) -> float:
    """When the profile's story began (UTC epoch): anchored to the start of ``now``'s UTC
    day, so a restart the same day tells the same story."""
    return int(now) // DAY * DAY - p.story_days * DAY


def dead_router_at(gone: Dict[str, float], school: str, now: float) -> float:
    """When the dead-router school's router died: when the fixture's router went away
    (``gone``: ``history.offline_since``)."""
    times = [t for did, t in gone.items() if did.startswith(school + "-router")]
    return min(times) if times else now - 3 * 3600


def _is_evening(local_hour: float) -> bool:
    return local_hour >= 16.0


def speedtest_fields(p: LinkProfile, r: random.Random, at: float, local_hour: float,
                mode: str, budget: Optional[int] = None, failing: bool = False
                ) -> Dict[str, Any]:
    """One bandwidth test's ``speedtest`` fields (no ``lease``/``trigger``), per the
    profile; ``failing``: the link is down at ``at`` (the dead router)."""
    f: Dict[str, Any] = {"mode": mode, "server": SPEEDTEST_SERVER,
                         "server_name": "Sở GD&ĐT Lào Cai (schoolmon)", "if": "Ethernet",
                         "wired": True, "link_mbps": 1000}
    fail_chance = {"mobile": 0.08, "below_contract": 0.03}.get(p.kind, 0.01)
    if failing or r.random() < fail_chance:
        f.update(ok=False, reason="timeout", bytes_rx=r.randint(0, 200_000), bytes_tx=0,
                 dur_s=round(r.uniform(30, 60), 1))
        return f
    if p.kind == "mobile":
        down = r.uniform(0.5, 0.95) if p.link_type == "3g" else r.uniform(1.5, 5.0)
        up = down * r.uniform(0.3, 0.5)
        ping, jitter = r.uniform(60, 160), r.uniform(10, 45)
    else:
        lo, hi = (0.35, 0.55) if p.kind == "below_contract" else (0.92, 0.99)
        factor = r.uniform(lo, hi)
        if _is_evening(local_hour) and r.random() < 0.25:
            factor *= r.uniform(0.75, 0.88)  # the evening dip
        down = p.contract_down * factor
        up = p.contract_up * factor * r.uniform(0.97, 1.02)
        ping, jitter = r.uniform(4, 18), r.uniform(0.5, 4)
    rx = int(down * 1e6 / 8 * TEST_SECONDS) + 40_000  # + latency requests
    tx = int(up * 1e6 / 8 * TEST_SECONDS)
    if mode == "short":
        rx, tx = min(rx, SHORT_BYTES * 7 // 10), min(tx, SHORT_BYTES * 3 // 10)
    if budget is not None and rx + tx > budget:
        if budget < 1_000_000:  # not enough for a meaningful test
            f.update(ok=False, reason="budget", bytes_rx=0, bytes_tx=0, dur_s=0.1)
            return f
        scale = budget / float(rx + tx)
        rx, tx = int(rx * scale), int(tx * scale)
    f.update(ok=True, down_mbps=round(down, 2), up_mbps=round(up, 2), ping_ms=round(ping, 1),
             jitter_ms=round(jitter, 1), bytes_rx=rx, bytes_tx=tx,
             dur_s=round((8 if mode == "short" else 2 * TEST_SECONDS) + r.uniform(3, 9), 1))
    return f


def probe_shares(p: LinkProfile, at: float, since: float, dead_at: Optional[float] = None
                 ) -> Dict[str, Tuple[float, float]]:
    """(success share, mean ms when it answers) per target (gw, dns, dom, intl) of a probe
    at ``at``; ``since``: when the profile's story began (``story_start``), ``dead_at``:
    when the dead-router school's router died."""
    if p.kind == "mobile":
        out = {"gw": (0.995, 1.2), "dns": (0.93, 140.0), "dom": (0.90, 320.0),
               "intl": (0.86, 520.0)}
    else:
        out = {"gw": (0.999, 0.6), "dns": (0.995, 18.0), "dom": (0.995, 45.0),
               "intl": (0.99, 160.0)}
    if p.kind == "dead_router" and at >= since:
        if dead_at is not None and at >= dead_at:
            return {t: (0.0, 0.0) for t in out}
        out = {t: (0.5 * s, ms * 3) for t, (s, ms) in out.items()}  # hanging
    if p.kind == "intl_cut" and at >= since:
        out["intl"] = (0.0, 0.0)
    return out


def probe_fields(p: LinkProfile, d: SimDevice, r: random.Random, at: float, since: float,
                 dead_at: Optional[float] = None) -> Dict[str, Any]:
    """A PC's ``probe`` fields at ``at``."""
    f: Dict[str, Any] = {"gw": GATEWAY, "dns_name": DNS_NAME, "dom_url": DOMESTIC_URL,
                         "intl_url": INTERNATIONAL_URL, "if": "Ethernet", "wired": True,
                         "link_mbps": 100 if d.profile == "old" else 1000}
    for t, (share, ms) in probe_shares(p, at, since, dead_at).items():
        if r.random() < share:
            f[t + "_ok"] = True
            f[t + "_ms"] = round(ms * r.uniform(0.6, 1.6), 1)
        else:
            f[t + "_ok"] = False
            # the agent's own codes (agent/families/probe.py ``dns_error``): no DNS
            # server answered, now and then one that answered with a failure
            f[t + "_err"] = ("servfail" if t == "dns" and share > 0 and r.random() < 0.2
                             else "timeout")
    if d.id == p.tester:
        f["tester"] = True
    return f


@dataclass
class RouterState:
    """A live router's counters between two polls."""

    boot: float
    rx: int
    tx: int
    polled: Optional[float] = None


def router_state(p: LinkProfile, now: float, seed: int = 1) -> RouterState:
    r = _rng(seed, "router", p.school)
    return RouterState(boot=now - r.uniform(2, 40) * DAY, rx=r.randint(10 ** 11, 10 ** 13),
                       tx=r.randint(10 ** 10, 10 ** 12))


def router_fields(p: LinkProfile, st: RouterState, r: random.Random, now: float,
                  local_hour: float, dead: bool = False) -> Dict[str, Any]:
    """The tester's ``router`` fields for a poll at ``now`` (advances ``st``)."""
    f: Dict[str, Any] = {"host": GATEWAY}
    if dead:
        f.update(gw_ok=False, gw_err="timeout", snmp_ok=False, snmp_err="timeout")
        return f
    model, descr, firmware = p.router
    wan_mbps = 150 if p.metered else (100 if p.contract_down <= 100 else 1000)
    rebooted = st.polled is not None and r.random() < REBOOT_CHANCE
    if rebooted:
        st.boot, st.rx, st.tx, st.polled = now - r.uniform(30, 120), 0, 0, None
    busy = 7.0 <= local_hour < 17.0
    util = r.uniform(0.15, 0.6) if busy else r.uniform(0.005, 0.04)
    rx_bps = int(p.contract_down * 1e6 * util)
    tx_bps = int(rx_bps * r.uniform(0.15, 0.35))
    f.update(gw_ok=True, gw_ms=round(r.uniform(0.3, 2.5), 2), snmp_ok=True,
             uptime_s=int(now - st.boot), descr=descr, name="router-%s" % p.school,
             model=model, firmware=firmware, wan_if="wan", wan_up=True, wan_mbps=wan_mbps,
             counter_bits=64,
             ifs=[{"name": "wan", "index": 2, "up": True, "mbps": wan_mbps},
                  {"name": "lan", "index": 3, "up": True, "mbps": 1000}])
    if rebooted:
        f["rebooted"] = True
    if st.polled is not None:
        dt = max(1.0, now - st.polled)
        st.rx = (st.rx + int(rx_bps / 8 * dt)) % 2 ** 64
        st.tx = (st.tx + int(tx_bps / 8 * dt)) % 2 ** 64
        f.update(rx_bps=rx_bps, tx_bps=tx_bps,
                 rx_util_pct=round(min(100.0, rx_bps / (wan_mbps * 1e4)), 1),
                 tx_util_pct=round(min(100.0, tx_bps / (wan_mbps * 1e4)), 1))
    st.polled = now
    f.update(rx_octets=st.rx, tx_octets=st.tx)
    return f


def profile_mix(links: Dict[str, LinkProfile]) -> Dict[str, int]:
    """How many schools are meant to come out as each status."""
    out: Dict[str, int] = {}
    for p in links.values():
        out[p.plan] = out.get(p.plan, 0) + 1
    return out


__all__ = ["KINDS", "LinkProfile", "RouterState", "deal_links", "dead_router_at",
           "probe_fields", "probe_shares", "profile_mix", "router_fields", "router_state",
           "story_start", "speedtest_fields"]
