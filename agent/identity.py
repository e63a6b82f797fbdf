"""The device id: generated once, kept in the state folder, overridable in the config.

Readable: ``{school}-{hostname}-{suffix}``, e.g. ``79000101-lab1-pc07-k3x9q``. The suffix
is 5 characters derived from the machine's own id (``/etc/machine-id`` on Linux, the
``MachineGuid`` on Windows, read through the command-runner seam or the registry), so
a re-installed agent on the same machine comes back with the same id; without one, a
random suffix is generated and kept. The result follows the topic id rules
(``schoolmon.protocol.topics.valid_id``): the device id is also the MQTT user name and
client id, and a topic level.
"""
import base64
import hashlib
import logging
import os
import re
import secrets
import socket
import sys
from typing import Callable, List, Optional, Tuple

from schoolmon.protocol.topics import valid_id

from .files import write_atomic
from .runner import CommandError, CommandRunner

log = logging.getLogger("schoolmon.agent.identity")

ID_FILE = "device_id"
SUFFIX_LEN = 5
MAX_ID = 64

_MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
_REG_QUERY = ["reg", "query", r"HKLM\SOFTWARE\Microsoft\Cryptography", "/v", "MachineGuid"]
_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


def clean_part(text: str) -> str:
    """Lower-case, characters outside ``[a-z0-9._-]`` become ``-``, runs collapsed."""
    text = text.strip().lower()
    text = re.sub(r"[^a-z0-9._-]+", "-", text)
    text = re.sub(r"-{2,}", "-", text)
    return text.strip("-._")


def _run_text(runner: CommandRunner, argv: List[str]) -> Optional[str]:
    """Output of ``argv`` through the command-runner seam (``agent/runner.py``)."""
    try:
        return runner.run(argv, 15.0).stdout
    except CommandError as exc:  # a timeout: no machine id
        log.debug("runner could not run %s: %s", argv[0], exc)
        return None


def machine_key(runner: Optional[CommandRunner] = None,
                files: Tuple[str, ...] = _MACHINE_ID_FILES) -> Optional[str]:
    """The OS's stable machine id, or None."""
    if sys.platform.startswith("win"):
        if runner is not None:
            text = _run_text(runner, _REG_QUERY)
            m = _GUID.search(text or "")
            if m:
                return m.group(0).lower()
        try:
            import winreg  # type: ignore

            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE,  # type: ignore[attr-defined]
                                r"SOFTWARE\Microsoft\Cryptography") as key:
                value, _ = winreg.QueryValueEx(key, "MachineGuid")  # type: ignore
                return str(value).lower()
        except Exception:
            return None
    for path in files:
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                value = fh.read().strip()
        except OSError:
            continue
        if value and set(value) != {"0"}:
            return value
    return None


def suffix_for(key: str) -> str:
    """5 base32 characters (lower case) of the key's SHA-256: stable, not reversible."""
    digest = hashlib.sha256(("schoolmon:" + key).encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:SUFFIX_LEN]


def make_id(school: str, hostname: str, suffix: str) -> str:
    school_part = clean_part(school) or "school"
    host_part = clean_part(hostname.split(".")[0]) or "host"
    room = MAX_ID - len(school_part) - len(suffix) - 2
    host_part = host_part[:max(room, 1)].strip("-._") or "h"
    value = "%s-%s-%s" % (school_part, host_part, suffix)
    value = value[:MAX_ID]
    if not valid_id(value):  # only if the school code itself is odd: fall back to safe chars
        value = re.sub(r"[^A-Za-z0-9._-]", "-", value).lstrip("-._") or ("d-" + suffix)
    return value


def _read_kept(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            value = fh.read().strip()
    except OSError:
        return None
    if valid_id(value):
        return value
    log.warning("ignoring the kept device id in %s: not a valid id", path)
    return None


def _keep(path: str, value: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, value + "\n")


def device_id(school: str, state_dir: str, configured: str = "",
              runner: Optional[CommandRunner] = None,
              hostname: Optional[str] = None, persist: bool = True,
              key_source: Optional[Callable[[], Optional[str]]] = None) -> str:
    """The device id: ``configured`` if set, else the kept one, else a new one (kept when
    ``persist``). ``persist=False`` (``collect``) never writes."""
    if configured:
        return configured
    path = os.path.join(state_dir, ID_FILE)
    kept = _read_kept(path)
    if kept:
        return kept
    key = key_source() if key_source is not None else machine_key(runner)
    suffix = suffix_for(key) if key else None
    if suffix is None:
        # No machine id: a random suffix, kept with the id so it stays stable.
        alphabet = "abcdefghijklmnopqrstuvwxyz234567"
        suffix = "".join(secrets.choice(alphabet) for _ in range(SUFFIX_LEN))
    value = make_id(school, hostname if hostname is not None else socket.gethostname(), suffix)
    if persist:
        try:
            _keep(path, value)
            log.info("device id %s generated and kept in %s", value, path)
        except OSError as exc:
            log.warning("could not keep the device id in %s: %s", path, exc)
    return value
