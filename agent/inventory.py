"""The ``inventory`` family: what the PC is (fields described in the catalogue).

Linux reads files under the given roots (``/sys``, ``/proc``, ``/etc``) so tests can point
them at fixture trees. Windows asks WMI and the registry in ONE PowerShell call through the
command runner (tests replay outputs recorded from real machines). Windows 7 with
PowerShell 2.0 has neither Get-CimInstance nor ConvertTo-Json: it gets a Get-WmiObject
script printing tab-separated lines (see LEGACY_SCRIPT for why not wmic).

The core sends inventory only when it changed, by equality: every list here is sorted and
no value depends on the moment of measurement (no uptime, no free space).
"""
import logging
import os
import platform
import re
import socket
import struct
import sys
from typing import Any, Dict, List, Optional, Tuple

import psutil

from . import __version__
from .runner import CommandError, CommandRunner, SubprocessRunner, as_list, powershell, powershell_json

log = logging.getLogger(__name__)

#: Seconds PowerShell may take: WMI on a 10-year-old lab PC can be slow on first use.
PS_TIMEOUT = 90.0

# Block devices that are not physical disks (loop = snaps/images, dm/md = layers on top of
# real disks, sr = optical, zram/ram = memory).
_SKIP_BLOCK = ("loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd")
# Linux interfaces that come and go with containers and VMs: listing them would make the
# inventory "change" every time a container starts.
_SKIP_NIC = ("veth", "docker", "br-", "virbr", "vnet", "ifb", "cali", "flannel", "cni")
# Placeholders board makers leave in DMI/SMBIOS: not a vendor, model or serial.
_PLACEHOLDERS = {
    "", "to be filled by o.e.m.", "to be filled by oem", "default string", "system serial number",
    "system product name", "system manufacturer", "none", "not specified", "not applicable",
    "o.e.m.", "oem", "0", "0123456789", "123456789", "00000000", "xxxxxxxxxxxx", "n/a",
    "chassis serial number", "invalid", "unknown",
}


def _clean(value: Any) -> Optional[str]:
    """A trimmed string, or None for an empty value or a known placeholder."""
    if value is None:
        return None
    text = " ".join(str(value).split())  # also folds the space padding WMI gives serials
    if text.lower() in _PLACEHOLDERS:
        return None
    return text


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:  # missing, or root-only (product_serial)
        return None


def _int(value: Any) -> Optional[int]:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _put(out: Dict[str, Any], key: str, value: Any) -> None:
    """Set a field only when there is a value (a field we could not read is left out)."""
    if value is not None and value != "" and value != []:
        out[key] = value


