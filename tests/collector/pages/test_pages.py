"""The pages in Debian's Chromium against the real demo (broker, collector, simulated
province): every role logs in; the overview, the drill-down area → school → device with a
chart drawn from the API's points; approving a device; the language switch, remembered; the
phone viewport; a school technician kept to their school (pages and API answer 404). Every
test fails on a console error it did not cause on purpose and on any request leaving
127.0.0.1; screenshots of every page at both sizes go to build/screenshots/."""
import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from .conftest import OFFICER_AREA, api_get
from .pagehelp import (
    LAPTOP,
    PHONE,
    assert_loopback_only,
    chart_points,
    login,
    new_page,
    screenshot,
    settle,
)

NOT_ENGLISH = re.compile(r"\b(undefined|null|NaN|online|offline|partial|no_devices|pending|"
                         r"Error|HTTP|Failed to fetch)\b")


def worst_school(demo) -> dict:
    """A school of the Sở with an offline PC (not its router), not the technician's own."""
    items = api_get(demo, "/api/v1/schools?status=partial&per_page=50")["items"]
    for s in items:
        if s["code"] == demo.tech_school:
            continue
        devices = api_get(demo, "/api/v1/schools/" + s["code"])["devices"]
        if any(d["status"] == "offline" and d["role"] != "router" for d in devices):
            return s
    raise AssertionError("the demo has no school with an offline PC")


@pytest.mark.parametrize("role", ["so_admin", "so_viewer", "area_officer", "school_tech"])
def test_each_role_logs_in_and_sees_the_overview(demo, browser, role):
    w = new_page(browser)
    try:
        p = w.page
        name, password = demo.users[role]
        # a wrong password first: said so, in Vietnamese, and still on the login page
        p.goto(demo.url + "/")
        expect(p).to_have_url(re.compile(r"/login\?next=%2F$"))
        p.fill("#login-name", name)
        p.fill("#login-password", "not-the-password")
        p.press("#login-password", "Enter")
        expect(p.locator("#login-error")).to_have_text("Tên đăng nhập hoặc mật khẩu không đúng.")
        w.expect_errors(r"401")  # Chromium's note on the refused login
        login(w, demo.url, name, password)
        expect(p.locator("#who")).to_contain_text(name)
        expect(p.locator("#cards-schools")).to_be_visible()
        total = int(p.inner_text("#cards-schools .card:first-child .v").replace(".", ""))
        parts = [int(v.replace(".", "")) for v in p.eval_on_selector_all(
            "#cards-schools .card:not(:first-child) .v", "vs => vs.map(v => v.innerText)")]
        assert sum(parts) == total  # the cards add up
        if role == "school_tech":
            assert total == 1
            assert p.locator("#nav-users").count() == 0
        elif role == "area_officer":
            rows = p.eval_on_selector_all("#areas tbody tr", "rs => rs.map(r => r.innerText)")
            assert len(rows) == 1 and "Bát Xát" in rows[0], rows
        else:
            assert total == 36
        assert (p.locator("#nav-users").count() == 1) == (role == "so_admin")
        assert not NOT_ENGLISH.search(p.inner_text("main")), p.inner_text("main")
        screenshot(p, "overview-%s-laptop" % role)
        p.click("#logout")
        expect(p.locator("#login-note")).to_have_text("Bạn đã đăng xuất.")
        w.expect_errors()
        assert_loopback_only(w.requests)
    finally:
        w.context.close()


