"""InfluxDB line protocol: escaping, tag sets, and the code generator for field sets.

Shared by the families (which write the bodies of their lines, see ``collector/families``)
and the time-series writer (which puts the tags in front, see ``collector/timeseries.py``).
"""
from typing import Dict, List, Tuple

#: Tag keys, in the (sorted) order InfluxDB likes best.
TAG_KEYS = ("area", "device", "province", "role", "school")

#: A line without its tags: (measurement, "[,extra=tag] fields ts"); the full line is
#: measurement + tag_prefix + rest. Bodies need only the payload, so ingest builds them
#: while decoding, before the store has said which tags a message gets.
Body = Tuple[str, str]

_TAG_ESCAPE = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\ ", "\r": "\\ ",
                             "\t": "\\ ", "\\": "/"})


def escape_tag(value: str) -> str:
    """Escape a tag key or value (and field keys) for line protocol.

    Commas, equals signs and spaces are backslash-escaped; newlines and tabs become
    (escaped) spaces; a backslash becomes ``/`` (a Windows ``C:\\`` would otherwise end
    in an escape character; InfluxDB and VictoriaMetrics disagree on backslashes).
    """
    return value.translate(_TAG_ESCAPE)


def escape_measurement(value: str) -> str:
    return value.replace("\\", "/").replace(",", "\\,").replace(" ", "\\ ")


def tag_prefix(tags: Dict[str, str]) -> str:
    """``,area=...,device=...`` (empty values left out: line protocol forbids them)."""
    parts = []
    for k in TAG_KEYS:
        v = tags.get(k)
        if v:
            parts.append("," + k + "=" + escape_tag(str(v)))
    return "".join(parts)


def field_code(name: str, field_type: str, source: str, required: bool, indent: str) -> List[str]:
    """Generated code appending ``name=value`` for one numeric field of ``source`` to ``a``.

    Every number is written as a float (no ``i`` suffix): a field one agent sends as ``45``
    and another as ``45.5`` would otherwise be a type conflict that rejects the batch.
    Booleans are written as 1 / 0."""
    value = "%s[%r]" % (source, name) if required else "%s_get(%r)" % (source, name)
    code = [indent + "v = " + value]
    if field_type == "bool":
        put = "a(%r if v else %r)" % (name + "=1", name + "=0")
    else:  # int or float on the wire: repr() is exact, and without "i" a float field
        put = "a(%r %% (v,))" % (name + "=%r")
    if required:
        return code + [indent + put]
    return code + [indent + "if v is not None:", indent + "    " + put]
