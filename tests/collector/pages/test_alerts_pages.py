"""The alerts page, and the open alerts on the school page, the device page and the
overview, in real headless Chromium against the real demo: alerts inserted into the demo's
store as the evaluator writes them; listed in Vietnamese, acknowledged with a comment and
silenced from the page (the API then says so), the English switch, the delivery panel for
administrators only, scope (another school's alert is "not found"), 1366 and 390 px, the
page weight budget. The module removes what it inserted."""
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

BUDGET_BYTES = 300 * 1024
CRIT_VI = "Mất kết nối toàn trường (kiểm thử trang)"
WARN_VI = "Ổ đĩa gần đầy (kiểm thử trang)"
OTHER_VI = "Trường khác: mất Internet (kiểm thử trang)"


@pytest.fixture(scope="module")
def seeded(demo) -> Iterator[SimpleNamespace]:
    school = demo.tech_school
    dev = next(d["id"] for d in api_get(demo, "/api/v1/devices?school=%s&per_page=50"
                                        % school)["items"] if d["role"] != "router")
    other = next(s["code"] for s in api_get(demo, "/api/v1/schools?per_page=50")["items"]
                 if s["code"] != school)
    detail = api_get(demo, "/api/v1/schools/" + school)
    area = (detail.get("area") or {}).get("code")
    engine = db.make_engine(demo.store_url)
    now = time.time()
    with engine.begin() as conn:
        ids = SimpleNamespace(
            crit=insert_alert(conn, "school_offline", school, now, "critical", area=area,
                              title_vi=CRIT_VI, title_en="Whole school offline (page test)",
                              age=2 * 3600),
            warn=insert_alert(conn, "device_disk_full", school, now, "warning", device=dev,
                              area=area, title_vi=WARN_VI, title_en="Disk almost full (page test)"),
            other=insert_alert(conn, "school_internet_down", other, now, "critical",
                               title_vi=OTHER_VI, title_en="Other school: Internet down"),
            school=school, device=dev, other_school=other)
    try:
        yield ids
    finally:
        mine = [ids.crit, ids.warn, ids.other]
        with engine.begin() as conn:
            conn.execute(delete(db.alert_events).where(db.alert_events.c.alert_id.in_(mine)))
            conn.execute(delete(db.alerts).where(db.alerts.c.id.in_(mine)))
            conn.execute(delete(db.silences).where(db.silences.c.comment.like("%kiểm thử%")))
        engine.dispose()


def _row(p, alert_id: int):
    return p.locator('#alerts tr[data-alert="%d"]' % alert_id)


def test_empty_state_before_any_alert(demo, browser):
    """The demo has no evaluator yet: nothing is open, the page says so (with an evaluator,
    a filter that matches nothing says its own sentence)."""
    open_now = api_get(demo, "/api/v1/alerts?per_page=1")["counts"]["open"]
    w = new_page(browser, LAPTOP)
    try:
        login(w, demo.url, *demo.users["so_admin"])
        p = w.page
        if open_now == 0:
            p.goto(demo.url + "/alerts")
            settle(p)
            expect(p.locator("#alerts")).to_contain_text("Không có cảnh báo nào đang mở")
            p.goto(demo.url + "/")
            settle(p)
            expect(p.locator("#alerts-none")).to_have_text("Không có cảnh báo nào đang mở.")
        p.goto(demo.url + "/alerts?school=KHONG-CO")
        settle(p)
        expect(p.locator("#alerts")).to_contain_text("Không có cảnh báo nào khớp bộ lọc")
        expect(p.locator("#delivery")).to_be_visible()  # the administrator's panel
        expect(p.locator("#channels tr[data-channel]")).to_have_count(4)
        w.expect_errors()
    finally:
        w.context.close()


