"""What a caller may see, and the error every read can answer with.

A ``scope`` is None (everything) or an iterable of organisation units and schools, each one
of

- an ``int`` or ``"unit:<id>"``: an organisation unit by id (and everything below it),
- ``"org:<code>"``: an organisation unit by code (``"lao-cai"``, ``"lao-cai/bat-xat"``),
- ``"school:<code>"``: one school by its MOET code,
- any other string: an organisation unit with that code if there is one, else a school code.
"""
from typing import Any, FrozenSet, Iterable, Optional, Set

from sqlalchemy import Connection, false, literal, select

from ..store.registry import descendant_units
from ..store.schema import org_units, schools

Scope = Optional[Iterable[Any]]


class QueryError(ValueError):
    """A request the data cannot answer (unknown metric, bad range); ``code`` names it."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


def resolve_scope(conn: Connection, scope: Scope) -> Optional[FrozenSet[str]]:
    """The school codes a scope covers (None: everything)."""
    if scope is None:
        return None
    unit_ids: Set[int] = set()
    codes: Set[str] = set()
    unit_codes: Set[str] = set()
    plain: Set[str] = set()
    for item in scope:
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            unit_ids.add(item)
            continue
        s = str(item)
        kind, sep, rest = s.partition(":")
        if sep and kind == "unit" and rest.isascii() and rest.isdigit():
            unit_ids.add(int(rest))
        elif sep and kind == "org":
            unit_codes.add(rest)
        elif sep and kind == "school":
            codes.add(rest)
        else:
            plain.add(s)
    if unit_codes or plain:
        wanted = unit_codes | plain
        found = {r.code: r.id for r in conn.execute(
            select(org_units.c.id, org_units.c.code).where(org_units.c.code.in_(wanted)))}
        unit_ids.update(found.values())
        codes.update(p for p in plain if p not in found)
    if unit_ids:
        units = descendant_units(conn, unit_ids)
        codes.update(conn.execute(select(schools.c.code)
                                  .where(schools.c.org_unit_id.in_(units))).scalars())
    return frozenset(codes)


def school_filter(column: Any, visible: Optional[FrozenSet[str]]) -> Any:
    """A WHERE clause keeping the rows of ``column`` (a school code) in ``visible``."""
    if visible is None:
        return literal(True)
    if not visible:
        return false()
    return column.in_(sorted(visible))


def storable(text: str) -> bool:
    """False for text no stored code or name can equal (NUL, which PostgreSQL refuses to
    even compare): the caller answers "not found" without asking the database."""
    return "\x00" not in text
