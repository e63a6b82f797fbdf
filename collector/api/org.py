"""``GET /api/v1/org``: the organisation tree (province → area → school) with rollups."""
from typing import Annotated, Any, Dict

from fastapi import APIRouter, Query

from ..read import connectivity as link
from ..read import org as read
from ..text import ATTT_STATUS_LABELS, baseline_note, label
from .deps import Conn, Lang, Now, SchoolCalendar, Scope, TimeZone
from .present import present


def attt_labels(lang: str) -> Dict[str, Any]:
    """The ATTT statuses' labels, for the counts by status."""
    return {code: label(ATTT_STATUS_LABELS, code, lang) for code in ATTT_STATUS_LABELS}


router = APIRouter(tags=["org"])


@router.get("/org", summary="Cây đơn vị / organisation tree")
def get_org(conn: Conn, scope: Scope, lang: Lang, tz: TimeZone, now: Now,
            calendar: SchoolCalendar,
            schools: Annotated[bool, Query(
                description="Kèm danh sách trường / include the schools (false: units and "
                            "their counts only, much smaller for a whole province).")] = True,
            ) -> Dict[str, Any]:
    """Units (Sở / province, area — whatever level the province uses) and their schools,
    each with counts of schools and devices by status, summed up the tree. Only the
    caller's units appear. Each unit's `counts` have `connectivity_by_status` and
    `connectivity_below_baseline` (Không đạt + Cần cải thiện), each school its
    `connectivity` status."""
    body = read.org_tree(conn, scope, include_schools=schools, calendar=calendar, now=now)
    below = body["below_baseline"]
    below["note"] = baseline_note(bool(below.get("evaluated")),
                                  bool(below.get("connectivity_evaluated")), lang)
    body["below_baseline"]["attt_labels"] = attt_labels(lang)
    body["below_baseline"]["connectivity_labels"] = link.labels(lang)
    return present(body, lang, tz)
