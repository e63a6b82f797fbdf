"""The schoolmon collector: ingest, registry, time series, liveness, API (Python 3.11+)."""
__version__ = "0.1.0"
