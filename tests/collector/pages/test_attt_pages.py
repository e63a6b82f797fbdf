"""The ATTT pages in Debian's Chromium against the real demo (its simulated province sends
security facts; the collector's evaluator judges them): the school page's checklist with
the PCs behind each count, the gates, coverage and 30-day strip; a device's findings with
evidence, its OS support and the frozen note; the school list's ATTT column, filter and
sort with bookmarkable addresses; the overview's count of schools not meeting the
baseline by status, each linking to the list it counts; the PCs on an unsupported OS; in
Vietnamese and English, at 1366 and 390 px; the page weight. Every test fails on a console
error and on any request leaving 127.0.0.1; screenshots go to build/screenshots/."""
import re

import pytest
from playwright.sync_api import expect

from tests.collector.helpers import wait_until

from .conftest import api_get
from .pagehelp import LAPTOP, PHONE, assert_loopback_only, login, new_page, screenshot, settle

NOT_MEETING = {"below", "insufficient", "improve"}
# what must never reach a Vietnamese page: codes, English words, JavaScript's own
NOT_VIETNAMESE = re.compile(r"\b(undefined|null|NaN|attt_status\.|check_state\.|severity\.|"
                            r"os_support\.|pass|fail|warn|unknown|below|meets|improve|"
                            r"insufficient|Error)\b")
BUDGET_BYTES = 300 * 1024


def evaluated(demo) -> dict:
    """The demo's summary once the evaluator has judged every ATTT status into being."""
    def ready():
        b = api_get(demo, "/api/v1/summary")["below_baseline"]
        by = b.get("attt_by_status") or {}
        return b if all(by.get(s) for s in ("meets", "improve", "below", "insufficient")) else None
    return wait_until(ready, timeout=120, every=1, what=lambda: "every ATTT status in the demo: %s"
                      % api_get(demo, "/api/v1/summary")["below_baseline"])


def school_with(demo, status: str) -> dict:
    """A school of that ATTT status with a failing check, not the technician's own."""
    items = api_get(demo, "/api/v1/schools?attt=%s&per_page=100" % status)["items"]
    for s in items:
        if s["code"] == demo.tech_school:
            continue
        full = api_get(demo, "/api/v1/schools/" + s["code"])
        if status in ("meets", "insufficient") or any(c["fail"] for c in full["attt"]["checks"]):
            return full
    raise AssertionError("no %s school in the demo" % status)


def device_where(demo, pred) -> dict:
    page = 1
    while True:
        body = api_get(demo, "/api/v1/devices?per_page=200&page=%d" % page)
        for item in body["items"]:
            if item.get("attt") is None:
                continue
            d = api_get(demo, "/api/v1/devices/" + item["id"])
            if d.get("security") and pred(d):
                return d
        if page >= body["pages"]:
            raise AssertionError("no such device in the demo")
        page += 1


def test_demo_shows_every_attt_status(demo):
    b = evaluated(demo)
    assert b["evaluated"] is True
    by = b["attt_by_status"]
    assert b["security"] == sum(by.get(s, 0) for s in NOT_MEETING), b


def test_school_checklist_with_the_pcs_behind_each_count(demo, browser):
    evaluated(demo)
    s = school_with(demo, "below")
    a = s["attt"]
    w = new_page(browser)
    try:
        p = w.page
        login(w, demo.url, *demo.users["so_admin"], start="/schools/" + s["code"])
        expect(p.locator("#attt h3 .st.attt")).to_have_text("Không đạt")
        expect(p.locator("#attt-link .st.attt")).to_have_text("Không đạt")
        # every check of the baseline, with its counts, hint and citation
        expect(p.locator("#attt-checks > li")).to_have_count(len(a["checks"]))
        failing = next(c for c in a["checks"] if c["fail"])
        item = p.locator("#attt-checks > li[data-check='%s']" % failing["id"])
        expect(item.locator("h4")).to_contain_text(failing["title"])
        expect(item.locator("[data-count='fail']")).to_have_text("Không đạt %d" % failing["fail"])
        expect(item.locator(".hint")).to_contain_text(failing["hint"])
        expect(item.locator(".cite")).to_contain_text(failing["citation"])
        # which PCs: each a link to its page, with its evidence
        shown = item.locator("details li")
        expect(shown).to_have_count(len(failing["devices"]))
        first = failing["devices"][0]
        one = item.locator("details li[data-device='%s']" % first["id"])
        expect(one).to_contain_text(first["evidence"])
        # the school rule: coverage and the gates; the 30-day strip
        expect(p.locator("#attt-gates tbody tr")).to_have_count(len(a["gates"]))
        expect(p.locator("#attt-coverage")).to_contain_text("%d / %d máy" % (
            a["coverage"]["reporting"], a["coverage"]["pcs"]))
        expect(p.locator("#attt-history li")).to_have_count(len(a["history"]))
        assert len(a["history"]) >= 2  # the demo's past: a trend, not one day
        assert not NOT_VIETNAMESE.search(p.inner_text("#attt")), p.inner_text("#attt")
        screenshot(p, "school-attt-laptop")
        one.locator("a").click()
        expect(p).to_have_url(demo.url + "/devices/" + first["id"])
        settle(p)
        expect(p.locator("#findings-table tr[data-check='%s']" % failing["id"])).to_be_visible()
        w.expect_errors()
        assert_loopback_only(w.requests)
    finally:
        w.context.close()


