"""The ``security`` family on Windows: Security Center, Defender, the vendors' services,
Windows Update, the registry and reboot-restore software, as catalogue facts.

One PowerShell call per scan asks everything WMI/COM/registry can say (``READER``, through
``agent/windows/cim.py``: the modern script, or the PowerShell 2.0 one on Windows 7). Two
small commands follow only when needed: ``netsh`` for the firewall where
``Get-NetFirewallProfile`` does not exist (Windows 7) and ``DFC.exe`` where Deep Freeze is
installed. The pending-updates search is slow (Windows Update searches are known to hang
for hours), so it runs in its own background process at most every
``wu_search_interval`` seconds (``UpdateSearch``); a scan reports the last finished one.

Every fact that cannot be determined is ``Findings.unknown`` with the reason, never a pass.
Tests replay recorded outputs (tests/agent/fixtures/windows/security, README there).
"""
import calendar
import datetime
import json
import logging
import os
import re
import threading
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from schoolmon.protocol.catalogue import FAMILIES

from ..files import write_atomic
from ..runner import CommandError, CommandResult, CommandRunner
from ..windows.cim import (
    ERRORS,
    CimReader,
    Expression,
    Query,
    RegistryQuery,
    as_list,
    powershell,
)
from .values import clean, to_int

log = logging.getLogger(__name__)

#: settings defaults (the ``security`` config section may override them)
WU_SEARCH_INTERVAL = 6 * 3600.0
WU_SEARCH_TIMEOUT = 1800.0
#: netsh and DFC.exe answer in well under a second; a hung one costs its fact only
SMALL_TIMEOUT = 20.0


class Vendor(NamedTuple):
    """An anti-malware vendor found by its Windows services (many here do not register with
    Security Center). Patterns are WQL ``LIKE`` patterns on ``Name`` or ``DisplayName``:
    the same text builds the WMI filter and matches the answers, so they cannot drift."""
    label: str
    #: a word in a Security Center ``displayName`` that names this vendor
    wsc_word: str
    #: services that protect (the product counts as on when one runs)
    protect: Tuple[Tuple[str, str], ...]
    #: the vendor's central-management agent
    agent: Tuple[Tuple[str, str], ...] = ()
    #: an EDR agent exists only to report to its console: running means managed
    managed_when_running: bool = False


# Where each service name comes from (search of public code, issues and pages):
# - Kaspersky Network Agent's service is ``klnagent``: `net start klnagent` in
#   JustHobbs/KasperskyGuide Scripts/Sincronizar_e_IniciarAgente.bat, and klnagent.exe
#   "Kaspersky — Network Agent" in public AV-process lists. The protection service is
#   ``AVP`` (KES) or ``AVP<version>`` (home products): avp.exe is "Kaspersky" in the same
#   lists; the service names themselves are from memory, not a source (a guess).
# - Bkav: BkavService.exe ("%ProgramFiles%\\Bkav Pro\\BkavService.exe" in a public EDR
#   detection list; "BKavService: Bkav" in public AV-process lists). The service is taken
#   to have the exe's name; Bkav Endpoint's management agent name is a GUESS.
# - CMC: only CMCTrayIcon.exe (a tray process) was found in public lists; the service
#   display names below are a GUESS.
# - Viettel (VEDR / Viettel Cyber Endpoint) and CyRadar: no public trace of their service
#   names was found; the display-name patterns are a GUESS. Both are EDR agents reporting
#   to a console, so running = managed.
VENDORS = (
    Vendor("Kaspersky", "kaspersky",
           protect=(("Name", "AVP"), ("Name", "AVP1%"), ("Name", "AVP2%")),
           agent=(("Name", "klnagent"),)),
    Vendor("Bkav", "bkav",
           protect=(("Name", "Bkav%"), ("DisplayName", "%Bkav%")),
           agent=(("DisplayName", "%Bkav%Endpoint%Agent%"), ("Name", "BkavEndpointAgent%"))),
    Vendor("Viettel VEDR", "viettel",
           protect=(("Name", "VEDR%"), ("DisplayName", "%VEDR%"),
                    ("DisplayName", "%Viettel%Endpoint%")),
           managed_when_running=True),
    Vendor("CMC Antivirus", "cmc",
           protect=(("DisplayName", "%CMC%Antivirus%"), ("DisplayName", "%CMC%Endpoint%")),
           agent=(("DisplayName", "%CMC%Agent%"),)),
    Vendor("CyRadar", "cyradar", protect=(("DisplayName", "%CyRadar%"),),
           managed_when_running=True),
)

# Defender counts as centrally managed when one of these runs or the PC is MDM-enrolled:
# Sense (Defender for Endpoint, onboarded to its portal), CcmExec (Configuration Manager
# client: Endpoint Protection policies and reports), IntuneManagementExtension (Intune).
# Group Policy alone sets Defender's options but reports to no console: not managed.
DEFENDER_MANAGERS = (("Name", "Sense"), ("Name", "CcmExec"),
                     ("Name", "IntuneManagementExtension"))


class FreezeProduct(NamedTuple):
    label: str
    services: Tuple[Tuple[str, str], ...]


# Reboot-restore products found by their services. Deep Freeze: DFServ (and DFC.exe, read
# separately); Shadow Defender: "shadowdefender" — both from a public classroom-check
# script's list of restore software found by code search. Reboot Restore Rx and Toolwiz
# Time Freeze: display names from the products' names, a GUESS. Windows' own Unified Write
# Filter is read from its WMI class (UWF_Filter.CurrentEnabled).
FREEZERS = (
    FreezeProduct("Deep Freeze", (("Name", "DFServ"),)),
    FreezeProduct("Shadow Defender", (("Name", "ShadowDefender%"),
                                      ("DisplayName", "%Shadow Defender%"))),
    FreezeProduct("Reboot Restore Rx", (("DisplayName", "%Reboot Restore%"),)),
    FreezeProduct("Toolwiz Time Freeze", (("DisplayName", "%Time Freeze%"),)),
)

UPDATE_SERVICES = (("Name", "wuauserv"), ("Name", "UsoSvc"))


def _all_service_patterns() -> List[Tuple[str, str]]:
    out: List[Tuple[str, str]] = []
    for v in VENDORS:
        out += list(v.protect) + list(v.agent)
    for f in FREEZERS:
        out += list(f.services)
    return out + list(DEFENDER_MANAGERS) + list(UPDATE_SERVICES)


