"""Connectivity routes: a school's tests, days and probe hours
(``GET /api/v1/schools/{code}/connectivity``) and the province's ISP comparison
(``GET /api/v1/connectivity/isps``). The school's status with its evidence is part of
``GET /api/v1/schools/{code}`` (``connectivity``)."""
import time
from typing import Annotated, Any, Dict, Literal, Optional

from fastapi import APIRouter, Path, Query

from ..connectivity.text import STATUS_LABELS
from ..read import connectivity as read
from ..read.schools import area_units, get_school_row
from ..read.scope import resolve_scope
from ..text import label
from .deps import NOT_FOUND, ApiError, Conn, Lang, Scope, TimeZone
from .present import present

router = APIRouter(tags=["connectivity"])

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
