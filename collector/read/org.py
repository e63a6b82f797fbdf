"""The organisation tree, province → area → school, with counts summed up the tree
(``GET /api/v1/org``)."""
import time
from typing import Any, Dict, List, Optional, Set

from sqlalchemy import Connection, select

from ..alerting.calendar import Calendar
from ..store.schema import schools
from ..text import sort_key
from . import connectivity as conn_read
from .counts import NO_DEVICES, school_counts
from .hours import off_hours_at
from .posture import NOT_MEETING, counts_note, evaluated, school_statuses, tally
from .schools import units_by_id
from .scope import Scope, resolve_scope, school_filter


def _zero_counts() -> Dict[str, int]:
    return {"schools": 0, "devices": 0, "online": 0, "offline": 0, "off_hours": 0,
            "pending": 0, "schools_online": 0, "schools_partial": 0, "schools_offline": 0,
            "schools_off_hours": 0,
            "schools_no_devices": 0, "attt_below_baseline": 0,
            "connectivity_below_baseline": 0}


def org_tree(conn: Connection, scope: Scope, include_schools: bool = True,
             calendar: Optional[Calendar] = None, now: Optional[float] = None
             ) -> Dict[str, Any]:
    """Province → area → school with rollup counts, each level in Vietnamese order (units
    first, then schools). With a scope, only the schools in it and the units above them
    appear, and counts cover only those schools. ``include_schools=False`` leaves the
    schools out (units and their counts only). Statuses at ``now`` on ``calendar``
    (read/hours.py: lab PCs off at night are ``off_hours``, not offline)."""
    now = time.time() if now is None else now
    visible = resolve_scope(conn, scope)
    units = units_by_id(conn)
    counts = school_counts(conn, visible, now)
    hours = off_hours_at(conn, calendar, now, visible)
    statuses = school_statuses(conn, visible)
    is_evaluated = evaluated(conn)
    link_statuses = conn_read.school_statuses(conn, visible)
    codes: List[str] = []
    q = (select(schools.c.code, schools.c.name, schools.c.level, schools.c.org_unit_id)
         .where(school_filter(schools.c.code, visible)))
    nodes: Dict[int, Dict[str, Any]] = {}

    def node(uid: int) -> Dict[str, Any]:
        if uid not in nodes:
            u = units[uid]
            nodes[uid] = {"type": "unit", "id": u.id, "code": u.code, "name": u.name,
                          "level": u.level, "parent_id": u.parent_id,
                          "former": bool(u.former),  # abolished (2025 reform): "(cũ)"
                          "counts": _zero_counts(), "children": []}
        return nodes[uid]

    for r in conn.execute(q):
        sc = counts.get(r.code, NO_DEVICES)
        n, on = sc.n, sc.online
        excused = hours.excused(sc, r.code)
        st = hours.school_status(on, n, excused)
        codes.append(r.code)
        attt = statuses.get(r.code, "not_evaluated")
        link_st = conn_read.status_of(link_statuses, r.code)
        leaf = {"type": "school", "code": r.code, "name": r.name, "level": r.level,
                "status": st, "last_seen": sc.last_seen, "attt": {"status": attt},
                "connectivity": {"status": link_st},
                "counts": {"devices": n, "online": on, "offline": n - on - excused,
                           "off_hours": excused, "pending": sc.pending}}
        uid: Optional[int] = r.org_unit_id
        if uid not in units:
            continue
        if include_schools:
            node(uid)["children"].append(leaf)
        else:
            node(uid)
        seen: Set[int] = set()
        while uid is not None and uid in units and uid not in seen:
            seen.add(uid)
            c = node(uid)["counts"]
            c["schools"] += 1
            c["devices"] += n
            c["online"] += on
            c["offline"] += n - on - excused
            c["off_hours"] += excused
            c["pending"] += sc.pending
            c["schools_" + st] += 1
            by = c.setdefault("attt_by_status", {})
            by[attt] = by.get(attt, 0) + 1
            if attt in NOT_MEETING:
                c["attt_below_baseline"] += 1
            by = c.setdefault("connectivity_by_status",
                              {s: 0 for s in conn_read.SORT_ORDER})
            by[link_st] += 1
            if link_st in conn_read.NOT_MEETING:
                c["connectivity_below_baseline"] += 1
            uid = units[uid].parent_id
    if visible is None:  # show empty units too when the caller sees everything
        for uid in units:
            node(uid)
    roots: List[Dict[str, Any]] = []
    for uid in sorted(nodes, key=lambda i: (sort_key(units[i].name), i)):
        nd = nodes[uid]
        parent = nd["parent_id"]
        if parent is not None and parent in nodes and parent != uid:
            nodes[parent]["children"].append(nd)
        else:
            roots.append(nd)
    for nd in nodes.values():  # units first, then schools, each in Vietnamese order
        nd["children"].sort(key=lambda c: (c["type"] != "unit", sort_key(c["name"]),
                                           c.get("code") or ""))
    total = _zero_counts()
    for root in roots:
        for k in total:
            total[k] += root["counts"][k]
    link_tally = conn_read.tally(link_statuses, codes)
    rollup: Dict[str, Any] = dict(total, attt_by_status=tally(statuses, codes),
                                  connectivity_by_status=link_tally)
    return {"roots": roots, "counts": rollup,
            "below_baseline": conn_read.fill_note(counts_note(tally(statuses, codes),
                                                              is_evaluated),
                                                  link_tally, conn_read.evaluated(conn))}
