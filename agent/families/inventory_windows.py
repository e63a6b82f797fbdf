"""The ``inventory`` family on Windows: WMI classes and the registry, asked in one
PowerShell call through ``agent/windows/cim.py`` (tests replay outputs recorded from real
machines), turned into catalogue fields by ``map_windows``."""
import re
from typing import Any, Dict, List, Optional, Tuple

from ..windows.cim import CimReader, Query, RegistryQuery, as_list
from .values import clean, disk_key, put, to_int

# What the Windows inventory asks for. MSFT_PhysicalDisk (HDD/SSD) lives in the Storage
# namespace, which Windows 7 lacks: the error is silenced and that section is absent.
QUERIES = (
    Query("os", "Win32_OperatingSystem", ("Caption", "Version", "BuildNumber", "OSArchitecture",
                                          "ProductType", "ServicePackMajorVersion"),
          single=True),
    Query("cs", "Win32_ComputerSystem", ("Manufacturer", "Model", "TotalPhysicalMemory"),
          single=True),
    Query("bios", "Win32_BIOS", ("SerialNumber",), single=True),
    Query("cpu", "Win32_Processor", ("Name", "NumberOfCores", "NumberOfLogicalProcessors")),
    Query("disk", "Win32_DiskDrive", ("Index", "Model", "Size", "SerialNumber", "MediaType",
                                      "InterfaceType")),
    Query("pdisk", "MSFT_PhysicalDisk", ("DeviceId", "MediaType", "BusType"),
          namespace="root/Microsoft/Windows/Storage"),
    Query("nic", "Win32_NetworkAdapterConfiguration",
          ("Index", "Description", "IPAddress", "MACAddress", "DefaultIPGateway",
           "IPConnectionMetric"), where="IPEnabled = TRUE",
          arrays=("IPAddress", "DefaultIPGateway")),
    Query("adapter", "Win32_NetworkAdapter",
          ("Index", "NetConnectionID", "MACAddress", "Speed", "NetConnectionStatus",
           "PhysicalAdapter"), where="NetConnectionID IS NOT NULL"),
)
REGISTRY = (
    RegistryQuery("reg", "HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion",
                  ("DisplayVersion", "ReleaseId", "UBR", "EditionID", "ProductName",
                   "CurrentBuild")),
)


def reader() -> CimReader:
    """A reader for one InventoryFamily (it remembers whether this PC needs PowerShell 2.0)."""
    return CimReader("inventory", QUERIES, REGISTRY)


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
    return clean(m.group(1)) if m else None


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
    text = clean(value)
    if text and re.fullmatch(r"(?:[0-9a-fA-F]{2}){10,20}", text) and len(text) == 40:
        # Windows 7 gives some ATA serials as hex of byte-swapped ASCII: decode those.
        try:
            raw = bytes.fromhex(text)
            swapped = bytes(b for i in range(0, len(raw) - 1, 2) for b in (raw[i + 1], raw[i]))
            decoded = swapped.decode("ascii")
            if decoded.strip() and all(32 <= ord(c) < 127 for c in decoded):
                return clean(decoded)
        except ValueError:
            pass
    return text


def _mac(value: Any) -> Optional[str]:
    text = clean(value)
    return text.replace("-", ":").lower() if text else None


