"""The alerts API over real HTTP (uvicorn on a loopback port) on a real SQLite and
PostgreSQL store: filters and order, scope (404 outside, 403 for the role), ack and silence
surviving a collector restart (a new app and engine on the same store), validation in
Vietnamese and English, the delivery status for administrators, the audit log."""
import time
from typing import Iterator

import httpx
import pytest
from schoolmon.collector.api import create_app
from schoolmon.collector.api.deps import CSRF_HEADER
from schoolmon.collector.store import schema as db
from schoolmon.collector.store import users as user_store
from schoolmon.collector.store.schema import attt_state, notifications

from tests.collector.alerting.alerthelp import insert_alert
from tests.collector.api.apihelp import ADMIN, LiveServer, _cfg, seed
from tests.collector.storehelp import engine_for

PASSWORD = "correct horse battery"
USERS = {"viewer": ("so_viewer", []), "officer": ("area_officer", ["lao-cai/bat-xat"]),
         "tech": ("school_tech", ["S01"])}
BAT_XAT = "lao-cai/bat-xat"


class Collector:
    """The app over a store; ``restart()`` is a new engine and a new app on the same one."""

    def __init__(self, engine, url: str) -> None:
        self.url = url
        self.engine = engine
        self.live = LiveServer(create_app(engine, _cfg()))

    def restart(self) -> None:
        self.live.stop()
        self.engine.dispose()
        self.engine = db.make_engine(self.url)
        self.live = LiveServer(create_app(self.engine, _cfg()))

    def client(self, token: str = ADMIN, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.live.url, timeout=20,
                            headers=dict(headers, Authorization="Bearer " + token))

    def user(self, name: str) -> httpx.Client:
        with self.engine.begin() as conn:
            _, tok = user_store.create_token(conn, name)
        return self.client(tok)


@pytest.fixture(params=["sqlite", "postgresql"])
def col(request, tmp_path) -> Iterator[Collector]:
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    for engine in engine_for(request.param, tmp_path, postgres):
        seed(engine)
        now = time.time()
        with engine.begin() as conn:
            for name, (role, units) in USERS.items():
                user_store.add_user(conn, name, role, PASSWORD, units)
            ids = {
                "s01_warn": insert_alert(conn, "below_attt", "S01", now, area=BAT_XAT,
                                         age=7200, title_vi="Trường 1: chưa đạt chuẩn ATTT"),
                "s01_crit": insert_alert(conn, "school_offline", "S01", now, "critical",
                                         area=BAT_XAT, age=600,
                                         title_vi="Trường 1: mất kết nối toàn trường",
                                         title_en="School 1: the whole school is offline"),
                "s01_old_crit": insert_alert(conn, "device_av_off", "S01", now, "critical",
                                             device="d01a", area=BAT_XAT, age=86400),
                "s02": insert_alert(conn, "school_offline", "S02", now, "critical",
                                    area=BAT_XAT),
                "s05": insert_alert(conn, "school_offline", "S05", now, "critical",
                                    area="lao-cai/sa-pa"),
                "done": insert_alert(conn, "router_down", "S01", now, "warning",
                                     state="resolved", area=BAT_XAT),
                "own": insert_alert(conn, "ingest_stalled", None, now, "critical"),
            }
        c = Collector(engine, str(engine.url.render_as_string(hide_password=False)))
        c.ids = ids  # type: ignore[attr-defined]
        try:
            yield c
        finally:
            c.live.stop()
            c.engine.dispose()


def _ids(r: httpx.Response):
    assert r.status_code == 200, r.text
    return [a["id"] for a in r.json()["items"]]


