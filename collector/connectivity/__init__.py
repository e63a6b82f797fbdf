"""Connectivity (issue 10): who tests when (``leases``, ``scheduler``), the baseline."""
