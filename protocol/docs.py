"""Write docs/protocol.md from the catalogue: ``python -m schoolmon.protocol.docs``."""
import sys
from typing import List, Tuple

from .catalogue import ENVELOPE, FAMILIES, MAX_PAYLOAD_BYTES, Field
from .errors import REASON_MEANINGS
from .topics import CMD_KIND, PREFIX, UP_KINDS

HEADER = """# schoolmon wire format (v1)

Generated from `protocol/catalogue.py` by `python -m schoolmon.protocol.docs`;
a test fails when this file and the catalogue disagree. Do not edit by hand.

## Topics
`{prefix}/{{school}}/{{device}}/{{kind}}` — `{{school}}` is the school's MOET code,
`{{device}}` the device id (also its MQTT username and client id). Ids are 1–64 of
`A–Z a–z 0–9 . _ -`, starting with a letter or digit.

- Up (device → collector): {up}.
- Down (collector → one device): `{cmd}`.
- `status` and `inventory` are retained; data messages go at QoS 1.

## Envelope and encoding
Every payload is one compact UTF-8 JSON object (no NaN or Infinity), at most
{limit} bytes ({limit_kib} KiB), checked by the sender and again by the receiver. A field
that could not be measured is left out, never sent as 0 or null.

## Versioning
- Within topic version `v1`, adding an optional field keeps the family's `v`;
  receivers ignore fields they do not know.
- Changing the meaning, unit or type of a field raises that family's `v`; receivers
  accept every `v` they know and refuse newer ones (`unknown_version`).
- Changing the envelope or the topic layout is a new topic version (`schoolmon/v2/...`);
  the collector keeps accepting v1 while deployed agents still send it.

## Reasons a message is refused
{reasons}
"""


def _rows(fields: Tuple[Field, ...], prefix: str = "") -> List[str]:
    rows = []
    for f in fields:
        kind = f.type
        if f.type == "list":
            kind = "list of %s" % f.item_type
        elif f.type == "objects":
            kind = "list of objects"
        bounds = ""
        if f.choices:
            bounds = " / ".join("`%s`" % c for c in f.choices)
        elif f.minimum is not None or f.maximum is not None:
            bounds = "%s … %s" % (_num(f.minimum), _num(f.maximum))
        rows.append("| `%s%s` | %s | %s | %s | %s | %s |" % (
            prefix, f.name, kind, f.unit or "", "yes" if f.required else "", bounds,
            f.description))
        if f.items:
            rows.extend(_rows(f.items, prefix + f.name + "[]."))
    return rows


def _num(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def render() -> str:
    out = [HEADER.format(prefix=PREFIX, up=", ".join("`%s`" % k for k in UP_KINDS),
                         cmd=CMD_KIND, limit=MAX_PAYLOAD_BYTES,
                         limit_kib=MAX_PAYLOAD_BYTES // 1024,
                         reasons="\n".join("- `%s`: %s" % kv for kv in REASON_MEANINGS.items()))]
    table = ["| field | type | unit | required | range | meaning |",
             "|---|---|---|---|---|---|"]
    out.append("## Envelope (every family)\n")
    out.extend(table + _rows(ENVELOPE))
    for fam in FAMILIES.values():
        out.append("\n## `%s` (v%d)\n\n%s\n" % (fam.kind, fam.version, fam.description))
        out.extend(table + _rows(fam.fields))
    undefined = [k for k in UP_KINDS if k not in FAMILIES]
    if undefined:
        out.append("\nKinds of the contract not yet defined in this version: %s. "
                   "Messages of these kinds are refused as `unknown_kind`."
                   % ", ".join("`%s`" % k for k in undefined))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
