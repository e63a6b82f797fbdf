"""Connectivity: who tests when (``leases``, ``scheduler``), the baseline and its
evaluation (``baseline``, ``evaluator``), and the words the pages use (``text``)."""
