"""Windows facts (WMI/CIM classes, registry values) read in ONE PowerShell call per family.

A family declares what it wants as a tuple of ``Query`` (a WMI class, its namespace, a
filter, the properties) and ``RegistryQuery`` (a key and its values), and keeps one
``CimReader`` built from them. The reader writes two scripts from that declaration:

- the modern one (PowerShell 3.0+, Windows 8 and later, most Windows 7 SP1 with WMF):
  ``Get-CimInstance`` ... ``| ConvertTo-Json``;
- the legacy one for Windows 7 as shipped (PowerShell 2.0 has neither Get-CimInstance nor
  ConvertTo-Json): ``Get-WmiObject`` printing one tab-separated line per value, parsed by
  ``parse_legacy`` into the same document shape.

``CimReader.read(runner)`` runs the modern script, falls back to the legacy one when the
modern one fails on its first use, remembers which one this PC needs, and returns the
document ``{section: object-or-list}``, or None (logged) when neither answered. Every call
goes through the command-runner seam (agent/runner.py), so tests replay outputs recorded
on real machines (tests/agent/fixtures/windows, keyed by the scripts' tags
``<name>-cim`` / ``<name>-wmi``).

Adding a query for a new family (``security`` for example)::

    SECURITY = CimReader("security", (
        Query("av", "AntiVirusProduct", ("displayName", "productState"),
              namespace="root/SecurityCenter2"),
        Query("mp", "MSFT_MpComputerStatus", ("AMRunningMode", "AntivirusSignatureAge"),
              namespace="root/Microsoft/Windows/Defender", single=True),
    ), registry=(RegistryQuery("wu", "HKLM:\\\\SOFTWARE\\\\...", ("AUOptions",)),))
    doc = SECURITY.read(runner)          # {"av": [...], "mp": {...}, "wu": {...}} or None

then a parser turning ``doc`` into catalogue fields (as ``agent/families/inventory_windows.py``
does with ``map_windows``), and recordings of both scripts' output from real machines.
A class or namespace missing on a machine costs only its section (errors are silenced per
call); array properties must be named in ``Query.arrays`` for the legacy parser.
"""
import json
import logging
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from ..runner import CommandError, CommandFailed, CommandRunner

log = logging.getLogger(__name__)

#: Seconds PowerShell may take: WMI on a 10-year-old lab PC can be slow on first use.
PS_TIMEOUT = 90.0


POWERSHELL = ["powershell.exe", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass",
              "-Command"]


def powershell(runner: CommandRunner, script: str, timeout: float) -> str:
    """Run a PowerShell script; its stdout, or CommandError when it failed."""
    argv = POWERSHELL + [script]
    res = runner.run(argv, timeout)
    if res.rc != 0:
        first = (res.stderr or res.stdout).strip().splitlines()
        raise CommandFailed(argv, "exit code %d%s" % (res.rc, ": " + first[0][:200]
                                                      if first else ""), res.rc)
    return res.stdout


def powershell_json(runner: CommandRunner, script: str, timeout: float) -> Any:
    """Run a script that ends in ConvertTo-Json; the parsed document (None when the script
    printed nothing). Garbage output raises CommandFailed."""
    # [Text.Encoding]::UTF8 writes a byte-order mark first on some hosts
    out = powershell(runner, script, timeout).lstrip("\ufeff").strip()
    if not out:
        return None
    try:
        return json.loads(out)
    except ValueError as exc:
        raise CommandFailed(POWERSHELL + [script], "output is not JSON (%s): %r"
                            % (exc, out[:80])) from None


def as_list(value: Any) -> List[Any]:
    """ConvertTo-Json writes one item as a bare object and several as a list; Windows
    PowerShell 5.1 sometimes wraps arrays as {"value": [...], "Count": n}. Always a list."""
    if value is None:
        return []
    if isinstance(value, dict) and set(value) == {"value", "Count"}:
        value = value["value"]
    if isinstance(value, list):
        return [v for v in value if v is not None]
    return [value]


class Query(NamedTuple):
    #: name of this answer in the document
    section: str
    wmi_class: str
    properties: Tuple[str, ...]
    #: WMI namespace with forward slashes (``root/Microsoft/Windows/Storage``); "" = cimv2
    namespace: str = ""
    #: WQL filter (single quotes only)
    where: str = ""
    #: one instance (Win32_OperatingSystem): the section is an object, not a list
    single: bool = False
    #: properties that are arrays (IPAddress): the legacy parser collects their values
    arrays: Tuple[str, ...] = ()


class RegistryQuery(NamedTuple):
    section: str
    #: a PowerShell registry path, ``HKLM:\\SOFTWARE\\...``
    key: str
    properties: Tuple[str, ...]


# Both scripts: single quotes only (powershell.exe -Command mangles double quotes passed
# through CreateProcess), errors silenced per call so one missing class costs one section.
# The first line is the tag RecordedRunner keys recordings by.
_PROLOGUE = ("$ErrorActionPreference = 'SilentlyContinue'\n"
             "[Console]::OutputEncoding = [Text.Encoding]::UTF8\n")