class InventoryFamily:
    kind = "inventory"

    def __init__(self, role: str, room: str = "", runner: Optional[CommandRunner] = None,
                 sys_root: str = "/sys", proc_root: str = "/proc", etc_root: str = "/etc",
                 platform_name: Optional[str] = None) -> None:
        self.role = role
        self.room = room
        self.runner: CommandRunner = runner if runner is not None else SubprocessRunner()
        self.sys_root, self.proc_root, self.etc_root = sys_root, proc_root, etc_root
        #: "win32" or "linux"; tests force it to replay Windows recordings on Linux
        self.platform = platform_name or sys.platform
        #: set once the modern script failed and the legacy one worked (Windows 7)
        self.legacy: Optional[bool] = None

    def collect(self) -> Dict[str, Any]:
        out = self._windows() if self.platform == "win32" else self._linux()
        out["role"] = self.role
        if self.room:
            out["room"] = self.room
        out["agent"] = __version__
        out["python"] = platform.python_version()
        return dict(sorted(out.items()))

    # -- what every OS gets from psutil -----------------------------------------------
    def _common(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"hostname": socket.gethostname()}
        try:
            _put(out, "cpu_cores", psutil.cpu_count(logical=False))
            _put(out, "cpu_threads", psutil.cpu_count(logical=True))
            out["ram"] = int(psutil.virtual_memory().total)
            out["boot_ts"] = int(psutil.boot_time())
        except Exception as exc:  # a broken /proc must not cost the whole inventory
            log.warning("inventory: psutil failed: %s", exc)
        return out

    # -- Linux ------------------------------------------------------------------------
    def _linux(self) -> Dict[str, Any]:
        out = self._common()
        host = _read(os.path.join(self.proc_root, "sys/kernel/hostname"))
        if host and host.strip():
            out["hostname"] = host.strip()
        out["os_name"] = "Linux"
        rel = _os_release(self.etc_root)
        _put(out, "os_version", rel.get("VERSION_ID"))
        _put(out, "os_edition", rel.get("PRETTY_NAME") or rel.get("NAME"))
        _put(out, "os_display", rel.get("VERSION_CODENAME"))
        kernel = _read(os.path.join(self.proc_root, "sys/kernel/osrelease"))
        kernel = kernel.strip() if kernel else platform.release()
        _put(out, "kernel", kernel)
        _put(out, "os_build", kernel)
        _put(out, "arch", platform.machine())
        meminfo = _read(os.path.join(self.proc_root, "meminfo"))
        m = re.search(r"^MemTotal:\s+(\d+)\s*kB", meminfo or "", re.M)
        if m:
            out["ram"] = int(m.group(1)) * 1024
        stat = _read(os.path.join(self.proc_root, "stat"))
        m = re.search(r"^btime\s+(\d+)", stat or "", re.M)
        if m:
            out["boot_ts"] = int(m.group(1))
        _put(out, "cpu_model", _cpu_model(_read(os.path.join(self.proc_root, "cpuinfo"))))
        dmi = os.path.join(self.sys_root, "class/dmi/id")
        for key, name in (("vendor", "sys_vendor"), ("model", "product_name"),
                          ("serial", "product_serial")):
            _put(out, key, _clean(_read(os.path.join(dmi, name))))
        _put(out, "disks", _linux_disks(self.sys_root))
        _put(out, "nics", self._linux_nics())
        _put(out, "gateway", _default_gateway(_read(os.path.join(self.proc_root,
                                                                 "net/route"))))
        return out

    def _linux_nics(self) -> List[Dict[str, Any]]:
        try:
            addrs = psutil.net_if_addrs()
            stats = psutil.net_if_stats()
        except Exception:
            return []
        net_dir = os.path.join(self.sys_root, "class/net")
        have_sys = os.path.isdir(net_dir)
        nics = []
        for name in sorted(addrs):
            st = stats.get(name)
            flags = getattr(st, "flags", "") or ""
            if name == "lo" or "loopback" in flags.split(",") or name.startswith(_SKIP_NIC):
                continue
            nic = _nic_from_psutil(name, addrs[name], st)
            # virtual interfaces without an address (bonds' slaves, tunnels down) are noise
            physical = not have_sys or os.path.exists(os.path.join(net_dir, name, "device"))
            if not physical and "ipv4" not in nic and "ipv6" not in nic:
                continue
            nics.append(nic)
        return nics

    # -- Windows ----------------------------------------------------------------------
    def _windows(self) -> Dict[str, Any]:
        out = self._common()
        out["os_name"] = "Windows"
        data = None
        if not self.legacy:
            try:
                data = powershell_json(self.runner, MODERN_SCRIPT, PS_TIMEOUT)
                if not isinstance(data, dict):
                    raise CommandError("modern inventory script gave %s, not an object"
                                       % type(data).__name__)
                self.legacy = False
            except CommandError as exc:
                if self.legacy is False:  # it worked before: a passing fault, not Win 7
                    log.warning("inventory: %s", exc)
                    return out
                log.info("inventory: modern script failed (%s); trying PowerShell 2.0", exc)
                data = None
        if data is None:
            try:
                data = parse_legacy(powershell(self.runner, LEGACY_SCRIPT, PS_TIMEOUT))
                if not data:
                    raise CommandError("legacy inventory script printed nothing")
                self.legacy = True
            except CommandError as exc:
                log.warning("inventory: %s", exc)
                return out
        try:
            out.update(map_windows(data))
        except Exception as exc:  # a shape we have never seen: keep what we have
            log.warning("inventory: unexpected WMI answer: %r", exc)
        return out


