"""The agent's one message builder: runtime, transport (status) and ``collect`` all encode
through ``build_message``, so what ``collect`` prints is exactly what ``run`` publishes.

Text from the OS is not always valid Unicode: a network interface or mount point whose name
is not UTF-8 reaches Python with lone surrogates (``'eth\\udcff'``, surrogateescape), and
Windows can hand over unpaired UTF-16 halves. Such a string cannot be encoded as UTF-8 and
the collector refuses it anyway, so every string is made valid here, before sanitizing:
each surrogate becomes U+FFFD and NUL characters are removed.
"""
from typing import Any, Dict, Optional

from schoolmon.protocol import encode, envelope, sanitize, validate

REPLACEMENT = "\ufffd"


def valid_text(value: Any) -> Any:
    """``value`` with every string in it (dict keys, lists, nested objects) valid Unicode
    without NUL. Values that need no change are returned as they are."""
    if isinstance(value, str):
        return _valid_str(value)
    if isinstance(value, dict):
        return {_valid_str(k) if isinstance(k, str) else k: valid_text(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [valid_text(v) for v in value]
    return value


def _valid_str(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join(REPLACEMENT if "\ud800" <= ch <= "\udfff" else ch for ch in text)


def build_message(kind: str, fields: Dict[str, Any], seq: int, ts: float,
                  log: Optional[Any] = None) -> bytes:
    """Envelope, valid text, sanitize (drop optional fields that would not validate,
    logged on ``log``), validate and encode one message. Raises ProtocolError when a
    required field is wrong or the payload is too large."""
    msg = sanitize(kind, envelope(kind, valid_text(fields), seq, int(ts)), log)
    validate(kind, msg)
    return encode(msg)


def status_fields(state: str, agent: str, reason: str = "",
                  hb: Optional[float] = None) -> Dict[str, Any]:
    """A ``status`` message's fields: ``online`` names the agent version and its health
    interval (left out below the catalogue's 5 s: a test agent may go faster)."""
    fields: Dict[str, Any] = {"state": state}
    if reason:
        fields["reason"] = reason
    if state == "online":
        fields["agent"] = agent
        if hb is not None and hb >= 5:
            fields["hb"] = int(hb)
    return fields
