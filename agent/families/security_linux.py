"""The ``security`` family on Linux: files read under ``root`` (a fixture tree in tests) and
a few commands through the runner, each with a timeout and at the lowest CPU priority.
Fields: protocol/catalogue.py.

What is read, per fact (docs/agent.md has the table):

- patches: ``apt-get -qq -s -o Debug::NoLocking=1 ... dist-upgrade`` (a simulation: no
  lock, no ``apt update``, works as any user) — upgrades counted per origin as monitoring-plugins'
  check_apt does (``Debian-Security`` or a ``*-security`` suite); the package cache age
  from ``update-success-stamp`` (else the lists folder); the last upgrade from apt's
  history logs, rotated ``.gz`` ones too. Not an apt system: unknown.
- reboot: ``/run/reboot-required`` (Debian Policy 9.12), its ``.pkgs`` in the log.
- automatic updates: ``APT::Periodic::Unattended-Upgrade`` (apt.conf and apt.conf.d, read
  as apt does), the unattended-upgrades package installed, ``apt-daily-upgrade.timer``
  enabled (its symlink; ``cron.daily/apt-compat`` where systemd has no such unit).
- firewall: ufw (``ENABLED=yes`` in ufw.conf AND its chains loaded), firewalld
  (``firewall-cmd --state``, by exit status), nftables (``nft list ruleset``), legacy
  iptables (``iptables -S``). A tool is "on" when its input path drops or rejects
  something: Debian's stock nftables.conf (input policy accept, no rule) and Docker's
  forward-only rules are not a firewall. Reading rules needs root: otherwise unknown.
- ClamAV: present when clamd or freshclam is installed; signature age from the newest
  database header (``/var/lib/clamav/*.cvd|*.cld``, mtime as a fallback); real-time only
  when clamd and clamonacc both run (clamd alone scans on demand: not real-time).
- SMBv1: Samba's ``server min protocol`` / ``client min protocol`` (Samba 4.11+ defaults to
  SMB2_02); no Samba server: ``smb1_server`` false.
- distribution: ``ID`` of os-release.

Windows-only facts (os_ubr, esu, update services, guest and built-in administrator by SID,
RDP, AutoRun, screen lock, Deep Freeze) are left out on Linux: they do not exist there.
"""
import calendar
import logging
import os
import re
import time
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..runner import CommandError, CommandResult, CommandRunner, CommandTimeout
from .inventory_linux import os_release
from .security import Findings

log = logging.getLogger(__name__)

#: Longest one command may take when the ``security`` config section gives none.
PROBE_TIMEOUT_S = 90.0
#: The whole scan's command time: below the family's timeout (agent/families/__init__.py,
#: 300 s), so a scan full of hung commands still reports what it found.
SCAN_BUDGET_S = 240.0
#: Where executables are looked for under ``root`` (a service's PATH has the sbin ones).
BIN_DIRS = ("usr/local/sbin", "usr/local/bin", "usr/sbin", "usr/bin", "sbin", "bin")

#: A simulated upgrade: no lock, no download, any user; the note apt prints for non-root
#: users (translated, on stdout) switched off.
APT_SIMULATE = ("-qq", "-s", "-o", "Debug::NoLocking=1",
                "-o", "APT::Get::Show-User-Simulation-Note=false", "dist-upgrade")


class Scan:
    """One scan's context: the findings, the file-system root, commands on a budget."""

    def __init__(self, found: Findings, runner: CommandRunner, root: str,
                 probe_timeout: float, now: float, budget: float) -> None:
        self.found = found
        self.runner = runner
        self.root = root
        self.probe_timeout = probe_timeout
        self.now = now
        self.budget = budget
        self.deadline = time.monotonic() + budget
        self._dpkg: Optional[Dict[str, str]] = None
        #: coreutils' nice, to run the commands at the lowest priority (apt-get -s alone
        #: costs seconds of CPU where apt keeps no package cache)
        self.nice = self.which("nice")

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel.lstrip("/"))

    def which(self, name: str) -> Optional[str]:
        """The executable's path as the running system sees it, if installed under root."""
        for d in BIN_DIRS:
            if os.path.isfile(self.path(d + "/" + name)):
                return "/" + d + "/" + name
        return None

    def run(self, argv: Sequence[str]) -> CommandResult:
        """Run through the runner; CommandError (with a short reason) when there is no
        usable answer in time."""
        left = self.deadline - time.monotonic()
        if left <= 1:
            raise CommandError("scan time budget (%.0f s) spent" % self.budget)
        timeout = min(self.probe_timeout, left)
        command = list(argv)
        if self.nice:  # a background scan: the pupil's programs first
            command = [self.nice, "-n", "19"] + command
        try:
            return self.runner.run(command, timeout)
        except CommandTimeout:
            raise CommandError("%s: timeout after %.0f s" % (_tool(argv), timeout)) from None

    def dpkg_installed(self) -> Dict[str, str]:
        """Installed packages → version, from dpkg's status file (empty when there is
        none). OSError when it exists but cannot be read."""
        if self._dpkg is None:
            text, why = read_file(self.path("var/lib/dpkg/status"))
            if why:
                raise OSError("dpkg status: %s" % why)
            self._dpkg = _dpkg_status(text or "")
        return self._dpkg


