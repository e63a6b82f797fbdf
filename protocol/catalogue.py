"""The field catalogue: every field of every message family, described once with its unit.

Both sides use it: the agent to check what it is about to send, the collector to
validate what it receives, and ``python -m schoolmon.protocol.docs`` to write
docs/protocol.md (a test keeps that file in step with this one).

Versioning rule: within topic version v1, a family's payload ``v`` only changes when the
meaning or type of an existing field changes; adding an optional field keeps ``v``, and
receivers ignore fields they do not know. A change to the envelope or topic layout is a
new topic version.
"""
from typing import Dict, NamedTuple, Optional, Tuple

#: 64 KiB: enforced when encoding (agent) and before decoding (collector).
MAX_PAYLOAD_BYTES = 64 * 1024

#: Largest integer a float64 (JSON consumers, InfluxDB, JavaScript) carries exactly.
MAX_SAFE_INT = 2 ** 53 - 1
_TB = 2 ** 50  # 1 PiB: more than any school disk; larger byte counts are absurd
_GBIT_BPS = 100 * 10 ** 9 // 8  # 100 Gbit/s in bytes/s: more than any school NIC


class Field(NamedTuple):
    name: str
    type: str  # int | float | str | bool | list | objects
    unit: str
    description: str
    required: bool = False
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    #: for type "list": the type of each item; for "objects": unused
    item_type: Optional[str] = None
    #: for type "objects": the fields of each object in the list
    items: Optional[Tuple["Field", ...]] = None
    max_items: int = 64
    max_len: int = 256
    choices: Optional[Tuple[str, ...]] = None


class Family(NamedTuple):
    kind: str
    version: int
    description: str
    fields: Tuple[Field, ...]
    retained: bool = False


def _pct(name: str, description: str, required: bool = False) -> Field:
    return Field(name, "float", "%", description, required, 0, 100)


#: The envelope every payload carries.
ENVELOPE = (
    Field("v", "int", "", "Payload schema version of this family (see the versioning rule).",
          True, 1, 1000),
    Field("ts", "float", "s (Unix epoch, UTC)",
          "Time of measurement: seconds since 1970-01-01T00:00:00Z; an integer or up to "
          "3 decimals. Agents replay buffered messages, so ts can be hours or days old.",
          True, 946684800, 4102444800),
    Field("seq", "int", "count",
          "Per-device message counter, persisted across restarts; every data message takes "
          "the next number. `status` messages take none: they carry the last number given "
          "out, so the collector can tell how far the device got.",
          True, 0, MAX_SAFE_INT),
)

STATUS = Family(
    "status", 1,
    "Retained. The agent sets a Last Will `offline` (reason `lost`) before it connects, "
    "publishes `online` on every connect and `offline` (reason `shutdown`) when it stops "
    "in order. A Last Will's `ts` is the time of the connect that set it.",
    (
        Field("state", "str", "", "`online` or `offline`.", True, choices=("online", "offline")),
        Field("reason", "str", "", "Why offline: `shutdown` (orderly stop) or `lost` "
              "(the broker published the Last Will).", choices=("shutdown", "lost")),
        Field("agent", "str", "", "Agent version.", max_len=32),
        Field("hb", "int", "s", "Health interval of this agent; the collector declares the "
              "device offline after about 3 × hb + 60 s without a message.", minimum=5,
              maximum=86400),
    ),
    retained=True,
)

_DISK_USAGE = (
    Field("mnt", "str", "", "Mount point or drive letter (`/`, `C:`).", True, max_len=128),
    _pct("pct", "Space used.", True),
    Field("free", "int", "B", "Free space.", True, 0, _TB),
)

_NIC_RATES = (
    Field("if", "str", "", "Interface name.", True, max_len=128),
    Field("rx", "int", "B/s", "Bytes received per second over the interval.", True, 0, _GBIT_BPS),
    Field("tx", "int", "B/s", "Bytes sent per second over the interval.", True, 0, _GBIT_BPS),
    Field("err", "int", "count", "Receive + send errors during the interval.", False, 0,
          MAX_SAFE_INT),
    Field("drop", "int", "count", "Received + sent packets dropped during the interval.",
          False, 0, MAX_SAFE_INT),
)