def _wql_or(patterns: List[Tuple[str, str]]) -> str:
    seen: List[str] = []
    for prop, pattern in patterns:
        clause = "%s LIKE '%s'" % (prop, pattern)
        if clause not in seen:
            seen.append(clause)
    return " OR ".join(seen)


def _like(pattern: str, value: str) -> bool:
    """WQL LIKE (``%`` any run, ``_`` one character, case-insensitive) in Python."""
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.IGNORECASE | re.DOTALL) is not None


def _matches(svc: Dict[str, Any], patterns: Tuple[Tuple[str, str], ...]) -> bool:
    return any(_like(pattern, str(svc.get(prop) or "")) for prop, pattern in patterns)


# Windows 10 ESU add-on licences by activation ID (Year 1-3), as Microsoft's "Enable
# Extended Security Updates" page lists them (quoted in public ESU detection scripts);
# Windows 7 / 8.1 ESU products carry "ESU" in their Name ("Client-ESU-Year2 add-on").
ESU_ACTIVATION_IDS = ("f520e45e-7413-4a34-a497-d2765967d094",
                      "1043add5-23b1-4afb-9a0f-64343c8f3f8d",
                      "83d49986-add3-41d7-ba33-87c7bfb5c0fb")

_WU_AUTO_UPDATE = "HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update"
_CBS = "HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing"
_SESSION = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Session Manager"
_SERVICES = "HKLM:\\SYSTEM\\CurrentControlSet\\Services"
_TS = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server"

QUERIES = (
    Query("os", "Win32_OperatingSystem", ("Caption", "Version", "BuildNumber", "ProductType"),
          single=True),
    # absent on Windows Server (no Security Center there)
    Query("av", "AntiVirusProduct", ("displayName", "productState", "pathToSignedProductExe"),
          namespace="root/SecurityCenter2"),
    # absent, or an error, when a third-party AV disabled Defender's components
    Query("mp", "MSFT_MpComputerStatus",
          ("AMRunningMode", "AMServiceEnabled", "AntivirusEnabled", "RealTimeProtectionEnabled",
           "AntivirusSignatureAge", "AntivirusSignatureLastUpdated", "AMProductVersion"),
          namespace="root/Microsoft/Windows/Defender", single=True),
    Query("svc", "Win32_Service", ("Name", "DisplayName", "State", "StartMode"),
          where=_wql_or(_all_service_patterns())),
    # by well-known SID: names are localised ("Khách" on Vietnamese Windows)
    Query("users", "Win32_UserAccount", ("SID", "Name", "Disabled"),
          where="LocalAccount = TRUE AND (SID LIKE '%-500' OR SID LIKE '%-501')"),
    Query("smb", "MSFT_SmbServerConfiguration", ("EnableSMB1Protocol",),
          namespace="root/Microsoft/Windows/SMB", single=True),
    Query("esu", "SoftwareLicensingProduct", ("ID", "Name", "LicenseStatus"),
          where="Name LIKE '%ESU%' OR " + " OR ".join("ID = '%s'" % i
                                                       for i in ESU_ACTIVATION_IDS)),
    Query("qfe", "Win32_QuickFixEngineering", ("HotFixID", "InstalledOn")),
    Query("uwf", "UWF_Filter", ("CurrentEnabled",), namespace="root/standardcimv2/embedded",
          single=True),
)

REGISTRY = (
    RegistryQuery("cv", "HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion",
                  ("UBR", "CurrentBuild", "EditionID", "DisplayVersion", "InstallationType")),
    RegistryQuery("au_policy", "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\AU",
                  ("NoAutoUpdate", "AUOptions")),
    # the Control Panel setting of Windows 7 / 8.1 (no policy)
    RegistryQuery("au_local", _WU_AUTO_UPDATE, ("AUOptions",)),
    RegistryQuery("smb_reg", _SERVICES + "\\LanmanServer\\Parameters", ("SMB1",)),
    RegistryQuery("mrxsmb10", _SERVICES + "\\mrxsmb10", ("Start",)),
    RegistryQuery("ts", _TS, ("fDenyTSConnections",)),
    RegistryQuery("rdp_tcp", _TS + "\\WinStations\\RDP-Tcp", ("UserAuthentication",)),
    RegistryQuery("ts_policy", "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services",
                  ("fDenyTSConnections", "UserAuthentication")),
    RegistryQuery("explorer",
                  "HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\Explorer",
                  ("NoDriveTypeAutoRun", "NoAutorun")),
    RegistryQuery("system_policy",
                  "HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System",
                  ("InactivityTimeoutSecs",)),
)

# Key existence (the reboot signals are keys without values), the pending renames, the
# MDM enrolment and where DFC.exe is. Test-Path raises no error for a missing key.
_PROBE = (
    "$dfc = ''; foreach ($d in 'System32', 'SysWOW64') { $f = Join-Path $env:SystemRoot "
    "($d + '\\DFC.exe'); if (-not $dfc -and (Test-Path $f)) { $dfc = $f } }; "
    "$mdm = 0; if (Test-Path 'HKLM:\\SOFTWARE\\Microsoft\\Enrollments') { $mdm = @(Get-ChildItem "
    "'HKLM:\\SOFTWARE\\Microsoft\\Enrollments' | Where-Object { (Get-ItemProperty $_.PSPath)."
    "ProviderID -eq 'MS DM Server' }).Count }; "
    "New-Object PSObject -Property @{ "
    "WuRebootRequired = (Test-Path '" + _WU_AUTO_UPDATE + "\\RebootRequired'); "
    "CbsRebootPending = (Test-Path '" + _CBS + "\\RebootPending'); "
    "PendingRenames = @((Get-ItemProperty '" + _SESSION + "').PendingFileRenameOperations | "
    "Where-Object { $_ }).Count; "
    "Mrxsmb10 = (Test-Path '" + _SERVICES + "\\mrxsmb10'); "
    "Mdm = $mdm; Dfc = $dfc }")

# The last successful installs (Operation 1 = installation, ResultCode 2 = succeeded) from
# the Windows Update history: Get-HotFix misses MSI and Windows Update-site updates.
_HISTORY = (
    "$s = (New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher(); "
    "$c = $s.GetTotalHistoryCount(); if ($c -gt 0) { $s.QueryHistory(0, [Math]::Min($c, 100)) | "
    "Where-Object { $_.Operation -eq 1 -and $_.ResultCode -eq 2 } | ForEach-Object { "
    "New-Object PSObject -Property @{ Date = $_.Date.ToString('s'); Title = $_.Title } } }")

