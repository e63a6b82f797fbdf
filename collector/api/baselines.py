"""``GET /api/v1/baselines``: the ATTT checks in force with their citations, the school
rule, the OS support table and the connectivity checks in force with theirs."""
from typing import Any, Dict

from fastapi import APIRouter

from ..baseline import listing
from ..read import connectivity as link
from ..read import posture as read
from .deps import ConnectivityBaseline, Lang, Rules, TimeZone
from .present import present

router = APIRouter(tags=["baselines"])


@router.get("/baselines", summary="Bộ tiêu chí đang áp dụng / baselines in force")
def get_baselines(lang: Lang, tz: TimeZone, rules: Rules,
                  conn_baseline: ConnectivityBaseline) -> Dict[str, Any]:
    """`attt`: where the file comes from (`shipped` or its path), its SHA-256, every check
    (id, title, severity, roles, OS families, the `pass` condition, hint, citation) and the
    `school_rule` (coverage %, days, the three gates' %); `os_support`: the OS support table
    (end of support and ESU per OS, version, feature update and edition); `connectivity`:
    the connectivity baseline in force (`source`, `hash`), every check (`id` = the reason
    code, `title`, `table` of the file, `limits`, `effect`: the status a school that fails
    it gets, with `effect_label`, `enabled`, `citation`), the school-week `window` and
    `school_hours`, each with its `citation`."""
    return present(read.baselines(rules.baseline, listing(rules.os_table), lang,
                                  link.baseline_listing(conn_baseline, lang)), lang, tz)