def scan_linux(found: Findings, runner: CommandRunner, root: str = "/",
               settings: Any = None, now: Optional[float] = None,
               budget: float = SCAN_BUDGET_S) -> None:
    """Fill ``found`` with this Linux machine's security facts (never raises for a probe)."""
    probe_timeout = float(getattr(settings, "probe_timeout", None) or PROBE_TIMEOUT_S)
    scan = Scan(found, runner, root, probe_timeout, time.time() if now is None else now,
                budget)
    for step, fields in STEPS:
        try:
            step(scan)
        except OSError as exc:  # a file the step cannot do without (dpkg's status)
            log.warning("security: %s: %s", step.__name__, exc)
            for name in fields:
                found.unknown(name, str(exc))
        except Exception as exc:  # a bug in one step costs that step's facts only
            log.exception("security: %s failed", step.__name__)
            for name in fields:
                found.unknown(name, "scanner error: %s: %s" % (exc.__class__.__name__, exc))


# --- files ------------------------------------------------------------------------------

def read_file(path: str) -> Tuple[Optional[str], Optional[str]]:
    """(text, None), or (None, reason) — reason None when the file does not exist."""
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", errors="replace"), None
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, "%s: %s" % (os.path.basename(path), _os_error(exc))


def _os_error(exc: OSError) -> str:
    return (exc.strerror or exc.__class__.__name__).lower()


def _mtime(path: str) -> Tuple[Optional[float], Optional[str]]:
    try:
        return os.stat(path).st_mtime, None
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, "%s: %s" % (os.path.basename(path), _os_error(exc))


def _tool(argv: Sequence[str]) -> str:
    return os.path.basename(argv[0]) if argv else "?"


def _failure(argv: Sequence[str], res: CommandResult) -> str:
    """Why a command's answer is no answer, in a few words."""
    err = (res.stderr or res.stdout or "").strip()
    low = err.lower()
    if "root" in low or "not permitted" in low or "permission denied" in low:
        return "%s: needs root" % _tool(argv)
    first = err.splitlines()[0] if err else ""
    return "%s: exit %d%s" % (_tool(argv), res.rc, (": " + first) if first else "")


def _dpkg_status(text: str) -> Dict[str, str]:
    out = {}
    for para in text.split("\n\n"):
        name = re.search(r"^Package:\s*(\S+)", para, re.M)
        status = re.search(r"^Status:\s*(.+)$", para, re.M)
        version = re.search(r"^Version:\s*(\S+)", para, re.M)
        if name and status and status.group(1).split()[-1] == "installed":
            out[name.group(1)] = version.group(1) if version else ""
    return out


# --- distribution -----------------------------------------------------------------------

def scan_os(scan: Scan) -> None:
    os_id = os_release(scan.path("etc")).get("ID", "").strip().lower()
    if os_id:
        scan.found.set("os_id", os_id[:32])
    else:
        scan.found.unknown("os_id", "no ID in /etc/os-release")


# --- patches ----------------------------------------------------------------------------

PATCH_FIELDS = ("patch_pending_sec", "patch_pending", "patch_checked_ts")

#: ``Inst name [old] (new Origin:Version/Suite[, ...] [arch])`` and maybe `` [...]`` after;
#: an ``Inst`` without ``[old]`` is a new package pulled in by an upgrade (a new kernel).
_INST = re.compile(r"^Inst (\S+)(?: \[([^\]]*)\])? \((\S+) (.*) \[([^\]\s]+)\]\)(?: .*)?$")
#: What else a simulation prints with -qq (untranslated by apt).
_SIM_OTHER = re.compile(r"^(Conf|Remv|Purg) \S+")


