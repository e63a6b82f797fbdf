"""``GET /api/v1/schools`` (filters, paging) and ``GET /api/v1/schools/{code}``."""
from typing import Annotated, Any, Dict, Literal, Optional

from fastapi import APIRouter, Path, Query

from ..read import connectivity as link
from ..read import posture
from ..read import schools as read
from ..text import OFFLINE_REASON_LABELS, SCHOOL_CONDITION_LABELS, label, message
from .deps import (
    NOT_FOUND,
    ApiError,
    Conn,
    Lang,
    Now,
    Rules,
    SchoolCalendar,
    Scope,
    TimeZone,
)
from .present import present

router = APIRouter(tags=["schools"])

SchoolStatus = Literal["offline", "partial", "online", "off_hours", "no_devices"]
Baseline = Literal["attt", "connectivity", "meets", "below", "not_evaluated"]
AtttStatus = Literal["below", "insufficient", "improve", "meets", "no_pcs", "not_evaluated"]
ConnectivityStatus = Literal["below", "improve", "insufficient", "meets"]
Level = Literal["MN", "TH", "THCS", "THPT", "GDNN-GDTX", "LIEN-CAP"]
#: ``read.SCHOOL_SORTS``, each also with ``-`` (descending).
SchoolSort = Literal["status", "name", "code", "area", "offline", "online_pct", "attt",
                     "connectivity", "-status", "-name", "-code", "-area", "-offline",
                     "-online_pct", "-attt", "-connectivity"]


@router.get("/schools", summary="Danh sách trường / schools")
def list_schools(
    conn: Conn, scope: Scope, lang: Lang, tz: TimeZone, now: Now, calendar: SchoolCalendar,
    area: Annotated[Optional[str], Query(
        description="Khu vực: id, mã (`lao-cai/bat-xat`) hoặc tên đơn vị; gồm cả đơn vị "
                    "cấp dưới. / Area unit id, code or name (units below included).")] = None,
    status: Annotated[Optional[SchoolStatus], Query(
        description="Trạng thái trường / school status.")] = None,
    baseline: Annotated[Optional[Baseline], Query(
        description="Chuẩn / baseline: `attt` — các trường chưa đạt chuẩn ATTT (Cần cải "
                    "thiện, Không đạt, Không đủ dữ liệu) / schools not meeting the ATTT "
                    "baseline; `connectivity` — các trường chưa đạt chuẩn kết nối (Cần cải "
                    "thiện, Không đạt) / schools not meeting the connectivity baseline; "
                    "`meets`, `below` (= `attt`), `not_evaluated`.")] = None,
    attt: Annotated[Optional[AtttStatus], Query(
        description="Một trạng thái ATTT / one ATTT status: `below` (Không đạt), "
                    "`insufficient` (Không đủ dữ liệu), `improve` (Cần cải thiện), `meets` "
                    "(Đạt), `no_pcs`, `not_evaluated`.")] = None,
    connectivity: Annotated[Optional[ConnectivityStatus], Query(
        description="Một trạng thái kết nối / one connectivity status: `below` (Không đạt), "
                    "`improve` (Cần cải thiện), `insufficient` (Không đủ dữ liệu: không có lần "
                    "đo nào được tính trong 7 ngày / no counted test in 7 days), `meets` "
                    "(Đạt).")] = None,
    q: Annotated[Optional[str], Query(
        max_length=100,
        description="Mã hoặc một phần tên trường, không phân biệt hoa thường và dấu / code "
                    "or part of the name, case and diacritics ignored.")] = None,
    level: Annotated[Optional[Level], Query(description="Cấp học / school level.")] = None,
    isp: Annotated[Optional[str], Query(
        max_length=64, description="Nhà mạng (không phân biệt hoa thường, dấu) / ISP "
                                   "(case and diacritics ignored): `VNPT`, `Viettel`...")] = None,
    link_type: Annotated[Optional[str], Query(
        max_length=32, description="Loại đường truyền / link type: `fiber`, `4g`...")] = None,
    sort: Annotated[SchoolSort, Query(
        description="Sắp xếp / order: `status` (xấu nhất trước / worst first, mặc định), "
                    "`name`, `code`, `area`, `offline` (số máy mất kết nối / devices "
                    "offline), `online_pct`, `attt`, `connectivity` (xấu nhất trước / worst "
                    "first); `-` đứng trước = giảm dần / descending. "
                    "Chữ theo thứ tự tiếng Việt / text in Vietnamese order.")] = "status",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    per_page: Annotated[int, Query(
        ge=1, le=read.MAX_PER_PAGE,
        description="Tối đa / at most 500; lớn hơn → 422 / larger → 422.")] = 50,
) -> Dict[str, Any]:
    """Schools the caller may see, worst status first (mất kết nối, mất kết nối một phần,
    trực tuyến, chưa có thiết bị) unless `sort` says otherwise, ties by area and name in
    Vietnamese order; `total` and `pages` for paging. Search `q`: code or name, with or
    without diacritics, "trường" optional, TH/MN/THCS/THPT for the level ("TH Kim Đồng",
    "mn kim dong"). Each item has `offline_count` and `online_pct`."""
    body = read.list_schools(conn, scope, area=area, status=status, baseline=baseline,
                             page=page, per_page=per_page, q=q, level=level, isp=isp,
                             link_type=link_type, sort=sort.lstrip("-"),
                             descending=sort.startswith("-"), attt=attt,
                             connectivity=connectivity, calendar=calendar, now=now)
    for item in body["items"]:
        item["attt"] = posture.status_brief(item["attt"]["status"], lang)
        item["connectivity"] = link.status_brief(item["connectivity"]["status"], lang)
    if baseline == "connectivity":
        if not link.evaluated(conn):
            body["baseline_note"] = message("connectivity_not_evaluated", lang)
    elif baseline is not None and not posture.evaluated(conn):
        body["baseline_note"] = message("attt_not_evaluated", lang)
    return present(body, lang, tz)


