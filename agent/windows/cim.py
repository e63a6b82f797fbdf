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

What a class or key cannot say (a COM object's answer, whether a key exists, the loaded user
hives) is an ``Expression``: a PowerShell 2.0-compatible expression whose objects are
written like a class's (``Select-Object`` of its properties, or the legacy lines). Every
section whose call raised an error is named in the document's ``_errors`` section with the
first line of the error (``Invalid namespace``, ``Access denied``), so a parser can tell "no
instance" from "could not ask". ``CimReader.last_error`` says why ``read`` gave None.
"""
import json
import logging
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from ..runner import CommandError, CommandFailed, CommandRunner, CommandTimeout

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


class Expression(NamedTuple):
    """A section computed by PowerShell code rather than read from one class or key."""
    section: str
    #: PowerShell 2.0-compatible code (single quotes only) whose output objects carry
    #: ``properties``; used by both scripts unless ``legacy`` is given
    code: str
    properties: Tuple[str, ...]
    #: code for the PowerShell 2.0 script; "" = the same as ``code``; None = not asked there
    legacy: Optional[str] = ""
    single: bool = False
    arrays: Tuple[str, ...] = ()


#: The document section naming the sections whose call raised an error.
ERRORS = "_errors"


def _filter(where: str) -> str:
    # inside a single-quoted PowerShell string a quote is written twice
    return " -Filter '%s'" % where.replace("'", "''") if where else ""


# Both scripts: single quotes only (powershell.exe -Command mangles double quotes passed
# through CreateProcess), errors silenced per call so one missing class costs one section.
# The first line is the tag RecordedRunner keys recordings by.
_PROLOGUE = ("$ErrorActionPreference = 'SilentlyContinue'\n"
             "[Console]::OutputEncoding = [Text.Encoding]::UTF8\n")

# Silenced errors still land in $Error: a section whose call added one is named with the
# error's id and message (both scripts; PowerShell 2.0 has $Error too). The id is not
# localised (``PathNotFound,...``, ``HRESULT 0x8004100e,...``); the message may be.
_ERROR_CHECK = ("if ($Error.Count -gt $n) { $m = ([string]$Error[0].FullyQualifiedErrorId + ': ' +"
                " [string]$Error[0]) -replace '[\\t\\r\\n]+', ' '; %s }; $n = $Error.Count")

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
                  registry: Tuple[RegistryQuery, ...] = (),
                  expressions: Tuple[Expression, ...] = ()) -> str:
    lines = ["#schoolmon:%s-cim" % name, _PROLOGUE + "$r = @{}; $e = @{}; $n = $Error.Count"]

    def add(section: str, code: str) -> None:
        lines.append("$r.%s = %s" % (section, code))
        lines.append(_ERROR_CHECK % ("$e.%s = $m" % section))

    for q in queries:
        add(q.section, "Get-CimInstance %s-ClassName %s%s | Select-Object %s" % (
            "-Namespace %s " % q.namespace if q.namespace else "", q.wmi_class,
            _filter(q.where), ", ".join(q.properties)))
    for r in registry:
        add(r.section, "Get-ItemProperty '%s' | Select-Object %s" % (r.key,
                                                                    ", ".join(r.properties)))
    for x in expressions:
        add(x.section, "@(%s) | Select-Object %s" % (x.code, ", ".join(x.properties)))
    lines.append("if ($e.Count) { $r.%s = $e }" % ERRORS)
    lines.append("$r | ConvertTo-Json -Depth 4 -Compress")
    return "\n".join(lines) + "\n"


def legacy_script(name: str, queries: Tuple[Query, ...],
                  registry: Tuple[RegistryQuery, ...] = (),
                  expressions: Tuple[Expression, ...] = ()) -> str:
    def quoted(props: Tuple[str, ...]) -> str:
        return ", ".join("'%s'" % p for p in props)

    lines = ["#schoolmon:%s-wmi" % name, _PROLOGUE + _OUT_FUNCTION, "$n = $Error.Count"]

    def add(section: str, call: str) -> None:
        lines.append(call)
        lines.append(_ERROR_CHECK % ("Write-Output ('%s' + [char]9 + '0' + [char]9 + '%s'"
                                     " + [char]9 + $m)" % (ERRORS, section)))

    for q in queries:
        add(q.section, "Out-Smon '%s' (Get-WmiObject %s-Class %s%s) @(%s)" % (
            q.section, "-Namespace %s " % q.namespace.replace("/", "\\") if q.namespace else "",
            q.wmi_class, _filter(q.where), quoted(q.properties)))
    for r in registry:
        add(r.section, "Out-Smon '%s' (Get-ItemProperty '%s') @(%s)"
            % (r.section, r.key, quoted(r.properties)))
    for x in expressions:
        if x.legacy is not None:
            add(x.section, "Out-Smon '%s' @(%s) @(%s)"
                % (x.section, x.legacy or x.code, quoted(x.properties)))
    return "\n".join(lines) + "\n"


def parse_legacy(text: str, queries: Tuple[Query, ...],
                 registry: Tuple[RegistryQuery, ...] = (),
                 expressions: Tuple[Expression, ...] = ()) -> Dict[str, Any]:
    """The legacy script's lines → the same document shape the modern script's JSON has."""
    arrays = {(q.section, p) for q in tuple(queries) + tuple(expressions) for p in q.arrays}
    single = ({q.section for q in tuple(queries) + tuple(expressions) if q.single}
              | {r.section for r in registry} | {ERRORS})
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
                 registry: Tuple[RegistryQuery, ...] = (), timeout: float = PS_TIMEOUT,
                 expressions: Tuple[Expression, ...] = ()) -> None:
        self.name = name
        self.queries = queries
        self.registry = registry
        self.expressions = expressions
        self.timeout = timeout
        self.modern = modern_script(name, queries, registry, expressions)
        self.legacy_script = legacy_script(name, queries, registry, expressions)
        #: set once the modern script failed and the legacy one worked (Windows 7)
        self.legacy: Optional[bool] = None
        #: why the last ``read`` gave None (the error of the last script tried)
        self.last_error = ""

    def parse_legacy(self, text: str) -> Dict[str, Any]:
        return parse_legacy(text, self.queries, self.registry, self.expressions)

    def read(self, runner: CommandRunner) -> Optional[Dict[str, Any]]:
        """The answers as one document, or None (logged, ``last_error``) when PowerShell
        gave none."""
        data: Optional[Dict[str, Any]] = None
        self.last_error = ""
        if not self.legacy:
            try:
                got = powershell_json(runner, self.modern, self.timeout)
                if not isinstance(got, dict):
                    raise CommandError("modern %s script gave %s, not an object"
                                       % (self.name, type(got).__name__))
                self.legacy = False
                return got
            except CommandError as exc:
                # it worked before: a passing fault, not Win 7; a timeout means PowerShell
                # ran (2.0 fails at once on Get-CimInstance): the legacy script would hang too
                if self.legacy is False or isinstance(exc, CommandTimeout):
                    log.warning("%s: %s", self.name, exc)
                    self.last_error = str(exc)
                    return None
                log.info("%s: modern script failed (%s); trying PowerShell 2.0", self.name,
                         exc)
                self.last_error = "modern script: %s" % exc
        try:
            data = self.parse_legacy(powershell(runner, self.legacy_script, self.timeout))
            if not data:
                raise CommandError("legacy %s script printed nothing" % self.name)
            self.legacy = True
            self.last_error = ""
        except CommandError as exc:
            log.warning("%s: %s", self.name, exc)
            self.last_error = "; ".join(x for x in (self.last_error, "PowerShell 2.0 script: %s"
                                                    % exc) if x)
            return None
        return data