def parse_apt_simulation(text: str) -> Tuple[int, int]:
    """(upgrades, security upgrades) from ``apt-get -qq -s dist-upgrade``; ValueError on a
    line that is not a simulation line (truncated or foreign output: no count is better
    than a wrong one)."""
    upgrades = security = 0
    for line in text.splitlines():
        line = line.rstrip()
        if not line:
            continue
        m = _INST.match(line)
        if m is None:
            if _SIM_OTHER.match(line):
                continue
            raise ValueError("unexpected apt-get output: %r" % line[:80])
        if m.group(2) is None:
            continue  # a new package, pulled in by an upgrade counted on its own line
        upgrades += 1
        if any(_security_origin(o) for o in m.group(4).split(", ")):
            security += 1
    return upgrades, security


def _security_origin(origin: str) -> bool:
    """``Debian-Security:12/stable-security``, ``Ubuntu:22.04/jammy-security``,
    ``UbuntuESM:22.04/jammy-infra-security``: a security pocket."""
    name, _, rest = origin.strip().partition(":")
    return name == "Debian-Security" or rest.rpartition("/")[2].endswith("-security")


def scan_patches(scan: Scan) -> None:
    apt_get = scan.which("apt-get")
    if apt_get is None:
        for name in PATCH_FIELDS:
            scan.found.unknown(name, "not an apt system")
        return
    argv = (apt_get,) + APT_SIMULATE
    try:
        res = scan.run(argv)
    except CommandError as exc:
        for name in PATCH_FIELDS:
            scan.found.unknown(name, str(exc))
        return
    reason = None
    if res.rc != 0:
        reason = _failure(argv, res)
    else:
        try:
            pending, security = parse_apt_simulation(res.stdout)
        except ValueError as exc:
            reason = str(exc)
    if reason is not None:
        for name in PATCH_FIELDS:
            scan.found.unknown(name, reason)
        return
    scan.found.set("patch_pending", pending)
    scan.found.set("patch_pending_sec", security)
    scan.found.set("patch_checked_ts", int(scan.now))


def scan_pkg_cache(scan: Scan) -> None:
    """When apt last fetched package lists: the stamp apt's update hook touches on success,
    else the lists folder (a lower bound: an update that changed nothing leaves it)."""
    if scan.which("apt-get") is None:
        scan.found.unknown("pkg_cache_ts", "not an apt system")
        return
    stamp, why = _mtime(scan.path("var/lib/apt/periodic/update-success-stamp"))
    if stamp is None:
        lists = scan.path("var/lib/apt/lists")
        times = [t for t, _ in (_mtime(os.path.join(lists, n)) for n in _listdir(lists)
                                if n not in ("lock", "partial", "auxfiles")) if t is not None]
        if times:  # a list fetched at least once: its folder changed when one was renamed in
            stamp = max(times + [_mtime(lists)[0] or 0.0])
    if stamp is None:
        scan.found.unknown("pkg_cache_ts", why or "no package lists (apt update never ran)")
    elif stamp < 946684800:
        scan.found.unknown("pkg_cache_ts", "package lists dated before 2000 (clock?)")
    else:
        scan.found.set("pkg_cache_ts", int(stamp))