# -- Linux readers ----------------------------------------------------------------------
def _os_release(etc_root: str) -> Dict[str, str]:
    text = _read(os.path.join(etc_root, "os-release"))
    if text is None:  # the spec's fallback location
        text = _read(os.path.join(etc_root, "../usr/lib/os-release")) or ""
    out = {}
    for line in text.splitlines():
        if "=" not in line or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def _cpu_model(cpuinfo: Optional[str]) -> Optional[str]:
    if not cpuinfo:
        return None
    # x86: "model name"; ARM boards: "Model" (Raspberry Pi) or "Hardware"/"Processor"
    for key in ("model name", "Model", "Hardware", "Processor", "cpu model"):
        m = re.search(r"^%s\s*:\s*(.+)$" % re.escape(key), cpuinfo, re.M)
        if m and _clean(m.group(1)):
            return _clean(m.group(1))
    return None


def _linux_disks(sys_root: str) -> List[Dict[str, Any]]:
    block = os.path.join(sys_root, "block")
    try:
        names = os.listdir(block)
    except OSError:
        return []
    disks = []
    for name in names:
        if name.startswith(_SKIP_BLOCK):
            continue
        base = os.path.join(block, name)
        if (_read(os.path.join(base, "removable")) or "0").strip() == "1":
            continue  # USB sticks and card readers come and go
        sectors = _int(_read(os.path.join(base, "size")))
        if not sectors:  # empty card reader slot, detached device
            continue
        disk: Dict[str, Any] = {"size": sectors * 512}  # sysfs counts 512-byte sectors
        rot = (_read(os.path.join(base, "queue/rotational")) or "").strip()
        if rot in ("0", "1"):
            disk["kind"] = "hdd" if rot == "1" else "ssd"
        _put(disk, "model", _clean(_read(os.path.join(base, "device/model"))))
        _put(disk, "serial", _clean(_read(os.path.join(base, "device/serial"))))
        disks.append(disk)
    return sorted(disks, key=_disk_key)


def _disk_key(d: Dict[str, Any]) -> Tuple[str, int, str]:
    return (d.get("model", ""), d.get("size", 0), d.get("serial", ""))


def _default_gateway(route: Optional[str]) -> Optional[str]:
    """The default IPv4 route with the lowest metric from /proc/net/route (hex, host
    byte order: little-endian on every PC we meet)."""
    best: Optional[Tuple[int, str]] = None
    for line in (route or "").splitlines()[1:]:
        f = line.split()
        if len(f) < 8 or f[1] != "00000000" or f[7] != "00000000":
            continue
        flags = int(f[3], 16)
        if not flags & 0x1 or not flags & 0x2:  # RTF_UP and RTF_GATEWAY
            continue
        gw = socket.inet_ntoa(struct.pack("<L", int(f[2], 16)))
        metric = int(f[6])
        if best is None or metric < best[0]:
            best = (metric, gw)
    return best[1] if best else None


def _nic_from_psutil(name: str, addrs: Any, st: Any) -> Dict[str, Any]:
    nic: Dict[str, Any] = {"if": name}
    ipv4, ipv6 = set(), set()
    for a in addrs:
        if a.family == psutil.AF_LINK:
            mac = (a.address or "").replace("-", ":").lower()
            if mac and mac != "00:00:00:00:00:00":
                nic["mac"] = mac
        elif a.family == socket.AF_INET:
            ipv4.add(a.address)
        elif a.family == socket.AF_INET6:
            ip = a.address.split("%", 1)[0]
            if not ip.lower().startswith("fe80:"):
                ipv6.add(ip)
    _put(nic, "ipv4", sorted(ipv4))
    _put(nic, "ipv6", sorted(ipv6))
    if st is not None:
        if st.speed and st.speed > 0:
            nic["speed"] = int(st.speed)
        nic["up"] = bool(st.isup)
    return nic


