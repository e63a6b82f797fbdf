"""An alert's notifications over real HTTP on SQLite and the real PostgreSQL: routing
links the messages (alert_notifications), a real webhook receiver on loopback refuses the
first attempt, the Sender retries it after its backoff (the clock passed in) and it goes;
the alert's page data (``notifications``), the list's ``delivery`` summary and /metrics
say each step. The receiver's URL never shows: the API names the entry."""
import time

from prometheus_client.parser import text_string_to_metric_families
from schoolmon.collector.api.present import iso_utc
from schoolmon.collector.metrics import default_metrics
from schoolmon.collector.notify.channels.webhook import WebhookChannel
from schoolmon.collector.notify.delivery import Sender, backoff
from schoolmon.collector.notify.routing import route_pass
from schoolmon.collector.store import schema as db
from sqlalchemy import select

from tests.collector.api.test_alerts_api import col  # noqa: F401  (the fixture)
from tests.collector.notify.alerthelp import settings
from tests.collector.notify.receivers import HttpReceiver

SECRET = "wh-s3cret-Lào-Cai-0123456789"


def sample(client, name, **labels):
    text = client.get("/metrics").text
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError("%s %r not in /metrics" % (name, labels))


def test_failed_then_retried_then_sent_shows_on_the_alert_and_in_metrics(col):  # noqa: F811
    phase = {"fail": True}
    rx = HttpReceiver(lambda req: (503, {"error": "busy"}) if phase["fail"] else (200, {}))
    try:
        hook = rx.url + "/hook?key=do-not-show-me"
        now = time.time() + 3600  # the routing and sending clock: past every group_wait
        route_pass(col.engine, now, settings(webhook_url=hook))
        alert = col.ids["s01_crit"]
        with col.engine.connect() as c:
            linked = c.execute(select(db.alert_notifications.c.notification_id).where(
                db.alert_notifications.c.alert_id == alert)).scalars().all()
            hooks = c.execute(select(db.notifications.c.id).where(
                db.notifications.c.channel == "webhook")).scalars().all()
        assert len(linked) == 1 and linked[0] in hooks
        admin = col.client()
        one = admin.get("/api/v1/alerts/%d" % alert).json()
        [n] = one["notifications"]
        assert (n["channel"], n["recipient"], n["kind"], n["state"], n["attempts"]) == \
            ("webhook", "webhook", "firing", "queued", 0)
        assert n["state_label"] == "Chờ gửi" and n["kind_label"] == "Báo cảnh báo mới"

        metrics = default_metrics()  # what /metrics renders when no service runs
        failed_before = sample(admin, "schoolmon_notifications_total", channel="webhook",
                               result="failed")
        sent_before = sample(admin, "schoolmon_notifications_total", channel="webhook",
                             result="sent")
        sender = Sender(col.engine, {"webhook": WebhookChannel(hook, SECRET, 10)},
                        metrics=metrics)
        first = sender.run_once(now).attempts
        assert first and all(a.result == "failed" for a in first)
        one = admin.get("/api/v1/alerts/%d" % alert).json()
        [n] = one["notifications"]
        assert (n["state"], n["attempts"], n["sent_at"]) == ("failed", 1, None)
        assert n["last_error"].startswith("http_status: 503")
        assert n["last_error_text"].startswith("Máy nhận trả lời lỗi HTTP 503")
        assert n["next_attempt_at"] == iso_utc(now + backoff(1))
        assert n["state_label"] == "Lỗi, sẽ thử lại"
        en = admin.get("/api/v1/alerts/%d" % alert, params={"lang": "en"}).json()
        assert en["notifications"][0]["last_error_text"].startswith(
            "The receiver answered HTTP 503")
        assert one["delivery"] == {"sent": 0, "waiting": 0, "failed": 1}
        listed = {a["id"]: a for a in admin.get("/api/v1/alerts").json()["items"]}
        assert listed[alert]["delivery"] == {"sent": 0, "waiting": 0, "failed": 1}
        assert sample(admin, "schoolmon_notifications_total", channel="webhook",
                      result="failed") == failed_before + len(first)
        assert sample(admin, "schoolmon_notifications_queued", state="failed") == len(first)
        assert "do-not-show-me" not in admin.get("/api/v1/alerts/%d" % alert).text

        # the receiver is back; nothing is retried before its time, then it goes once
        phase["fail"] = False
        assert sender.run_once(now + backoff(1) - 1).attempts == []
        second = sender.run_once(now + backoff(1)).attempts
        assert len(second) == len(first) and all(a.result == "sent" for a in second)
        [n] = admin.get("/api/v1/alerts/%d" % alert).json()["notifications"]
        assert (n["state"], n["attempts"], n["sent_at"]) == ("sent", 2, iso_utc(now + backoff(1)))
        assert n["last_error"] is None and n["next_attempt_at"] is None
        assert n["sent_at_local"].endswith("+07:00")
        listed = {a["id"]: a for a in admin.get("/api/v1/alerts").json()["items"]}
        assert listed[alert]["delivery"] == {"sent": 1, "waiting": 0, "failed": 0}
        assert sample(admin, "schoolmon_notifications_total", channel="webhook",
                      result="sent") == sent_before + len(second)
        assert sample(admin, "schoolmon_notifications_queued", state="failed") == 0
        # scope as the rest: the school's technician sees its alert's messages, not others'
        tech = col.user("tech")
        assert len(tech.get("/api/v1/alerts/%d" % alert).json()["notifications"]) == 1
        assert tech.get("/api/v1/alerts/%d" % col.ids["s05"]).status_code == 404
    finally:
        rx.stop()
