"""``GET /api/v1/devices`` (filters, paging, sort), ``GET /api/v1/devices/{id}`` and
``GET /api/v1/devices/{id}/series``."""
import time
from typing import Annotated, Any, Dict, Literal, Optional

from fastapi import APIRouter, Path, Query

from ..read import QueryError, posture
from ..read import devices as read
from ..read.connectivity import router_brief
from ..read.schools import area_units
from ..store.schema import ROLLUP_METRICS
from ..text import (
    OFFLINE_REASON_LABELS,
    SERIES_LABELS,
    label,
    parse_time,
    validation_message,
)
from .deps import (
    BAD_REQUEST,
    NOT_FOUND,
    ApiError,
    Conn,
    FiveMinDays,
    Lang,
    Now,
    Rules,
    SchoolCalendar,
    Scope,
    TimeZone,
)
from .present import present

router = APIRouter(tags=["devices"])

DeviceId = Annotated[str, Path(max_length=64)]

DeviceStatus = Literal["online", "offline", "off_hours", "unknown"]
DeviceRole = Literal["lab", "office", "server", "router"]
DeviceState = Literal["pending", "active", "retired"]
AtttFilter = Literal["fail", "unknown", "pass"]
OsSupportFilter = Literal["unsupported", "esu", "supported", "unknown"]
#: ``read.DEVICE_SORTS``, each also with ``-`` (descending).
DeviceSort = Literal["status", "id", "hostname", "school", "role", "room", "os", "last_seen",
                     "status_since", "-status", "-id", "-hostname", "-school", "-role",
                     "-room", "-os", "-last_seen", "-status_since"]


@router.get("/devices", summary="Danh sách thiết bị / devices")
def list_devices(
    conn: Conn, scope: Scope, lang: Lang, tz: TimeZone, now: Now, calendar: SchoolCalendar,
    status: Annotated[Optional[DeviceStatus], Query(
        description="`online` (trực tuyến), `offline` (mất kết nối), `off_hours` (ngoài "
                    "giờ học: máy phòng tin học tắt ngoài giờ / a lab PC off outside "
                    "school hours), `unknown` (chưa có dữ liệu).")] = None,
    role: Annotated[Optional[DeviceRole], Query(description="Vai trò / role.")] = None,
    os: Annotated[Optional[str], Query(
        max_length=64, description="Một phần tên hệ điều hành, không phân biệt hoa thường "
                                   "/ part of the OS name: `Windows 7`.")] = None,
    school: Annotated[Optional[str], Query(max_length=64,
                                           description="Mã trường / school code.")] = None,
    area: Annotated[Optional[str], Query(
        max_length=128, description="Khu vực như ở /schools / area as in /schools.")] = None,
    state: Annotated[Optional[DeviceState], Query(
        description="`pending` (chờ duyệt), `active`, `retired` (đã ngừng sử dụng: chỉ có "
                    "trong danh sách khi hỏi đúng trạng thái này / listed only when asked "
                    "for).")] = None,
    offline_days: Annotated[Optional[float], Query(
        ge=0, le=3650, description="Mất kết nối hơn N ngày / offline for more than N "
                                   "days.")] = None,
    disk_over: Annotated[Optional[float], Query(
        ge=0, le=100, description="Ổ đĩa đầy nhất trên N % (24 giờ qua) / fullest disk "
                                  "over N % in the last 24 h.")] = None,
    seen_hours: Annotated[Optional[float], Query(
        ge=0, le=8760, description="Báo về trong N giờ qua / reported within the last N "
                                   "hours.")] = None,
    q: Annotated[Optional[str], Query(
        max_length=100, description="Một phần mã hoặc tên máy / part of the id or host "
                                    "name.")] = None,
    attt: Annotated[Optional[AtttFilter], Query(
        description="ATTT: `fail` (có tiêu chí không đạt / some check fails), `unknown` (có "
                    "tiêu chí không xác định / some check unknown), `pass` (không có tiêu chí "
                    "nào không đạt hay không xác định / none fails or is unknown).")] = None,
    os_support: Annotated[Optional[OsSupportFilter], Query(
        description="Hỗ trợ của hệ điều hành / OS support: `unsupported` (hết hỗ trợ — danh "
                    "sách máy dùng hệ điều hành hết hỗ trợ), `esu`, `supported`, "
                    "`unknown`.")] = None,
    sort: Annotated[DeviceSort, Query(
        description="Sắp xếp / order (mặc định `status`: mất kết nối trước / offline "
                    "first); `-` = giảm dần / descending.")] = "status",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    per_page: Annotated[int, Query(
        ge=1, le=500, description="Tối đa / at most 500; lớn hơn → 422.")] = 50,
) -> Dict[str, Any]:
    """Devices the caller may see, with school, area, status, `offline_since`,
    `last_seen` and latest `health` (CPU/RAM/disk %). E.g. every Windows 7 PC:
    `?os=windows 7&role=lab`; disks over 90 %: `?disk_over=90`; offline more than
    3 days: `?offline_days=3`."""
    units = None
    if area is not None:
        units = area_units(conn, area)
    body = read.list_devices(conn, scope, status=status, role=role, os=os, school=school,
                             area_units=units, state=state, offline_days=offline_days,
                             disk_over=disk_over, seen_hours=seen_hours, q=q,
                             sort=sort.lstrip("-"), descending=sort.startswith("-"),
                             page=page, per_page=per_page, attt=attt, os_support=os_support,
                             now=now, calendar=calendar)
    body["filters"] = {"status": status, "role": role, "os": os, "school": school,
                       "area": area, "state": state, "offline_days": offline_days,
                       "disk_over": disk_over, "seen_hours": seen_hours, "q": q,
                       "attt": attt, "os_support": os_support}
    briefs = posture.device_briefs(conn, [d["id"] for d in body["items"]], lang)
    for d in body["items"]:
        d["offline_reason_label"] = label(OFFLINE_REASON_LABELS, d["offline_reason"], lang)
        d["attt"] = briefs.get(d["id"])
    return present(body, lang, tz)


