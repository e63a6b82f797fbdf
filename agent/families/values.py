"""Small value cleaners the families share (what they read from the OS is untidy)."""
from typing import Any, Dict, Optional, Tuple

# Placeholders board makers leave in DMI/SMBIOS: not a vendor, model or serial.
PLACEHOLDERS = {
    "", "to be filled by o.e.m.", "to be filled by oem", "default string", "system serial number",
    "system product name", "system manufacturer", "none", "not specified", "not applicable",
    "o.e.m.", "oem", "0", "0123456789", "123456789", "00000000", "xxxxxxxxxxxx", "n/a",
    "chassis serial number", "invalid", "unknown",
}


def clean(value: Any) -> Optional[str]:
    """A trimmed string, or None for an empty value or a known placeholder."""
    if value is None:
        return None
    text = " ".join(str(value).split())  # also folds the space padding WMI gives serials
    if text.lower() in PLACEHOLDERS:
        return None
    return text


def to_int(value: Any) -> Optional[int]:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def put(out: Dict[str, Any], key: str, value: Any) -> None:
    """Set a field only when there is a value (a field we could not read is left out)."""
    if value is not None and value != "" and value != []:
        out[key] = value


def read_text(path: str) -> Optional[str]:
    """A text file's content, or None when it is missing or unreadable (root-only)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def disk_key(d: Dict[str, Any]) -> Tuple[str, int, str]:
    """Disks sorted so an unchanged machine gives an equal list."""
    return (d.get("model", ""), d.get("size", 0), d.get("serial", ""))