def test_device_findings_with_evidence_os_support_and_the_frozen_note(demo, browser):
    evaluated(demo)
    bad = device_where(demo, lambda d: d["security"]["counts"]["fail"] > 0
                       and d["security"]["os_support"]["status"] == "unsupported")
    frozen = device_where(demo, lambda d: d["security"]["frozen"])
    w = new_page(browser)
    try:
        p = w.page
        login(w, demo.url, *demo.users["so_admin"], start="/devices/" + bad["id"])
        sec = bad["security"]
        expect(p.locator("#findings-table tbody tr")).to_have_count(len(sec["checks"]))
        for c in sec["checks"]:
            row = p.locator("#findings-table tr[data-check='%s']" % c["id"])
            expect(row.locator("td").first).to_have_text(c["state_label"])
            if c["evidence"]:
                expect(row.locator("td").nth(2)).to_have_text(c["evidence"])
        # the worst first: a failing check heads the table
        assert p.locator("#findings-table tbody tr").first.get_attribute("data-state") == "fail"
        # "hết hỗ trợ từ 14/01/2020": the support in one phrase, the table's entry as its title
        expect(p.locator("#os-support .st")).to_have_text(sec["os_support"]["text"])
        assert sec["os_support"]["text"].startswith("hết hỗ trợ từ ")
        expect(p.locator("#os-support")).to_have_attribute("title", sec["os_support"]["label"])
        expect(p.locator("#findings [data-count='fail']")).to_have_text(
            "Không đạt %d" % sec["counts"]["fail"])
        assert not NOT_VIETNAMESE.search(p.inner_text("#findings")), p.inner_text("#findings")
        screenshot(p, "device-findings-laptop")
        p.goto(demo.url + "/devices/" + frozen["id"])
        settle(p)
        expect(p.locator("#frozen")).to_contain_text(frozen["security"]["freeze_product"])
        for k in frozen["security"]["frozen_checks"]:  # the checks it leaves unjudged, named
            expect(p.locator("#frozen")).to_contain_text(k["title"])
        na = [c for c in frozen["security"]["checks"] if c["state"] == "na"]
        assert na and p.locator("#findings-table tr[data-state='na']").count() == len(na)
        screenshot(p, "device-frozen-laptop")
        w.expect_errors()
    finally:
        w.context.close()


def test_router_never_reported_and_first_evaluation_on_the_device_page(demo, browser):
    """A router: the baseline does not apply, no stale warning (defect 3); a PC that never
    reported: its own note with what to do, and unknown checks' hints about making the fact
    known (defect 4); a check's since flagged when it is the first evaluation (defect 11)."""
    evaluated(demo)
    routers = api_get(demo, "/api/v1/devices?role=router&per_page=1")["items"]
    assert routers
    router = api_get(demo, "/api/v1/devices/" + routers[0]["id"])
    assert router["security"]["applicable"] is False and router["security"]["stale"] is False
    never = device_where(demo, lambda d: d["security"]["never_reported"])
    first = device_where(demo, lambda d: any(k["since_first_evaluation"]
                                             for k in d["security"]["checks"]))
    w = new_page(browser)
    try:
        p = w.page
        login(w, demo.url, *demo.users["so_admin"], start="/devices/" + router["id"])
        expect(p.locator("#not-applicable")).to_contain_text(
            "Chuẩn ATTT của máy tính không áp dụng cho router")
        expect(p.locator("#stale")).to_have_count(0)
        expect(p.locator("#findings-table")).to_have_count(0)
        screenshot(p, "device-router-laptop")
        p.goto(demo.url + "/devices/" + never["id"])
        settle(p)
        expect(p.locator("#never-reported")).to_contain_text("kiểm tra phiên bản agent")
        expect(p.locator("#stale")).to_have_count(0)
        # what to do is said once, in the note; each row's hint would repeat it
        row = p.locator("#findings-table tbody tr").first
        assert never["security"]["checks"][0]["hint"].startswith("Kiểm tra phiên bản agent")
        assert never["security"]["checks"][0]["hint_code"] == "no_report"
        expect(row.locator("td").nth(4)).to_contain_text("—")
        assert "quá 7 ngày" not in p.inner_text("#findings")
        screenshot(p, "device-never-reported-laptop")
        p.goto(demo.url + "/devices/" + first["id"])
        settle(p)
        k = next(k for k in first["security"]["checks"] if k["since_first_evaluation"])
        expect(p.locator("#findings-table tr[data-check='%s'] .since-first" % k["id"])
               ).to_have_text("(lần đánh giá đầu tiên: có thể đã từ trước)")
        w.expect_errors()
    finally:
        w.context.close()