# -- Windows ---------------------------------------------------------------------------
# What the Windows inventory asks for: section, WMI class (namespace), filter, properties.
# MSFT_PhysicalDisk (HDD/SSD) lives in the Storage namespace, which Windows 7 lacks: the
# error is silenced and that section is simply absent.
_REG_KEY = "'HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion'"
_QUERIES = (
    ("os", "Win32_OperatingSystem", "", "", ("Caption", "Version", "BuildNumber",
                                             "OSArchitecture", "ProductType",
                                             "ServicePackMajorVersion")),
    ("cs", "Win32_ComputerSystem", "", "", ("Manufacturer", "Model", "TotalPhysicalMemory")),
    ("bios", "Win32_BIOS", "", "", ("SerialNumber",)),
    ("cpu", "Win32_Processor", "", "", ("Name", "NumberOfCores", "NumberOfLogicalProcessors")),
    ("disk", "Win32_DiskDrive", "", "", ("Index", "Model", "Size", "SerialNumber", "MediaType",
                                         "InterfaceType")),
    ("pdisk", "MSFT_PhysicalDisk", "root/Microsoft/Windows/Storage", "",
     ("DeviceId", "MediaType", "BusType")),
    ("nic", "Win32_NetworkAdapterConfiguration", "", "IPEnabled = TRUE",
     ("Index", "Description", "IPAddress", "MACAddress", "DefaultIPGateway",
      "IPConnectionMetric")),
    ("adapter", "Win32_NetworkAdapter", "", "NetConnectionID IS NOT NULL",
     ("Index", "NetConnectionID", "MACAddress", "Speed", "NetConnectionStatus",
      "PhysicalAdapter")),
)
_REG_PROPS = ("DisplayVersion", "ReleaseId", "UBR", "EditionID", "ProductName", "CurrentBuild")

# Both scripts: single quotes only (powershell.exe -Command mangles double quotes passed
# through CreateProcess), errors silenced per call so one missing class costs one section.
# The first line is the tag RecordedRunner keys recordings by.
_PROLOGUE = ("$ErrorActionPreference = 'SilentlyContinue'\n"
             "[Console]::OutputEncoding = [Text.Encoding]::UTF8\n")


def _modern_script() -> str:
    lines = ["#schoolmon:inventory-cim", _PROLOGUE + "$r = @{}"]
    for sec, cls, ns, flt, props in _QUERIES:
        lines.append("$r.%s = Get-CimInstance %s-ClassName %s%s | Select-Object %s" % (
            sec, "-Namespace %s " % ns if ns else "", cls,
            " -Filter '%s'" % flt if flt else "", ", ".join(props)))
    lines.append("$r.reg = Get-ItemProperty %s | Select-Object %s"
                 % (_REG_KEY, ", ".join(_REG_PROPS)))
    lines.append("$r | ConvertTo-Json -Depth 4 -Compress")
    return "\n".join(lines) + "\n"


# Windows 7 as shipped has PowerShell 2.0: no Get-CimInstance, no ConvertTo-Json. Chosen
# over `wmic ... /format:csv`: wmic needs one process per class (8 instead of 1), its
# /format:csv fails with "Invalid XSL format" on many non-English installs (csv.xsl is
# looked up under the UI language folder of wbem), CSV has no way to carry the array
# properties (IPAddress) and wmic is deprecated. One line per value:
# section TAB instance-index TAB property TAB value; arrays repeat the property.
_OUT_FUNCTION = r"""function Out-Smon($s, $objs, $props) {
  $i = 0
  foreach ($o in @($objs)) {
    if ($o -eq $null) { continue }
    foreach ($p in $props) {
      foreach ($v in @($o.$p)) {
        if ($v -ne $null) {
          $t = ([string]$v) -replace '[\t\r\n]', ' '
          Write-Output ($s + [char]9 + $i + [char]9 + $p + [char]9 + $t)
        }
      }
    }
    $i++
  }
}"""


