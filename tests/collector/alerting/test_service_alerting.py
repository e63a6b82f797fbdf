"""The alert evaluator as a thread of the running collector, through a real Mosquitto and a
real state store: a server that stops (its Last Will says offline) opens an alert within a
poll of the store's events, without waiting for the full pass; the pass's metrics are in
/metrics; ``alerting.enabled = false`` runs no evaluator."""
import time

from schoolmon.collector.metrics import Registry
from schoolmon.collector.service import CollectorService
from schoolmon.protocol import encode, envelope, topic

from tests.collector.helpers import config, mosquitto_pub, school_row, seed_schools, wait_until

from .fleet import alerts

RULES = '''version = 1

[[rule]]
id = "server_offline"
condition = "device_offline"
severity = "critical"
roles = ["server"]
for = "0s"
clear_for = "0s"
title = { vi = "{school_name}: máy chủ {device_name} mất kết nối", en = "{device_name} offline" }
text = { vi = "{device_name}: {reason}", en = "{device_name}: {reason}" }
'''


def test_service_thread_reacts_to_events(mosquitto, tmp_path):
    url = "sqlite:///%s" % (tmp_path / "state.db")
    seed_schools(url, [school_row("S1")])
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    cfg = config(mosquitto.url, url, client_id="alerting", batch_wait=0.05)
    cfg.alerting.rules_file = str(rules)
    cfg.alerting.evaluate_interval = 3600.0  # only the first pass is full: the rest react
    cfg.alerting.poll_interval = 0.2
    registry = Registry()
    svc = CollectorService(cfg, registry=registry)
    assert svc.alerting is not None
    assert len(svc.after_alerting) == 2  # routing and the daily digest (notify/)
    after = []
    svc.after_alerting.append(lambda engine, now: after.append(now))
    svc.start()
    try:
        assert svc.ingest.wait_subscribed(10)
        wait_until(lambda: svc.alert_passes >= 1, timeout=30, what="the first pass")
        now = time.time()
        for seq, (state, extra) in enumerate((("online", {"hb": 60}),
                                              ("offline", {"reason": "lost"})), 1):
            if seq == 1:
                mosquitto_pub(mosquitto.port, topic("S1", "srv1", "inventory"), encode(
                    envelope("inventory", {"hostname": "MAYCHU", "role": "server",
                                           "os_name": "Linux", "agent": "t"}, 1, now)))
            mosquitto_pub(mosquitto.port, topic("S1", "srv1", "status"), encode(
                envelope("status", dict({"state": state, "agent": "t"}, **extra),
                         seq + 1, now + seq)))
        engine = svc.store.engine
        wait_until(lambda: any(a.state == "firing" for a in alerts(engine)), timeout=30,
                   what="the server's alert")
        a = alerts(engine)[0]
        assert a.subject == "device:srv1" and a.value["device_name"] == "MAYCHU"
        assert a.value["text"]["vi"] == "MAYCHU: mất kết nối đột ngột"
        assert svc.last_alerting is not None and not svc.last_alerting.full
        assert after  # the passes after evaluation ran
        text = svc.metrics.render()
        assert 'schoolmon_alerts{severity="critical",state="firing"} 1.0' in text
        assert 'schoolmon_alert_evaluations_total{kind="full"} 1.0' in text
        assert "schoolmon_alert_evaluation_seconds_count" in text
    finally:
        svc.stop()


def test_alerting_disabled(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "state.db")
    seed_schools(url, [school_row("S1")])
    cfg = config("", url)
    cfg.alerting.enabled = False
    svc = CollectorService(cfg, registry=Registry())
    assert svc.alerting is None
