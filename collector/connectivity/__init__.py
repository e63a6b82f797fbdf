"""The connectivity baseline: school link status from bandwidth tests and light probes,
test leases and data budgets (issue 10)."""
