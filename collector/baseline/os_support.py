"""The OS support table (``os_support.toml``): which vendor still ships security updates
for a device's operating system, judged on a given day.

A device is matched by its security message's ``os_id`` (else the inventory's
``os_name``), a version (Windows client: from the build, 22000+ is 11; others: the
inventory's ``os_version`` or the year in the edition), the feature update (inventory
``os_display``, else from the build) and the edition words. The first entry of the file
that matches wins. ``status``: ``supported``, ``esu`` (past the end, covered by Extended
Security Updates the device says it has), ``unsupported``, ``unknown`` (no entry, or ESU
not reported inside an ESU window).
"""
import datetime as _dt
import hashlib
import os
import re
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

import tomllib
from schoolmon.protocol.settings import ConfigError

SHIPPED_OS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "os_support.toml")
OS_KINDS = ("windows", "windows-server", "ubuntu", "debian")
SUPPORT_STATUSES = ("supported", "esu", "unsupported", "unknown")
_ENTRY_KEYS = {"os", "version", "display", "editions", "exclude", "end", "esu_end", "label",
               "source"}


class OsEntry(NamedTuple):
    os: str
    version: str
    display: Optional[str]
    editions: Tuple[str, ...]
    exclude: Tuple[str, ...]
    end: _dt.date
    esu_end: Optional[_dt.date]
    label: Dict[str, str]
    source: str


class OsSupport(NamedTuple):
    """A device's OS judged on a day."""
    status: str
    #: the day support ends (the ESU end while covered by ESU), None when unknown
    end: Optional[str]
    label: Optional[Dict[str, str]]


UNKNOWN_OS = OsSupport("unknown", None, None)


class OsTable(NamedTuple):
    entries: Tuple[OsEntry, ...]
    builds: Dict[int, Tuple[str, str]]
    source: str
    hash: str


def _date(value: Any, where: str) -> _dt.date:
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        return value
    try:
        return _dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError("%s: ngày phải là YYYY-MM-DD / a date must be YYYY-MM-DD, got %r"
                          % (where, value)) from None


def _words(text: str) -> str:
    return " " + " ".join(re.sub(r"[^a-z0-9.]+", " ", text.lower()).split()) + " "


def load_os_table(path: Optional[str] = None) -> OsTable:
    """The table from ``path`` (None: the shipped one); ConfigError names the entry."""
    src = path or SHIPPED_OS_FILE
    try:
        with open(src, "rb") as fh:
            raw = fh.read()
        data = tomllib.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise ConfigError("%s: không đọc được / cannot be read: %s" % (src, exc.strerror)) \
            from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("%s: %s" % (src, exc)) from None
    builds: Dict[int, Tuple[str, str]] = {}
    for k, v in (data.get("builds") or {}).items():
        if not (str(k).isdigit() and isinstance(v, list) and len(v) == 2):
            raise ConfigError("%s: builds.%s: cần [phiên bản, bản cập nhật] / needs "
                              "[version, feature update]" % (src, k))
        builds[int(k)] = (str(v[0]), str(v[1]))
    entries: List[OsEntry] = []
    for i, e in enumerate(data.get("os") or []):
        where = "%s: os[%d]" % (src, i + 1)
        unknown = set(e) - _ENTRY_KEYS
        if unknown:
            raise ConfigError("%s: khóa không biết / unknown key %s" % (where, sorted(unknown)[0]))
        if e.get("os") not in OS_KINDS or not e.get("version") or "end" not in e:
            raise ConfigError("%s: cần os (%s), version và end / needs os, version and end"
                              % (where, ", ".join(OS_KINDS)))
        label = e.get("label") or {}
        entries.append(OsEntry(
            e["os"], str(e["version"]), str(e["display"]) if e.get("display") else None,
            tuple(_words(x) for x in e.get("editions") or ()),
            tuple(_words(x) for x in e.get("exclude") or ()),
            _date(e["end"], where + ".end"),
            _date(e["esu_end"], where + ".esu_end") if e.get("esu_end") else None,
            {"vi": str(label.get("vi") or label.get("en") or e["version"]),
             "en": str(label.get("en") or label.get("vi") or e["version"])},
            str(e.get("source") or "")))
    return OsTable(tuple(entries), builds, "shipped" if path is None else src,
                   hashlib.sha256(raw).hexdigest())


def _build_number(build: Any) -> Optional[int]:
    m = re.match(r"\s*(\d+)", str(build or ""))
    return int(m.group(1)) if m else None


def identify(security: Mapping[str, Any], inventory: Mapping[str, Any],
             builds: Mapping[int, Tuple[str, str]]) -> Tuple[Optional[str], Optional[str],
                                                              Optional[str], str]:
    """(os kind, version, feature update, edition words) of a device."""
    name = str(inventory.get("os_name") or "")
    edition = str(inventory.get("os_edition") or "")
    version = str(inventory.get("os_version") or "")
    display = str(inventory.get("os_display") or "") or None
    kind = security.get("os_id") or None
    text = " ".join((name, version, edition)).lower()
    if kind is None:
        if "windows" in text:
            kind = "windows-server" if "server" in text else "windows"
        elif "ubuntu" in text:
            kind = "ubuntu"
        elif "debian" in text:
            kind = "debian"
    if kind == "windows":
        number = _build_number(inventory.get("os_build"))
        if number is not None and number in builds:
            version, from_build = builds[number]
            display = display or from_build or None
        elif number is not None and number >= 22000:
            version = "11"
        elif number is not None and number >= 10240:
            version = "10"
    elif kind == "windows-server":
        m = re.search(r"(20\d\d)( r2)?", text)
        version = (m.group(1) + (" R2" if m.group(2) else "")) if m else version
    elif kind in ("ubuntu", "debian"):
        m = re.search(r"(\d+(?:\.\d+)?)", version or edition)
        if m:
            version = m.group(1)
            if kind == "debian":
                version = version.split(".")[0]
            elif version.count(".") == 0:
                version = version
    return kind, version or None, display, _words(edition)


def judge(table: OsTable, security: Mapping[str, Any], inventory: Mapping[str, Any],
          today: _dt.date) -> OsSupport:
    """The support status of a device's OS on ``today`` (UTC date of the evaluation)."""
    kind, version, display, edition = identify(security, inventory, table.builds)
    if kind is None or version is None:
        return UNKNOWN_OS
    for e in table.entries:
        if e.os != kind or e.version.lower() != version.lower():
            continue
        if e.display is not None and (display or "").lower() != e.display.lower():
            continue
        if e.editions and not any(w in edition for w in e.editions):
            continue
        if any(w in edition for w in e.exclude):
            continue
        if today <= e.end:
            return OsSupport("supported", e.end.isoformat(), e.label)
        if e.esu_end is not None and today <= e.esu_end:
            esu = security.get("esu")
            if esu is True:
                return OsSupport("esu", e.esu_end.isoformat(), e.label)
            if esu is None:
                return OsSupport("unknown", e.end.isoformat(), e.label)
        return OsSupport("unsupported", e.end.isoformat(), e.label)
    return UNKNOWN_OS


def listing(table: OsTable) -> List[Dict[str, Any]]:
    """The table as ``GET /api/v1/baselines`` shows it (labels in both languages)."""
    return [{"os": e.os, "version": e.version, "display": e.display,
             "edition": ", ".join(w.strip() for w in e.editions) or None,
             "end": e.end.isoformat(), "esu_end": e.esu_end.isoformat() if e.esu_end else None,
             "label": e.label, "source": e.source} for e in table.entries]