def test_school_list_attt_column_filter_sort_bookmarkable(demo, browser):
    b = evaluated(demo)
    w = new_page(browser)
    try:
        p = w.page
        login(w, demo.url, *demo.users["so_admin"], start="/schools")
        p.select_option("#f-attt", "not_meeting")
        settle(p)
        expect(p).to_have_url(re.compile(r"/schools\?baseline=attt$"))
        expect(p.locator("#pagecount")).to_contain_text("%d trường" % b["security"])
        badges = p.eval_on_selector_all("#schools tbody .st.attt", "bs => bs.map(b => b.dataset.attt)")
        assert badges and set(badges) <= NOT_MEETING, badges
        # one status, sorted worst first: the address says both
        p.select_option("#f-attt", "improve")
        settle(p)
        expect(p).to_have_url(re.compile(r"/schools\?attt=improve$"))
        badges = p.eval_on_selector_all("#schools tbody .st.attt", "bs => bs.map(b => b.dataset.attt)")
        assert badges and set(badges) == {"improve"}, badges
        expect(p.locator("#schools tbody .st.attt").first).to_have_text("Cần cải thiện")
        p.select_option("#f-attt", "")
        settle(p)
        p.click("th button[data-sort='attt']")
        settle(p)
        expect(p.locator("th button[data-sort='attt']")).to_have_attribute("aria-sort", "ascending")
        order = p.eval_on_selector_all("#schools tbody .st.attt", "bs => bs.map(b => b.dataset.attt)")
        worst_first = ["below", "insufficient", "improve", "meets", "no_pcs", "not_evaluated"]
        assert order == sorted(order, key=worst_first.index), order
        screenshot(p, "schools-attt-laptop")
        address = p.url
        assert "sort=attt" in address
        p.goto(demo.url + "/schools?attt=below&level=TH")
        settle(p)
        expect(p.locator("#f-attt")).to_have_value("below")
        expect(p.locator("#f-level")).to_have_value("TH")
        w.expect_errors()
    finally:
        w.context.close()


def test_overview_counts_schools_below_attt_by_status_with_links(demo, browser):
    b = evaluated(demo)
    unsupported = api_get(demo, "/api/v1/devices?os_support=unsupported&per_page=1")["total"]
    assert unsupported > 0
    w = new_page(browser)
    try:
        p = w.page
        login(w, demo.url, *demo.users["so_admin"])
        cards = p.locator("#cards-attt .card")
        expect(cards.first.locator(".v")).to_have_text(str(b["security"]))
        for code in ("below", "insufficient", "improve", "meets"):
            expect(p.locator("#cards-attt .card[data-attt='%s'] .v" % code)).to_have_text(
                str(b["attt_by_status"].get(code, 0)))
        screenshot(p, "overview-attt-laptop")
        # the count links to the list it counts
        cards.first.locator("a").click()
        expect(p).to_have_url(demo.url + "/schools?baseline=attt")
        settle(p)
        expect(p.locator("#pagecount")).to_contain_text("%d trường" % b["security"])
        p.go_back()
        settle(p)
        p.click("#cards-attt .card[data-attt='insufficient'] a")
        expect(p).to_have_url(demo.url + "/schools?attt=insufficient")
        settle(p)
        expect(p.locator("#pagecount")).to_contain_text("%d trường" % b["attt_by_status"]["insufficient"])
        # the PCs on an unsupported OS: reachable from the overview, bookmarkable
        p.goto(demo.url + "/")
        settle(p)
        p.click("#cards-attt .card.unsupported a")
        expect(p).to_have_url(demo.url + "/devices?os_support=unsupported")
        settle(p)
        expect(p.locator("#page-title")).to_have_text("Máy dùng hệ điều hành hết hỗ trợ")
        expect(p.locator("#f-os_support")).to_have_value("unsupported")
        expect(p.locator("#pagecount")).to_contain_text("%d thiết bị" % unsupported)
        oses = p.eval_on_selector_all("#devices tbody tr td:nth-child(8)", "ts => ts.map(t => t.innerText)")
        assert any("Windows 7" in o for o in oses), oses
        screenshot(p, "devices-unsupported-laptop")
        w.expect_errors()
        assert_loopback_only(w.requests)
    finally:
        w.context.close()


