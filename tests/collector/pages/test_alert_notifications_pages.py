"""An alert's notifications in real headless Chromium against the real demo (which runs
without its evaluator): an alert and the outbox rows about it, linked as routing links
them, inserted into the demo's store; the list marks the alert whose message died
("Gửi thông báo thất bại") and links to its page; the page lists "Thông báo đã gửi" with
local times, states and the error in Vietnamese, then English on a 390 px phone. The
module removes what it inserted."""
import time
from types import SimpleNamespace
from typing import Iterator

import pytest
from playwright.sync_api import expect
from schoolmon.collector.store import schema as db
from sqlalchemy import delete

from tests.collector.alerting.alerthelp import insert_alert

from .conftest import api_get
from .pagehelp import LAPTOP, PHONE, login, new_page, screenshot, settle

T_SENT = 1_796_180_400.0  # 2026-12-02 10:00 in Hà Nội
T_DEAD = T_SENT + 125  # 10:02
FAILING_VI = "Mất kết nối toàn trường (kiểm thử thông báo)"
FINE_VI = "Chưa đạt chuẩn ATTT (kiểm thử thông báo)"


def _message(conn, key, channel, recipient, state, attempts, created, sent=None, error=None):
    return int(conn.execute(db.notifications.insert().values(
        dedup_key=key, created_at=created, channel=channel, recipient=recipient,
        route="so", group_key="g:" + key, lang="vi", subject="[schoolmon] kiểm thử",
        body="kiểm thử", payload=None, state=state, attempts=attempts,
        next_attempt_at=created, sent_at=sent, last_error=error, rev=1)
        .returning(db.notifications.c.id)).scalar_one())


@pytest.fixture(scope="module")
def seeded(demo) -> Iterator[SimpleNamespace]:
    school = demo.tech_school
    area = (api_get(demo, "/api/v1/schools/" + school).get("area") or {}).get("code")
    engine = db.make_engine(demo.store_url)
    now = time.time()
    with engine.begin() as conn:
        failing = insert_alert(conn, "school_offline", school, now, "critical", area=area,
                               title_vi=FAILING_VI, title_en="Whole school offline (notify test)")
        fine = insert_alert(conn, "below_attt", school, now, "warning", area=area,
                            title_vi=FINE_VI, title_en="Below the ATTT baseline (notify test)")
        sent = _message(conn, "page-test:sent", "email", "so@sogd.example.vn", "sent", 1,
                        T_SENT - 5, sent=T_SENT)
        dead = _message(conn, "page-test:dead", "webhook", "webhook", "dead", 10, T_DEAD,
                        error="http_status: 503 (http://127.0.0.1:9)")
        other = _message(conn, "page-test:fine", "email", "so@sogd.example.vn", "sent", 1,
                         T_SENT, sent=T_SENT + 1)
        conn.execute(db.alert_notifications.insert(), [
            {"alert_id": failing, "notification_id": sent, "kind": "firing"},
            {"alert_id": failing, "notification_id": dead, "kind": "firing"},
            {"alert_id": fine, "notification_id": other, "kind": "firing"}])
    ids = SimpleNamespace(failing=failing, fine=fine, messages=[sent, dead, other])
    try:
        yield ids
    finally:
        with engine.begin() as conn:
            conn.execute(delete(db.alert_notifications).where(
                db.alert_notifications.c.notification_id.in_(ids.messages)))
            conn.execute(delete(db.notifications).where(db.notifications.c.id.in_(ids.messages)))
            mine = [failing, fine]
            conn.execute(delete(db.alert_events).where(db.alert_events.c.alert_id.in_(mine)))
            conn.execute(delete(db.alerts).where(db.alerts.c.id.in_(mine)))
        engine.dispose()


def test_the_list_marks_a_failed_notification_and_the_page_lists_them(demo, browser, seeded):
    w = new_page(browser, LAPTOP)
    try:
        login(w, demo.url, *demo.users["so_admin"], start="/alerts")
        p = w.page
        settle(p)
        failing = p.locator('#alerts tr[data-alert="%d"]' % seeded.failing)
        fine = p.locator('#alerts tr[data-alert="%d"]' % seeded.fine)
        mark = failing.locator("a.delivery-failed")
        expect(mark).to_have_attribute("title", "Gửi thông báo thất bại")
        expect(fine.locator("a.delivery-failed")).to_have_count(0)
        screenshot(p, "alerts-delivery-mark-1366")
        mark.click()
        settle(p)
        expect(p.locator("#page-title")).to_contain_text(FAILING_VI)
        box = p.locator("#notifications")
        expect(box.locator("h3")).to_have_text("Thông báo đã gửi")
        rows = box.locator("#notifications-list tbody tr")
        expect(rows).to_have_count(2)
        sent = box.locator('tr[data-state="sent"]')
        expect(sent).to_contain_text("10:00 02/12/2026")  # Hà Nội time, not UTC
        expect(sent).to_contain_text("Thư điện tử")
        expect(sent).to_contain_text("Đã gửi")
        expect(sent).to_contain_text("Báo cảnh báo mới")
        dead = box.locator('tr[data-state="dead"]')
        expect(dead).to_contain_text("Không gửi được")
        expect(dead).to_contain_text("Máy nhận trả lời lỗi HTTP 503")
        expect(dead).to_contain_text("10:02 02/12/2026")
        expect(dead).to_contain_text("10")
        screenshot(p, "alert-notifications-1366")
        w.expect_errors()
    finally:
        w.context.close()


def test_english_on_a_phone(demo, browser, seeded):
    w = new_page(browser, PHONE)
    try:
        login(w, demo.url, *demo.users["so_admin"], start="/alerts/%d" % seeded.failing)
        p = w.page
        settle(p)
        p.click("#lang")
        settle(p)
        box = p.locator("#notifications")
        expect(box.locator("h3")).to_have_text("Notifications sent")
        expect(box.locator('tr[data-state="dead"]')).to_contain_text(
            "The receiver answered HTTP 503")
        expect(box.locator('tr[data-state="dead"]')).to_contain_text("Gave up")
        width = p.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, width
        screenshot(p, "alert-notifications-390-en")
        p.goto(demo.url + "/alerts")
        settle(p)
        mark = p.locator('#alerts tr[data-alert="%d"] a.delivery-failed' % seeded.failing)
        expect(mark).to_have_attribute("title", "Notification failed")
        width = p.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, width
        p.click("#lang")  # back to Vietnamese for other tests of this browser
        settle(p)
        w.expect_errors()
    finally:
        w.context.close()