@router.get("/schools/{code}", summary="Một trường và thiết bị / one school",
            responses=NOT_FOUND)
def get_school(conn: Conn, scope: Scope, lang: Lang, tz: TimeZone, rules: Rules, now: Now,
               calendar: SchoolCalendar,
               code: Annotated[str, Path(max_length=64)]) -> Dict[str, Any]:
    """A school with its area, contract, contacts, status and `condition` (`router_down`:
    mất kết nối Internet/router — not one PC off; `some_devices_off`, `all_offline`,
    `all_online`, `no_devices`), its `router` on its own, every device (role, room,
    status, `offline_since`, `last_seen`, OS, latest `health`: CPU/RAM/disk %), and
    `online_hourly`: devices heard per hour over 7 days. 404 when it does not exist or is
    outside the caller's units (the same answer, so codes do not leak).

    `attt`: the school's ATTT status (Đạt / Cần cải thiện / Không đạt / Không đủ dữ liệu)
    since when, `coverage` (PCs reporting within the window), the school rule's `gates`
    (value and threshold %), per check the PCs that pass / warn / fail / unknown / na with
    the non-passing PCs (at most 100) and the hint, and `history` (status per local day, 30
    days); `below_baseline.security`: true / false (null while not evaluated).

    `connectivity`: kết nối Internet / the connectivity status (Đạt / Cần cải thiện / Không
    đạt / Không đủ dữ liệu — `insufficient` with the reason `no_recent_test` before any
    judgement) since when, `reasons` [{code, value, limit, text}] in words, `thresholds`,
    `contracted` speeds, the `day` and `week` aggregates, `last_test`, `lease` (holder,
    `expires`, `next_planned`), `budget` (this month's bytes `used` of `limit`, `tests`) and
    `router` (the latest router message of `router.{code}`: up, uptime, WAN rates and
    utilisation, model, interfaces); `below_baseline.connectivity`: true / false (null
    while not evaluated)."""
    body = read.get_school(conn, code, scope, now=now, calendar=calendar)
    if body is None:
        raise ApiError(404, "school_not_found")
    body["attt"] = posture.school_attt(conn, code, rules.baseline, lang, tz, now)
    body["connectivity"] = link.school_connectivity(conn, code, lang, now)
    body["condition_label"] = label(SCHOOL_CONDITION_LABELS, body["condition"], lang)
    briefs = posture.device_briefs(conn, [d["id"] for d in body["devices"]], lang)
    for d in body["devices"]:
        d["offline_reason_label"] = label(OFFLINE_REASON_LABELS, d["offline_reason"], lang)
        d["attt"] = briefs.get(d["id"])  # as the device list shows it
    return present(body, lang, tz)
