"""Connectivity (issue 10): the baseline a school's link is judged by (``baseline.py``),
the evaluator that judges it from ``link_tests`` and ``link_probe_hours``
(``evaluator.py``); the test lease and scheduler (``leases.py``, ``scheduler.py``) and the
texts (``text.py``) live beside them. See docs/connectivity.md."""
