"""The fleet registry: organisation units (province → area → school) and schools.

The level between province and school is data (docs/field.md, the 2025 reform): an "area" is
whatever the province groups schools by (a former district, a commune, a cluster). Units
are identified by ``code``: the province's code, and ``"{province}/{area}"`` for areas,
both made from names by ``slug`` unless given.

Functions take a SQLAlchemy ``Connection`` (inside the caller's transaction) unless they
say ``engine``; those open their own transaction.
"""
import re
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from sqlalchemy import Connection, Engine, func, select, update

from ..text import SCHOOL_LEVELS, fold
from .schema import devices, dialect_insert, org_units, schools

#: School levels (cấp học): code -> Vietnamese name, and -> English name (text.SCHOOL_LEVELS).
LEVELS: Dict[str, str] = {code: names["vi"] for code, names in SCHOOL_LEVELS.items()}
LEVEL_NAMES_EN: Dict[str, str] = {code: names["en"] for code, names in SCHOOL_LEVELS.items()}

#: Optional school columns that can be set through add_school / import.
SCHOOL_FIELDS = ("address", "lat", "lon", "isp", "link_type", "contracted_down_mbps",
                 "contracted_up_mbps", "students", "contact_name", "contact_phone",
                 "contact_email")


def slug(text: str) -> str:
    """A code made from a name: ``"Huyện Bát Xát"`` → ``"huyen-bat-xat"``."""
    s = re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")
    return s[:96] or "x"


_LEVEL_ALIASES: Dict[str, str] = {}


def _alias(code: str, *names: str) -> None:
    for n in names + (code,):
        _LEVEL_ALIASES[re.sub(r"[^a-z0-9]", "", fold(n))] = code


_alias("MN", "mầm non", "mẫu giáo", "nhà trẻ", "trường mầm non", "preschool", "kindergarten")
_alias("TH", "tiểu học", "trường tiểu học", "primary", "primary school")
_alias("THCS", "trung học cơ sở", "trường thcs", "lower secondary", "junior secondary")
_alias("THPT", "trung học phổ thông", "trường thpt", "upper secondary", "senior secondary",
       "high school")
_alias("GDNN-GDTX", "gdnn", "gdtx", "gdnn gdtx", "trung tâm gdnn-gdtx", "trung tâm gdtx",
       "giáo dục nghề nghiệp - giáo dục thường xuyên", "giáo dục thường xuyên",
       "giáo dục nghề nghiệp", "ttgdnn-gdtx", "vocational", "continuing education")
_alias("LIEN-CAP", "liên cấp", "lien cap", "lc", "nhiều cấp", "phổ thông nhiều cấp",
       "th-thcs", "th&thcs", "th và thcs", "thcs-thpt", "thcs&thpt", "thcs và thpt",
       "th-thcs-thpt", "ptdtbt th&thcs", "multi-level", "multilevel", "multi level")


def normalize_level(text: str) -> Optional[str]:
    """A level code from a code or a Vietnamese/English name; None when unknown."""
    key = re.sub(r"[^a-z0-9]", "", fold(str(text)))
    if not key:
        return None
    return _LEVEL_ALIASES.get(key)


# --- organisation units ---------------------------------------------------------------

def ensure_unit(conn: Connection, code: str, name: str, level: str,
                parent_id: Optional[int] = None) -> int:
    """The id of the unit with this code, created (or renamed / re-parented) as needed."""
    row = conn.execute(select(org_units.c.id, org_units.c.name, org_units.c.parent_id,
                              org_units.c.level).where(org_units.c.code == code)).first()
    if row is None:
        key = conn.execute(org_units.insert().values(
            code=code, name=name, level=level, parent_id=parent_id)).inserted_primary_key
        assert key is not None  # an INSERT always has one
        return int(key[0])
    if (row.name, row.parent_id, row.level) != (name, parent_id, level):
        conn.execute(update(org_units).where(org_units.c.id == row.id)
                     .values(name=name, parent_id=parent_id, level=level))
    return int(row.id)


def ensure_province(conn: Connection, name: str, code: Optional[str] = None) -> int:
    return ensure_unit(conn, code or slug(name), name, "province", None)


