"""The ``inventory`` family: what the PC is (fields described in the catalogue).

What every OS gets (psutil, platform) is here; the rest is per OS: ``inventory_linux``
reads /sys, /proc and /etc, ``inventory_windows`` asks WMI and the registry through
``agent/windows/cim.py``. Only the module of the OS the agent runs on is imported.

The core sends inventory only when it changed, by equality: every list is sorted and no
value depends on the moment of measurement (no uptime, no free space).
"""
import logging
import platform
import socket
import sys
from typing import Any, Dict, Optional

import psutil

from .. import __version__
from ..runner import CommandRunner, SubprocessRunner
from .values import put

log = logging.getLogger(__name__)


class InventoryFamily:
    def __init__(self, role: str, room: str = "", runner: Optional[CommandRunner] = None,
                 sys_root: str = "/sys", proc_root: str = "/proc", etc_root: str = "/etc",
                 platform_name: Optional[str] = None) -> None:
        self.role = role
        self.room = room
        self.runner: CommandRunner = runner if runner is not None else SubprocessRunner()
        self.sys_root, self.proc_root, self.etc_root = sys_root, proc_root, etc_root
        #: "win32" or "linux"; tests force it to replay Windows recordings on Linux
        self.platform = platform_name or sys.platform
        #: the Windows WMI reader (agent/windows/cim.py), made on first use
        self.cim: Any = None

    def collect(self) -> Dict[str, Any]:
        out = self._common()
        out.update(self._windows() if self.platform == "win32" else self._linux())
        out["role"] = self.role
        if self.room:
            out["room"] = self.room
        out["agent"] = __version__
        out["python"] = platform.python_version()
        return dict(sorted(out.items()))

    def _common(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"hostname": socket.gethostname()}
        try:
            put(out, "cpu_cores", psutil.cpu_count(logical=False))
            put(out, "cpu_threads", psutil.cpu_count(logical=True))
            out["ram"] = int(psutil.virtual_memory().total)
            out["boot_ts"] = int(psutil.boot_time())
        except Exception as exc:  # a broken /proc must not cost the whole inventory
            log.warning("inventory: psutil failed: %s", exc)
        return out

    def _linux(self) -> Dict[str, Any]:
        from .inventory_linux import collect_linux

        return collect_linux(self.sys_root, self.proc_root, self.etc_root)

    def _windows(self) -> Dict[str, Any]:
        from . import inventory_windows

        if self.cim is None:
            self.cim = inventory_windows.reader()
        out: Dict[str, Any] = {"os_name": "Windows"}
        data = self.cim.read(self.runner)
        if data is None:
            return out
        try:
            out.update(inventory_windows.map_windows(data))
        except Exception as exc:  # a shape we have never seen: keep what we have
            log.warning("inventory: unexpected WMI answer: %r", exc)
        return out