# The legacy output, chosen over `wmic ... /format:csv`: wmic needs one process per class,
# its /format:csv fails with "Invalid XSL format" on many non-English installs (csv.xsl is
# looked up under the UI language folder of wbem), CSV cannot carry array properties
# (IPAddress) and wmic is deprecated. One line per value:
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


def modern_script(name: str, queries: Tuple[Query, ...],
                  registry: Tuple[RegistryQuery, ...] = ()) -> str:
    lines = ["#schoolmon:%s-cim" % name, _PROLOGUE + "$r = @{}"]
    for q in queries:
        lines.append("$r.%s = Get-CimInstance %s-ClassName %s%s | Select-Object %s" % (
            q.section, "-Namespace %s " % q.namespace if q.namespace else "", q.wmi_class,
            " -Filter '%s'" % q.where if q.where else "", ", ".join(q.properties)))
    for r in registry:
        lines.append("$r.%s = Get-ItemProperty '%s' | Select-Object %s"
                     % (r.section, r.key, ", ".join(r.properties)))
    lines.append("$r | ConvertTo-Json -Depth 4 -Compress")
    return "\n".join(lines) + "\n"


def legacy_script(name: str, queries: Tuple[Query, ...],
                  registry: Tuple[RegistryQuery, ...] = ()) -> str:
    def quoted(props: Tuple[str, ...]) -> str:
        return ", ".join("'%s'" % p for p in props)

    lines = ["#schoolmon:%s-wmi" % name, _PROLOGUE + _OUT_FUNCTION]
    for q in queries:
        lines.append("Out-Smon '%s' (Get-WmiObject %s-Class %s%s) @(%s)" % (
            q.section, "-Namespace %s " % q.namespace.replace("/", "\\") if q.namespace else "",
            q.wmi_class, " -Filter '%s'" % q.where if q.where else "", quoted(q.properties)))
    for r in registry:
        lines.append("Out-Smon '%s' (Get-ItemProperty '%s') @(%s)"
                     % (r.section, r.key, quoted(r.properties)))
    return "\n".join(lines) + "\n"


def parse_legacy(text: str, queries: Tuple[Query, ...],
                 registry: Tuple[RegistryQuery, ...] = ()) -> Dict[str, Any]:
    """The legacy script's lines → the same document shape the modern script's JSON has."""
    arrays = {(q.section, p) for q in queries for p in q.arrays}
    single = {q.section for q in queries if q.single} | {r.section for r in registry}
    sections: Dict[str, Dict[int, Dict[str, Any]]] = {}
    for line in text.lstrip("\ufeff").splitlines():
        parts = line.rstrip("\r").split("\t", 3)
        if len(parts) != 4 or not parts[1].isdigit():
            continue  # PowerShell warnings and blank lines
        sec, idx, prop, value = parts[0], int(parts[1]), parts[2], parts[3]
        obj = sections.setdefault(sec, {}).setdefault(idx, {})
        if (sec, prop) in arrays:
            obj.setdefault(prop, []).append(value)
        else:
            obj[prop] = value
    doc: Dict[str, Any] = {}
    for sec, objs in sections.items():
        items: List[Dict[str, Any]] = [objs[i] for i in sorted(objs)]
        doc[sec] = items[0] if sec in single else items
    return doc


class CimReader:
    """One family's WMI/registry questions, asked in one PowerShell call (see the module)."""

    def __init__(self, name: str, queries: Tuple[Query, ...],
                 registry: Tuple[RegistryQuery, ...] = (), timeout: float = PS_TIMEOUT) -> None:
        self.name = name
        self.queries = queries
        self.registry = registry
        self.timeout = timeout
        self.modern = modern_script(name, queries, registry)
        self.legacy_script = legacy_script(name, queries, registry)
        #: set once the modern script failed and the legacy one worked (Windows 7)
        self.legacy: Optional[bool] = None

    def parse_legacy(self, text: str) -> Dict[str, Any]:
        return parse_legacy(text, self.queries, self.registry)

    def read(self, runner: CommandRunner) -> Optional[Dict[str, Any]]:
        """The answers as one document, or None (logged) when PowerShell gave none."""
        data: Optional[Dict[str, Any]] = None
        if not self.legacy:
            try:
                got = powershell_json(runner, self.modern, self.timeout)
                if not isinstance(got, dict):
                    raise CommandError("modern %s script gave %s, not an object"
                                       % (self.name, type(got).__name__))
                self.legacy = False
                return got
            except CommandError as exc:
                if self.legacy is False:  # it worked before: a passing fault, not Win 7
                    log.warning("%s: %s", self.name, exc)
                    return None
                log.info("%s: modern script failed (%s); trying PowerShell 2.0", self.name,
                         exc)
        try:
            data = self.parse_legacy(powershell(runner, self.legacy_script, self.timeout))
            if not data:
                raise CommandError("legacy %s script printed nothing" % self.name)
            self.legacy = True
        except CommandError as exc:
            log.warning("%s: %s", self.name, exc)
            return None
        return data
