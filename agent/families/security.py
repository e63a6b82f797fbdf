"""The ``security`` family: the PC's security posture as facts (fields in the catalogue).

The agent reports what it finds; the collector judges it against the ATTT baseline. Per OS:
``security_linux`` (apt, ufw/firewalld/nftables, ClamAV) and ``security_windows`` (Security
Center, Defender, Windows Update, registry, Deep Freeze, through ``agent/windows/cim.py``).
Only the module of the OS the agent runs on is imported.

Rule of the family: a fact that could not be determined is left out and named with its
reason (``Findings.unknown``), never guessed and never a pass. A scanner never raises for a
probe that failed, timed out or printed something unexpected: that fact is unknown.
"""
import logging
import os
import sys
import time
from typing import Any, Dict, List, Optional

from ..runner import CommandRunner, SubprocessRunner

log = logging.getLogger(__name__)


class Findings:
    """What one scan found: the catalogue fields, and the facts it could not determine."""

    def __init__(self) -> None:
        self.fields: Dict[str, Any] = {}
        self._unknown: Dict[str, str] = {}

    def set(self, name: str, value: Any) -> None:
        """A fact found. ``None`` is no fact: use ``unknown`` with the reason instead."""
        if value is None:
            return
        self.fields[name] = value
        self._unknown.pop(name, None)

    def unknown(self, name: str, reason: str) -> None:
        """``name`` could not be determined (the first reason given is kept)."""
        if name not in self.fields:
            self._unknown.setdefault(name, reason[:256])

    def has(self, name: str) -> bool:
        return name in self.fields

    def payload(self) -> Dict[str, Any]:
        out = dict(sorted(self.fields.items()))
        if self._unknown:
            out["unknown"] = [{"field": f, "reason": r} for f, r in sorted(self._unknown.items())]
        return out


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (PowerShell, apt-get ...)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class SecurityFamily:
    def __init__(self, runner: Optional[CommandRunner] = None, state_dir: str = "",
                 root: str = "/", platform_name: Optional[str] = None,
                 settings: Any = None) -> None:
        self.runner: CommandRunner = runner if runner is not None else SubprocessRunner()
        #: where the scanners keep state between scans (the last Windows Update search)
        self.state_dir = state_dir
        #: file-system root the Linux scanner reads (a fixture tree in tests)
        self.root = root
        #: "win32" or "linux"; tests force it to replay Windows recordings on Linux
        self.platform = platform_name or sys.platform
        #: the ``security`` config section (timeouts, search interval), or None: defaults
        self.settings = settings
        self._scanner: Any = None

    def collect(self) -> Dict[str, Any]:
        started, cpu0 = time.monotonic(), _cpu_seconds()
        found = Findings()
        try:
            self._scan(found)
        except Exception as exc:  # a scanner bug must cost the facts it had not found yet only
            log.exception("security scan failed")
            found.unknown("av_on", "scan failed: %s" % exc)
        if self.platform == "win32":
            found.set("os_family", "windows")
        elif self.platform.startswith("linux"):
            found.set("os_family", "linux")
        else:
            found.set("os_family", "other")
        found.set("scan_s", round(time.monotonic() - started, 3))
        found.set("scan_cpu_s", round(max(0.0, _cpu_seconds() - cpu0), 3))
        return found.payload()

    def _scan(self, found: Findings) -> None:
        if self.platform == "win32":
            from .security_windows import WindowsScanner

            if self._scanner is None:
                self._scanner = WindowsScanner(self.runner, self.state_dir, self.settings)
            self._scanner.scan(found)
        elif self.platform.startswith("linux"):
            from .security_linux import scan_linux

            scan_linux(found, self.runner, self.root, self.settings)


__all__: List[str] = ["Findings", "SecurityFamily"]