HEALTH = Family(
    "health", 1,
    "Every 60 s (±10 %) by default. Rates are averages over the interval since the previous "
    "health message; a field the OS does not expose is left out, never sent as 0.",
    (
        _pct("cpu_pct", "CPU busy, all logical CPUs together, over the interval.", True),
        Field("cpu_n", "int", "count", "Logical CPUs (to read `load` per CPU).", True, 1, 4096),
        Field("load", "list", "runnable tasks", "Load average over 1, 5 and 15 minutes "
              "(Windows: psutil's emulation).", item_type="float", max_items=3, minimum=0,
              maximum=100000),
        _pct("mem_pct", "Physical memory in use (total minus available).", True),
        _pct("swap_pct", "Swap / page file in use."),
        Field("disks", "objects", "", "Each fixed (non-removable, non-network) volume.",
              items=_DISK_USAGE),
        Field("disk_rd", "int", "B/s", "Read from all physical disks.", False, 0, _GBIT_BPS),
        Field("disk_wr", "int", "B/s", "Written to all physical disks.", False, 0, _GBIT_BPS),
        Field("nics", "objects", "", "Each active network interface (up, not loopback).",
              items=_NIC_RATES),
        Field("temp", "float", "°C", "Highest CPU temperature the OS exposes.", False, -40, 150),
        Field("fan", "int", "rpm", "Fastest fan the OS exposes.", False, 0, 30000),
        _pct("batt", "Battery charge (laptops, UPS seen by the OS)."),
        Field("ac", "bool", "", "On mains power (only sent with `batt`)."),
        Field("up", "int", "s", "Time since boot.", True, 0, MAX_SAFE_INT),
        Field("procs", "int", "count", "Running processes.", False, 0, 10 ** 7),
        Field("users", "int", "count", "Distinct users logged in.", False, 0, 10 ** 5),
        Field("q", "int", "count", "Messages waiting in the agent's store-and-forward queue.",
              False, 0, MAX_SAFE_INT),
        Field("q_drop", "int", "count", "Messages the agent's queue ever had to drop "
              "(full or corrupted), since the queue was created.", False, 0, MAX_SAFE_INT),
    ),
)

_INV_DISK = (
    Field("model", "str", "", "Disk model.", max_len=128),
    Field("size", "int", "B", "Capacity.", False, 0, _TB),
    Field("kind", "str", "", "`ssd`, `hdd` or absent when unknown.", choices=("ssd", "hdd")),
    Field("serial", "str", "", "Serial number.", max_len=128),
)

_INV_NIC = (
    Field("if", "str", "", "Interface name.", True, max_len=128),
    Field("mac", "str", "", "MAC address, `aa:bb:cc:dd:ee:ff`.", max_len=32),
    Field("ipv4", "list", "", "IPv4 addresses.", item_type="str", max_items=16),
    Field("ipv6", "list", "", "IPv6 addresses (link-local left out).", item_type="str",
          max_items=16),
    Field("speed", "int", "Mbit/s", "Link speed (0 or absent when unknown).", False, 0, 400000),
    Field("up", "bool", "", "Link up."),
)

INVENTORY = Family(
    "inventory", 1,
    "Retained. Sent when the agent starts and whenever any field changes (checked every "
    "hour by default); never on a timer otherwise.",
    (
        Field("hostname", "str", "", "Host name.", True, max_len=255),
        Field("role", "str", "", "Configured role.", True, choices=("lab", "office", "server",
                                                                     "router")),
        Field("room", "str", "", "Configured room (phòng máy), if any.", max_len=128),
        Field("os_name", "str", "", "Operating system (`Windows`, `Linux`).", True, max_len=64),
        Field("os_version", "str", "", "Marketing version (`10`, `11`, `22.04`).", max_len=64),
        Field("os_build", "str", "", "Build or release (`19045.4170`, kernel on Linux).",
              max_len=64),
        Field("os_edition", "str", "", "Edition or distribution (`Pro`, `Education`, "
              "`Ubuntu 22.04.4 LTS`).", max_len=128),
        Field("os_display", "str", "", "Feature update name (`22H2`, `23H2`).", max_len=32),
        Field("kernel", "str", "", "Kernel version.", max_len=128),
        Field("arch", "str", "", "Machine architecture (`AMD64`, `x86_64`).", max_len=32),
        Field("cpu_model", "str", "", "CPU model.", max_len=128),
        Field("cpu_cores", "int", "count", "Physical cores.", False, 1, 4096),
        Field("cpu_threads", "int", "count", "Logical CPUs.", False, 1, 4096),
        Field("ram", "int", "B", "Physical memory.", False, 0, _TB),
        Field("disks", "objects", "", "Physical disks.", items=_INV_DISK),
        Field("nics", "objects", "", "Network interfaces (not loopback).", items=_INV_NIC),
        Field("gateway", "str", "", "Default IPv4 gateway.", max_len=64),
        Field("vendor", "str", "", "System manufacturer.", max_len=128),
        Field("model", "str", "", "System model.", max_len=128),
        Field("serial", "str", "", "System serial number.", max_len=128),
        Field("boot_ts", "int", "s (Unix epoch, UTC)", "Time of the last boot.", False,
              946684800, 4102444800),
        Field("agent", "str", "", "Agent version.", True, max_len=32),
        Field("python", "str", "", "Python version running the agent.", max_len=32),
    ),
    retained=True,
)