# Each loaded user hive (the agent runs as SYSTEM: HKEY_USERS holds the logged-on users):
# the screen saver's settings and the user policy that overrides them.
_USER_DESKTOP = (
    "Get-ChildItem 'Registry::HKEY_USERS' | Where-Object { $_.PSChildName -match "
    "'^S-1-5-21-[0-9-]+$' } | ForEach-Object { $u = 'Registry::' + $_.Name; "
    "$d = $null; $p = $null; "
    "if (Test-Path ($u + '\\Control Panel\\Desktop')) { $d = Get-ItemProperty "
    "($u + '\\Control Panel\\Desktop') }; "
    "if (Test-Path ($u + '\\Software\\Policies\\Microsoft\\Windows\\Control Panel\\Desktop')) "
    "{ $p = Get-ItemProperty ($u + '\\Software\\Policies\\Microsoft\\Windows\\Control Panel\\"
    "Desktop') }; New-Object PSObject -Property @{ Sid = $_.PSChildName; "
    "Active = $d.ScreenSaveActive; Timeout = $d.ScreenSaveTimeOut; "
    "Secure = $d.ScreenSaverIsSecure; Exe = $d.'SCRNSAVE.EXE'; "
    "PolicyActive = $p.ScreenSaveActive; PolicyTimeout = $p.ScreenSaveTimeOut; "
    "PolicySecure = $p.ScreenSaverIsSecure; PolicyExe = $p.'SCRNSAVE.EXE' } }")

EXPRESSIONS = (
    Expression("probe", _PROBE, ("WuRebootRequired", "CbsRebootPending", "PendingRenames",
                                 "Mrxsmb10", "Mdm", "Dfc"), single=True),
    Expression("history", _HISTORY, ("Date", "Title")),
    Expression("desktop", _USER_DESKTOP, ("Sid", "Active", "Timeout", "Secure", "Exe",
                                          "PolicyActive", "PolicyTimeout", "PolicySecure",
                                          "PolicyExe")),
    # the EFFECTIVE state (ActiveStore: local and group policy merged), not the local
    # store alone; Windows 7 has no NetSecurity module: netsh there
    Expression("fw", "Get-NetFirewallProfile -PolicyStore ActiveStore", ("Name", "Enabled"),
               legacy=None),
)


def reader() -> CimReader:
    return CimReader("security", QUERIES, REGISTRY, expressions=EXPRESSIONS)


NETSH_FIREWALL = ["netsh", "advfirewall", "show", "allprofiles", "state"]

#: the Windows facts this scanner reports (all named unknown when PowerShell gave nothing)
FIELDS = ("os_id", "os_ubr", "esu", "av_on", "patch_last_ts", "reboot_pending",
          "auto_update", "update_service_off", "fw_on", "smb1_server", "smb1_client",
          "guest_on", "admin_builtin_on", "rdp_on", "rdp_nla", "autorun_off", "lock_s",
          "frozen")


# ---------------------------------------------------------------- value readers

def _bool(value: Any) -> Optional[bool]:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    return None


_DOTNET_DATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")
_DMTF = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})\.\d+([+-]\d{3})")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?"
                  r"(Z|[+-]\d{2}:\d{2})?$")


