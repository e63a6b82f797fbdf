"""The ATTT security posture: each device judged against the baseline (``rules``), each
school by the school rule, stored and kept current by the :class:`Evaluator` (a thread of
the collector service). Reads ``collector/baseline`` and the state store; see docs/attt.md.
"""
from .evaluator import EVENT_KIND, Evaluator, RunStats, rules_from_config
from .rules import (
    NOT_EVALUATED,
    NOT_MEETING,
    SCHOOL_STATUSES,
    STATES,
    DeviceInput,
    PcSummary,
    Rules,
    evaluate_device,
    evaluate_school,
)

__all__ = ["Evaluator", "RunStats", "rules_from_config", "EVENT_KIND", "Rules", "DeviceInput",
           "PcSummary", "evaluate_device", "evaluate_school", "STATES", "SCHOOL_STATUSES",
           "NOT_EVALUATED", "NOT_MEETING"]