def map_windows(d: Dict[str, Any]) -> Dict[str, Any]:
    """The PowerShell document (the modern script's JSON or the legacy one's, parsed) →
    catalogue fields."""
    out: Dict[str, Any] = {}
    os_ = (as_list(d.get("os")) or [{}])[0]
    cs = (as_list(d.get("cs")) or [{}])[0]
    bios = (as_list(d.get("bios")) or [{}])[0]
    reg = (as_list(d.get("reg")) or [{}])[0]
    caption = clean(os_.get("Caption")) or ""
    version = clean(os_.get("Version")) or ""
    build = to_int(os_.get("BuildNumber"))
    ubr = to_int(reg.get("UBR"))

    os_version = _windows_version(version, build, caption, to_int(os_.get("ProductType")))
    put(out, "os_version", os_version)
    if build is not None:
        out["os_build"] = "%d.%d" % (build, ubr) if ubr is not None else str(build)
    put(out, "os_edition", _windows_edition(clean(reg.get("EditionID")), caption,
                                             os_version))
    display = clean(reg.get("DisplayVersion")) or clean(reg.get("ReleaseId"))
    sp = to_int(os_.get("ServicePackMajorVersion"))
    if display is None and sp:
        display = "SP%d" % sp  # Windows 7 SP1: the nearest thing to a feature update name
    put(out, "os_display", display)
    put(out, "kernel", version or None)
    put(out, "arch", _arch(clean(os_.get("OSArchitecture")) or ""))

    cpus = as_list(d.get("cpu"))
    if cpus:
        put(out, "cpu_model", clean(cpus[0].get("Name")))
        cores = [to_int(c.get("NumberOfCores")) for c in cpus]
        threads = [to_int(c.get("NumberOfLogicalProcessors")) for c in cpus]
        if all(cores):
            out["cpu_cores"] = sum(cores)  # type: ignore
        if all(threads):
            out["cpu_threads"] = sum(threads)  # type: ignore
    ram = to_int(cs.get("TotalPhysicalMemory"))
    if ram:
        out["ram"] = ram
    put(out, "vendor", clean(cs.get("Manufacturer")))
    put(out, "model", clean(cs.get("Model")))
    put(out, "serial", clean(bios.get("SerialNumber")))
    put(out, "disks", _windows_disks(as_list(d.get("disk")), as_list(d.get("pdisk"))))
    nics, gateway = _windows_nics(as_list(d.get("nic")), as_list(d.get("adapter")))
    put(out, "nics", nics)
    put(out, "gateway", gateway)
    return out


def _windows_disks(drives: List[Dict[str, Any]], physical: List[Dict[str, Any]]
                   ) -> List[Dict[str, Any]]:
    # MSFT_PhysicalDisk.DeviceId is the same number as Win32_DiskDrive.Index.
    # MediaType 3 = HDD, 4 = SSD (0 unspecified, 5 SCM); BusType 7 = USB.
    by_id = {str(p.get("DeviceId")): p for p in physical}
    disks = []
    for drv in drives:
        media = (clean(drv.get("MediaType")) or "").lower()
        iface = (clean(drv.get("InterfaceType")) or "").upper()
        pd = by_id.get(str(drv.get("Index")), {})
        if "removable" in media or "external" in media or iface == "USB" or \
                to_int(pd.get("BusType")) == 7:
            continue  # USB sticks and external disks come and go
        disk: Dict[str, Any] = {}
        put(disk, "model", clean(drv.get("Model")))
        size = to_int(drv.get("Size"))
        if size:
            disk["size"] = size
        kind = {3: "hdd", 4: "ssd"}.get(to_int(pd.get("MediaType")) or 0)
        put(disk, "kind", kind)
        put(disk, "serial", _serial(drv.get("SerialNumber")))
        if disk:
            disks.append(disk)
    return sorted(disks, key=disk_key)


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
        name = clean(ad.get("NetConnectionID")) or clean(cfg.get("Description"))
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
        put(nic, "ipv4", sorted(ipv4))
        put(nic, "ipv6", sorted(ipv6))
        nics.append(nic)
        metric = to_int(cfg.get("IPConnectionMetric"))
        for gw in as_list(cfg.get("DefaultIPGateway")):
            if "." in str(gw):  # the IPv4 one; the list may also hold an fe80:: router
                # Windows prefers the route of the lowest interface metric
                gateways.append((metric if metric is not None else 1 << 32,
                                 to_int(idx) or 0, str(gw)))
    for ad in adapters:
        if str(ad.get("Index")) in seen or str(ad.get("PhysicalAdapter")).lower() != "true":
            continue
        name = clean(ad.get("NetConnectionID"))
        if name:
            nics.append(_windows_nic(name, _mac(ad.get("MACAddress")), ad))
    nics.sort(key=lambda n: n["if"])
    gateway = sorted(gateways)[0][2] if gateways else None
    return nics, gateway


def _windows_nic(name: str, mac: Optional[str], ad: Dict[str, Any]) -> Dict[str, Any]:
    nic: Dict[str, Any] = {"if": name}
    put(nic, "mac", mac)
    speed = to_int(ad.get("Speed"))
    # Int64 max (9223372036854775807) is what WMI says for "unknown" on disconnected NICs
    if speed and 0 < speed < 10 ** 12:
        nic["speed"] = speed // 1000000
    status = to_int(ad.get("NetConnectionStatus"))
    if status is not None:
        nic["up"] = status == 2
    return nic
