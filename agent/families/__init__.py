"""The agent's message families: the ``Family`` protocol and one declared spec per family.

A family is a class with one method, ``collect()`` (as in prometheus_client's Collector),
returning only its own fields (described in protocol/catalogue.py); the agent's core adds
the envelope, makes the text valid, sanitizes against the catalogue and queues it
(``agent/message.py``). How a family is run is not up to the class but declared here, once,
in ``SPECS``: the runtime reads it (schedule, worker, timeout), the CLI (``collect``'s
default set and its "not available"), and the configuration schema (each family's keys).

Adding a family (``security`` for example): describe its fields in protocol/catalogue.py;
write ``agent/families/security.py`` with the class (Windows facts through
``agent/windows/cim.py``, commands through ``agent/runner.py``); in its entry below give
``build`` (a small function importing the module lazily) and its own config keys.
"""
from types import MappingProxyType
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Tuple

from schoolmon.protocol.settings import ConfigError, Key

try:  # Protocol is in typing from 3.8
    from typing import Protocol
except ImportError:  # pragma: no cover
    Protocol = object  # type: ignore

#: Collected every period (±10 % jitter) and always queued.
INTERVAL = "interval"
#: Collected every period, queued only when its fields changed (and at start).
ON_CHANGE = "on_change"
#: Collected only when the collector asks (a command), never on a timer.
ON_COMMAND = "on_command"
#: Not collected: the transport publishes it on every (re)connect and stop (``status``).
ON_CONNECT = "on_connect"


class Family(Protocol):
    def collect(self) -> Dict[str, Any]:
        """Measure now and return the family's fields. Must not raise for a missing sensor:
        leave the field out instead."""
        ...


#: Builds a family from the configuration and the command runner (agent/runner.py); None:
#: not on this device (the router family without ``router.host``).
Builder = Callable[[Any, Any], Optional[Family]]


class FamilySpec(NamedTuple):
    kind: str
    trigger: str
    #: slow families share one slow-probe worker; cheap ones each have their own thread
    slow: bool = False
    #: longest one collection may take, seconds; None: ``intervals.timeout``
    timeout: Optional[float] = None
    #: the config key holding the period (``section.name``) of interval/on_change families
    period_key: str = ""
    #: the config key holding how long after the start delay the first collection waits
    #: (a slow family gives way to the PC's boot and the first reports); "": none
    first_delay_key: str = ""
    #: the family's own config keys: (``section.name``, Key), in the order the docs list them
    keys: Tuple[Tuple[str, Key], ...] = ()
    #: in ``collect``'s default set (a speed test costs data: not without asking)
    cheap: bool = True
    #: None: not built in this version (``collect --family`` says "not available")
    build: Optional[Builder] = None


def _health(cfg: Any, runner: Any) -> Family:
    from .health import HealthFamily  # psutil only once the agent measures

    return HealthFamily()


def _inventory(cfg: Any, runner: Any) -> Family:
    from .inventory import InventoryFamily

    return InventoryFamily(cfg.agent.role, cfg.agent.room, runner=runner)


def _security(cfg: Any, runner: Any) -> Family:
    from .security import SecurityFamily

    return SecurityFamily(runner=runner, state_dir=cfg.agent.state_dir,
                          settings=cfg.security)


def _probe(cfg: Any, runner: Any) -> Family:
    from .probe import ProbeFamily, domestic_url

    # ``speedtest.designated`` is declared with the speedtest family (read defensively:
    # an agent without that key is simply not the designated PC)
    tester = getattr(getattr(cfg, "speedtest", None), "designated", None)
    return ProbeFamily(runner, cfg.probe, domestic_url(cfg.probe, cfg.mqtt.url),
                       tester=bool(tester) if tester is not None else None)


def _router(cfg: Any, runner: Any) -> Optional[Family]:
    r = cfg.router
    if not r.host:
        return None  # only the one agent of the school configured to poll it
    from .router import RouterFamily
    from .router_snmp import Auth

    auth = None
    if r.snmp == "v2c":
        if not r.community:
            raise ConfigError("router.community: required when router.snmp = \"v2c\"")
        auth = Auth("v2c", community=r.community)
    elif r.snmp == "v3":
        if not r.user:
            raise ConfigError("router.user: required when router.snmp = \"v3\"")
        if r.priv_key and not r.auth_key:
            raise ConfigError("router.priv_key: given without router.auth_key (SNMPv3 "
                              "has no privacy without authentication)")
        auth = Auth("v3", user=r.user, auth_key=r.auth_key, priv_key=r.priv_key,
                    auth_protocol=r.auth_protocol, priv_protocol=r.priv_protocol)
    return RouterFamily(r.host, runner, auth, port=r.port, wan_if=r.wan_if,
                        timeout=r.timeout, retries=r.retries, state_dir=cfg.agent.state_dir)