_AV_PRODUCT = (
    Field("name", "str", "", "Product name as the OS or the vendor reports it.", True,
          max_len=128),
    Field("source", "str", "", "Where the agent found it: `wsc` (Windows Security Center), "
          "`defender` (MSFT_MpComputerStatus), `service` (the vendor's service, for products "
          "that do not register with Security Center), `clamav` (Linux).", True,
          choices=("wsc", "defender", "service", "clamav")),
    Field("state", "str", "", "`on`, `off`, `snoozed`, `expired` (Security Center's "
          "productState bits 0xF000), or `unknown`.",
          choices=("on", "off", "snoozed", "expired", "unknown")),
    Field("rtp", "bool", "", "Real-time protection on, as the product reports it (a passive "
          "Defender still says true: read `passive`)."),
    Field("sig_ok", "bool", "", "Signatures up to date by the product's own judgement "
          "(productState 0xF0 bit 0x10 clear)."),
    Field("sig_age_d", "float", "days", "Age of the signatures.", False, 0, 36500),
    Field("microsoft", "bool", "", "A Microsoft product (productState 0xF00 bit 0x100)."),
    Field("passive", "bool", "", "Present but not the protecting product (Defender's "
          "AMRunningMode `Passive Mode`, `SxS Passive Mode`, `EDR Block Mode`, `Not running`)."),
    Field("mode", "str", "", "Defender's AMRunningMode as reported.", max_len=32),
    Field("managed", "bool", "", "The vendor's central-management agent is running."),
    Field("version", "str", "", "Product or engine version.", max_len=64),
)

_FW_PROFILE = (
    Field("name", "str", "", "Profile (`domain`, `private`, `public`) or Linux tool "
          "(`ufw`, `firewalld`, `nftables`, `iptables`: legacy rules).", True, max_len=32),
    Field("on", "bool", "", "Effective state: filtering now, not only a policy key.", True),
)

_UNKNOWN = (
    Field("field", "str", "", "The field that could not be determined (left out of the "
          "payload).", True, max_len=64),
    Field("reason", "str", "", "Why, in a few words (`access denied`, `timeout after 90 s`, "
          "`class not found`, `not installed`).", True, max_len=256),
)