@router.get("/devices/{device_id}", summary="Một thiết bị / one device",
            responses=NOT_FOUND)
def get_device(conn: Conn, scope: Scope, lang: Lang, tz: TimeZone, rules: Rules, now: Now,
               calendar: SchoolCalendar, device_id: DeviceId) -> Dict[str, Any]:
    """Registry entry (school, role, room, state, online/offline, `status_since`,
    `offline_since`), inventory and the latest message of each kind
    (`latest.inventory.payload`, `latest.health.payload` ...), current `health`
    (CPU/RAM/disk %, temperature), `messages` (received, lost, duplicates) and `history`
    (status changes from the events, newest first). 404 when unknown or outside the
    caller's units.

    `security`: the device judged against the ATTT baseline (null before its first
    judgement): per check the state (Đạt / Cảnh báo / Không đạt / Không xác định / Không áp
    dụng) with its evidence, the values used, since when, the hint and the citation; the OS
    support (`supported`, `esu`, `unsupported`, `unknown`) and end date; `stale` when the PC
    has been silent longer than the window (every check unknown); `frozen` for a
    reboot-restore PC.

    `router`: a router's latest `router` message summarised (up — gateway or SNMP
    answered —, uptime, WAN interface, rates in Mbit/s and utilisation %, model, firmware,
    interfaces); null for every other device."""
    body = read.get_device(conn, device_id, scope, calendar=calendar, now=now)
    if body is None:
        raise ApiError(404, "device_not_found")
    polled = body["latest"].get("router")
    body["router"] = router_brief(polled["payload"], polled["ts"], lang) if polled else None
    body["security"] = posture.device_security(conn, device_id, rules.baseline, lang)
    body["offline_reason_label"] = label(OFFLINE_REASON_LABELS, body["offline_reason"], lang)
    for h in body["history"]:
        h["reason_label"] = label(OFFLINE_REASON_LABELS, h["reason"], lang)
    body["series_labels"] = {m: {"label": label(SERIES_LABELS, m, lang),
                                 "unit": SERIES_LABELS[m]["unit"]} for m in body["series_metrics"]}
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
    body["label"] = label(SERIES_LABELS, metric, lang)
    body["unit"] = SERIES_LABELS[metric]["unit"]
    return present(body, lang, tz)