def _epoch(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> Optional[int]:
    try:
        datetime.datetime(y, mo, d, h, mi, s)
    except ValueError:
        return None
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


def to_epoch(value: Any) -> Optional[int]:
    """A WMI/PowerShell time as Unix seconds: ``/Date(ms)/`` (ConvertTo-Json of a DateTime
    in Windows PowerShell 5.1), a DMTF string ``20250101120000.000000+420`` (Get-WmiObject),
    or ISO 8601 (PowerShell 7, and our scripts' ``ToString('s')``, taken as UTC)."""
    if value is None:
        return None
    text = str(value).strip()
    m = _DOTNET_DATE.search(text)
    if m:
        return int(m.group(1)) // 1000
    m = _DMTF.match(text)
    if m:
        base = _epoch(*(int(g) for g in m.groups()[:6]))
        return None if base is None else base - int(m.group(7)) * 60
    m = _ISO.match(text)
    if m:
        base = _epoch(*(int(g) for g in m.groups()[:6]))
        tz = m.group(7)
        if base is not None and tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            base -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
        return base
    return None


def qfe_date(value: Any) -> Optional[int]:
    """Win32_QuickFixEngineering.InstalledOn: usually ``M/d/yyyy`` whatever the display
    language, sometimes ``d/M/yyyy`` or ISO, on old systems a hex FILETIME, often empty."""
    text = (clean(value) or "").strip()
    if not text:
        return None
    if re.fullmatch(r"[0-9a-fA-F]{15,16}", text):  # FILETIME: 100 ns since 1601
        secs = int(text, 16) // 10 ** 7 - 11644473600
        return secs if secs > 0 else None
    m = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text)
    if m:
        a, b, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
        month, day = (a, b) if a <= 12 else (b, a)  # M/d first; a day > 12 tells d/M
        return _epoch(year, month, day)
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if m:
        return _epoch(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    return None


def _error(doc: Dict[str, Any], section: str) -> Optional[str]:
    """The error the section's call raised, or "garbled answer" when it holds something
    other than objects; None when it answered (possibly with no instance)."""
    errors = doc.get(ERRORS)
    if isinstance(errors, dict) and errors.get(section):
        return str(errors[section])
    if any(not isinstance(x, dict) for x in as_list(doc.get(section))):
        return "garbled answer"
    return None


def why(error: Optional[str]) -> str:
    """A PowerShell error (FullyQualifiedErrorId: message) in a few stable words."""
    if not error:
        return "no answer"
    low = error.lower()
    if "0x8004100e" in low or "invalid namespace" in low:
        return "namespace not found"
    if "0x80041010" in low or "invalid class" in low:
        return "class not found"
    if ("0x80041003" in low or "0x80070005" in low or "access denied" in low
            or "access is denied" in low or "unauthorizedaccess" in low):
        return "access denied"
    if "pathnotfound" in low:
        return "key not found"
    return error[:120]


def _items(doc: Dict[str, Any], section: str) -> List[Dict[str, Any]]:
    """A section's objects; anything else in it (a garbled answer) is left out."""
    return [x for x in as_list(doc.get(section)) if isinstance(x, dict)]


def _one(doc: Dict[str, Any], section: str) -> Dict[str, Any]:
    items = _items(doc, section)
    return items[0] if items else {}


# ---------------------------------------------------------------- antivirus

_WSC_STATE = {0x0000: "off", 0x1000: "on", 0x2000: "snoozed", 0x3000: "expired"}
#: Defender's AMRunningMode values in which it is present but not the protecting product
PASSIVE_MODES = ("passive mode", "sxs passive mode", "edr block mode", "not running")
DEFENDER = "Microsoft Defender Antivirus"
# Updates that are not OS patches: Defender's security intelligence (KB2267602, formerly
# KB915597) and platform (KB4052623), the monthly Malicious Software Removal Tool (KB890830).
# They install daily and would make every PC look freshly patched.
NOT_PATCHES = re.compile(r"KB(?:2267602|915597|4052623|890830)\b", re.IGNORECASE)


def decode_product_state(state: int) -> Dict[str, Any]:
    """Security Center's undocumented productState: 0xF000 on/off/snoozed/expired, 0x10 in
    0xF0 signatures out of date, 0x100 in 0xF00 a Microsoft product."""
    return {"state": _WSC_STATE.get(state & 0xF000, "unknown"),
            "sig_ok": not state & 0x10, "microsoft": bool(state & 0x100)}


def _running(services: List[Dict[str, Any]], patterns: Tuple[Tuple[str, str], ...]) -> bool:
    return any(_matches(s, patterns) and str(s.get("State", "")).lower() == "running"
               for s in services)


def _vendor_of(name: str) -> Optional[Vendor]:
    low = name.lower()
    for v in VENDORS:
        if v.wsc_word in low:
            return v
    return None


def _vendor_managed(v: Vendor, services: List[Dict[str, Any]]) -> bool:
    if v.managed_when_running and _running(services, v.protect):
        return True
    return _running(services, v.agent)


def _is_agent(v: Vendor, svc: Dict[str, Any]) -> bool:
    return bool(v.agent) and _matches(svc, v.agent)


class AvResult(NamedTuple):
    products: List[Dict[str, Any]]
    #: why "no protecting product" cannot be said (None: it can)
    doubt: Optional[str]


def antivirus(doc: Dict[str, Any], server: bool, services: Optional[List[Dict[str, Any]]],
              now: float) -> AvResult:
    svcs = services or []
    products: List[Dict[str, Any]] = []
    seen_vendors = set()
    wsc_defender: Optional[Dict[str, Any]] = None
    doubts: List[str] = []

    mp = _one(doc, "mp")
    has_mp = any(v is not None for v in mp.values())
    if not server:
        wsc_error = _error(doc, "av")
        if wsc_error:
            doubts.append("Security Center: %s" % why(wsc_error))
        for item in _items(doc, "av"):
            name = clean(item.get("displayName"))
            state = to_int(item.get("productState"))
            if not name or state is None:
                continue
            decoded = decode_product_state(state)
            if decoded["microsoft"] and "defender" in name.lower() and has_mp:
                wsc_defender = decoded  # merged into the Defender entry
                continue
            product: Dict[str, Any] = {"name": name[:128], "source": "wsc"}
            product.update(decoded)
            vendor = _vendor_of(name)
            if vendor is not None:
                seen_vendors.add(vendor.label)
                if services is not None:
                    product["managed"] = _vendor_managed(vendor, svcs)
            elif decoded["microsoft"] and services is not None:
                product["managed"] = _defender_managed(doc, svcs)
            products.append(product)

    if has_mp:
        products.append(_defender(mp, doc, svcs, services is not None, wsc_defender, now))
    elif server or not products:
        err = _error(doc, "mp")
        doubts.append("Defender: %s" % (why(err) if err else "class answered nothing"))

    if services is None:
        doubts.append("services: %s" % why(_error(doc, "svc")))
    for v in VENDORS:
        if v.label in seen_vendors:
            continue
        mine = [s for s in svcs if _matches(s, v.protect) and not _is_agent(v, s)]
        if not mine:
            continue
        running = any(str(s.get("State", "")).lower() == "running" for s in mine)
        products.append({"name": v.label, "source": "service",
                         "state": "on" if running else "off",
                         "managed": _vendor_managed(v, svcs)})
    # a Security Center that answered (even with no product) settles "nothing protects"
    # on a client; on a server, Defender's answer does
    settled = (not server and _error(doc, "av") is None) or (server and has_mp)
    return AvResult(products, None if settled else "; ".join(doubts) or "no answer")


def _defender_managed(doc: Dict[str, Any], services: List[Dict[str, Any]]) -> bool:
    return _running(services, DEFENDER_MANAGERS) or (to_int(_one(doc, "probe").get("Mdm"))
                                                     or 0) > 0


def _defender(mp: Dict[str, Any], doc: Dict[str, Any], services: List[Dict[str, Any]],
              services_known: bool, wsc: Optional[Dict[str, Any]], now: float
              ) -> Dict[str, Any]:
    """Defender from MSFT_MpComputerStatus, with Security Center's view of it (snoozed,
    signatures out of date) when there is one."""
    out: Dict[str, Any] = {"name": DEFENDER, "source": "defender", "microsoft": True}
    wsc_state = wsc["state"] if wsc else None
    if wsc:
        out["sig_ok"] = wsc["sig_ok"]
    mode = clean(mp.get("AMRunningMode"))
    if mode:
        out["mode"] = mode[:32]
        out["passive"] = mode.lower() in PASSIVE_MODES
    rtp = _bool(mp.get("RealTimeProtectionEnabled"))
    if rtp is not None:
        out["rtp"] = rtp
    service_on = _bool(mp.get("AMServiceEnabled"))
    av_on = _bool(mp.get("AntivirusEnabled"))
    if wsc_state in ("snoozed", "expired"):
        out["state"] = wsc_state
    elif service_on is False or av_on is False or (mode or "").lower() == "not running":
        out["state"] = "off"
    elif av_on and rtp:
        out["state"] = "on"
    elif rtp is False:
        out["state"] = "off"
    else:
        out["state"] = "unknown"
    updated = to_epoch(mp.get("AntivirusSignatureLastUpdated"))
    age_days = to_int(mp.get("AntivirusSignatureAge"))
    if updated is not None and updated <= now + 86400:
        out["sig_age_d"] = round(max(0.0, now - updated) / 86400.0, 1)
    elif age_days is not None and 0 <= age_days <= 36500:  # 65535: never updated
        out["sig_age_d"] = float(age_days)
    version = clean(mp.get("AMProductVersion"))
    if version:
        out["version"] = version[:64]
    if services_known:
        out["managed"] = _defender_managed(doc, services)
    return out


def _protecting(products: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    on = [p for p in products if p.get("state") == "on" and not p.get("passive")
          and p.get("rtp") is not False]
    # a third-party product registered with Security Center first (Defender stands down
    # for it), then Defender, then products known only by their services (least known)
    return sorted(on, key=lambda p: (p.get("source") == "service", bool(p.get("microsoft"))))


def report_antivirus(found: Any, result: AvResult) -> None:
    products = result.products
    if products:
        found.set("av", products[:16])
    protecting = _protecting(products)
    if protecting:
        first = protecting[0]
        found.set("av_on", True)
        found.set("av_name", first["name"][:128])
        if "sig_age_d" in first:
            found.set("av_sig_age_d", first["sig_age_d"])
        else:
            found.unknown("av_sig_age_d", "%s reports no signature age (%s)" % (
                first["name"], "Security Center says only up to date or not"
                if first["source"] == "wsc" else "found by its service"))
        if "managed" in first:
            found.set("av_managed", first["managed"])
        else:
            found.unknown("av_managed", "no known management agent for %s" % first["name"])
        return
    if any(p.get("state") == "unknown" for p in products):
        found.unknown("av_on", "state of %s not readable" % ", ".join(
            p["name"] for p in products if p.get("state") == "unknown"))
    elif result.doubt is None:
        found.set("av_on", False)
        found.set("av_name", "")
    else:
        found.unknown("av_on", result.doubt)


# ---------------------------------------------------------------- the other facts

def report_os(found: Any, doc: Dict[str, Any]) -> bool:
    """os_id, os_ubr, esu; returns whether this is Windows Server."""
    os_ = _one(doc, "os")
    cv = _one(doc, "cv")
    product_type = to_int(os_.get("ProductType"))
    server = False
    if product_type is not None:
        server = product_type != 1  # 2 domain controller, 3 server
        found.set("os_id", "windows-server" if server else "windows")
    elif clean(cv.get("InstallationType")):
        server = "server" in str(cv.get("InstallationType")).lower()
        found.set("os_id", "windows-server" if server else "windows")
    else:
        found.unknown("os_id", "Win32_OperatingSystem: %s" % why(_error(doc, "os")))
    ubr = to_int(cv.get("UBR"))
    if ubr is not None:
        found.set("os_ubr", ubr)
    elif _error(doc, "cv"):
        found.unknown("os_ubr", "registry: %s" % why(_error(doc, "cv")))
    # Windows 7 has no UBR: left out, it does not exist there
    err = _error(doc, "esu")
    licences = _items(doc, "esu")
    if err and not licences:
        found.unknown("esu", "SoftwareLicensingProduct: %s" % why(err))
    else:
        found.set("esu", any(to_int(x.get("LicenseStatus")) == 1 for x in licences))
    return server


def _build(doc: Dict[str, Any]) -> Optional[int]:
    return to_int(_one(doc, "os").get("BuildNumber")) or to_int(_one(doc, "cv").get("CurrentBuild"))


def report_patches(found: Any, doc: Dict[str, Any]) -> None:
    history = _items(doc, "history")
    installs = [to_epoch(h.get("Date")) for h in history
                if not NOT_PATCHES.search(str(h.get("Title") or ""))]
    dates = [d for d in installs if d]
    if dates:
        found.set("patch_last_ts", max(dates))
        return
    # Fallback: component-servicing updates only, InstalledOn often empty
    qfe = [qfe_date(q.get("InstalledOn")) for q in _items(doc, "qfe")]
    qfe_dates = [d for d in qfe if d]
    if qfe_dates:
        found.set("patch_last_ts", max(qfe_dates))
        return
    found.unknown("patch_last_ts", "update history: %s; hotfix list: %s" % (
        why(_error(doc, "history")) if _error(doc, "history") else "no successful install",
        why(_error(doc, "qfe")) if _error(doc, "qfe") else "no dated entry"))


REBOOT_SIGNALS = (("WuRebootRequired", "wu_reboot_required"),
                  ("CbsRebootPending", "cbs_reboot_pending"),
                  ("PendingRenames", "pending_file_rename"))


def report_reboot(found: Any, doc: Dict[str, Any]) -> None:
    probe = _one(doc, "probe")
    if not probe:
        found.unknown("reboot_pending", "registry probe: %s" % why(_error(doc, "probe")))
        return
    signals = []
    for prop, name in REBOOT_SIGNALS:
        value = probe.get(prop)
        if _bool(value) or (to_int(value) or 0) > 0:
            signals.append(name)
    found.set("reboot_pending", bool(signals))
    found.set("reboot_signals", signals)


# AUOptions: 1 never check (Windows 7), 2 notify before download, 3 download and notify
# before install, 4 install on a schedule, 5 local admin chooses, 7 notify before restart
_AU_AUTOMATIC = {4: True, 1: False, 2: False, 3: False, 7: False}


def report_auto_update(found: Any, doc: Dict[str, Any],
                       services: Optional[List[Dict[str, Any]]]) -> None:
    off = None
    detail = []
    if services is not None:
        disabled = [str(s.get("Name")) for s in services
                    if _matches(s, UPDATE_SERVICES)
                    and str(s.get("StartMode", "")).lower() == "disabled"]
        off = bool(disabled)
        found.set("update_service_off", off)
        detail += ["%s=Disabled" % n for n in disabled]
    else:
        found.unknown("update_service_off", "services: %s" % why(_error(doc, "svc")))
    policy = _one(doc, "au_policy")
    local = _one(doc, "au_local")
    no_auto = to_int(policy.get("NoAutoUpdate"))
    options = to_int(policy.get("AUOptions"))
    source = "policy"
    if options is None and no_auto is None:
        options, source = to_int(local.get("AUOptions")), "local"
    automatic: Optional[bool] = True
    if no_auto == 1:
        automatic = False
        detail.insert(0, "NoAutoUpdate=1")
    elif options is not None:
        automatic = _AU_AUTOMATIC.get(options)
        detail.insert(0, "AUOptions=%d (%s)" % (options, source))
    else:
        detail.insert(0, "no policy (Windows default: automatic)")
    if automatic is None:
        found.unknown("auto_update", "AUOptions=%s: the local administrator chooses" % options)
    elif off is None and automatic:
        found.unknown("auto_update", "services: %s" % why(_error(doc, "svc")))
    else:
        found.set("auto_update", bool(automatic and not off))
    found.set("auto_update_detail", ", ".join(detail)[:128])


# netsh's state word per display language: English; German "EIN"/"AUS" as a public agent's
# test suite records it ("Status  EIN"); French, Spanish, Italian, Portuguese from memory;
# the Vietnamese words are a GUESS (Vietnamese language packs mostly leave netsh English).
# Another word: the profile's state is unknown, never guessed.
_NETSH_ON = {"ON", "EIN", "ACTIF", "ACTIVADO", "ATTIVO", "ATIVADO", "BẬT"}
_NETSH_OFF = {"OFF", "AUS", "INACTIF", "DESACTIVADO", "DISATTIVATO", "DESATIVADO", "TẮT"}
_PROFILES = ("domain", "private", "public")


def parse_netsh(text: str) -> Tuple[Optional[List[Dict[str, Any]]], str]:
    """``netsh advfirewall show allprofiles state`` → profiles, or None and why. Read by
    shape, not by words: three blocks (domain, private, public, always in that order), each
    a heading ending in ``:``, a line of dashes (left out in some transcriptions), then
    ``<label>  <value>``."""
    lines = [ln.strip() for ln in text.replace("\r", "").split("\n")]
    values = []
    for i, line in enumerate(lines):
        if not line.endswith(":"):
            continue
        nxt = next((ln for ln in lines[i + 1:] if ln and set(ln) != {"-"}), "")
        if nxt.endswith(":") or not nxt.split():
            continue  # a heading with no state line under it
        values.append(nxt.split()[-1].upper())
    if len(values) != 3:
        return None, "netsh: %d profile blocks, expected 3" % len(values)
    profiles = []
    for name, word in zip(_PROFILES, values):
        if word in _NETSH_ON:
            profiles.append({"name": name, "on": True})
        elif word in _NETSH_OFF:
            profiles.append({"name": name, "on": False})
        else:
            return None, "netsh: state word %r not recognised" % word[:20]
    return profiles, ""


def firewall_from_doc(doc: Dict[str, Any]) -> Optional[List[Dict[str, Any]]]:
    profiles = []
    for item in _items(doc, "fw"):
        name = (clean(item.get("Name")) or "").lower()
        enabled = item.get("Enabled")
        # GpoBoolean: 0 False, 1 True, 2 NotConfigured (not an effective state)
        on = _bool(enabled) if not isinstance(enabled, int) or enabled in (0, 1) else None
        if not name or on is None:
            return None
        profiles.append({"name": name[:32], "on": on})
    return profiles or None


def report_firewall(found: Any, profiles: Optional[List[Dict[str, Any]]], why_not: str) -> None:
    if profiles:
        found.set("fw_profiles", profiles)
        found.set("fw_on", all(p["on"] for p in profiles))
    else:
        found.unknown("fw_on", why_not)


def report_smb(found: Any, doc: Dict[str, Any]) -> None:
    smb = _bool(_one(doc, "smb").get("EnableSMB1Protocol"))
    reg = _one(doc, "smb_reg")
    if smb is not None:
        found.set("smb1_server", smb)
    elif to_int(reg.get("SMB1")) is not None:
        found.set("smb1_server", to_int(reg.get("SMB1")) != 0)
    elif reg or _error(doc, "smb_reg") is None:  # the key is there without an SMB1 value
        build = _build(doc)
        if build is not None and build < 9200:  # Windows 7: SMBv1 server on unless SMB1=0
            found.set("smb1_server", True)
        else:
            found.unknown("smb1_server", "SMB server configuration: %s"
                          % why(_error(doc, "smb")))
    else:
        found.unknown("smb1_server", "SMB server configuration: %s" % why(_error(doc, "smb")))
    probe = _one(doc, "probe")
    exists = _bool(probe.get("Mrxsmb10"))
    start = to_int(_one(doc, "mrxsmb10").get("Start"))
    if exists is False:
        found.set("smb1_client", False)  # the SMB 1.0 client feature is not installed
    elif start is not None:
        found.set("smb1_client", start != 4)  # 4 = disabled
    else:
        found.unknown("smb1_client", "mrxsmb10: %s" % why(_error(doc, "mrxsmb10")
                                                       or _error(doc, "probe")))


def report_accounts(found: Any, doc: Dict[str, Any]) -> None:
    users = _items(doc, "users")
    for suffix, name in (("-501", "guest_on"), ("-500", "admin_builtin_on")):
        account = next((u for u in users if str(u.get("SID", "")).endswith(suffix)), None)
        disabled = _bool(account.get("Disabled")) if account else None
        if disabled is not None:
            found.set(name, not disabled)
        else:
            found.unknown(name, "Win32_UserAccount: %s" % (
                why(_error(doc, "users")) if _error(doc, "users")
                else "no local account with a SID ending %s" % suffix))


def _policy_or_local(doc: Dict[str, Any], policy: str, local: str, value: str
                     ) -> Optional[int]:
    """A registry value from its group-policy section when set there (policy wins), else
    from the local setting's section."""
    found = to_int(_one(doc, policy).get(value))
    return found if found is not None else to_int(_one(doc, local).get(value))


def report_rdp(found: Any, doc: Dict[str, Any]) -> None:
    deny = _policy_or_local(doc, "ts_policy", "ts", "fDenyTSConnections")
    if deny is None:
        found.unknown("rdp_on", "Terminal Server key: %s" % why(_error(doc, "ts")))
    else:
        found.set("rdp_on", deny == 0)
    nla = _policy_or_local(doc, "ts_policy", "rdp_tcp", "UserAuthentication")
    if nla is None:
        found.unknown("rdp_nla", "RDP-Tcp key: %s" % why(_error(doc, "rdp_tcp")))
    else:
        found.set("rdp_nla", nla == 1)


def report_autorun(found: Any, doc: Dict[str, Any]) -> None:
    err = _error(doc, "explorer")
    if err and why(err) != "key not found":
        found.unknown("autorun_off", "Explorer policies: %s" % why(err))
        return
    explorer = _one(doc, "explorer")
    drive_types = to_int(explorer.get("NoDriveTypeAutoRun"))
    no_autorun = to_int(explorer.get("NoAutorun"))
    detail = []
    if drive_types is not None:
        detail.append("NoDriveTypeAutoRun=%d" % drive_types)
    if no_autorun is not None:
        detail.append("NoAutorun=%d" % no_autorun)
    found.set("autorun_off", (drive_types is not None and drive_types & 0xFF == 0xFF)
              or no_autorun == 1)
    found.set("autorun_detail", ", ".join(detail) or "not set (Windows default)")


def _user_lock(user: Dict[str, Any]) -> Optional[int]:
    """Seconds until this user's screen saver locks, 0 when it never does."""
    def pick(name: str) -> Any:
        value = user.get("Policy" + name)
        return value if value not in (None, "") else user.get(name)

    # ScreenSaveActive defaults to on; without SCRNSAVE.EXE there is no screen saver, and
    # without ScreenSaverIsSecure=1 it does not ask for the password (no lock)
    if _bool(pick("Active")) is False or not clean(pick("Exe")) or _bool(pick("Secure")) is not True:
        return 0
    raw = pick("Timeout")
    timeout = to_int(raw)
    if timeout is None:
        return None  # a screen saver that locks, after a time we cannot read
    return max(0, timeout)


def report_lock(found: Any, doc: Dict[str, Any]) -> None:
    policy = to_int(_one(doc, "system_policy").get("InactivityTimeoutSecs"))
    if policy:
        found.set("lock_s", policy)
        found.set("lock_source", "policy")
        return
    users = _items(doc, "desktop")
    if not users:
        found.unknown("lock_s", "no machine policy and no user logged on" if
                      not _error(doc, "desktop") else "user hives: %s"
                      % why(_error(doc, "desktop")))
        return
    locks = [_user_lock(u) for u in users]
    if any(lk is None for lk in locks):
        found.unknown("lock_s", "a user's screen saver locks after a time not readable")
        return
    worst = 0 if 0 in locks else max(lk for lk in locks if lk is not None)
    found.set("lock_s", worst)
    user_policy = any(u.get("PolicyTimeout") not in (None, "") for u in users)
    found.set("lock_source", "policy" if user_policy else "user")


# ---------------------------------------------------------------- Windows Update search

# Categories by CategoryID (the names are localised): Security Updates, Critical Updates.
SECURITY_CATEGORIES = ("0fa1201d-4330-4fa8-8ae9-b877473b6441",
                       "e6cf1350-c01b-414d-a61f-263d14d133b4")

# Offline (Online = false): reads what Windows Update already downloaded in its own scans,
# never contacts a server; the time of its last successful online search says how fresh
# that cache is. Tab-separated lines, parsed by parse_search; PowerShell 2.0-compatible.
WU_SEARCH_SCRIPT = (
    "#schoolmon:security-wu-search\n"
    "$ErrorActionPreference = 'Stop'\n"
    "[Console]::OutputEncoding = [Text.Encoding]::UTF8\n"
    "$sec = @(%s)\n"
    "$u = (New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher()\n"
    "$u.Online = $false\n"
    "$res = $u.Search('IsInstalled=0 and IsHidden=0')\n"
    "$n = 0; $k = 0\n"
    "foreach ($x in $res.Updates) { $n++; $hit = $false; foreach ($c in $x.Categories) "
    "{ if ($sec -contains ([string]$c.CategoryID).ToLower()) { $hit = $true } }; "
    "if ($hit) { $k++ } }\n"
    "Write-Output ('result' + [char]9 + [int]$res.ResultCode)\n"
    "Write-Output ('pending' + [char]9 + $n)\n"
    "Write-Output ('security' + [char]9 + $k)\n"
    "try { $d = (New-Object -ComObject Microsoft.Update.AutoUpdate).Results.LastSearchSuccessDate;"
    " if ($d) { Write-Output ('online' + [char]9 + $d.ToString('s')) } } catch { }\n"
    % ", ".join("'%s'" % c for c in SECURITY_CATEGORIES))


def parse_search(text: str) -> Dict[str, Any]:
    """The search script's lines → counts; raises ValueError when they are not there."""
    values: Dict[str, str] = {}
    for line in text.lstrip("\ufeff").splitlines():
        parts = line.strip().split("\t")
        if len(parts) == 2:
            values[parts[0]] = parts[1]
    result = to_int(values.get("result"))
    pending, security = to_int(values.get("pending")), to_int(values.get("security"))
    if result not in (2, 3) or pending is None or security is None:
        raise ValueError("search gave %s" % (("result code %s" % result)
                                            if result is not None else "no counts"))
    return {"pending": pending, "pending_sec": security,
            "cache_ts": to_epoch(values.get("online"))}


class UpdateSearch:
    """The pending-updates search, in the background, at most every ``interval`` seconds,
    its last result kept in ``path`` (atomic write) so a restart does not search again.
    ``due_search`` never waits: it starts the search in a thread and returns."""

    def __init__(self, runner: CommandRunner, path: str, interval: float, timeout: float,
                 clock: Callable[[], float]) -> None:
        self.runner = runner
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._state: Optional[Dict[str, Any]] = None

    def state(self) -> Dict[str, Any]:
        with self._lock:
            if self._state is None:
                self._state = self._load()
            return dict(self._state)

    def _load(self) -> Dict[str, Any]:
        if not self.path:
            return {}
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def due_search(self) -> None:
        now = self.clock()
        state = self.state()
        last = state.get("attempt_ts")
        due = not isinstance(last, (int, float)) or now - last >= self.interval or last > now + 60
        with self._lock:
            if not due or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._search, name="wu-search", daemon=True)
            self._thread.start()

    def wait(self, timeout: float) -> bool:
        """For tests and orderly stops: wait until a running search ended."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _search(self) -> None:
        started = self.clock()
        new = self.state()
        new["attempt_ts"] = int(started)
        try:
            out = powershell(self.runner, WU_SEARCH_SCRIPT, self.timeout)
            new.update(parse_search(out))
            new["ok_ts"] = int(self.clock())
            new["error"] = ""
        except (CommandError, ValueError) as exc:
            new["error"] = str(exc)[:200]
            log.warning("Windows Update search: %s", exc)
        except Exception as exc:  # a bug here must not kill the agent's thread silently
            new["error"] = "search failed: %s" % exc
            log.exception("Windows Update search")
        with self._lock:
            self._state = new
        if self.path:
            try:
                write_atomic(self.path, json.dumps(new, sort_keys=True))
            except OSError as exc:
                log.warning("cannot keep the Windows Update search result: %s", exc)


def report_pending(found: Any, search: UpdateSearch) -> None:
    state = search.state()
    if isinstance(state.get("ok_ts"), int):
        if not state.get("cache_ts"):
            reason = "Windows Update never searched online: its offline cache is empty"
            for name in ("patch_pending", "patch_pending_sec", "pkg_cache_ts"):
                found.unknown(name, reason)
        else:
            found.set("pkg_cache_ts", state["cache_ts"])
            found.set("patch_pending", state.get("pending"))
            found.set("patch_pending_sec", state.get("pending_sec"))
        found.set("patch_checked_ts", state["ok_ts"])
        return
    if search.running():
        reason = "first search still running"
    elif state.get("error"):
        reason = "last search failed: %s" % state["error"]
    else:
        reason = "first search not started yet"
    for name in ("patch_pending", "patch_pending_sec", "patch_checked_ts"):
        found.unknown(name, reason)


# ---------------------------------------------------------------- reboot-restore

_DFC_EXIT = {2: "DFC.exe: not run as an administrator",
             3: "DFC.exe: the command is not valid on this installation"}


def report_frozen(found: Any, doc: Dict[str, Any], services: Optional[List[Dict[str, Any]]],
                  dfc: Optional[CommandResult], dfc_error: str) -> None:
    if dfc is not None or dfc_error:
        found.set("freeze_product", "Deep Freeze")
        if dfc is not None and dfc.rc in (0, 1):
            found.set("frozen", dfc.rc == 1)  # 1 frozen, 0 thawed
        else:
            found.unknown("frozen", dfc_error or _DFC_EXIT.get(
                dfc.rc if dfc else -1, "DFC.exe: exit code %s" % (dfc.rc if dfc else "?")))
        return
    if _bool(_one(doc, "uwf").get("CurrentEnabled")):
        found.set("freeze_product", "Unified Write Filter")
        found.set("frozen", True)
        return
    for product in FREEZERS:
        if services and any(_matches(s, product.services) for s in services):
            found.set("freeze_product", product.label)
            found.unknown("frozen", "%s found by its service; whether it protects the disk "
                          "now cannot be read" % product.label)
            return
    if not _one(doc, "probe") or services is None:
        found.unknown("frozen", "probe: %s" % why(_error(doc, "probe") or _error(doc, "svc")))
        return
    found.set("frozen", False)


def out_of_range(found: Any) -> None:
    """A number outside its catalogue range (a garbled registry value, a date of 1601) is
    not sent: it becomes unknown with the value, and the other facts stay."""
    for f in FAMILIES["security"].fields:
        value = found.fields.get(f.name)
        if f.type not in ("int", "float") or value is None or isinstance(value, bool):
            continue
        if (f.minimum is not None and value < f.minimum) or \
                (f.maximum is not None and value > f.maximum):
            del found.fields[f.name]
            found.unknown(f.name, "out of range: %r" % (value,))


# ---------------------------------------------------------------- the scanner

def _setting(settings: Any, name: str, default: float) -> float:
    value = getattr(settings, name, None) if settings is not None else None
    return float(value) if isinstance(value, (int, float)) and value > 0 else default


class WindowsScanner:
    """Kept by SecurityFamily for the agent's life: the CIM reader remembers whether this
    PC needs PowerShell 2.0, the update search runs in the background between scans."""

    def __init__(self, runner: CommandRunner, state_dir: str, settings: Any = None) -> None:
        self.runner = runner
        self.cim = reader()
        #: the clock (tests set it to replay recordings of a given day)
        self.clock: Callable[[], float] = time.time
        self.search = UpdateSearch(
            runner, os.path.join(state_dir, "security-wu-search.json") if state_dir else "",
            _setting(settings, "wu_search_interval", WU_SEARCH_INTERVAL),
            _setting(settings, "wu_search_timeout", WU_SEARCH_TIMEOUT), lambda: self.clock())

    def scan(self, found: Any) -> None:
        doc = self.cim.read(self.runner)
        # after the main script, so two WMI/COM-heavy processes do not start together on
        # an old PC; never waits: the search has its own process and thread
        self.search.due_search()
        if doc is None:
            reason = "PowerShell: %s" % (self.cim.last_error or "no answer")
        elif not _one(doc, "os"):
            # Win32_OperatingSystem always has its one instance: without it WMI is broken
            # or the script did not run, and an absent section would read as "none found"
            reason = "empty WMI answer (Win32_OperatingSystem: %s)" % why(_error(doc, "os"))
        else:
            reason = ""
            self._report(found, doc)
        if reason:
            for name in FIELDS:
                found.unknown(name, reason)
        report_pending(found, self.search)
        out_of_range(found)

    def _report(self, found: Any, doc: Dict[str, Any]) -> None:
        server = report_os(found, doc)
        services: Optional[List[Dict[str, Any]]] = _items(doc, "svc")
        if not services and _error(doc, "svc"):
            services = None
        report_antivirus(found, antivirus(doc, server, services, self.clock()))
        report_patches(found, doc)
        report_reboot(found, doc)
        report_auto_update(found, doc, services)
        profiles = firewall_from_doc(doc)
        why_not = "Get-NetFirewallProfile: %s" % why(_error(doc, "fw"))
        if profiles is None:
            profiles, why_not = self._netsh()
        report_firewall(found, profiles, why_not)
        report_smb(found, doc)
        report_accounts(found, doc)
        report_rdp(found, doc)
        report_autorun(found, doc)
        report_lock(found, doc)
        dfc, dfc_error = self._dfc(clean(_one(doc, "probe").get("Dfc")))
        report_frozen(found, doc, services, dfc, dfc_error)

    def _netsh(self) -> Tuple[Optional[List[Dict[str, Any]]], str]:
        try:
            res = self.runner.run(NETSH_FIREWALL, SMALL_TIMEOUT)
        except CommandError as exc:
            return None, str(exc)
        if res.rc != 0:
            return None, "netsh: exit code %d" % res.rc
        return parse_netsh(res.stdout)

    def _dfc(self, path: Optional[str]) -> Tuple[Optional[CommandResult], str]:
        if not path:
            return None, ""
        try:
            return self.runner.run([path, "get", "/ISFROZEN"], SMALL_TIMEOUT), ""
        except CommandError as exc:
            return None, str(exc)


__all__ = ["WindowsScanner", "UpdateSearch", "reader"]
