"""``GET /api/v1/summary``: fleet counts for the caller's organisation units."""
import time
from typing import Any, Dict

from fastapi import APIRouter

from ..read import summary as read
from ..text import STATUS_LABELS, label, message
from .deps import Conn, Lang, Scope, TimeZone
from .present import present

router = APIRouter(tags=["summary"])


@router.get("/summary", summary="Tổng quan / fleet summary")
def get_summary(conn: Conn, scope: Scope, lang: Lang, tz: TimeZone) -> Dict[str, Any]:
    """Schools by status (trực tuyến / một phần / mất kết nối / chưa có thiết bị), devices
    by status, state (chờ duyệt / đang hoạt động) and role, and schools below each
    baseline. The baselines are not evaluated in this version: their counts are `null`
    with `evaluated: false`, never a made-up 0."""
    body = read.summary(conn, scope, time.time())
    body["below_baseline"]["note"] = message("baseline_not_evaluated", lang)
    body["labels"] = {code: label(STATUS_LABELS, code, lang) for code in STATUS_LABELS}
    return present(body, lang, tz)
