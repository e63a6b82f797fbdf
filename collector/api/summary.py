"""``GET /api/v1/summary``: fleet counts for the caller's organisation units."""
from typing import Any, Dict

from fastapi import APIRouter

from ..read import connectivity as link
from ..read import posture
from ..read import summary as read
from ..text import (
    ATTENTION_LABELS,
    ATTT_STATUS_LABELS,
    FIELD_LABELS,
    STATUS_LABELS,
    baseline_note,
    label,
    utc_offset,
)
from .deps import Conn, Lang, Now, SchoolCalendar, Scope, TimeZone
from .present import present


def attt_labels(lang: str) -> Dict[str, Any]:
    """The ATTT statuses' labels, for the counts by status."""
    return {code: label(ATTT_STATUS_LABELS, code, lang) for code in ATTT_STATUS_LABELS}


router = APIRouter(tags=["summary"])


@router.get("/summary", summary="Tổng quan / fleet summary")
def get_summary(conn: Conn, scope: Scope, lang: Lang, tz: TimeZone, now: Now,
                calendar: SchoolCalendar) -> Dict[str, Any]:
    """Schools by status (trực tuyến / một phần / mất kết nối / chưa có thiết bị), devices
    by status, state (chờ duyệt / đang hoạt động) and role, and schools below each
    baseline: `security` (ATTT: Không đạt, Không đủ dữ liệu, Cần cải thiện) with
    `attt_by_status`, `connectivity` (kết nối: Không đạt, Cần cải thiện) with
    `connectivity_by_status` (a school not judged yet counts as `insufficient`). Before a
    baseline's first evaluation its counts are `null` (`evaluated: false`,
    `connectivity_evaluated: false`), never a made-up 0."""
    body = read.summary(conn, scope, now, calendar=calendar)
    below = body["below_baseline"]
    below["note"] = baseline_note(bool(below.get("evaluated")),
                                  bool(below.get("connectivity_evaluated")), lang)
    body["below_baseline"]["attt_labels"] = attt_labels(lang)
    body["below_baseline"]["connectivity_labels"] = link.labels(lang)
    body["labels"] = {code: label(STATUS_LABELS, code, lang) for code in STATUS_LABELS}
    return present(body, lang, tz)


@router.get("/overview", summary="Trang tổng quan / overview page data")
def get_overview(conn: Conn, scope: Scope, lang: Lang, tz: TimeZone, now: Now,
                 calendar: SchoolCalendar) -> Dict[str, Any]:
    """Everything on the overview page, for the caller's units: the summary's counts
    (schools without devices counted: the school cards add up to `schools.total`), each
    with `links` — the list route and filter parameters that list the same things;
    `areas` (schools, devices, `online_pct`, `schools_offline`, worst first), `worst_schools`
    (offline, then partly offline, then the Internet link Không đạt, then not meeting the
    ATTT baseline — Không đạt, Không đủ dữ liệu, Cần cải thiện —, then the link Cần cải
    thiện; each with `attt`, `connectivity` {status, label} and `reasons` [{code, label}]),
    `devices.seen_24h` and
    `trend`: distinct devices heard per local day over 30 days, from the hourly rollups."""
    body = read.overview(conn, scope, now, utc_offset(now, tz), calendar=calendar)
    below = body["below_baseline"]
    below["note"] = baseline_note(bool(below.get("evaluated")),
                                  bool(below.get("connectivity_evaluated")), lang)
    body["below_baseline"]["attt_labels"] = attt_labels(lang)
    body["below_baseline"]["connectivity_labels"] = link.labels(lang)
    # the worst schools' ATTT status, as the school list shows it, and why each is there
    for w in body["worst_schools"]:
        w["attt"] = posture.status_brief(w.pop("attt_status"), lang)
        w["connectivity"] = link.status_brief(w.pop("connectivity_status"), lang)
        w["reasons"] = [{"code": c, "label": label(ATTENTION_LABELS, c, lang)}
                        for c in w["reasons"]]
    body["labels"] = {code: label(STATUS_LABELS, code, lang) for code in STATUS_LABELS}
    body["field_labels"] = {k: label(FIELD_LABELS, k, lang) for k in FIELD_LABELS}
    return present(body, lang, tz)
