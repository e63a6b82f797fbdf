"""Connectivity routes: a school's tests, days and probe hours
(``GET /api/v1/schools/{code}/connectivity``), the province's ISP comparison
(``GET /api/v1/connectivity/isps``) and Đo ngay, a test asked for now
(``POST /api/v1/schools/{code}/speedtest``; the logic is connectivity/manual.py). The
school's status with its evidence is part of ``GET /api/v1/schools/{code}``
(``connectivity``)."""
import time
from typing import Annotated, Any, Dict, Literal, Optional

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from ..connectivity import manual
from ..connectivity.text import REQUEST_TEXT, STATUS_LABELS
from ..read import connectivity as read
from ..read.schools import area_units, get_school_row
from ..read.scope import resolve_scope, storable
from ..store.schema import schools
from ..text import iso_local, iso_utc, label
from .deps import (
    NOT_FOUND,
    ApiError,
    Conn,
    CurrentPrincipal,
    ErrorBody,
    Lang,
    Scope,
    TimeZone,
    client_address,
    may,
    sees_school,
)
from .present import present

router = APIRouter(tags=["connectivity"])

#: The answers of POST .../speedtest besides 202, documented in the OpenAPI schema.
REQUEST_ERRORS: Dict[int | str, Dict[str, Any]] = {
    **NOT_FOUND,
    403: {"model": ErrorBody, "description": "Vai trò không được phép / the role may not"},
    409: {"model": ErrorBody, "description": "Đang có lần đo, hết hạn mức dữ liệu hoặc không "
                                             "có máy trực tuyến / a test is running, the "
                                             "budget is used up, or no device is online"},
    429: {"model": ErrorBody, "description": "Quá nhiều yêu cầu trong một giờ / too many "
                                             "requests in an hour"},
    503: {"model": ErrorBody, "description": "Đo ngay đang tắt / testing now is off"},
}


def _lease_view(lease: Dict[str, Any], name: Optional[str], tz: str) -> Dict[str, Any]:
    exp = float(lease["exp"])
    return {"id": lease.get("id"), "device": lease.get("device"), "device_name": name,
            "granted_at": iso_utc(lease.get("granted_at")),
            "expires": iso_utc(exp), "expires_local": iso_local(exp, tz),
            "mode": lease.get("mode"), "trigger": lease.get("trigger")}


@router.post("/schools/{code}/speedtest", status_code=202,
             summary="Đo ngay / ask for a bandwidth test now", responses=REQUEST_ERRORS)
def request_speedtest(request: Request, principal: CurrentPrincipal, lang: Lang,
                      tz: TimeZone, code: Annotated[str, Path(max_length=64)]) -> Any:
    """Một lần đo tốc độ ngay cho trường, theo đúng đường của lần đo theo lịch: cùng cách
    chọn máy, cùng lượt đo (mỗi trường một lượt một lúc) và hạn mức dữ liệu. / A bandwidth
    test of the school now, the way slot tests go: the same device choice, the same lease
    (one per school at a time; trigger `command`) and data budget. **202** with the `lease`
    (`id`, `device`, `expires`) and `message` (“Đang đo trên máy X ...”); **409**
    `speedtest_held` (with the `lease` held and `retry_after` seconds), `speedtest_budget`
    (`used`, `limit`, `expected` bytes) or `speedtest_no_device`; **429**
    `speedtest_rate_limited` (more than `connectivity.manual_per_hour` requests of this
    user in an hour; `Retry-After`); **503** when the scheduler is off. so_admin, area
    officers and school technicians within their units; 403 for viewers; 404 outside the
    caller's units. Audited (`speedtest_request`)."""
    engine = request.app.state.engine
    with engine.connect() as conn:
        exists = storable(code) and conn.execute(
            select(schools.c.code).where(schools.c.code == code)).first() is not None
    if not exists or not sees_school(principal, code):
        raise ApiError(404, "school_not_found")
    if not may(principal, "speedtest"):
        raise ApiError(403, "forbidden_role")
    scheduler = request.app.state.scheduler
    if scheduler is None:
        pair = REQUEST_TEXT["unavailable"]
        return JSONResponse({"error": "speedtest_unavailable",
                             "message": pair[1] if lang == "en" else pair[0]}, status_code=503)
    cfg = getattr(request.app.state.cfg, "connectivity", None)
    per_hour = int(getattr(cfg, "manual_per_hour", 6))
    got = manual.request_now(scheduler, code, principal.name, client_address(request),
                             per_hour=per_hour)
    body: Dict[str, Any] = {"school": code, "outcome": got.outcome,
                            "message": manual.request_text(got, lang, tz)}
    headers: Dict[str, str] = {}
    if got.outcome == "granted":
        assert got.lease is not None
        body.update(lease=_lease_view(got.lease, got.device_name, tz), sent=got.sent,
                    minutes=got.minutes)
        return JSONResponse(body, status_code=202)
    body["error"] = "speedtest_" + got.outcome
    if got.outcome == "held" and got.lease:
        body.update(lease=_lease_view(got.lease, got.device_name, tz),
                    retry_after=got.retry_after)
    elif got.outcome == "budget":
        body.update(used=got.used, limit=got.limit, expected=got.expected)
    elif got.outcome == "rate_limited":
        body.update(count=got.requests, per_hour=got.per_hour, retry_after=got.retry_after)
        headers["Retry-After"] = "%d" % got.retry_after
        return JSONResponse(body, status_code=429, headers=headers)
    return JSONResponse(body, status_code=409)