def test_filters_and_order(col):
    i = col.ids
    admin = col.client()
    body = admin.get("/api/v1/alerts").json()
    # worst first, the oldest first within a severity; resolved ones are not open
    assert [a["id"] for a in body["items"]] == [
        i["s01_old_crit"], i["s02"], i["s05"], i["own"], i["s01_crit"], i["s01_warn"]]
    assert body["counts"]["by_severity"] == {"critical": 5, "warning": 1, "info": 0}
    first = body["items"][0]
    assert first["severity_label"] == "Nghiêm trọng" and first["handling_label"] == "Chưa xử lý"
    assert first["device"] == {"id": "d01a", "name": "pc-d01a"}
    assert first["school"] == {"code": "S01", "name": "Trường 1"}
    assert first["started_at_local"].endswith("+07:00")
    assert _ids(admin.get("/api/v1/alerts", params={"state": "resolved"})) == [i["done"]]
    assert _ids(admin.get("/api/v1/alerts", params={"severity": "warning"})) == [i["s01_warn"]]
    assert _ids(admin.get("/api/v1/alerts", params={"kind": "collector"})) == [i["own"]]
    assert _ids(admin.get("/api/v1/alerts", params={"kind": "device"})) == [i["s01_old_crit"]]
    assert set(_ids(admin.get("/api/v1/alerts", params={"area": "sa pa"}))) == {i["s05"]}
    assert set(_ids(admin.get("/api/v1/alerts", params={"school": "S02"}))) == {i["s02"]}
    assert _ids(admin.get("/api/v1/alerts", params={"rule": "below_attt"})) == [i["s01_warn"]]
    page2 = admin.get("/api/v1/alerts", params={"per_page": 4, "page": 2}).json()
    assert (page2["total"], page2["pages"], len(page2["items"])) == (6, 2, 2)
    en = admin.get("/api/v1/alerts", params={"school": "S01", "severity": "critical",
                                             "lang": "en"}).json()["items"]
    assert "School 1: the whole school is offline" in [a["title"] for a in en]
    assert en[0]["severity_label"] == "Critical"
    one = admin.get("/api/v1/alerts/%d" % i["s01_crit"]).json()
    assert [e["kind"] for e in one["events"]] == ["pending", "firing"]
    assert one["events"][1]["kind_label"] == "Phát cảnh báo"
    r = admin.get("/api/v1/alerts", params={"state": "gone"})
    assert r.status_code == 422 and r.json()["message"] == "Tham số không hợp lệ."


