"""Baselines as data: the ATTT checks and school rule (``attt.toml``), the OS support table
(``os_support.toml``) and the condition language they use. Overridable by
``baseline.attt_file`` / ``baseline.os_support_file``; see docs/attt.md.

Imports only the protocol package (the catalogue) and the standard library: the read side,
the evaluator (``collector/posture``) and the CLI all use it.
"""
from .attt import (
    DERIVED_FIELDS,
    FIELD_NAMES,
    PC_ROLES,
    SEVERITIES,
    SHIPPED_ATTT_FILE,
    Baseline,
    BaselineError,
    Check,
    SchoolRule,
    describe,
    load_baseline,
    parse_baseline,
    rule_dict,
)
from .conditions import Condition, ConditionError, Unknown, compile_condition
from .os_support import SHIPPED_OS_FILE, OsSupport, OsTable, judge, listing, load_os_table

__all__ = ["Baseline", "BaselineError", "Check", "SchoolRule", "Condition", "ConditionError",
           "Unknown", "compile_condition", "load_baseline", "parse_baseline", "describe",
           "rule_dict", "FIELD_NAMES", "DERIVED_FIELDS", "PC_ROLES", "SEVERITIES",
           "SHIPPED_ATTT_FILE", "SHIPPED_OS_FILE", "OsSupport", "OsTable", "judge", "listing",
           "load_os_table"]