SECURITY = Family(
    "security", 1,
    "At start and every 6 h by default (`intervals.security`), on the slow-probe worker, "
    "never on the health path. Facts, not judgements: the collector judges them against "
    "the ATTT baseline. A fact the agent could not determine is left out and named in "
    "`unknown` with the reason, never guessed; a fact that does not exist on this OS is "
    "simply left out.",
    (
        Field("os_family", "str", "", "`windows` or `linux`.", True,
              choices=("windows", "linux", "other")),
        Field("os_id", "str", "", "Linux: os-release `ID` (`ubuntu`, `debian`); Windows: "
              "`windows` or `windows-server`.", max_len=32),
        Field("os_ubr", "int", "", "Windows update build revision (`4170` of 19045.4170).",
              False, 0, 10 ** 6),
        Field("esu", "bool", "", "A Windows Extended Security Updates licence is active."),
        Field("av", "objects", "", "Every anti-malware product found, protecting or not.",
              items=_AV_PRODUCT, max_items=16),
        Field("av_on", "bool", "", "Some product protects in real time now (on, not passive, "
              "not snoozed or expired)."),
        Field("av_name", "str", "", "The protecting product (empty when none).", max_len=128),
        Field("av_sig_age_d", "float", "days", "Signature age of the protecting product.",
              False, 0, 36500),
        Field("av_managed", "bool", "", "The protecting product's central-management agent "
              "is running."),
        Field("patch_last_ts", "int", "s (Unix epoch, UTC)", "Last successfully installed OS "
              "update (Windows Update history, not Get-HotFix alone; Linux: apt history).",
              False, 946684800, 4102444800),
        Field("patch_pending_sec", "int", "count", "Security updates waiting (Windows: the "
              "cached offline search; Linux: upgradable from a `-security` origin).",
              False, 0, 100000),
        Field("patch_pending", "int", "count", "All updates waiting (security included).",
              False, 0, 100000),
        Field("patch_checked_ts", "int", "s (Unix epoch, UTC)", "When the pending counts were "
              "computed (Windows: the last finished offline search).", False, 946684800,
              4102444800),
        Field("pkg_cache_ts", "int", "s (Unix epoch, UTC)", "Linux: last successful package "
              "list update (`update-success-stamp`); the agent never runs `apt update`. "
              "Windows: Windows Update's last successful online search, whose cache the "
              "agent's offline search reads (the pending counts are that old).",
              False, 946684800, 4102444800),
        Field("reboot_pending", "bool", "", "A reboot is needed to finish installing updates."),
        Field("reboot_signals", "list", "", "Which signals say so: `wu_reboot_required`, "
              "`cbs_reboot_pending`, `pending_file_rename`, `reboot_required_file`.",
              item_type="str", max_items=8, max_len=32),
        Field("auto_update", "bool", "", "Updates install automatically (Windows: AU not "
              "disabled and update services not disabled; Linux: unattended-upgrades on)."),
        Field("auto_update_detail", "str", "", "The setting behind `auto_update` "
              "(`AUOptions=4`, `NoAutoUpdate=1`, `APT::Periodic::Unattended-Upgrade=1`).",
              max_len=128),
        Field("update_service_off", "bool", "", "The update services are disabled (wuauserv / "
              "UsoSvc start type Disabled)."),
        Field("fw_on", "bool", "", "The firewall filters on every profile (effective state)."),
        Field("fw_profiles", "objects", "", "Each firewall profile or Linux tool found.",
              items=_FW_PROFILE, max_items=8),
        Field("smb1_server", "bool", "", "SMBv1 server enabled."),
        Field("smb1_client", "bool", "", "SMBv1 client enabled."),
        Field("guest_on", "bool", "", "The built-in guest account (SID ending -501) is enabled."),
        Field("admin_builtin_on", "bool", "", "The built-in administrator (SID ending -500) "
              "is enabled."),
        Field("rdp_on", "bool", "", "Remote Desktop accepts connections."),
        Field("rdp_nla", "bool", "", "Remote Desktop requires Network Level Authentication."),
        Field("autorun_off", "bool", "", "AutoRun/AutoPlay off for every drive type."),
        Field("autorun_detail", "str", "", "The values behind `autorun_off` "
              "(`NoDriveTypeAutoRun=255`).", max_len=128),
        Field("lock_s", "int", "s", "Screen-lock timeout in effect (0: never locks).",
              False, 0, 10 ** 7),
        Field("lock_source", "str", "", "Where `lock_s` comes from: `policy`, `user`.",
              choices=("policy", "user")),
        Field("frozen", "bool", "", "Reboot-restore software (Deep Freeze ...) is protecting "
              "the disk now: every reboot undoes updates and signatures."),
        Field("freeze_product", "str", "", "That software's name.", max_len=64),
        Field("scan_s", "float", "s", "Wall time of this scan.", False, 0, 86400),
        Field("scan_cpu_s", "float", "s", "CPU time the agent and its child processes spent "
              "on this scan.", False, 0, 86400),
        Field("unknown", "objects", "", "Facts that could not be determined, with why.",
              items=_UNKNOWN, max_items=64),
    ),
)

_MS = 600000.0  # 10 minutes in ms: longer round trips are absurd (a probe times out first)
_MBPS = 100000.0  # 100 Gbit/s: more than any school link

#: The network interface a measurement went out of (the default route's), shared by
#: ``probe`` and ``speedtest`` so the collector can prefer wired PCs for tests.
_VIA = (
    Field("if", "str", "", "Interface the route goes out of (probe: the default route; "
          "speedtest: the route to the test server, `lo` for a loopback one).", max_len=128),
    Field("wired", "bool", "", "That interface is wired Ethernet (false: Wi-Fi or mobile)."),
    Field("link_mbps", "int", "Mbit/s", "Its link speed, when the OS says.", False, 0, 400000),
)


