"""Rollups and retention: 5-minute rollups built while ingesting (``add_to_rollup`` in
``prepare``, one upsert per batch), hourly rollups built from them and everything pruned
past its retention (``maintain``, run periodically by the service)."""
import time
from typing import Any, Dict, List, Optional

from sqlalchemy import Engine, case, delete, func, literal_column, or_, select

from .bulk import BulkStatement
from .schema import ROLLUP_METRICS, dialect_insert, events, rollup_1h, rollup_5m, rollup_dirty

BUCKET_5M = 300
BUCKET_1H = 3600

#: A 5-minute rollup being built: [n, then per metric of ROLLUP_METRICS: count, min, max,
#: sum] — the columns of ``rollup_5m`` after (device_id, bucket_start), in table order.
ROLLUP_BLANK: List[Any] = [0] + [0, None, None, None] * len(ROLLUP_METRICS)


def add_to_rollup(agg: List[Any], values: List[Optional[float]]) -> None:
    """Add one message's metric values (ROLLUP_METRICS order, None: not sent) to ``agg``."""
    agg[0] += 1
    j = 1
    for v in values:
        if v is not None:
            if agg[j]:
                agg[j] += 1
                if v < agg[j + 1]:
                    agg[j + 1] = v
                if v > agg[j + 2]:
                    agg[j + 2] = v
                agg[j + 3] += v
            else:
                agg[j] = 1
                agg[j + 1] = agg[j + 2] = agg[j + 3] = v
        j += 4


def rollup_upsert(engine: Engine) -> BulkStatement:
    """The batch's 5-minute rollup rows merged into ``rollup_5m``; rows are tuples
    (device_id, bucket_start, *agg) in table order."""
    pg = engine.dialect.name == "postgresql"
    least = func.least if pg else func.min
    greatest = func.greatest if pg else func.max
    ins = dialect_insert(engine, rollup_5m)
    t = rollup_5m
    ex = ins.excluded
    set_: Dict[str, Any] = {"n": t.c.n + ex.n}
    for m in ROLLUP_METRICS:
        mn, mx, sm, cn = m + "_min", m + "_max", m + "_sum", m + "_n"
        set_[cn] = t.c[cn] + ex[cn]
        set_[mn] = least(func.coalesce(t.c[mn], ex[mn]), func.coalesce(ex[mn], t.c[mn]))
        set_[mx] = greatest(func.coalesce(t.c[mx], ex[mx]), func.coalesce(ex[mx], t.c[mx]))
        set_[sm] = case((t.c[sm].is_(None), ex[sm]), (ex[sm].is_(None), t.c[sm]),
                        else_=t.c[sm] + ex[sm])
    st = BulkStatement(ins.on_conflict_do_update(
        index_elements=["device_id", "bucket_start"], set_=set_), engine, rollup_5m)
    if st.keys != [c.name for c in rollup_5m.c]:  # pragma: no cover - a programming error
        raise RuntimeError("rollup_5m upsert does not take its columns in table order")
    return st


def mark_dirty_hours(engine: Engine) -> Any:
    """Statement marking hours whose 5-minute rollups changed (rows {"bucket_start": h})."""
    ins = dialect_insert(engine, rollup_dirty)
    return ins.on_conflict_do_nothing(index_elements=["bucket_start"])


def maintain(engine: Engine, rollup_5m_days: int, rollup_1h_days: int,
             now: Optional[float] = None) -> Dict[str, int]:
    """Build hourly rollups for every hour whose 5-minute rollups changed, then prune
    5-minute rollups, hourly rollups and events past their retention. Idempotent."""
    now = time.time() if now is None else now
    r5, r1, dirty = rollup_5m, rollup_1h, rollup_dirty
    out = {"hours": 0, "pruned_5m": 0, "pruned_1h": 0, "pruned_events": 0}
    with engine.begin() as conn:
        hours = set(conn.execute(select(dirty.c.bucket_start)).scalars())
        out["hours"] = len(hours)
        if hours:
            # Also the two most recent hours: a commit racing this transaction may have
            # found its hour already marked dirty just before we cleared the mark.
            cur_hour = int(now) // BUCKET_1H * BUCKET_1H
            hours.update((cur_hour, cur_hour - BUCKET_1H))
        ordered = sorted(hours)
        if ordered:
            conn.execute(delete(dirty).where(dirty.c.bucket_start.in_(ordered)))
            hour = r5.c.bucket_start - r5.c.bucket_start % literal_column(str(BUCKET_1H))
            cols = [r5.c.device_id, hour.label("bucket_start"), func.sum(r5.c.n)]
            names = ["device_id", "bucket_start", "n"]
            for m in ROLLUP_METRICS:
                cols += [func.sum(r5.c[m + "_n"]), func.min(r5.c[m + "_min"]),
                         func.max(r5.c[m + "_max"]), func.sum(r5.c[m + "_sum"])]
                names += [m + "_n", m + "_min", m + "_max", m + "_sum"]
            for i in range(0, len(ordered), 200):
                chunk = ordered[i:i + 200]
                conds = [r5.c.bucket_start.between(h, h + BUCKET_1H - 1) for h in chunk]
                sel = select(*cols).where(or_(*conds)).group_by(r5.c.device_id, hour)
                ins = dialect_insert(conn, r1).from_select(names, sel)
                ins = ins.on_conflict_do_update(
                    index_elements=["device_id", "bucket_start"],
                    set_={c: ins.excluded[c] for c in names[2:]})
                conn.execute(ins)
        cut5 = now - rollup_5m_days * 86400
        cut1 = now - rollup_1h_days * 86400
        out["pruned_5m"] = conn.execute(delete(r5).where(r5.c.bucket_start < cut5)).rowcount
        out["pruned_1h"] = conn.execute(delete(r1).where(r1.c.bucket_start < cut1)).rowcount
        out["pruned_events"] = conn.execute(delete(events).where(events.c.ts < cut1)).rowcount
    return out


__all__ = ["BUCKET_5M", "BUCKET_1H", "ROLLUP_BLANK", "add_to_rollup", "rollup_upsert",
           "mark_dirty_hours", "maintain"]
