"""``GET /api/v1/baselines``: the ATTT checks in force with their citations, the school
rule and the OS support table (the connectivity baseline comes with issue 10: null)."""
from typing import Any, Dict

from fastapi import APIRouter

from ..baseline import listing
from ..read import posture as read
from .deps import Lang, Rules, TimeZone
from .present import present

router = APIRouter(tags=["baselines"])


@router.get("/baselines", summary="Bộ tiêu chí đang áp dụng / baselines in force")
def get_baselines(lang: Lang, tz: TimeZone, rules: Rules) -> Dict[str, Any]:
    """`attt`: where the file comes from (`shipped` or its path), its SHA-256, every check
    (id, title, severity, roles, OS families, the `pass` condition, hint, citation) and the
    `school_rule` (coverage %, days, the three gates' %); `os_support`: the OS support table
    (end of support and ESU per OS, version, feature update and edition)."""
    return present(read.baselines(rules.baseline, listing(rules.os_table), lang), lang, tz)