def test_list_ack_and_silence_from_the_page(demo, browser, seeded):
    w = new_page(browser, LAPTOP)
    try:
        login(w, demo.url, *demo.users["so_admin"])
        p = w.page
        p.goto(demo.url + "/alerts")
        settle(p)
        expect(p.locator("#nav-alerts")).to_have_text("Cảnh báo")
        crit, warn = _row(p, seeded.crit), _row(p, seeded.warn)
        expect(crit).to_contain_text(CRIT_VI)
        expect(crit.locator(".st.asev")).to_have_text("Nghiêm trọng")
        expect(crit).to_contain_text("giờ trước")
        expect(crit.locator(".st.handling")).to_have_text("Chưa xử lý")
        expect(warn.locator(".st.asev")).to_have_text("Cảnh báo")
        # critical before warning; within critical the oldest first
        order = p.eval_on_selector_all("#alerts tbody tr", "rs => rs.map(r => r.dataset.severity)")
        assert order.index("warning") > max(i for i, s in enumerate(order) if s == "critical")
        # acknowledge with a comment
        crit.locator("button.ack").click()
        crit.locator("textarea.ack-comment").fill("Thầy Minh đang kiểm tra router")
        crit.locator("form.ack-form button[type=submit]").click()
        settle(p)
        expect(p.locator("#alerts-status")).to_have_text("Đã xác nhận.")
        crit = _row(p, seeded.crit)
        expect(crit.locator(".st.handling")).to_have_text("Đã xác nhận")
        expect(crit).to_contain_text("Thầy Minh đang kiểm tra router")
        got = api_get(demo, "/api/v1/alerts/%d" % seeded.crit)
        assert got["ack"]["comment"] == "Thầy Minh đang kiểm tra router"
        # silence the device's alert: this rule at this school, for 4 hours
        warn = _row(p, seeded.warn)
        warn.locator("button.silence").click()
        warn.locator("select.silence-for").select_option(str(4 * 3600))
        warn.locator("input.silence-comment").fill("Đang thay ổ đĩa (kiểm thử)")
        warn.locator("form.silence-form button[type=submit]").click()
        settle(p)
        expect(p.locator("#alerts-status")).to_contain_text("Đã tắt thông báo đến")
        expect(_row(p, seeded.warn).locator(".st.handling")).to_have_text("Đã tắt thông báo")
        sil = p.locator("#silences tbody tr[data-silence]")
        expect(sil).to_have_count(1)
        expect(sil).to_contain_text("quy tắc device_disk_full")
        silences = api_get(demo, "/api/v1/silences")["items"]
        assert [(s["rule"], s["school_code"]) for s in silences] == [
            ("device_disk_full", seeded.school)]
        assert 4 * 3600 - 120 < (time.mktime(time.strptime(silences[0]["ends_at"],
                                                           "%Y-%m-%dT%H:%M:%SZ"))
                                 - time.mktime(time.strptime(silences[0]["starts_at"],
                                                             "%Y-%m-%dT%H:%M:%SZ"))) <= 4 * 3600
        # the tabs: silenced holds it, acknowledged the other; the address follows
        p.locator("#tab-silenced").click()
        settle(p)
        assert "state=silenced" in p.url
        expect(_row(p, seeded.warn)).to_be_visible()
        expect(_row(p, seeded.crit)).to_have_count(0)
        screenshot(p, "alerts-1366")
        # delete the silence from the list: the alert is no longer silenced
        p.locator("#silences button.delete-silence").click()
        settle(p)
        expect(p.locator("#silences tbody tr[data-silence]")).to_have_count(0)
        assert api_get(demo, "/api/v1/alerts/%d" % seeded.warn)["handling"] == "new"
        audit = api_get(demo, "/api/v1/audit?per_page=10")["items"]
        assert {"alert_ack", "silence_create", "silence_delete"} <= {a["action"] for a in audit}
        w.expect_errors()
    finally:
        w.context.close()


def test_filters_are_in_the_address(demo, browser, seeded):
    w = new_page(browser, LAPTOP)
    try:
        login(w, demo.url, *demo.users["so_admin"], start="/alerts?severity=warning")
        p = w.page
        settle(p)
        expect(p.locator("#f-severity")).to_have_value("warning")
        sevs = set(p.eval_on_selector_all("#alerts tbody tr[data-alert]",
                                          "rs => rs.map(r => r.dataset.severity)"))
        assert sevs == {"warning"}
        p.select_option("#f-severity", "critical")
        settle(p)
        assert "severity=critical" in p.url
        expect(_row(p, seeded.warn)).to_have_count(0)
        w.expect_errors()
    finally:
        w.context.close()


