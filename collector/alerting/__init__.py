"""Alerting: the school calendar, rules as data, the evaluator (pending → firing →
resolved, with hysteresis, dependencies, silences and acknowledgements)."""