def _target(prefix: str, what: str) -> Tuple[Field, ...]:
    return (
        Field(prefix + "_ok", "bool", "", what + " answered."),
        Field(prefix + "_ms", "float", "ms", "Time " + what.lower() + " took to answer.",
              False, 0, _MS),
        Field(prefix + "_err", "str", "", "Why " + what.lower() + " failed: `timeout`, "
              "`refused`, `unreachable`, `http 503`, `tls: ...`; a name that did not "
              "resolve: `nxdomain`, `no_answer`, `no_server` (none configured), `servfail` "
              "(an HTTP target: `dns: nxdomain` ...); `not_configured` (and no `_ok`): no "
              "such target is set.", max_len=128),
    )


PROBE = Family(
    "probe", 1,
    "Light link probe, every 300 s (±10 %) by default (`intervals.probe`), a few KB: the "
    "default gateway (ping), DNS resolution, HTTP to a domestic target (the collector) and to "
    "an international one. Each target has its own timeout and runs in parallel, so one "
    "that never answers cannot hold up the others. A target that is not configured is "
    "left out.",
    (
        Field("gw", "str", "", "Default gateway address.", max_len=64),
        *_target("gw", "The default gateway"),
        Field("dns_name", "str", "", "Name resolved for the DNS check.", max_len=255),
        *_target("dns", "DNS resolution"),
        Field("dom_url", "str", "", "Domestic HTTP target.", max_len=512),
        *_target("dom", "The domestic HTTP target"),
        Field("intl_url", "str", "", "International HTTP target.", max_len=512),
        *_target("intl", "The international HTTP target"),
        *_VIA,
        Field("tester", "bool", "", "This PC is the school's designated test PC "
              "(`speedtest.designated`): the collector gives it the test lease first."),
    ),
)

SPEEDTEST = Family(
    "speedtest", 1,
    "One bandwidth test, run when the collector grants the school's test lease (a "
    "`speedtest` command) or by hand (`schoolmon-agent speedtest`). A failed test is a "
    "result too: `ok` false, `reason`, no speeds (bytes already moved are still counted).",
    (
        Field("lease", "str", "", "Id of the lease the test ran under; absent for a test run "
              "by hand.", max_len=64),
        Field("ok", "bool", "", "The test completed.", True),
        Field("reason", "str", "", "Why it failed: `no_server` (none reachable), `timeout`, "
              "`link_down` (the light probe said so: skipped), `budget`, `error: ...`.",
              max_len=256),
        Field("trigger", "str", "", "What started it.", choices=("slot", "boot", "manual",
                                                                  "command")),
        Field("mode", "str", "", "`full` (about rate × 10 s each way) or `short` (at most "
              "~10 MB, for metered links).", choices=("full", "short")),
        Field("down_mbps", "float", "Mbit/s", "Download throughput.", False, 0, _MBPS),
        Field("up_mbps", "float", "Mbit/s", "Upload throughput.", False, 0, _MBPS),
        Field("ping_ms", "float", "ms", "Latency to the test server (lowest HTTP round trip).",
              False, 0, _MS),
        Field("jitter_ms", "float", "ms", "Mean difference between successive latency "
              "samples.", False, 0, _MS),
        Field("bytes_rx", "int", "B", "Bytes received by the test (download, latency).",
              False, 0, _TB),
        Field("bytes_tx", "int", "B", "Bytes sent by the test (upload).", False, 0, _TB),
        Field("server", "str", "", "The server's `upload.php` URL.", max_len=512),
        Field("server_name", "str", "", "The server's name and sponsor.", max_len=255),
        Field("isp", "str", "", "ISP as the test server saw it (speedtest.net only).",
              max_len=128),
        Field("ip", "str", "", "Public IP address as the test server saw it.", max_len=64),
        *_VIA,
        Field("dur_s", "float", "s", "Wall time of the whole test.", False, 0, 3600),
    ),
)

_ROUTER_IF = (
    Field("name", "str", "", "Interface name (`ifName`, else `ifDescr`).", True, max_len=128),
    Field("index", "int", "", "`ifIndex`.", False, 0, 2 ** 31),
    Field("up", "bool", "", "`ifOperStatus` is up."),
    Field("mbps", "int", "Mbit/s", "`ifHighSpeed` (or `ifSpeed` / 10^6).", False, 0, 400000),
)