def test_drill_down_area_school_device_with_chart(demo, browser):
    school = worst_school(demo)
    w = new_page(browser)
    try:
        p = w.page
        login(w, demo.url, *demo.users["so_admin"])
        screenshot(p, "overview-laptop")
        # the area row of the school, then its school list
        p.click("#areas a:text-is('%s')" % school["area"]["name"])
        expect(p).to_have_url(re.compile(r"/areas/[a-z0-9-]+$"))
        settle(p)
        expect(p.locator("#page-title")).to_contain_text(school["area"]["name"])
        codes = p.eval_on_selector_all("#schools tbody tr", "rs => rs.map(r => r.dataset.code)")
        assert school["code"] in codes
        screenshot(p, "area-laptop")
        p.click("#schools tr[data-code='%s'] a" % school["code"])
        expect(p).to_have_url(demo.url + "/schools/" + school["code"])
        settle(p)
        expect(p.locator("#page-title")).to_contain_text(school["name"])
        expect(p.locator("#router")).to_be_visible()
        assert chart_points(p, "chart-school-7d") > 0
        offline = p.locator("#devices tbody tr:has(.st.offline)").first
        expect(offline).to_be_visible()
        screenshot(p, "school-laptop")
        device_id = offline.get_attribute("data-device")
        # an online one of the same school has health points for the charts
        online_id = p.locator("#devices tbody tr:has(.st.online)").first.get_attribute("data-device")
        p.click("#devices tr[data-device='%s'] a" % online_id)
        expect(p).to_have_url(demo.url + "/devices/" + online_id)
        settle(p)
        api_points = api_get(demo, "/api/v1/devices/%s/series?metric=cpu_pct" % online_id)["points"]
        assert chart_points(p, "chart-cpu_pct") == len(api_points) > 0
        assert chart_points(p, "chart-mem_pct") > 0
        expect(p.locator("#history tbody tr").first).to_be_visible()
        screenshot(p, "device-laptop")
        p.click("#range-7d")
        expect(p).to_have_url(demo.url + "/devices/%s?range=7d" % online_id)
        settle(p)
        # 7 days come from the hourly rollups: a demo just started may have none yet, and
        # then the chart says so instead of drawing an empty frame
        week = api_get(demo, "/api/v1/devices/%s/series?metric=cpu_pct&from=%d" % (
            online_id, int(time.time()) - 7 * 86400))["points"]
        if week:
            assert chart_points(p, "chart-cpu_pct") == len(week)
        else:
            expect(p.locator("#chart-cpu_pct .nodata")).to_be_visible()
        # back to the offline device: "offline since" is filled
        p.goto(demo.url + "/devices/" + device_id)
        settle(p)
        expect(p.locator("main")).to_contain_text("Mất kết nối từ")
        w.expect_errors()
        assert_loopback_only(w.requests)
    finally:
        w.context.close()


def test_admin_approves_a_device(demo, browser):
    pending = api_get(demo, "/api/v1/devices?state=pending&per_page=1")["items"][0]
    w = new_page(browser)
    try:
        p = w.page
        login(w, demo.url, *demo.users["so_admin"], start="/devices/" + pending["id"])
        expect(p).to_have_url(demo.url + "/devices/" + pending["id"])
        expect(p.locator("#page-title .st.pending")).to_be_visible()
        p.click("#approve")
        expect(p.locator("#page-title .st.pending")).to_have_count(0)
        expect(p.locator("#approve")).to_have_count(0)
        assert api_get(demo, "/api/v1/devices/" + pending["id"])["state"] == "active"
        audit = api_get(demo, "/api/v1/audit?action=device_approve")["items"]
        assert any(a["target"] == pending["id"] for a in audit), audit
        p.goto(demo.url + "/audit")
        settle(p)
        expect(p.locator("#audit")).to_contain_text(pending["id"])
        p.select_option("#f-action", "device_approve")
        settle(p)
        expect(p).to_have_url(demo.url + "/audit?action=device_approve")
        actions = p.eval_on_selector_all("#audit tbody td:nth-child(3)", "ts => ts.map(t => t.innerText)")
        assert actions and set(actions) == {"Duyệt thiết bị"}, actions
        screenshot(p, "audit-laptop")
        p.goto(demo.url + "/users")
        settle(p)
        expect(p.locator("#users")).to_contain_text("kythuat")
        screenshot(p, "users-laptop")
        # the administrator adds a school technician from the page; a bad unit is refused
        # with the API's message in Vietnamese, and nothing is added
        p.fill("#nu-name", "gv.moi")
        p.select_option("#nu-role", "school_tech")
        p.fill("#nu-password", "mat-khau-dai-1")
        p.fill("#nu-units", "khong-co-truong-nay")
        p.click("#nu-submit")
        expect(p.locator("#nu-status")).not_to_be_empty()
        assert "gv.moi" not in p.locator("#users").inner_text()
        w.expect_errors(r"status of 404 .*/api/v1/users\)$")
        p.fill("#nu-units", demo.tech_school)
        p.click("#nu-submit")
        settle(p)
        expect(p.locator("#users")).to_contain_text("gv.moi")
        added = [u for u in api_get(demo, "/api/v1/users")["items"] if u["name"] == "gv.moi"]
        assert added and added[0]["role"] == "school_tech", added
        assert demo.tech_school in added[0]["units"], added
        w.expect_errors()
    finally:
        w.context.close()


def test_viewer_gets_no_action_buttons(demo, browser):
    pending = api_get(demo, "/api/v1/devices?state=pending&per_page=1")["items"][0]
    w = new_page(browser)
    try:
        p = w.page
        login(w, demo.url, *demo.users["so_viewer"], start="/devices/" + pending["id"])
        expect(p.locator("#page-title")).to_be_visible()
        assert p.locator("#approve, #retire, #move").count() == 0
        w.expect_errors()
    finally:
        w.context.close()