def test_school_device_and_overview_show_open_alerts(demo, browser, seeded):
    w = new_page(browser, LAPTOP)
    try:
        login(w, demo.url, *demo.users["school_tech"])
        p = w.page
        p.goto(demo.url + "/schools/" + seeded.school)
        settle(p)
        box = p.locator("#open-alerts")
        expect(box).to_be_visible()
        expect(box).to_contain_text(CRIT_VI)
        expect(box).to_contain_text(WARN_VI)
        expect(box.locator("h3")).to_contain_text("Cảnh báo đang mở")
        screenshot(p, "school-open-alerts-1366")
        p.goto(demo.url + "/devices/" + seeded.device)
        settle(p)
        expect(p.locator("#open-alerts")).to_contain_text(WARN_VI)
        expect(p.locator("#open-alerts")).not_to_contain_text(CRIT_VI)
        p.goto(demo.url + "/")
        settle(p)
        crit = p.locator('#cards-alerts [data-severity="critical"] a')
        expect(crit).to_have_attribute("href", "/alerts?severity=critical")
        assert int(crit.inner_text()) >= 1
        screenshot(p, "overview-alerts-1366")
        # the technician sees their school only: the other school's alert is not found
        p.goto(demo.url + "/alerts")
        settle(p)
        expect(p.locator("#alerts")).not_to_contain_text(OTHER_VI)
        expect(p.locator("#delivery")).to_have_count(0)
        r = p.goto(demo.url + "/alerts/%d" % seeded.other)
        assert r is not None and r.status == 404
        settle(p)
        expect(p.locator("#notfound")).to_be_visible()
        w.expect_errors("404")
    finally:
        w.context.close()


def test_english_and_phone(demo, browser, seeded):
    w = new_page(browser, PHONE)
    try:
        login(w, demo.url, *demo.users["so_admin"], start="/alerts")
        p = w.page
        settle(p)
        p.click("#lang")
        settle(p)
        expect(p.locator("#page-title")).to_have_text("Alerts")
        crit = _row(p, seeded.crit)
        expect(crit).to_contain_text("Whole school offline (page test)")
        expect(crit.locator(".st.asev")).to_have_text("Critical")
        expect(crit).to_contain_text("ago")
        width = p.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, width
        screenshot(p, "alerts-390-en")
        p.click("#lang")  # back to Vietnamese for the other tests of this browser
        settle(p)
        w.expect_errors()
    finally:
        w.context.close()


def test_one_alert_page_has_its_history(demo, browser, seeded):
    w = new_page(browser, LAPTOP)
    try:
        login(w, demo.url, *demo.users["so_admin"], start="/alerts/%d" % seeded.warn)
        p = w.page
        settle(p)
        expect(p.locator("#page-title")).to_contain_text(WARN_VI)
        kinds = p.eval_on_selector_all("#history tr", "rs => rs.map(r => r.dataset.kind)")
        assert kinds[-2:] == ["firing", "pending"], kinds  # newest first
        expect(p.locator("#history")).to_contain_text("Phát cảnh báo")
        w.expect_errors()
    finally:
        w.context.close()


def test_alerts_page_weight(demo, browser, seeded):
    w = new_page(browser, LAPTOP)
    try:
        login(w, demo.url, *demo.users["so_admin"])
        state = w.context.storage_state()
    finally:
        w.context.close()
    ctx = browser.new_context(storage_state=state, viewport=LAPTOP)
    try:
        q = ctx.new_page()
        q.goto(demo.url + "/alerts")
        settle(q)
        q.wait_for_load_state("networkidle")
        weight = q.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
          return n.transferSize + performance.getEntriesByType('resource')
            .reduce((a, e) => a + e.transferSize, 0); }""")
    finally:
        ctx.close()
    print("alerts page weight (bytes on the wire, cold cache): %d" % weight)
    assert 0 < weight < BUDGET_BYTES