def _legacy_script() -> str:
    def quoted(props: Tuple[str, ...]) -> str:
        return ", ".join("'%s'" % p for p in props)

    lines = ["#schoolmon:inventory-wmi", _PROLOGUE + _OUT_FUNCTION]
    for sec, cls, ns, flt, props in _QUERIES:
        lines.append("Out-Smon '%s' (Get-WmiObject %s-Class %s%s) @(%s)" % (
            sec, "-Namespace %s " % ns.replace("/", "\\") if ns else "", cls,
            " -Filter '%s'" % flt if flt else "", quoted(props)))
    lines.append("Out-Smon 'reg' (Get-ItemProperty %s) @(%s)" % (_REG_KEY, quoted(_REG_PROPS)))
    return "\n".join(lines) + "\n"


MODERN_SCRIPT = _modern_script()
LEGACY_SCRIPT = _legacy_script()

_ARRAY_PROPS = {"IPAddress", "DefaultIPGateway"}
_SINGLE_SECTIONS = {"os", "cs", "bios", "reg"}


def parse_legacy(text: str) -> Dict[str, Any]:
    """LEGACY_SCRIPT's lines → the same document shape MODERN_SCRIPT's JSON has."""
    sections: Dict[str, Dict[int, Dict[str, Any]]] = {}
    for line in text.lstrip("\ufeff").splitlines():
        parts = line.rstrip("\r").split("\t", 3)
        if len(parts) != 4 or not parts[1].isdigit():
            continue  # PowerShell warnings and blank lines
        sec, idx, prop, value = parts[0], int(parts[1]), parts[2], parts[3]
        obj = sections.setdefault(sec, {}).setdefault(idx, {})
        if prop in _ARRAY_PROPS:
            obj.setdefault(prop, []).append(value)
        else:
            obj[prop] = value
    doc: Dict[str, Any] = {}
    for sec, objs in sections.items():
        items = [objs[i] for i in sorted(objs)]
        doc[sec] = items[0] if sec in _SINGLE_SECTIONS else items
    return doc


# EditionID (not localised, unlike Caption) → the name Microsoft markets.
_EDITIONS = {
    "Professional": "Pro", "ProfessionalN": "Pro N", "Core": "Home", "CoreN": "Home N",
    "CoreSingleLanguage": "Home Single Language", "CoreCountrySpecific": "Home China",
    "ProfessionalEducation": "Pro Education", "ProfessionalWorkstation": "Pro for Workstations",
    "Education": "Education", "EducationN": "Education N", "Enterprise": "Enterprise",
    "EnterpriseN": "Enterprise N", "EnterpriseS": "Enterprise LTSC",
    "EnterpriseSN": "Enterprise N LTSC", "IoTEnterpriseS": "IoT Enterprise LTSC",
    "Ultimate": "Ultimate", "HomePremium": "Home Premium", "HomeBasic": "Home Basic",
    "Starter": "Starter", "ServerStandard": "Standard", "ServerDatacenter": "Datacenter",
    "CloudEdition": "SE",
}


def _windows_version(version: str, build: Optional[int], caption: str,
                     product_type: Optional[int]) -> Optional[str]:
    if product_type is not None and product_type != 1:  # 2 = domain controller, 3 = server
        m = re.search(r"Server\s+(\d{4}(?:\s+R2)?)", caption)
        return "Server %s" % m.group(1) if m else "Server"
    parts = version.split(".")
    if len(parts) < 2:
        return None
    major_minor = parts[0] + "." + parts[1]
    if major_minor == "10.0":
        # Windows 11 kept version 10.0: build 22000 and later is 11 (Caption says so too,
        # but Caption is localised and the registry ProductName still says "Windows 10").
        return "11" if build is not None and build >= 22000 else "10"
    return {"6.3": "8.1", "6.2": "8", "6.1": "7", "6.0": "Vista"}.get(major_minor)


def _windows_edition(edition_id: Optional[str], caption: str, version: Optional[str]
                     ) -> Optional[str]:
    if edition_id:
        if version in ("7", "Vista") and edition_id == "Professional":
            return "Professional"  # "Pro" is the name from Windows 8 on
        return _EDITIONS.get(edition_id, edition_id)
    # no registry answer: take what follows "Windows <version>" in the Caption
    m = re.search(r"Windows\s+(?:\d+(?:\.\d+)?|Vista|Server\s+\d{4}(?:\s+R2)?)\s+(.+)$",
                  caption.strip())
    return _clean(m.group(1)) if m else None


