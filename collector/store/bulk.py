"""Bulk SQL: statements compiled once and run over many rows without SQLAlchemy's per-row
parameter processing (the dominant cost for 5,000-row batches)."""
import json
import re
from operator import attrgetter
from typing import Any, Dict, List, Optional, Sequence, Tuple

from sqlalchemy import JSON, Boolean, Connection, Engine, Float, Integer


def raw_cursor(conn: Connection) -> Any:
    """A DB-API cursor on the connection's own transaction (close it after use)."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None  # the connection is open: it is in a transaction
    return dbapi.cursor()


class BulkStatement:
    """A statement compiled once and run without SQLAlchemy's per-row parameter processing
    (the dominant cost for 5,000-row batches). SQLite: the DB-API's executemany. PostgreSQL:
    one ``INSERT ... SELECT FROM unnest(array, array, ...)`` per call (one statement and
    one round trip; arrays adapt in C). Values must be ready for the driver: JSON as text.
    Rows of one call must not repeat a conflict key (ON CONFLICT may touch a row once)."""

    def __init__(self, stmt: Any, engine: Engine, table: Any) -> None:
        compiled = stmt.compile(dialect=engine.dialect)
        self.sql = compiled.string
        if compiled.positional:
            self.keys: List[str] = list(compiled.positiontup or ())
            self._pg = False
            return
        # "INSERT INTO t (a, b) VALUES (%(a)s::VARCHAR, %(b)s) ON CONFLICT ...": keep the
        # head and the ON CONFLICT tail, replace the VALUES tuple by a SELECT over unnest.
        self._pg = True
        sql = self.sql
        i = sql.index(" VALUES (")
        j = sql.index(")", sql.index(" VALUES (") + 9)
        while sql[j + 1:j + 2] not in (" ", ""):  # a ")" inside a cast, e.g. VARCHAR(16)
            j = sql.index(")", j + 1)
        self.keys = re.findall(r"%\((\w+)\)s", sql[i:j + 1])
        arrays, picks = [], []
        for k in self.keys:
            t = table.c[k].type
            if isinstance(t, JSON):
                arrays.append("%b::text[]")
                picks.append("u.%s::json" % k)
                continue
            if isinstance(t, Boolean):
                arr = "bool"
            elif isinstance(t, Integer):  # BigInteger included
                arr = "int8"
            elif isinstance(t, Float):
                arr = "float8"
            else:
                arr = "text"
            arrays.append("%%b::%s[]" % arr)
            picks.append("u.%s" % k)
        self.sql = "%s SELECT %s FROM unnest(%s) AS u(%s)%s" % (
            sql[:i], ", ".join(picks), ", ".join(arrays), ", ".join(self.keys), sql[j + 1:])

    def _exec(self, conn: Connection, tuples: List[Tuple[Any, ...]]) -> None:
        if not self._pg:
            conn.exec_driver_sql(self.sql, tuples)
            return
        columns = [list(c) for c in zip(*tuples)]
        cur = raw_cursor(conn)
        try:
            cur.execute(self.sql, columns)
        finally:
            cur.close()

    def run_objects(self, conn: Connection, objs: Sequence[Any],
                    rename: Optional[Dict[str, str]] = None) -> None:
        """Rows from objects' attributes (column ``c`` from attribute ``rename.get(c, c)``)."""
        if objs:
            rename = rename or {}
            get = attrgetter(*[rename.get(k, k) for k in self.keys])
            self._exec(conn, [get(o) for o in objs])

    def run_tuples(self, conn: Connection, rows: List[Tuple[Any, ...]]) -> None:
        """Rows as tuples already in ``self.keys`` order (no per-row conversion)."""
        if rows:
            self._exec(conn, rows)

    def run(self, conn: Connection, rows: Sequence[Dict[str, Any]]) -> None:
        if rows:
            keys = self.keys
            self._exec(conn, [tuple([r[k] for k in keys]) for r in rows])


def to_json(value: Any) -> Optional[str]:
    if value is None:
        return None
    if not value:
        return "[]" if isinstance(value, list) else "{}"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
