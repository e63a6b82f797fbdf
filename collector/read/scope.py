"""What a caller may see, and the error every read can answer with.

A ``scope`` is None (everything) or an iterable of organisation units and schools, each one
of

- an ``int`` or ``"unit:<id>"``: an organisation unit by id (and everything below it),
- ``"org:<code>"``: an organisation unit by code (``"lao-cai"``, ``"lao-cai/bat-xat"``),
- ``"school:<code>"``: one school by its MOET code,
- any other string: an organisation unit with that code if there is one, else a school code.
"""
import threading
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

from sqlalchemy import Connection, false, func, literal, select

from ..store.registry import descendant_units
from ..store.schema import org_units, schools

Scope = Optional[Iterable[Any]]


class QueryError(ValueError):
    """A request the data cannot answer (unknown metric, bad range); ``code`` names it."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


class Visible(frozenset):  # type: ignore[type-arg]
    """School codes already resolved (a request's Principal): :func:`resolve_scope` returns
    it as it is, without a query."""


def resolve_scope(conn: Connection, scope: Scope) -> Optional[FrozenSet[str]]:
    """The school codes a scope covers (None: everything)."""
    if scope is None:
        return None
    if isinstance(scope, Visible):
        return scope
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


class UnitSchools:
    """org unit code → the school codes in it and below it, built from the whole tree once
    and rebuilt only when the registry changed (any process: a cheap fingerprint of the
    two tables is compared first), so a scoped request does not reload the tree."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mark: Optional[Tuple[Any, ...]] = None
        self._by_code: Dict[str, FrozenSet[str]] = {}

    @staticmethod
    def _fingerprint(conn: Connection) -> Tuple[Any, ...]:
        u = conn.execute(select(func.count(), func.max(org_units.c.id),
                                func.sum(func.coalesce(org_units.c.parent_id, 0)))).one()
        s = conn.execute(select(func.count(), func.max(schools.c.updated_at),
                                func.sum(schools.c.org_unit_id))).one()
        return tuple(u) + tuple(s)

    def _build(self, conn: Connection) -> Dict[str, FrozenSet[str]]:
        units = conn.execute(select(org_units.c.id, org_units.c.parent_id,
                                    org_units.c.code)).all()
        children: Dict[Optional[int], List[int]] = {}
        for r in units:
            children.setdefault(r.parent_id, []).append(r.id)
        direct: Dict[int, Set[str]] = {}
        for s in conn.execute(select(schools.c.code, schools.c.org_unit_id)):
            direct.setdefault(s.org_unit_id, set()).add(s.code)
        out: Dict[str, FrozenSet[str]] = {}
        for r in units:
            codes: Set[str] = set()
            todo, seen = [r.id], set()
            while todo:
                u = todo.pop()
                if u in seen:
                    continue
                seen.add(u)
                codes |= direct.get(u, set())
                todo.extend(children.get(u, ()))
            out[r.code] = frozenset(codes)
        return out

    def invalidate(self) -> None:
        with self._lock:
            self._mark = None

    def by_code(self, conn: Connection) -> Dict[str, FrozenSet[str]]:
        """org unit code → its school codes (the same tree :meth:`visible` reads), for a
        caller resolving many scopes at once (notification routing: one per user)."""
        mark = self._fingerprint(conn)
        with self._lock:
            if mark != self._mark:
                self._by_code = self._build(conn)
                self._mark = mark
            return self._by_code

    def visible(self, conn: Connection, units: Iterable[Tuple[str, str]]) -> Visible:
        """The school codes of (kind, code) units: ("org", area code) or ("school", code)."""
        mark = self._fingerprint(conn)
        with self._lock:
            if mark != self._mark:
                self._by_code = self._build(conn)
                self._mark = mark
            by_code = self._by_code
        codes: Set[str] = set()
        for kind, code in units:
            if kind == "school":
                codes.add(code)
            else:
                codes |= by_code.get(code, frozenset())
        return Visible(codes)