Days = Literal["7", "30", "90"]


@router.get("/schools/{code}/connectivity",
            summary="Kết nối Internet của một trường / one school's connectivity history",
            responses=NOT_FOUND)
def get_school_connectivity(
    conn: Conn, scope: Scope, lang: Lang, tz: TimeZone,
    code: Annotated[str, Path(max_length=64)],
    days: Annotated[Days, Query(
        description="Số ngày / days: 7, 30 hoặc / or 90.")] = "7",
) -> Dict[str, Any]:
    """Các lần đo tốc độ (cả lần thất bại và lần không được tính: `refused`), số liệu mỗi
    ngày học và mỗi giờ thăm dò của trường trong `days` ngày, cũ trước; ngưỡng chuẩn và tốc
    độ hợp đồng. / The school's bandwidth tests (failed ones and those not counted —
    `refused` — too), school days (`school_days`: medians, uptime, status) and probe hours
    (`hours`: probes, `uptime_pct` — probes reaching the domestic target / probes that tried
    —, mean gateway / domestic / international times, `intl_ok_pct`) over `days` days,
    oldest first, with the `thresholds` and `contracted` speeds. A figure not measured is
    `null`, never 0. 404 when the school does not exist or is outside the caller's units."""
    if get_school_row(conn, code, scope) is None:
        raise ApiError(404, "school_not_found")
    body = read.school_history(conn, code, int(days), time.time(), tz, lang)
    for d in body["school_days"]:
        d["status_label"] = label(STATUS_LABELS, d["status"], lang)
    return present(body, lang, tz)


@router.get("/connectivity/isps", summary="So sánh nhà mạng / ISPs compared")
def get_isps(
    conn: Conn, scope: Scope, lang: Lang, tz: TimeZone,
    area: Annotated[Optional[str], Query(
        description="Khu vực: id, mã hoặc tên đơn vị (gồm cả đơn vị cấp dưới). / Area unit "
                    "id, code or name (units below included).")] = None,
) -> Dict[str, Any]:
    """Theo nhà mạng, theo loại đường truyền và theo từng cặp: số trường, số trường có lần đo
    được tính trong 7 ngày, trung vị tốc độ tải xuống / tải lên, độ trễ và thời gian có kết
    nối của các trung vị tuần của từng trường, % trường Đạt, % trường dưới 80 % tốc độ hợp
    đồng (trong số trường có hợp đồng và số liệu); thứ tự tiếng Việt, trường chưa rõ nhà mạng
    cuối cùng. / Per ISP, per link type and per pair: schools, schools with a counted test in
    7 days, the medians of the school-week medians (download, upload, latency, uptime), %
    meeting the baseline, % below 80 % of the contracted download (of the schools with a
    contract and a week's figure); Vietnamese order, unknown ISP last. `null` where no school
    has the figure. `by_status`: schools per connectivity status."""
    visible = resolve_scope(conn, scope)
    ids = area_units(conn, area) if area else None
    body = read.isp_comparison(conn, visible, ids, time.time())
    body["area"] = area
    body["labels"] = read.labels(lang)
    return present(body, lang, tz)
