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

#: Families this version of the wire format defines. The other up kinds of the contract
#: (security, probe, speedtest, router) are defined by the issues that build them.
FAMILIES: Dict[str, Family] = {f.kind: f for f in (STATUS, HEALTH, INVENTORY)}
