import threading

from schoolmon.collector.metrics import IngestMetrics, Registry, render
from schoolmon.protocol import REASONS


def test_render_prometheus_text():
    m = IngestMetrics(Registry())
    m.received.inc(3)
    m.rejected.inc(reason="invalid_json")
    m.stored.inc(2, kind="health")
    m.pending.set(7)
    m.batch_seconds.observe(0.02)
    text = m.render()
    assert "schoolmon_messages_received_total 3.0\n" in text
    assert 'schoolmon_rejected_total{reason="invalid_json"} 1.0\n' in text
    for reason in REASONS:
        assert 'schoolmon_rejected_total{reason="%s"}' % reason in text
    assert 'schoolmon_messages_stored_total{kind="health"} 2.0\n' in text
    assert "schoolmon_pending_messages 7.0\n" in text
    assert 'schoolmon_batch_seconds_bucket{le="0.025"} 1.0\n' in text
    assert 'schoolmon_batch_seconds_bucket{le="+Inf"} 1.0\n' in text
    assert "schoolmon_batch_seconds_count 1.0\n" in text
    assert "# TYPE schoolmon_batch_seconds histogram" in text
    assert "schoolmon_broker_connected 0.0\n" in text


def test_label_escaping_and_function_gauge():
    from schoolmon.collector.metrics import Counter, Gauge
    r = Registry()
    c = Counter(r, "schoolmon_x_total", "x", ("a",))
    c.inc(a='q"u\\o\nte')
    g = Gauge(r, "schoolmon_q", "q", function=lambda: 5)
    assert g.get() == 5
    text = render(r)
    assert 'schoolmon_x_total{a="q\\"u\\\\o\\nte"} 1.0' in text
    assert "schoolmon_q 5.0" in text


def test_the_process_registry_has_process_and_platform_metrics():
    text = render()
    assert "schoolmon_messages_received_total" in text
    assert "process_resident_memory_bytes" in text and "python_info" in text
    assert "_created" not in text


def test_thread_safe_counts():
    m = IngestMetrics(Registry())

    def work():
        for _ in range(10000):
            m.received.inc()
            m.latency.observe(0.001)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.received.get() == 40000
    assert m.latency.count == 40000


def test_default_registry_renders():
    assert "schoolmon_rejected_total" in render()


def test_observe_many_equals_observing_one_by_one():
    """The batch path gives the same exposition as prometheus_client's own observe()."""
    import random

    rng = random.Random(5)
    values = [rng.choice([0.0, 0.001, 0.0025, 0.1, 1.0, 2.5, 1e9]) for _ in range(200)]
    values += [rng.random() * 30 for _ in range(2000)]
    one, many = IngestMetrics(Registry()), IngestMetrics(Registry())
    for v in values:
        one.latency.observe(v)
    many.latency.observe_many(iter(values))
    lines = [ln for ln in one.render().splitlines() if "ingest_latency" in ln]
    assert lines and any("_bucket" in ln for ln in lines)
    assert lines == [ln for ln in many.render().splitlines() if "ingest_latency" in ln]