def _listdir(path: str) -> List[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


# --- the apt history --------------------------------------------------------------------

def parse_history(text: str) -> Optional[float]:
    """End time (local time, as apt writes it) of the last entry that upgraded something
    and finished without an error. An entry that only installs new packages patches
    nothing; an entry cut off (no End-Date) did not finish."""
    best = None
    for entry in re.split(r"\n\s*\n", text):
        if not re.search(r"^Upgrade: \S", entry, re.M) or re.search(r"^Error:", entry, re.M):
            continue
        m = re.search(r"^End-Date:\s*(\d{4}-\d\d-\d\d)\s+(\d\d:\d\d:\d\d)\s*$", entry, re.M)
        if m is None:
            continue
        try:
            ts = time.mktime(time.strptime(m.group(1) + " " + m.group(2),
                                           "%Y-%m-%d %H:%M:%S"))
        except (ValueError, OverflowError):
            continue
        best = ts if best is None else max(best, ts)
    return best


def _history_files(logdir: str) -> List[str]:
    """history.log, then history.log.1(.gz), .2(.gz) ...: newest first."""
    rotated = []
    for name in _listdir(logdir):
        m = re.match(r"^history\.log\.(\d+)(\.gz)?$", name)
        if m:
            rotated.append((int(m.group(1)), name))
    names = ["history.log"] + [n for _, n in sorted(rotated)]
    return [os.path.join(logdir, n) for n in names]


def _read_log(path: str) -> Tuple[Optional[str], Optional[str]]:
    if not path.endswith(".gz"):
        return read_file(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, "%s: %s" % (os.path.basename(path), _os_error(exc))
    # zlib rather than gzip.open: a cut-off file still gives what it holds
    try:
        text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw)
    except zlib.error as exc:
        return None, "%s: not gzip (%s)" % (os.path.basename(path), exc)
    return text.decode("utf-8", errors="replace"), None


def scan_patch_last(scan: Scan) -> None:
    if scan.which("apt-get") is None:
        scan.found.unknown("patch_last_ts", "not an apt system")
        return
    seen, problems = 0, []
    for path in _history_files(scan.path("var/log/apt")):
        text, why = _read_log(path)
        if text is None:
            if why:
                problems.append(why)
            continue
        seen += 1
        last = parse_history(text)
        if last is not None:
            if last < 946684800:
                break
            scan.found.set("patch_last_ts", int(last))
            return
    if problems:
        scan.found.unknown("patch_last_ts", "; ".join(problems))
    elif seen:
        scan.found.unknown("patch_last_ts", "no finished upgrade in the apt history")
    else:
        scan.found.unknown("patch_last_ts", "no apt history (/var/log/apt/history.log)")


# --- reboot -----------------------------------------------------------------------------

def scan_reboot(scan: Scan) -> None:
    if scan.which("apt-get") is None:  # the flag file is Debian's convention
        for name in ("reboot_pending", "reboot_signals"):
            scan.found.unknown(name, "not an apt system")
        return
    flag = scan.path("run/reboot-required")
    try:
        os.stat(flag)
    except FileNotFoundError:
        scan.found.set("reboot_pending", False)
        scan.found.set("reboot_signals", [])
        return
    except OSError as exc:
        scan.found.unknown("reboot_pending", "reboot-required: %s" % _os_error(exc))
        return
    scan.found.set("reboot_pending", True)
    scan.found.set("reboot_signals", ["reboot_required_file"])
    pkgs, _ = read_file(flag + ".pkgs")
    if pkgs:
        log.debug("security: reboot required by %s", ", ".join(sorted(set(pkgs.split()))))


# --- automatic updates ------------------------------------------------------------------

AUTO_FIELDS = ("auto_update", "auto_update_detail")


def apt_config(files: Sequence[str]) -> Dict[str, str]:
    """Values of apt configuration files (``A::B "v";``, nested ``A { B "v"; };``, ``//``,
    ``/* */`` and ``#`` comments, ``#clear``), later files winning, keys lower-cased as
    apt compares them. Our own reader because apt-config cannot be pointed at a tree."""
    values: Dict[str, str] = {}
    for path in files:
        text, _ = read_file(path)
        if text:
            _apt_config_text(text, values)
    return values


_APT_TOKEN = re.compile(r'"([^"]*)"|([{};])|([^\s{};"]+)')


def _apt_config_text(text: str, values: Dict[str, str]) -> None:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#clear"):
            for name in stripped[len("#clear"):].replace(";", " ").split():
                prefix = name.lower()
                for k in [k for k in values if k == prefix or k.startswith(prefix + "::")]:
                    del values[k]
            continue
        if stripped.startswith("#"):  # a comment, or #include (not followed: rare here)
            continue
        # a // comment, outside quotes
        lines.append(re.sub(r'^((?:[^"/]|"[^"]*"|/(?!/))*)//.*$', r"\1", line))
    scope: List[str] = []
    key: Optional[str] = None
    for m in _APT_TOKEN.finditer("\n".join(lines)):
        quoted, punct, word = m.groups()
        if word is not None:
            key = word
        elif quoted is not None:
            if key is not None:
                values["::".join(scope + [key]).lower()] = quoted
            key = None
        elif punct == "{":
            scope.append(key or "")
            key = None
        elif punct == "}":
            if scope:
                scope.pop()
            key = None
        else:  # ";"
            key = None


def _apt_conf_files(root_etc_apt: str) -> List[str]:
    """apt's order: apt.conf.d in name order (names of ``[A-Za-z0-9_.-]`` with no
    extension or ``.conf``), then apt.conf."""
    parts = os.path.join(root_etc_apt, "apt.conf.d")
    names = [n for n in _listdir(parts) if re.match(r"^[A-Za-z0-9_.-]+$", n)
             and ("." not in n or n.endswith(".conf"))]
    return [os.path.join(parts, n) for n in names] + [os.path.join(root_etc_apt, "apt.conf")]


def _periodic_on(value: Optional[str]) -> bool:
    if value is None:
        return False
    if value.strip().lower() == "always":
        return True
    try:
        return int(value.strip()) > 0
    except ValueError:
        return False


def _timer_state(scan: Scan, unit: str) -> Optional[str]:
    """``enabled``, ``disabled``, ``masked``, or None when systemd has no such unit."""
    etc = scan.path("etc/systemd/system")
    own = os.path.join(etc, unit)
    if os.path.islink(own) and os.readlink(own) == "/dev/null":
        return "masked"
    shipped = [scan.path(d + "/" + unit) for d in ("lib/systemd/system",
                                                    "usr/lib/systemd/system")]
    if not any(os.path.exists(p) for p in shipped) and not os.path.exists(own):
        return None
    wants = os.path.join(etc, "timers.target.wants", unit)
    return "enabled" if os.path.lexists(wants) else "disabled"


def scan_auto_update(scan: Scan) -> None:
    if scan.which("apt-get") is None:
        for name in AUTO_FIELDS:
            scan.found.unknown(name, "not an apt system")
        return
    conf = apt_config(_apt_conf_files(scan.path("etc/apt")))
    value = conf.get("apt::periodic::unattended-upgrade")
    setting = "APT::Periodic::Unattended-Upgrade=%s" % (value if value is not None else "unset")
    installed = "unattended-upgrades" in scan.dpkg_installed()
    timer = _timer_state(scan, "apt-daily-upgrade.timer")
    if timer is None:  # no systemd unit: apt's daily cron job runs it
        timer_ok = os.path.exists(scan.path("etc/cron.daily/apt-compat"))
        runs = "cron.daily/apt-compat" if timer_ok else "no apt-daily-upgrade.timer"
    else:
        timer_ok = timer == "enabled"
        runs = "apt-daily-upgrade.timer %s" % timer
    on = _periodic_on(value) and installed and timer_ok
    detail = [setting]
    if not installed:
        detail.append("unattended-upgrades not installed")
    detail.append(runs)
    scan.found.set("auto_update", on)
    scan.found.set("auto_update_detail", "; ".join(detail)[:128])


# --- firewall ---------------------------------------------------------------------------

FW_FIELDS = ("fw_on", "fw_profiles")


class Chains:
    """A filter table as chains: base chains hooked at input, their policy, rules' verdicts
    and jumps — enough to say whether anything on the input path drops or rejects."""

    def __init__(self) -> None:
        self.input_chains: List[str] = []
        self.policy: Dict[str, str] = {}
        self.drops: Dict[str, bool] = {}
        self.jumps: Dict[str, List[str]] = {}

    def chain(self, name: str) -> None:
        self.drops.setdefault(name, False)
        self.jumps.setdefault(name, [])

    def filters_input(self) -> bool:
        seen = set()
        todo = list(self.input_chains)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if self.policy.get(name) == "drop" or self.drops.get(name):
                return True
            todo.extend(self.jumps.get(name, []))
        return False

    def names(self) -> List[str]:
        return list(self.drops)


_NFT_VERDICT = re.compile(r"(?:^|\s)(drop|reject)(?:\s|$)")
_NFT_JUMP = re.compile(r"(?:^|\s)(?:jump|goto)\s+(\S+)")


def parse_nft(text: str) -> Chains:
    """``nft list ruleset``: chains of ip/ip6/inet tables (bridge, arp and netdev tables do
    not guard the host). Chain names are kept per table. ValueError on a shape that is not
    nft's."""
    chains = Chains()
    table = chain = None
    depth = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if depth == 0:
            m = re.match(r"^table (\S+) (\S+) \{$", line)
            if m is None:
                raise ValueError("unexpected output: %r" % line[:80])
            table = "%s %s" % (m.group(1), m.group(2)) if m.group(1) in (
                "ip", "ip6", "inet") else None
            depth = 1
            continue
        if line.endswith("{"):
            depth += 1
            m = re.match(r"^chain (\S+) \{$", line)
            if depth == 2 and m and table:
                chain = table + " " + m.group(1)
                chains.chain(chain)
            continue
        if line == "}" or line.startswith("}"):
            depth -= 1
            if depth <= 1:
                chain = None
            continue
        if depth != 2 or chain is None or table is None:
            continue  # sets, maps, flowtables, other families
        hook = re.match(r"^type filter hook (\S+) .*?(?:policy (\S+);)?$", line)
        if hook:
            if hook.group(1) == "input":
                chains.input_chains.append(chain)
            if hook.group(2):
                chains.policy[chain] = hook.group(2).rstrip(";")
            continue
        if line.startswith("type ") or line.startswith("policy "):
            continue
        if _NFT_VERDICT.search(line):
            chains.drops[chain] = True
        for target in _NFT_JUMP.findall(line):
            chains.jumps[chain].append(table + " " + target)
    if depth != 0:
        raise ValueError("output cut off")
    return chains


def parse_iptables(text: str) -> Chains:
    """``iptables -S`` (the filter table)."""
    chains = Chains()
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "-P" and len(f) == 3:
            chains.chain(f[1])
            chains.policy[f[1]] = f[2].lower()
            if f[1] == "INPUT":
                chains.input_chains.append("INPUT")
        elif f[0] == "-N" and len(f) == 2:
            chains.chain(f[1])
        elif f[0] == "-A" and len(f) >= 2:
            chains.chain(f[1])
            for flag in ("-j", "-g"):
                if flag in f[2:-1]:
                    target = f[f.index(flag, 2) + 1]
                    if target in ("DROP", "REJECT"):
                        chains.drops[f[1]] = True
                    elif target not in ("ACCEPT", "RETURN", "LOG", "MARK", "CONNMARK"):
                        chains.jumps[f[1]].append(target)
        else:
            raise ValueError("unexpected output: %r" % line[:80])
    if "INPUT" not in chains.policy:
        raise ValueError("no INPUT chain in the output")
    return chains


def _ruleset(scan: Scan, argv: Sequence[str],
             parse: Callable[[str], Chains]) -> Tuple[Optional[Chains], Optional[str]]:
    try:
        res = scan.run(argv)
    except CommandError as exc:
        return None, str(exc)
    if res.rc != 0:
        return None, _failure(argv, res)
    try:
        return parse(res.stdout), None
    except ValueError as exc:
        return None, "%s: %s" % (_tool(argv), exc)


def _ufw_enabled(scan: Scan) -> Tuple[Optional[bool], Optional[str]]:
    """(ENABLED in ufw.conf, None); (None, None) when ufw is not installed; (None, why)."""
    text, why = read_file(scan.path("etc/ufw/ufw.conf"))
    if why:
        return None, why
    if text is None:
        return (None if scan.which("ufw") is None else False), None
    m = re.search(r"^\s*ENABLED\s*=\s*\"?(\w+)", text, re.M)
    return m is not None and m.group(1).lower() == "yes", None


def scan_firewall(scan: Scan) -> None:
    profiles: List[Dict[str, Any]] = []
    unknown: List[str] = []
    loaded: List[Chains] = []

    nft = scan.which("nft")
    if nft:
        rules, why = _ruleset(scan, (nft, "list", "ruleset"), parse_nft)
        if rules is None:
            unknown.append(why or "nft: no answer")
        else:
            loaded.append(rules)
            profiles.append({"name": "nftables", "on": rules.filters_input()})
    # iptables-nft rules are nft's (read above); legacy ones live apart
    iptables = scan.which("iptables-legacy") if nft else scan.which("iptables")
    if iptables:
        rules, why = _ruleset(scan, (iptables, "-S"), parse_iptables)
        if rules is None:
            unknown.append(why or "iptables: no answer")
        else:
            loaded.append(rules)
            profiles.append({"name": "iptables", "on": rules.filters_input()})

    enabled, why = _ufw_enabled(scan)
    if why:
        unknown.append("ufw: %s" % why)
    elif enabled is False:
        profiles.append({"name": "ufw", "on": False})
    elif enabled:
        names = [n.rsplit(" ", 1)[-1] for c in loaded for n in c.names()]
        if any(n in ("ufw-user-input", "ufw6-user-input") for n in names):
            profiles.append({"name": "ufw", "on": True})
        elif unknown:
            unknown.append("ufw: enabled, its rules unreadable")
        else:
            profiles.append({"name": "ufw", "on": False})  # enabled but not loaded

    firewall_cmd = scan.which("firewall-cmd")
    if firewall_cmd:
        argv = (firewall_cmd, "--state")
        try:
            res = scan.run(argv)
        except CommandError as exc:
            unknown.append(str(exc))
        else:  # by exit status: the text is translated (firewalld's errors.NOT_RUNNING)
            if res.rc == 0:
                profiles.append({"name": "firewalld", "on": True})
            elif res.rc == 252:
                profiles.append({"name": "firewalld", "on": False})
            else:
                unknown.append(_failure(argv, res))

    profiles.sort(key=lambda p: p["name"])
    scan.found.set("fw_profiles", profiles)
    if any(p["on"] for p in profiles):
        scan.found.set("fw_on", True)
    elif unknown:
        scan.found.unknown("fw_on", "; ".join(unknown))
    else:  # every tool read, none filters (or none installed at all)
        scan.found.set("fw_on", False)


# --- ClamAV -----------------------------------------------------------------------------

AV_FIELDS = ("av", "av_on", "av_name", "av_sig_age_d", "av_managed")
CLAMAV_DB_DIR = "var/lib/clamav"
#: comm names (15 characters at most) of ClamAV's daemons
CLAMD, CLAMONACC = "clamd", "clamonacc"


def cvd_build_time(head: bytes) -> Optional[float]:
    """Build time of a ClamAV database from its 512-byte header
    ``ClamAV-VDB:16 Apr 2020 07-58 -0400:25784:2267600:63:<md5>:<dsig>:<builder>:<stime>``:
    the last field (epoch seconds), else the date in the second."""
    text = head[:512].decode("ascii", errors="replace").rstrip("\x00 \n")
    parts = text.split(":")
    if len(parts) < 3 or parts[0] != "ClamAV-VDB":
        return None
    if len(parts) >= 9 and parts[8].strip().isdigit():
        return float(parts[8].strip())
    try:
        when = time.strptime(parts[1].strip(), "%d %b %Y %H-%M %z")
    except ValueError:
        return None
    return calendar.timegm(when) - (when.tm_gmtoff or 0)


def _running(scan: Scan) -> List[str]:
    """Names (comm) of the processes running, from /proc under root."""
    names = []
    proc = scan.path("proc")
    for pid in _listdir(proc):
        if pid.isdigit():
            text, _ = read_file(os.path.join(proc, pid, "comm"))
            if text:
                names.append(text.strip())
    return names


def scan_clamav(scan: Scan) -> None:
    present = any(scan.which(n) for n in ("clamd", "freshclam", "clamscan", "clamdscan"))
    if not present:
        scan.found.set("av", [])
        scan.found.set("av_on", False)
        scan.found.set("av_name", "")
        return
    running = set(_running(scan))
    rtp = CLAMD in running and CLAMONACC in running
    item: Dict[str, Any] = {"name": "ClamAV", "source": "clamav", "state": "on" if rtp else "off",
                            "rtp": rtp, "managed": False}  # ClamAV has no central console
    try:
        pkgs = scan.dpkg_installed()
    except OSError:
        pkgs = {}  # the version is a detail: the facts above stand without it
    version = pkgs.get("clamav-base") or pkgs.get("clamav")
    if version:
        item["version"] = version.split(":", 1)[-1][:64]
    built, why = _clamav_db_time(scan)
    if built is not None:
        item["sig_age_d"] = round(max(0.0, scan.now - built) / 86400.0, 2)
    scan.found.set("av", [item])
    scan.found.set("av_on", rtp)
    scan.found.set("av_name", "ClamAV" if rtp else "")
    if rtp:
        scan.found.set("av_managed", False)
        if "sig_age_d" in item:
            scan.found.set("av_sig_age_d", item["sig_age_d"])
        else:
            scan.found.unknown("av_sig_age_d", why or "no ClamAV database")


def _clamav_db_time(scan: Scan) -> Tuple[Optional[float], Optional[str]]:
    """Newest build time among the databases (daily is the one updated every day)."""
    folder = scan.path(CLAMAV_DB_DIR)
    best: Optional[float] = None
    problems = []
    for name in _listdir(folder):
        if not name.endswith((".cvd", ".cld")):
            continue
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as fh:
                built = cvd_build_time(fh.read(512))
            if built is None:  # a header we cannot read: when the file was written
                built = os.stat(path).st_mtime
        except OSError as exc:
            problems.append("%s: %s" % (name, _os_error(exc)))
            continue
        best = built if best is None else max(best, built)
    if best is None:
        return None, "; ".join(problems) or "no ClamAV database in /%s" % CLAMAV_DB_DIR
    return best, None


# --- SMB --------------------------------------------------------------------------------

SMB_FIELDS = ("smb1_server", "smb1_client")
_SMB1 = ("CORE", "COREPLUS", "LANMAN1", "LANMAN2", "NT1")


def smb_global(text: str) -> Dict[str, str]:
    """The [global] section of smb.conf: names normalised as Samba does (case, spaces)."""
    out: Dict[str, str] = {}
    section = "global"
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        if section == "global" and "=" in line:
            key, _, value = line.partition("=")
            out[" ".join(key.lower().split())] = value.strip()
    return out


def _samba_version(scan: Scan) -> Optional[Tuple[int, int]]:
    try:
        pkgs = scan.dpkg_installed()
    except OSError:
        pkgs = {}  # then smbd -V says
    version = pkgs.get("samba") or pkgs.get("samba-common-bin") or pkgs.get("smbclient")
    if not version:
        smbd = scan.which("smbd")
        if smbd:
            try:
                res = scan.run((smbd, "-V"))
                version = res.stdout if res.rc == 0 else None
            except CommandError:
                version = None
    m = re.search(r"(?:^|[\s:])(\d+)\.(\d+)\.", version or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def _smb1_allowed(setting: Optional[str], scan: Scan) -> Tuple[Optional[bool], str]:
    """From a ``min protocol`` value, or Samba's default for its version when unset
    (NT1 before 4.11, SMB2_02 since)."""
    if setting:
        return setting.strip().upper() in _SMB1, ""
    version = _samba_version(scan)
    if version is None:
        return None, "Samba version unknown and no min protocol set"
    return version < (4, 11), ""


def scan_smb(scan: Scan) -> None:
    conf_text, why = read_file(scan.path("etc/samba/smb.conf"))
    conf = smb_global(conf_text or "")

    def smb1(field: str, setting: Optional[str]) -> Optional[bool]:
        if why:
            scan.found.unknown(field, why)
            return None
        on, reason = _smb1_allowed(setting, scan)
        if on is None:
            scan.found.unknown(field, reason)
        return on

    if scan.which("smbd") is None:
        scan.found.set("smb1_server", False)
    else:
        scan.found.set("smb1_server", smb1("smb1_server", conf.get("server min protocol")
                                           or conf.get("min protocol")))
    # The kernel's CIFS client speaks SMB1 only to a mount that asks vers=1.0 (its default
    # negotiates SMB2.1 or newer since Linux 4.13): the configured mounts say.
    fstab, _ = read_file(scan.path("etc/fstab"))
    if scan.which("mount.cifs") and re.search(
            r"^\s*[^#\s]+\s+\S+\s+(?:cifs|smbfs)\s+\S*\bvers=1\.0\b", fstab or "", re.M):
        scan.found.set("smb1_client", True)
    elif scan.which("smbclient") is None:
        scan.found.set("smb1_client", False)
    else:
        scan.found.set("smb1_client", smb1("smb1_client", conf.get("client min protocol")))


#: The steps of a scan and the facts each one answers (unknown if the step breaks).
STEPS: Tuple[Tuple[Callable[[Scan], None], Tuple[str, ...]], ...] = (
    (scan_os, ("os_id",)),
    (scan_patches, PATCH_FIELDS),
    (scan_pkg_cache, ("pkg_cache_ts",)),
    (scan_patch_last, ("patch_last_ts",)),
    (scan_reboot, ("reboot_pending", "reboot_signals")),
    (scan_auto_update, AUTO_FIELDS),
    (scan_firewall, FW_FIELDS),
    (scan_clamav, AV_FIELDS),
    (scan_smb, SMB_FIELDS),
)
