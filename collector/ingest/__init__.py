"""MQTT ingest: ``source`` (connection, queue, backpressure, acknowledgements), ``batch``
(decode, prepare, time-series ∥ commit, retry, bisection, dead letters), ``seam`` (what
ingest needs from the store and the time series) and ``pipeline`` (the two threads)."""
from ..mqtt import FastClient, subscription
from .batch import is_outage
from .pipeline import Ingest
from .source import settled_mids

__all__ = ["FastClient", "Ingest", "is_outage", "settled_mids", "subscription"]