def _arch(os_arch: str) -> Optional[str]:
    # OSArchitecture is localised ("64-bit", "64 bits", "64 Bit"): look for the number.
    # It is the OS's architecture, which matters: old lab PCs often run 32-bit Windows on
    # 64-bit CPUs.
    text = os_arch.lower()
    if not text:
        return None
    if "arm" in text:
        return "ARM64" if "64" in text else "ARM"
    return "AMD64" if "64" in text else "x86"


def _serial(value: Any) -> Optional[str]:
    text = _clean(value)
    if text and re.fullmatch(r"(?:[0-9a-fA-F]{2}){10,20}", text) and len(text) == 40:
        # Windows 7 gives some ATA serials as hex of byte-swapped ASCII: decode those.
        try:
            raw = bytes.fromhex(text)
            swapped = bytes(b for i in range(0, len(raw) - 1, 2) for b in (raw[i + 1], raw[i]))
            decoded = swapped.decode("ascii")
            if decoded.strip() and all(32 <= ord(c) < 127 for c in decoded):
                return _clean(decoded)
        except ValueError:
            pass
    return text


def _mac(value: Any) -> Optional[str]:
    text = _clean(value)
    return text.replace("-", ":").lower() if text else None


def map_windows(d: Dict[str, Any]) -> Dict[str, Any]:
    """The PowerShell document (MODERN_SCRIPT's JSON or parse_legacy's) → catalogue fields."""
    out: Dict[str, Any] = {}
    os_ = (as_list(d.get("os")) or [{}])[0]
    cs = (as_list(d.get("cs")) or [{}])[0]
    bios = (as_list(d.get("bios")) or [{}])[0]
    reg = (as_list(d.get("reg")) or [{}])[0]
    caption = _clean(os_.get("Caption")) or ""
    version = _clean(os_.get("Version")) or ""
    build = _int(os_.get("BuildNumber"))
    ubr = _int(reg.get("UBR"))

    os_version = _windows_version(version, build, caption, _int(os_.get("ProductType")))
    _put(out, "os_version", os_version)
    if build is not None:
        out["os_build"] = "%d.%d" % (build, ubr) if ubr is not None else str(build)
    _put(out, "os_edition", _windows_edition(_clean(reg.get("EditionID")), caption,
                                             os_version))
    display = _clean(reg.get("DisplayVersion")) or _clean(reg.get("ReleaseId"))
    sp = _int(os_.get("ServicePackMajorVersion"))
    if display is None and sp:
        display = "SP%d" % sp  # Windows 7 SP1: the nearest thing to a feature update name
    _put(out, "os_display", display)
    _put(out, "kernel", version or None)
    _put(out, "arch", _arch(_clean(os_.get("OSArchitecture")) or ""))

    cpus = as_list(d.get("cpu"))
    if cpus:
        _put(out, "cpu_model", _clean(cpus[0].get("Name")))
        cores = [_int(c.get("NumberOfCores")) for c in cpus]
        threads = [_int(c.get("NumberOfLogicalProcessors")) for c in cpus]
        if all(cores):
            out["cpu_cores"] = sum(cores)  # type: ignore
        if all(threads):
            out["cpu_threads"] = sum(threads)  # type: ignore
    ram = _int(cs.get("TotalPhysicalMemory"))
    if ram:
        out["ram"] = ram
    _put(out, "vendor", _clean(cs.get("Manufacturer")))
    _put(out, "model", _clean(cs.get("Model")))
    _put(out, "serial", _clean(bios.get("SerialNumber")))
    _put(out, "disks", _windows_disks(as_list(d.get("disk")), as_list(d.get("pdisk"))))
    nics, gateway = _windows_nics(as_list(d.get("nic")), as_list(d.get("adapter")))
    _put(out, "nics", nics)
    _put(out, "gateway", gateway)
    return out