def test_language_switch_is_remembered(demo, browser):
    w = new_page(browser)
    try:
        p = w.page
        login(w, demo.url, *demo.users["so_admin"], start="/schools")
        expect(p.locator("#page-title")).to_have_text("Trường học")
        p.click("#lang")
        settle(p)
        expect(p.locator("#page-title")).to_have_text("Schools")
        expect(p.locator("html")).to_have_attribute("lang", "en")
        # the API's labels come in English too
        expect(p.locator("#schools tbody tr .st").first).to_have_text(re.compile(r"offline|online"))
        p.reload()
        settle(p)
        expect(p.locator("#page-title")).to_have_text("Schools")
        p.goto(demo.url + "/")
        settle(p)
        expect(p.locator("#nav-overview")).to_have_text("Overview")
        screenshot(p, "overview-english-laptop")
        p.click("#lang")
        settle(p)
        expect(p.locator("#nav-overview")).to_have_text("Tổng quan")
        w.expect_errors()
    finally:
        w.context.close()


def column_texts(p, table, heading):
    """The cells of the column headed ``heading`` (columns move as capabilities add theirs)."""
    return p.evaluate("""([table, heading]) => {
        const ths = [...document.querySelectorAll(table + " thead th")];
        const i = ths.findIndex((th) => th.innerText.trim().startsWith(heading));
        if (i < 0) { return null; }
        return [...document.querySelectorAll(table + " tbody tr")].map(
            (tr) => tr.children[i] ? tr.children[i].innerText : null);
    }""", [table, heading])


def test_school_list_filters_search_and_sort(demo, browser):
    w = new_page(browser)
    try:
        p = w.page
        login(w, demo.url, *demo.users["so_admin"], start="/schools")
        expect(p.locator("#pagecount")).to_contain_text("36 trường")
        p.fill("#f-q", "th hoang van thu")  # abbreviation, no diacritics
        settle(p)
        names = p.eval_on_selector_all("#schools tbody tr td.name a",
                                       "as => as.map(a => a.innerText)")
        assert names and all("Hoàng Văn Thụ" in n for n in names), names
        expect(p).to_have_url(re.compile(r"/schools\?q=th\+hoang\+van\+thu$"))
        p.fill("#f-q", "")
        p.select_option("#f-level", "MN")
        settle(p)
        levels = column_texts(p, "#schools", "Cấp học")
        assert levels and set(levels) == {"Mầm non"}, levels
        p.click("th button[data-sort='name']")
        settle(p)
        expect(p.locator("th button[data-sort='name']")).to_have_attribute("aria-sort", "ascending")
        screenshot(p, "schools-laptop")
        # the address is the filtered list: it can be bookmarked
        address = p.url
        assert "level=MN" in address and "sort=name" in address
        p.goto(address)
        settle(p)
        expect(p.locator("#f-level")).to_have_value("MN")
        w.expect_errors()
    finally:
        w.context.close()


def test_devices_page_filters(demo, browser):
    w = new_page(browser)
    try:
        p = w.page
        login(w, demo.url, *demo.users["so_admin"], start="/devices?status=offline")
        settle(p)
        badges = p.eval_on_selector_all("#devices tbody tr td:first-child .st:first-child",
                                        "bs => bs.map(b => b.className)")
        assert badges and all("offline" in b for b in badges), badges
        p.fill("#f-os", "Windows 7")
        p.press("#f-os", "Tab")
        settle(p)
        oses = p.eval_on_selector_all("#devices tbody tr td:nth-child(8)", "ts => ts.map(t => t.innerText)")
        assert all("Windows 7" in o for o in oses), oses
        screenshot(p, "devices-laptop")
        w.expect_errors()
    finally:
        w.context.close()