def _v3_key(value: Any) -> Optional[str]:
    if value and len(value) < 8:  # RFC 3414: a pass phrase of at least 8 characters
        return "must be at least 8 characters (SNMPv3), got %d" % len(value)
    return None


def _speedtest(cfg: Any, runner: Any) -> Family:
    from .speedtest import SpeedtestFamily  # speedtest-cli only when a test runs

    st = cfg.speedtest
    return SpeedtestFamily(st.servers, timeout=st.timeout, io_timeout=st.io_timeout,
                           budget=st.budget, speedtest_net=st.speedtest_net, runner=runner)


def _check_servers(value: Any) -> Optional[str]:
    for url in value:
        if not (url.startswith(("http://", "https://")) and url.endswith("upload.php")):
            return ("mỗi mục phải là địa chỉ http(s)://.../upload.php / each entry must be an "
                    "http(s)://.../upload.php URL, got %r" % url)
    return None


#: Every kind of the contract, read-only: the one place how a family runs is declared.
SPECS: Mapping[str, FamilySpec] = MappingProxyType({s.kind: s for s in (
    FamilySpec("health", INTERVAL, period_key="intervals.health", keys=(
        ("intervals.health", Key("int", 60, "Seconds between health reports (±10 % jitter).",
                                 minimum=1, maximum=86400)),), build=_health),
    FamilySpec("inventory", ON_CHANGE, period_key="intervals.inventory", keys=(
        ("intervals.inventory", Key("int", 3600, "Seconds between inventory change checks; "
                                    "inventory is sent at start and when it changed.",
                                    minimum=1, maximum=604800)),), build=_inventory),
    # At start, then every period; on the slow worker (never the health path). 300 s: a
    # Windows scan of WMI + registry on an old lab PC; each command has its own timeout.
    FamilySpec("security", INTERVAL, slow=True, timeout=300.0,
               period_key="intervals.security", first_delay_key="security.first_delay", keys=(
                   ("intervals.security", Key("int", 21600, "Seconds between security "
                                              "posture scans (at start, then ±10 % jitter).",
                                              minimum=60, maximum=604800)),
                   ("security.first_delay", Key("float", 120.0, "Seconds after the start "
                                                "delay before the first scan: a lab PC's "
                                                "boot and first reports go first.",
                                                minimum=0, maximum=86400)),
                   ("security.probe_timeout", Key("int", 90, "Longest time one command of a "
                                                  "security scan may take, seconds (a hung "
                                                  "probe gives `unknown`).",
                                                  minimum=1, maximum=3600)),
                   ("security.wu_search_interval", Key("int", 21600, "Windows: seconds "
                                                       "between offline Windows Update "
                                                       "searches (run in the background).",
                                                       minimum=600, maximum=604800)),
                   ("security.wu_search_timeout", Key("int", 1800, "Windows: longest time one "
                                                      "Windows Update search may take, "
                                                      "seconds (searches can hang for hours).",
                                                      minimum=60, maximum=86400)),
               ), build=_security),
    # Defined by the issues that build them: declared here so the CLI, the runtime and the
    # docs already agree on how they will run.
    # Its own worker (slow=False): the link check every uptime figure rests on must never
    # wait behind a 5-minute security scan. 60 s: a slow PowerShell route lookup on an old
    # Windows PC, then the checks, each bounded by probe.timeout, all in parallel.
    FamilySpec("probe", INTERVAL, timeout=60.0, period_key="intervals.probe", keys=(
        ("intervals.probe", Key("int", 300, "Seconds between light link probes (±10 % "
                                "jitter): gateway, DNS, domestic and international HTTP.",
                                minimum=30, maximum=86400)),
        ("probe.timeout", Key("float", 5.0, "Longest time each probe check may take, seconds "
                              "(they run in parallel).", minimum=0.5, maximum=60)),
        ("probe.dns_name", Key("str", "moet.gov.vn", "Name resolved by the DNS check; empty: "
                               "no DNS check.")),
        ("probe.domestic_url", Key("str", "", "Domestic HTTP target; empty: the "
                                   "collector's `/speedtest/latency.txt` on the host of "
                                   "`mqtt.url`, port `probe.domestic_port`.")),
        ("probe.domestic_port", Key("int", 8080, "Port of the collector's speed test "
                                    "server, for the default domestic target.",
                                    minimum=1, maximum=65535)),
        ("probe.intl_url", Key("str", "https://www.google.com/generate_204",
                               "International HTTP target; empty: none. Prefer a server "
                               "hosted abroad: big CDNs may answer from inside Vietnam.")),
    ), build=_probe),
    # The slow worker: a poll is a few dozen SNMP requests, minutes of delay cost nothing
    # (rates use the router's own clock, sysUpTime). Built only with router.host.
    FamilySpec("router", INTERVAL, slow=True, timeout=120.0, period_key="intervals.router",
               keys=(
        ("intervals.router", Key("int", 300, "Seconds between polls of the school router "
                                 "(only with `router.host`).", minimum=30, maximum=86400)),
        ("router.host", Key("str", "", "The school router's address; set on ONE agent of "
                            "the school (that one polls it). Empty: no router family.")),
        ("router.snmp", Key("choice", "off", "SNMP version to read the router with; `off`: "
                            "gateway check only.", choices=("off", "v2c", "v3"))),
        ("router.port", Key("int", 161, "SNMP UDP port.", minimum=1, maximum=65535)),
        ("router.community", Key("str", "public", "SNMP v2c community (read-only).",
                                 secret=True)),
        ("router.user", Key("str", "", "SNMPv3 user name.")),
        ("router.auth_key", Key("str", "", "SNMPv3 authentication pass phrase; empty: "
                                "noAuthNoPriv.", secret=True, check=_v3_key)),
        ("router.priv_key", Key("str", "", "SNMPv3 privacy pass phrase; empty: authNoPriv "
                                "(privacy needs the `cryptography` package).", secret=True,
                                check=_v3_key)),
        ("router.auth_protocol", Key("choice", "sha", "SNMPv3 authentication protocol.",
                                     choices=("md5", "sha", "sha256", "sha512"))),
        ("router.priv_protocol", Key("choice", "aes", "SNMPv3 privacy protocol.",
                                     choices=("des", "aes", "aes256"))),
        ("router.wan_if", Key("str", "", "The WAN interface: its ifName/ifDescr or ifIndex; "
                              "empty: the up interface with the most in-octets.")),
        ("router.timeout", Key("float", 2.0, "Seconds to wait for one SNMP answer (and for "
                               "the gateway ping).", minimum=0.2, maximum=60)),
        ("router.retries", Key("int", 1, "SNMP retries per request.", minimum=0, maximum=5)),
    ), build=_router),
    # Run by a command (the school's test lease) or by hand; on the slow worker, so a
    # test never delays health. 300 s: two 10 s phases, server discovery and timeouts.
    FamilySpec("speedtest", ON_COMMAND, slow=True, cheap=False, timeout=300.0, keys=(
        ("speedtest.enabled", Key("bool", True, "Run bandwidth tests when the collector "
                                  "grants this PC the school's test lease (false: refuse "
                                  "grants; `schoolmon-agent speedtest` still works).")),
        ("speedtest.designated", Key("bool", False, "This PC is the school's designated test "
                                     "PC (sent as `tester` in `probe`): the collector gives it "
                                     "the test lease first.")),
        ("speedtest.servers", Key("list", [], "Legacy speedtest servers by their `upload.php` "
                                  "URL (e.g. the collector's `http://HOST:8080/speedtest/"
                                  "upload.php`), tried in order when a test names no server "
                                  "and after speedtest.net.", check=_check_servers)),
        ("speedtest.speedtest_net", Key("bool", True, "Try speedtest.net's closest server "
                                        "(HTTPS) first when a test names no server.")),
        ("speedtest.timeout", Key("float", 120.0, "Longest time one test may take in all, "
                                  "seconds.", minimum=10, maximum=280)),
        ("speedtest.io_timeout", Key("float", 10.0, "Longest wait for one network operation "
                                     "of a test (a server that stalls), seconds.",
                                     minimum=0.5, maximum=120)),
        ("speedtest.budget", Key("int", 500 * 10 ** 6, "Most bytes a test run by hand may "
                                 "move (a granted test uses the grant's budget): a full test "
                                 "of a 300/100 Mbit link; on a metered link run "
                                 "`schoolmon-agent speedtest --mode short` (at most 10 MB).",
                                 minimum=0)),
    ), build=_speedtest),
    FamilySpec("status", ON_CONNECT),
)})


def config_keys() -> Dict[str, Dict[str, Key]]:
    """Every family's own config keys by section, for the agent's configuration schema."""
    out: Dict[str, Dict[str, Key]] = {}
    for spec in SPECS.values():
        for dotted, key in spec.keys:
            section, name = dotted.split(".", 1)
            out.setdefault(section, {})[name] = key
    return out


def config_value(cfg: Any, dotted: str) -> Any:
    """The value of ``section.name`` in a loaded configuration."""
    section, name = dotted.split(".", 1)
    return getattr(getattr(cfg, section), name)


def build_families(cfg: Any, runner: Any = None) -> Dict[str, Family]:
    """Every family this version builds, by kind (the runtime and ``collect`` call this).
    ``runner`` is the command runner (a RecordedRunner in tests); the real one by default."""
    if runner is None:
        from ..runner import SubprocessRunner

        runner = SubprocessRunner()
    built = {kind: spec.build(cfg, runner) for kind, spec in SPECS.items()
             if spec.build is not None}
    # a builder may say "not on this device" (router: only with router.host)
    return {kind: family for kind, family in built.items() if family is not None}