def _windows_disks(drives: List[Dict[str, Any]], physical: List[Dict[str, Any]]
                   ) -> List[Dict[str, Any]]:
    # MSFT_PhysicalDisk.DeviceId is the same number as Win32_DiskDrive.Index.
    # MediaType 3 = HDD, 4 = SSD (0 unspecified, 5 SCM); BusType 7 = USB.
    by_id = {str(p.get("DeviceId")): p for p in physical}
    disks = []
    for drv in drives:
        media = (_clean(drv.get("MediaType")) or "").lower()
        iface = (_clean(drv.get("InterfaceType")) or "").upper()
        pd = by_id.get(str(drv.get("Index")), {})
        if "removable" in media or "external" in media or iface == "USB" or \
                _int(pd.get("BusType")) == 7:
            continue  # USB sticks and external disks come and go
        disk: Dict[str, Any] = {}
        _put(disk, "model", _clean(drv.get("Model")))
        size = _int(drv.get("Size"))
        if size:
            disk["size"] = size
        kind = {3: "hdd", 4: "ssd"}.get(_int(pd.get("MediaType")) or 0)
        _put(disk, "kind", kind)
        _put(disk, "serial", _serial(drv.get("SerialNumber")))
        if disk:
            disks.append(disk)
    return sorted(disks, key=_disk_key)


def _windows_nics(configs: List[Dict[str, Any]], adapters: List[Dict[str, Any]]
                  ) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    # Win32_NetworkAdapterConfiguration (IP-enabled ones) has the addresses;
    # Win32_NetworkAdapter (same Index) has the name users see ("Ethernet"), link speed
    # (bit/s) and status (2 = connected). A physical adapter without IP (Wi-Fi out of
    # range, cable unplugged) is listed too, from Win32_NetworkAdapter alone.
    by_index = {str(a.get("Index")): a for a in adapters}
    seen = set()
    nics = []
    gateways = []
    for cfg in configs:
        idx = str(cfg.get("Index"))
        seen.add(idx)
        ad = by_index.get(idx, {})
        name = _clean(ad.get("NetConnectionID")) or _clean(cfg.get("Description"))
        if not name:
            continue
        nic = _windows_nic(name, _mac(cfg.get("MACAddress")) or _mac(ad.get("MACAddress")), ad)
        ipv4, ipv6 = set(), set()
        for ip in as_list(cfg.get("IPAddress")):
            ip = str(ip).split("%", 1)[0]
            if ":" in ip:
                if not ip.lower().startswith("fe80:"):
                    ipv6.add(ip)
            elif ip and ip != "0.0.0.0":
                ipv4.add(ip)
        _put(nic, "ipv4", sorted(ipv4))
        _put(nic, "ipv6", sorted(ipv6))
        nics.append(nic)
        metric = _int(cfg.get("IPConnectionMetric"))
        for gw in as_list(cfg.get("DefaultIPGateway")):
            if "." in str(gw):  # the IPv4 one; the list may also hold an fe80:: router
                # Windows prefers the route of the lowest interface metric
                gateways.append((metric if metric is not None else 1 << 32,
                                 _int(idx) or 0, str(gw)))
    for ad in adapters:
        if str(ad.get("Index")) in seen or str(ad.get("PhysicalAdapter")).lower() != "true":
            continue
        name = _clean(ad.get("NetConnectionID"))
        if name:
            nics.append(_windows_nic(name, _mac(ad.get("MACAddress")), ad))
    nics.sort(key=lambda n: n["if"])
    gateway = sorted(gateways)[0][2] if gateways else None
    return nics, gateway


def _windows_nic(name: str, mac: Optional[str], ad: Dict[str, Any]) -> Dict[str, Any]:
    nic: Dict[str, Any] = {"if": name}
    _put(nic, "mac", mac)
    speed = _int(ad.get("Speed"))
    # Int64 max (9223372036854775807) is what WMI says for "unknown" on disconnected NICs
    if speed and 0 < speed < 10 ** 12:
        nic["speed"] = speed // 1000000
    status = _int(ad.get("NetConnectionStatus"))
    if status is not None:
        nic["up"] = status == 2
    return nic