def test_phone_shows_the_status_column_on_every_page(demo, browser):
    school = worst_school(demo)
    device = api_get(demo, "/api/v1/schools/" + school["code"])["devices"][1]["id"]
    w = new_page(browser, PHONE)
    try:
        p = w.page
        p.goto(demo.url + "/login")
        expect(p.locator("#login-form")).to_be_visible()
        screenshot(p, "login-phone")
        login(w, demo.url, *demo.users["so_admin"])
        pages = [("overview", "/", "#worst"), ("schools", "/schools", "#schools"),
                 ("area", "/areas/" + OFFICER_AREA.split("/")[-1], "#schools"),
                 ("school", "/schools/" + school["code"], "#devices"),
                 ("devices", "/devices", "#devices"), ("device", "/devices/" + device, "#history"),
                 ("users", "/users", "#users"), ("audit", "/audit", "#audit")]
        for name, path, table in pages:
            p.goto(demo.url + path)
            settle(p)
            status = p.locator(table + " tbody tr:first-child td:first-child")
            expect(status).to_be_visible()
            box = status.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)
            # nothing wider than the screen but the scrolling tables
            assert p.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
            screenshot(p, name + "-phone")
        w.expect_errors()
        answer = p.goto(demo.url + "/khong-co-trang-nay")
        assert answer is not None and answer.status == 404
        settle(p)
        expect(p.locator("#notfound")).to_be_visible()
        screenshot(p, "notfound-phone")
        w.expect_errors(r"404")
        assert_loopback_only(w.requests)
    finally:
        w.context.close()


def test_laptop_screenshots_of_every_page(demo, browser):
    school = worst_school(demo)
    device = api_get(demo, "/api/v1/schools/" + school["code"])["devices"][1]["id"]
    w = new_page(browser, LAPTOP)
    try:
        p = w.page
        p.goto(demo.url + "/login?expired=1")
        expect(p.locator("#login-note")).to_be_visible()
        screenshot(p, "login-laptop")
        login(w, demo.url, *demo.users["so_admin"])
        for name, path in [("schools", "/schools"), ("school", "/schools/" + school["code"]),
                           ("device", "/devices/" + device), ("devices", "/devices"),
                           ("users", "/users"), ("audit", "/audit")]:
            p.goto(demo.url + path)
            settle(p)
            assert p.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"], name
            screenshot(p, name + "-laptop")
        w.expect_errors()
    finally:
        w.context.close()


def test_school_tech_cannot_open_another_school(demo, browser):
    other = worst_school(demo)
    other_device = api_get(demo, "/api/v1/schools/" + other["code"])["devices"][0]["id"]
    w = new_page(browser)
    try:
        p = w.page
        login(w, demo.url, *demo.users["school_tech"])
        # the own school opens
        p.goto(demo.url + "/schools/" + demo.tech_school)
        settle(p)
        expect(p.locator("#page-title")).to_be_visible()
        for path in ("/schools/" + other["code"], "/devices/" + other_device):
            answer = p.goto(demo.url + path)
            assert answer is not None and answer.status == 404, path
            settle(p)
            expect(p.locator("#notfound h2")).to_have_text("Không tìm thấy trang")
            for api in ("/api/v1" + path, "/api/v1" + path.replace("/schools/", "/schools/")):
                status = p.evaluate("u => fetch(u).then(r => r.status)", api)
                assert status == 404, api
        # another area's school list: 404 too; the own area opens
        own_area = api_get(demo, "/api/v1/schools/" + demo.tech_school)["area"]["code"]
        areas = [a["code"] for a in api_get(demo, "/api/v1/overview")["areas"]]
        other_area = next(a for a in areas if a != own_area)
        answer = p.goto(demo.url + "/areas/" + other_area.split("/")[-1])
        assert answer is not None and answer.status == 404
        settle(p)
        expect(p.locator("#notfound h2")).to_have_text("Không tìm thấy trang")
        answer = p.goto(demo.url + "/areas/" + own_area)  # the full code works too
        assert answer is not None and answer.status == 200
        settle(p)
        expect(p.locator("#schools tbody tr")).to_have_count(1)
        expect(p).to_have_url(demo.url + "/areas/" + own_area.split("/")[-1])
        screenshot(p, "notfound-laptop")
        w.expect_errors(r"404")
        # an unknown address is a page that says so, in the user's language
        answer = p.goto(demo.url + "/khong-co-trang-nay")
        assert answer is not None and answer.status == 404
        settle(p)
        expect(p.locator("#notfound h2")).to_have_text("Không tìm thấy trang")
        w.expect_errors(r"404")
        # and an API route with no session at all: 401, nothing about the school
        r = httpx.get(demo.url + "/api/v1/schools/" + other["code"], timeout=10)
        assert r.status_code == 401
    finally:
        w.context.close()


def test_unknown_page_for_an_anonymous_visitor_goes_to_login(demo, browser):
    w = new_page(browser)
    try:
        p = w.page
        p.goto(demo.url + "/schools/" + demo.tech_school)
        expect(p).to_have_url(demo.url + "/login?next=%2Fschools%2F" + demo.tech_school)
        expect(p.locator("#login-form")).to_be_visible()
        w.expect_errors()
    finally:
        w.context.close()
