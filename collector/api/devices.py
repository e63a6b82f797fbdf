"""``GET /api/v1/devices/{id}`` and ``GET /api/v1/devices/{id}/series``."""
import time
from typing import Annotated, Any, Dict, Optional

from fastapi import APIRouter, Path, Query

from ..read import QueryError
from ..read import devices as read
from ..store.schema import ROLLUP_METRICS
from ..text import parse_time, validation_message
from .deps import BAD_REQUEST, NOT_FOUND, ApiError, Conn, FiveMinDays, Lang, Scope, TimeZone
from .present import present

router = APIRouter(tags=["devices"])

DeviceId = Annotated[str, Path(max_length=64)]


@router.get("/devices/{device_id}", summary="Một thiết bị / one device",
            responses=NOT_FOUND)
def get_device(conn: Conn, scope: Scope, lang: Lang, tz: TimeZone,
               device_id: DeviceId) -> Dict[str, Any]:
    """Registry entry (school, role, room, state, online/offline and since when) and the
    latest message of each kind (`latest.health.payload` ...). 404 when unknown or
    outside the caller's units."""
    body = read.get_device(conn, device_id, scope)
    if body is None:
        raise ApiError(404, "device_not_found")
    return present(body, lang, tz)


#: What ``from`` and ``to`` accept, in the schema too (so a value valid by the schema is one
#: the API takes): Unix seconds (up to 10 digits: until 2286), or an ISO 8601 date of
#: 1900-2099, optionally with a time (seconds and fraction optional) and an offset (none =
#: UTC). 29 February passes the pattern in every year; in a common year the answer is 400.
_DAY = (r"((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-9])|(0[13-9]|1[0-2])-30"
        r"|(0[13578]|1[02])-31)")
_CLOCK = (r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
          r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?")
TIME_PATTERN = r"^([0-9]{1,10}(\.[0-9]+)?|(19|20)[0-9]{2}-" + _DAY + _CLOCK + ")$"


def _time(value: Optional[str], default: float) -> float:
    if value is None or value == "":
        return default
    try:
        return parse_time(value).timestamp()
    except (ValueError, OverflowError, OSError):
        raise ApiError(400, "bad_time") from None


@router.get("/devices/{device_id}/series", summary="Chuỗi số liệu / metric series",
            responses={**NOT_FOUND, **BAD_REQUEST})
def get_series(
    conn: Conn, scope: Scope, lang: Lang, tz: TimeZone, five_min_days: FiveMinDays,
    device_id: DeviceId,
    metric: Annotated[str, Query(description="Một trong / one of: " + ", ".join(
        "`%s` (%s)" % kv for kv in ROLLUP_METRICS.items()),
        json_schema_extra={"enum": list(ROLLUP_METRICS)})],
    from_: Annotated[Optional[str], Query(
        alias="from", pattern=TIME_PATTERN,
        description="ISO 8601 (`2026-01-31T08:00:00Z`, `+07:00`; không ghi múi giờ = UTC / "
                    "no offset = UTC) hoặc giây Unix; mặc định 24 giờ trước / default 24 h "
                    "ago.")] = None,
    to: Annotated[Optional[str], Query(pattern=TIME_PATTERN,
                                       description="Mặc định bây giờ / default now.")] = None,
) -> Dict[str, Any]:
    """A metric from the state store's rollups: 5-minute buckets for ranges up to two days
    that start inside their retention (`store.rollup_5m_days`, 30 days by default), hourly
    buckets beyond. Each point: `n` messages, `min`, `max`, `mean`.
    A bucket without data is absent (a gap, not a zero)."""
    now = time.time()
    to_ts = _time(to, now)
    from_ts = _time(from_, to_ts - 86400)
    try:
        body = read.device_series(conn, device_id, metric, from_ts, to_ts, scope, now=now,
                                  five_min_days=five_min_days)
    except QueryError as exc:
        if exc.code == "metric_unknown":  # a 422 like every other parameter problem
            raise ApiError(422, exc.code, detail=str(exc), errors=[
                {"loc": ["query", "metric"], "msg": validation_message("enum", lang),
                 "type": "enum"}]) from None
        raise ApiError(400, exc.code, detail=str(exc)) from None
    if body is None:
        raise ApiError(404, "device_not_found")
    return present(body, lang, tz)
