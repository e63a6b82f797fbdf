"""The source's logic on its own: the acknowledgement contract and progress tracking."""
import threading
import time

from schoolmon.collector.ingest import settled_mids
from schoolmon.collector.ingest.source import Source
from schoolmon.collector.metrics import IngestMetrics, Registry

from tests.collector.helpers import config


def item(mid, qos=1, gen=1):
    return (b"schoolmon/v1/S1/d/health", b"{}", mid, qos, gen, 0.0)


def test_only_settled_qos1_messages_of_this_connection_are_acknowledged():
    batch = [item(1), item(2), item(3, qos=0), item(4, gen=0), item(5)]
    assert settled_mids(batch, set(), 1) == [1, 2, 5]
    assert settled_mids(batch, {1, 4}, 1) == [1]  # positions 1 (mid 2) and 4 (mid 5) unsettled
    assert settled_mids(batch, set(), 2) == []  # another connection: the broker resends


def test_progress_counts_from_when_messages_start_waiting():
    """A message arriving after a long quiet spell is not "stuck for an hour"."""
    src = Source(config("mqtt://127.0.0.1:1", "sqlite://"), IngestMetrics(Registry()),
                 threading.Event())
    src._progress_at = time.monotonic() - 3600  # quiet for an hour
    src._on_raw_batch([(b"schoolmon/v1/S1/d/health", b"{}", 1, 1)])
    assert src.pending() == 1
    assert src.stalled_for() < 60
    batch = src.take()
    assert len(batch) == 1 and src.pending() == 1
    src._progress_at = time.monotonic() - 300  # nothing settled for five minutes
    assert src.stalled_for() >= 300
    src.acknowledge(batch, set())  # settled (not connected: nothing sent)
    src.done(len(batch))
    assert src.stalled_for() == 0.0