def area_code(province_code: str, area: str) -> str:
    return "%s/%s" % (province_code, slug(area))


def ensure_area(conn: Connection, province: str, area: str, level: str = "area",
                province_code: Optional[str] = None, code: Optional[str] = None) -> int:
    """The area unit ``area`` under province ``province`` (names; codes made by slug)."""
    pcode = province_code or slug(province)
    pid = ensure_province(conn, province, pcode)
    return ensure_unit(conn, code or area_code(pcode, area), area, level, pid)


def descendant_units(conn: Connection, unit_ids: Iterable[int]) -> Set[int]:
    """The given units and every unit below them (for scoping API queries)."""
    rows = conn.execute(select(org_units.c.id, org_units.c.parent_id)).all()
    children: Dict[Optional[int], List[int]] = {}
    for r in rows:
        children.setdefault(r.parent_id, []).append(r.id)
    out: Set[int] = set()
    todo = list(unit_ids)
    while todo:
        u = todo.pop()
        if u in out:
            continue
        out.add(u)
        todo.extend(children.get(u, ()))
    return out


def schools_under(conn: Connection, unit_ids: Iterable[int]) -> List[str]:
    """Codes of the schools in the given units (and below them)."""
    units = descendant_units(conn, unit_ids)
    if not units:
        return []
    return list(conn.execute(select(schools.c.code)
                             .where(schools.c.org_unit_id.in_(units))).scalars())


def unit_by_code(conn: Connection, code: str) -> Optional[Dict[str, Any]]:
    row = conn.execute(select(org_units).where(org_units.c.code == code)).first()
    return dict(row._mapping) if row else None


def org_units_all(conn: Connection) -> List[Dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(org_units).order_by(org_units.c.id))]


def school_tags(conn: Connection) -> Dict[str, Tuple[str, str]]:
    """school code -> (province code, area code), for time-series tags."""
    area = org_units.alias("area")
    prov = org_units.alias("prov")
    q = (select(schools.c.code, area.c.code.label("area"), prov.c.code.label("province"))
         .join(area, area.c.id == schools.c.org_unit_id)
         .outerjoin(prov, prov.c.id == area.c.parent_id))
    return {r.code: (r.province or r.area, r.area) for r in conn.execute(q)}


# --- schools ----------------------------------------------------------------------------