def test_english_checklist_and_findings(demo, browser):
    evaluated(demo)
    s = school_with(demo, "improve")
    w = new_page(browser)
    try:
        p = w.page
        login(w, demo.url, *demo.users["so_admin"], start="/schools/" + s["code"])
        p.click("#lang")
        settle(p)
        expect(p.locator("#attt h3")).to_contain_text("Security posture (ATTT)")
        expect(p.locator("#attt h3 .st.attt")).to_have_text("Needs improvement")
        expect(p.locator("#attt-checks .hint strong").first).to_have_text("What to do: ")
        en = api_get(demo, "/api/v1/schools/%s?lang=en" % s["code"])["attt"]
        first = en["checks"][0]
        expect(p.locator("#attt-checks > li[data-check='%s'] h4" % first["id"])).to_contain_text(
            first["title"])
        screenshot(p, "school-attt-english-laptop")
        dev = next(d for c in en["checks"] for d in c["devices"])
        p.goto(demo.url + "/devices/" + dev["id"])
        settle(p)
        expect(p.locator("#findings h3")).to_contain_text("Security checks")
        expect(p.locator("#findings-table thead")).to_contain_text("Evidence")
        p.goto(demo.url + "/")
        settle(p)
        expect(p.locator("#cards-attt")).to_contain_text("Not meeting the security baseline")
        screenshot(p, "overview-attt-english-laptop")
        p.click("#lang")
        settle(p)
        w.expect_errors()
    finally:
        w.context.close()


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_phone_shows_the_checklist_findings_and_lists(demo, browser, lang):
    evaluated(demo)
    s = school_with(demo, "below")
    dev = s["attt"]["checks"][0]["devices"][0]["id"] if s["attt"]["checks"][0]["devices"] else \
        next(d["id"] for c in s["attt"]["checks"] for d in c["devices"])
    w = new_page(browser, PHONE)
    try:
        p = w.page
        login(w, demo.url, *demo.users["so_admin"])
        if lang == "en":
            p.click("#lang")
            settle(p)
        # what must fit the screen: the ATTT parts whole; of a list (a table that scrolls
        # sideways by design), its status column
        pages = [("overview-attt", "/", "#cards-attt"),
                 ("school-attt", "/schools/" + s["code"], "#attt-checks"),
                 ("device-findings", "/devices/" + dev, "#findings-table"),
                 ("schools-attt", "/schools?baseline=attt",
                  "#schools tbody tr:first-child td:first-child"),
                 ("devices-unsupported", "/devices?os_support=unsupported",
                  "#devices tbody tr:first-child td:first-child")]
        for name, path, part in pages:
            p.goto(demo.url + path)
            settle(p)
            expect(p.locator(part)).to_be_visible()
            box = p.locator(part).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)
            assert p.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
            screenshot(p, "%s-%s-phone" % (name, lang))
        # the school list's ATTT badge is on screen without scrolling sideways
        p.goto(demo.url + "/schools?baseline=attt")
        settle(p)
        badge = p.locator("#schools tbody tr:first-child .st.attt").bounding_box()
        assert badge and badge["x"] + badge["width"] <= PHONE["width"], badge
        w.expect_errors()
    finally:
        w.context.close()


def test_attt_pages_stay_under_the_page_weight_budget(demo, browser):
    """Cold cache, as a school on a slow link gets them: the document and every resource's
    transferSize (compressed, headers included) — the ATTT pages too stay under 300 KB."""
    evaluated(demo)
    s = school_with(demo, "below")
    dev = next(d["id"] for c in s["attt"]["checks"] for d in c["devices"])
    w = new_page(browser, LAPTOP)
    try:
        login(w, demo.url, *demo.users["so_admin"])
        state = w.context.storage_state()
    finally:
        w.context.close()
    weights = {}
    for path in ["/", "/schools?baseline=attt", "/schools/" + s["code"], "/devices/" + dev,
                 "/devices?os_support=unsupported"]:
        ctx = browser.new_context(storage_state=state, viewport=LAPTOP)
        try:
            q = ctx.new_page()
            q.goto(demo.url + path)
            settle(q)
            q.wait_for_load_state("networkidle")
            weights[path] = q.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
              return n.transferSize + performance.getEntriesByType('resource')
                .reduce((a, e) => a + e.transferSize, 0); }""")
        finally:
            ctx.close()
    print("page weight (bytes on the wire, cold cache): %s" % weights)
    assert all(0 < v < BUDGET_BYTES for v in weights.values()), weights