ROUTER = Family(
    "router", 1,
    "The school router, seen by one agent of the school (the one configured with "
    "`router.host`, every `intervals.router` s, 300 by default): the gateway check always, "
    "SNMP v2c/v3 when configured. The collector shows it as the school's device with role "
    "`router`. Rates come from the difference of two polls of the octet counters (64-bit "
    "`ifHC*Octets`, else 32-bit with wrap handling); a poll after the router rebooted "
    "(`uptime_s` went down) gives no rate.",
    (
        Field("host", "str", "", "The router's address.", True, max_len=255),
        *_target("gw", "The router (ping)"),
        Field("snmp_ok", "bool", "", "SNMP answered."),
        Field("snmp_err", "str", "", "Why SNMP failed (`timeout`, `auth`, `no such object` "
              "...).", max_len=256),
        Field("uptime_s", "int", "s", "`sysUpTime` (the router's own uptime).", False, 0,
              MAX_SAFE_INT),
        Field("rebooted", "bool", "", "`sysUpTime` went down since the previous poll."),
        Field("descr", "str", "", "`sysDescr`.", max_len=512),
        Field("name", "str", "", "`sysName`.", max_len=255),
        Field("model", "str", "", "Model read from `sysDescr` when it names one.", max_len=128),
        Field("firmware", "str", "", "Firmware version read from `sysDescr`.", max_len=128),
        Field("wan_if", "str", "", "The WAN interface polled.", max_len=128),
        Field("wan_up", "bool", "", "The WAN interface is up."),
        Field("wan_mbps", "int", "Mbit/s", "WAN interface speed.", False, 0, 400000),
        Field("counter_bits", "int", "bit", "Octet counters used: 64 or 32.", False, 32, 64),
        Field("rx_octets", "int", "B", "WAN `ifHCInOctets` (or `ifInOctets`) as read.", False,
              0, 2 ** 64 - 1),
        Field("tx_octets", "int", "B", "WAN `ifHCOutOctets` (or `ifOutOctets`) as read.",
              False, 0, 2 ** 64 - 1),
        Field("rx_bps", "int", "bit/s", "WAN receive rate since the previous poll.", False, 0,
              10 ** 12),
        Field("tx_bps", "int", "bit/s", "WAN send rate since the previous poll.", False, 0,
              10 ** 12),
        _pct("rx_util_pct", "WAN receive utilisation (rate / interface speed)."),
        _pct("tx_util_pct", "WAN send utilisation."),
        Field("ifs", "objects", "", "Every interface of the router.", items=_ROUTER_IF,
              max_items=64),
    ),
)

#: Families this version of the wire format defines (the up kinds of the contract).
FAMILIES: Dict[str, Family] = {f.kind: f for f in (STATUS, HEALTH, INVENTORY, SECURITY, PROBE,
                                                   SPEEDTEST, ROUTER)}

#: Commands, sent down on ``schoolmon/v1/{school}/{device}/cmd`` (QoS 1, never retained).
#: A command carries ``v`` and ``ts`` (the collector's clock) and ``cmd``, its name; no
#: ``seq``. Not a persistent session: the collector publishes a command again when the
#: device's next ``online`` arrives, for as long as it is still valid; the agent acts on
#: each ``id`` once and never after ``exp``.
COMMAND_ENVELOPE = (
    Field("v", "int", "", "Command schema version.", True, 1, 1000),
    Field("ts", "float", "s (Unix epoch, UTC)", "When the collector sent it (its clock).",
          True, 946684800, 4102444800),
    Field("cmd", "str", "", "The command's name.", True, max_len=32),
)

SPEEDTEST_GRANT = Family(
    "speedtest", 1,
    "The school's test lease, granted to this device: run one bandwidth test now against "
    "`server`, within `budget` bytes, and report it with this `id`. Ignored when `exp` has "
    "passed (by the agent's clock, and also `ttl` seconds after it arrived, for a PC whose "
    "clock is wrong), when the id was seen before, or when a test is running.",
    (
        Field("id", "str", "", "Lease id (unique).", True, max_len=64),
        Field("exp", "float", "s (Unix epoch, UTC)", "The lease expires then; a later test "
              "is not under it.", True, 946684800, 4102444800),
        Field("ttl", "float", "s", "Seconds the lease is valid from the moment it was sent.",
              True, 1, 86400),
        Field("server", "str", "", "`upload.php` URL of a legacy speedtest server; empty: "
              "speedtest.net's nearest server.", max_len=512),
        Field("budget", "int", "B", "Most bytes the test may move, both directions.", True,
              0, _TB),
        Field("mode", "str", "", "`full` or `short` (metered link).", True,
              choices=("full", "short")),
        Field("trigger", "str", "", "Why it was granted.", choices=("slot", "boot", "manual",
                                                                     "command")),
    ),
)

#: Commands by ``cmd`` name.
COMMANDS: Dict[str, Family] = {c.kind: c for c in (SPEEDTEST_GRANT,)}