def upsert_schools(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> Tuple[int, int]:
    """Insert or update schools. Each row: code, name, level (a code), org_unit_id, and any
    of SCHOOL_FIELDS. Returns (created, updated)."""
    if not rows:
        return 0, 0
    codes = [r["code"] for r in rows]
    existing: Set[str] = set()
    for i in range(0, len(codes), 500):
        existing.update(conn.execute(select(schools.c.code)
                                     .where(schools.c.code.in_(codes[i:i + 500]))).scalars())
    now = time.time()
    params = []
    for r in rows:
        p: Dict[str, Any] = {k: r.get(k) for k in SCHOOL_FIELDS}
        p.update(code=r["code"], name=r["name"], level=r["level"],
                 org_unit_id=r["org_unit_id"], created_at=now, updated_at=now)
        params.append(p)
    stmt = dialect_insert(conn, schools)
    cols = ["name", "level", "org_unit_id", "updated_at", *SCHOOL_FIELDS]
    stmt = stmt.on_conflict_do_update(index_elements=["code"],
                                      set_={c: stmt.excluded[c] for c in cols})
    conn.execute(stmt, params)
    updated = sum(1 for c in codes if c in existing)
    return len(rows) - updated, updated


def add_school(engine: Engine, code: str, name: str, level: str, area: str, province: str,
               **fields: Any) -> None:
    """Add or update one school, creating its area and province (demo, simulator, tests).

    ``level`` may be a code or a name ("Tiểu học"); ``fields`` are any of SCHOOL_FIELDS.
    """
    add_schools(engine, [dict(fields, code=code, name=name, level=level, area=area,
                              province=province)])


def add_schools(engine: Engine, rows: Iterable[Mapping[str, Any]]) -> Tuple[int, int]:
    """Add or update many schools in one transaction: rows with code, name, level, area,
    province (names) and any of SCHOOL_FIELDS. Returns (created, updated)."""
    out: List[Dict[str, Any]] = []
    units: Dict[Tuple[str, str], int] = {}
    with engine.begin() as conn:
        for r in rows:
            level = normalize_level(r["level"])
            if level is None:
                raise ValueError("unknown school level %r" % (r["level"],))
            key = (r["province"], r["area"])
            if key not in units:
                units[key] = ensure_area(conn, r["province"], r["area"])
            row = {k: r.get(k) for k in SCHOOL_FIELDS}
            row.update(code=r["code"], name=r["name"], level=level, org_unit_id=units[key])
            out.append(row)
        return upsert_schools(conn, out)


def approve_device(engine: Engine, device_id: str, role: Optional[str] = None,
                   room: Optional[str] = None) -> bool:
    """Mark a pending device active (optionally setting role/room). False if unknown.

    The row's ``rev`` goes up, so a running StateStore re-reads it before its next write
    for this device (its cache never overwrites the approval)."""
    values: Dict[str, Any] = {"state": "active", "rev": func.coalesce(devices.c.rev, 0) + 1}
    if role:
        values["role"] = role
    if room:
        values["room"] = room
    with engine.begin() as conn:
        res = conn.execute(update(devices).where(devices.c.id == device_id).values(**values))
        return bool(res.rowcount)


def _bump(values: Dict[str, Any]) -> Dict[str, Any]:
    # rev + 1: a running StateStore re-reads the row before its next write for this device
    # (its cached copy never overwrites what a person decided)
    values["rev"] = func.coalesce(devices.c.rev, 0) + 1
    return values


def device_school(conn: Connection, device_id: str) -> Optional[Tuple[str, str]]:
    """(school code, state) of a device, None when unknown."""
    row = conn.execute(select(devices.c.school_code, devices.c.state)
                       .where(devices.c.id == device_id)).first()
    return None if row is None else (row.school_code, row.state)


def set_device_state(conn: Connection, device_id: str, state: str) -> bool:
    """Approve (``active``) or retire (``retired``) one device. A retired device keeps its
    rows and history; ingest never changes a device's state back (only a person does)."""
    res = conn.execute(update(devices).where(devices.c.id == device_id)
                       .values(**_bump({"state": state})))
    return bool(res.rowcount)


def move_device(conn: Connection, device_id: str, room: str) -> bool:
    res = conn.execute(update(devices).where(devices.c.id == device_id)
                       .values(**_bump({"room": room})))
    return bool(res.rowcount)


def approve_school_devices(conn: Connection, school_code: str) -> List[str]:
    """Approve every pending device of a school; the ids approved."""
    ids = sorted(conn.execute(select(devices.c.id).where(devices.c.school_code == school_code,
                                                          devices.c.state == "pending"))
                 .scalars())
    if ids:
        conn.execute(update(devices).where(devices.c.id.in_(ids))
                     .values(**_bump({"state": "active"})))
    return ids


def rename_unit(conn: Connection, code: str, name: str,
                now: Optional[float] = None) -> Optional[Tuple[str, str]]:
    """Rename an org unit keeping its id (its schools and their history stay) and its old
    name in ``previous_names``; (old, new) or None when unknown."""
    row = conn.execute(select(org_units.c.id, org_units.c.name, org_units.c.previous_names)
                       .where(org_units.c.code == code)).first()
    if row is None:
        return None
    if row.name != name:
        previous = list(row.previous_names or [])
        previous.append({"name": row.name, "until": now or time.time()})
        conn.execute(update(org_units).where(org_units.c.id == row.id)
                     .values(name=name, previous_names=previous))
    return row.name, name


def set_unit_former(conn: Connection, code: str, former: bool = True) -> bool:
    """Mark an org unit as former ("(cũ)": abolished by the 2025 reform) or current again."""
    res = conn.execute(update(org_units).where(org_units.c.code == code)
                       .values(former=former))
    return bool(res.rowcount)