def test_scope_and_rights(col):
    i = col.ids
    tech, officer, viewer = col.user("tech"), col.user("officer"), col.user("viewer")
    assert set(_ids(tech.get("/api/v1/alerts"))) == {i["s01_old_crit"], i["s01_crit"],
                                                     i["s01_warn"]}
    assert set(_ids(officer.get("/api/v1/alerts"))) == {
        i["s01_old_crit"], i["s01_crit"], i["s01_warn"], i["s02"]}
    assert len(_ids(viewer.get("/api/v1/alerts"))) == 6  # the province, the collector's too
    for path in ("/api/v1/alerts/%d" % i["s05"], "/api/v1/alerts/%d" % i["own"]):
        assert tech.get(path).status_code == 404
    hidden = tech.post("/api/v1/alerts/%d/ack" % i["s02"], json={"comment": "x"})
    missing = tech.post("/api/v1/alerts/99999/ack", json={"comment": "x"})
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json() and hidden.json()["message"] == \
        "Không tìm thấy cảnh báo."
    r = viewer.post("/api/v1/alerts/%d/ack" % i["s01_crit"], json={"comment": "x"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden_role"
    assert viewer.post("/api/v1/silences", json={"school_code": "S01", "duration_s": 600,
                                                 "comment": "x"}).status_code == 403
    assert officer.post("/api/v1/alerts/%d/ack" % i["s02"],
                        json={"comment": "Đã báo nhà mạng"}).status_code == 200
    r = officer.post("/api/v1/silences", json={"area_code": "lao-cai/sa-pa",
                                               "duration_s": 600, "comment": "x"})
    assert r.status_code == 403 and r.json()["error"] == "silence_outside_scope"
    assert officer.post("/api/v1/silences", json={"area_code": BAT_XAT, "duration_s": 600,
                                                  "comment": "bão"}).status_code == 201
    for who in (tech, officer, viewer):
        r = who.get("/api/v1/notifications")
        assert r.status_code == 403 and r.json()["error"] == "admin_required"


def test_ack_and_silence_survive_a_restart(col):
    i = col.ids
    tech = col.user("tech")
    r = tech.post("/api/v1/alerts/%d/ack" % i["s01_crit"],
                  json={"comment": "Cô Lan đang kiểm tra router"})
    assert r.status_code == 200, r.text
    assert (r.json()["handling"], r.json()["ack"]["by"]) == ("acknowledged", "tech")
    again = tech.post("/api/v1/alerts/%d/ack" % i["s01_crit"], json={"comment": "x"})
    assert again.status_code == 409 and again.json()["message"] == "Cảnh báo đã được xác nhận."
    s = tech.post("/api/v1/silences", json={"device_id": "d01a", "duration_s": 86400,
                                            "kind": "maintenance",
                                            "comment": "Cài lại Windows"})
    assert s.status_code == 201, s.text
    assert s.json()["kind_label"] == "Bảo trì" and s.json()["ends_at_local"].endswith("+07:00")
    col.restart()  # a new collector: new engine, new app, the same store
    tech = col.user("tech")
    one = tech.get("/api/v1/alerts/%d" % i["s01_crit"]).json()
    assert one["handling"] == "acknowledged"
    assert one["ack"]["comment"] == "Cô Lan đang kiểm tra router"
    assert [e["kind"] for e in one["events"]][-1] == "acked"
    assert _ids(tech.get("/api/v1/alerts", params={"state": "acknowledged"})) == \
        [i["s01_crit"]]
    # the silence holds the device's alert at once (before any evaluator pass)
    assert _ids(tech.get("/api/v1/alerts", params={"state": "silenced"})) == \
        [i["s01_old_crit"]]
    held = tech.get("/api/v1/alerts/%d" % i["s01_old_crit"]).json()
    assert held["silence"]["id"] == s.json()["id"]
    listed = tech.get("/api/v1/silences").json()["items"]
    assert [x["id"] for x in listed] == [s.json()["id"]]
    assert (listed[0]["device_name"], listed[0]["kind"]) == ("pc-d01a", "maintenance")
    # deleted: out of the list, in the history, and the alert is no longer silenced
    d = tech.delete("/api/v1/silences/%d" % s.json()["id"])
    assert d.status_code == 200 and d.json()["silence_state"] == "deleted"
    assert tech.get("/api/v1/silences").json()["items"] == []
    past = tech.get("/api/v1/silences", params={"include_past": "true"}).json()["items"]
    assert [(x["id"], x["deleted_by"]) for x in past] == [(s.json()["id"], "tech")]
    assert tech.get("/api/v1/alerts/%d" % i["s01_old_crit"]).json()["handling"] == "new"
    # unack
    u = tech.post("/api/v1/alerts/%d/unack" % i["s01_crit"], json={})
    assert u.status_code == 200 and u.json()["handling"] == "new"
    audit = col.client().get("/api/v1/audit").json()["items"]
    assert [(e["actor"], e["action"]) for e in audit][:4] == [
        ("tech", "alert_unack"), ("tech", "silence_delete"), ("tech", "silence_create"),
        ("tech", "alert_ack")]
    assert audit[3]["action_label"] == "Xác nhận cảnh báo"


def test_validation_errors_in_vietnamese_and_english(col):
    admin = col.client()
    cases = [
        ({"duration_s": 600, "comment": "x"}, 422, "silence_no_matcher"),
        ({"school_code": "S01", "comment": "x"}, 422, "invalid_request"),
        ({"school_code": "S01", "starts_at": "2030-01-02T00:00:00Z",
          "ends_at": "2030-01-01T00:00:00Z", "comment": "x"}, 422, "silence_ends_before_start"),
        ({"school_code": "S01", "ends_at": "2020-01-01T00:00:00Z", "comment": "x"}, 422,
         "silence_in_past"),
        ({"school_code": "S01", "starts_at": "2030-01-01T00:00:00Z",
          "ends_at": "2030-06-01T00:00:00Z", "comment": "x"}, 422, "silence_too_long"),
        ({"school_code": "S99", "duration_s": 600, "comment": "x"}, 404, "school_not_found"),
        ({"school_code": "S01", "duration_s": 600, "comment": ""}, 422, "invalid_request"),
        ({"school_code": "S01", "duration_s": 600, "comment": "x", "kind": "nap"}, 422,
         "invalid_request"),
    ]
    for body, status, code in cases:
        r = admin.post("/api/v1/silences", json=body)
        assert (r.status_code, r.json()["error"]) == (status, code), (body, r.text)
        assert r.json()["message"]
    r = admin.post("/api/v1/silences", json=cases[0][0])
    assert r.json()["message"].startswith("Cần ít nhất một điều kiện")
    r = admin.post("/api/v1/silences?lang=en", json=cases[0][0])
    assert r.json()["message"] == "At least one matcher is needed: rule, school, area or device."
    r = admin.post("/api/v1/alerts/%d/ack" % col.ids["done"], json={"comment": "x"},
                   headers={"Accept-Language": "en"})
    assert (r.status_code, r.json()["message"]) == (
        409, "The alert is resolved: nothing to acknowledge.")
    r = admin.post("/api/v1/alerts/%d/ack" % col.ids["s01_crit"], json={})
    assert r.status_code == 422
    # counted: the refusal by its code (the process's registry: the app has no service)
    text = httpx.get(col.live.url + "/metrics").text
    line = next(x for x in text.splitlines() if x.startswith(
        'schoolmon_alert_actions_total{action="silence_create",outcome="silence_no_matcher"}'))
    assert float(line.split()[-1]) >= 3


def test_session_needs_csrf_for_ack(col):
    c = httpx.Client(base_url=col.live.url, timeout=20)
    r = c.post("/api/v1/session", json={"name": "tech", "password": PASSWORD})
    assert r.status_code == 200
    path = "/api/v1/alerts/%d/ack" % col.ids["s01_crit"]
    assert c.post(path, json={"comment": "x"}).status_code == 403
    ok = c.post(path, json={"comment": "x"}, headers={CSRF_HEADER: r.json()["csrf_token"]})
    assert ok.status_code == 200
    assert "ack" in r.json()["rights"] and "silence" in r.json()["rights"]


def test_delivery_status_for_administrators(col):
    now = time.time()
    with col.engine.begin() as conn:
        for n, (channel, state, err) in enumerate([
                ("email", "sent", None), ("email", "sent", None), ("email", "queued", None),
                ("zalo", "failed", "HTTP 500 từ Zalo"), ("zalo", "dead", "token invalid"),
                ("webhook", "sent", None)]):
            conn.execute(notifications.insert().values(
                dedup_key="k%d" % n, created_at=now - 100 + n, channel=channel,
                recipient="r%d" % n, lang="vi", subject="Cảnh báo %d" % n, body="b",
                state=state, attempts=3 if err else 1, next_attempt_at=now + 60,
                sent_at=now - 50 if state == "sent" else None, last_error=err, rev=1))
        conn.execute(attt_state.insert().values(
            key="notify.health.zalo", updated_at=now, rev=1,
            value={"ok": False, "since": now - 300, "error": "HTTP 500 từ Zalo",
                   "last_attempt": now - 10}))
    body = col.client().get("/api/v1/notifications").json()
    ch = {c["channel"]: c for c in body["channels"]}
    assert (ch["email"]["sent"], ch["email"]["queued"], ch["email"]["sent_24h"]) == (2, 1, 2)
    assert (ch["zalo"]["failed"], ch["zalo"]["dead"]) == (1, 1)
    assert ch["zalo"]["health"]["ok"] is False
    assert ch["zalo"]["health"]["since_local"].endswith("+07:00")
    assert ch["zalo"]["health"]["error"] == "HTTP 500 từ Zalo"  # what the last attempt said
    assert ch["zalo"]["last_error"] == "token invalid"  # the newest message not sent
    assert ch["email"]["channel_label"] == "Thư điện tử"
    assert [f["state"] for f in body["failures"]] == ["dead", "failed"]
    assert body["failures"][0]["state_label"] == "Không gửi được"
