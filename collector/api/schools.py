"""``GET /api/v1/schools`` (filters, paging) and ``GET /api/v1/schools/{code}``."""
from typing import Annotated, Any, Dict, Literal, Optional

from fastapi import APIRouter, Path, Query

from ..read import schools as read
from ..text import message
from .deps import NOT_FOUND, ApiError, Conn, Lang, Scope, TimeZone
from .present import present

router = APIRouter(tags=["schools"])

SchoolStatus = Literal["offline", "partial", "online", "no_devices"]
Baseline = Literal["meets", "below", "not_evaluated"]


@router.get("/schools", summary="Danh sách trường / schools")
def list_schools(
    conn: Conn, scope: Scope, lang: Lang, tz: TimeZone,
    area: Annotated[Optional[str], Query(
        description="Khu vực: id, mã (`lao-cai/bat-xat`) hoặc tên đơn vị; gồm cả đơn vị "
                    "cấp dưới. / Area unit id, code or name (units below included).")] = None,
    status: Annotated[Optional[SchoolStatus], Query(
        description="Trạng thái trường / school status.")] = None,
    baseline: Annotated[Optional[Baseline], Query(
        description="Chuẩn / baseline: `meets`, `below`, `not_evaluated`. Chưa đánh giá "
                    "trong phiên bản này: mọi trường là `not_evaluated`.")] = None,
    q: Annotated[Optional[str], Query(
        max_length=100,
        description="Mã hoặc một phần tên trường, không phân biệt hoa thường và dấu / code "
                    "or part of the name, case and diacritics ignored.")] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Dict[str, Any]:
    """Schools the caller may see, worst status first (mất kết nối, một phần, trực tuyến,
    chưa có thiết bị), then by area and name; `total` and `pages` for paging."""
    body = read.list_schools(conn, scope, area=area, status=status, baseline=baseline,
                                page=page, per_page=per_page, q=q)
    if baseline is not None:
        body["baseline_note"] = message("baseline_not_evaluated", lang)
    return present(body, lang, tz)


@router.get("/schools/{code}", summary="Một trường và thiết bị / one school",
            responses=NOT_FOUND)
def get_school(conn: Conn, scope: Scope, lang: Lang, tz: TimeZone,
               code: Annotated[str, Path(max_length=64)]) -> Dict[str, Any]:
    """A school with its area, contract, status and every device. 404 when it does not
    exist or is outside the caller's units (the same answer, so codes do not leak)."""
    body = read.get_school(conn, code, scope)
    if body is None:
        raise ApiError(404, "school_not_found")
    return present(body, lang, tz)
