"""The web page and /docs in a real headless Chromium (Debian's ``chromium``, installed by
``make servers``), driven by Playwright's Python package (its wheel carries its own driver;
it never downloads a browser here: ``executable_path`` is Debian's).

The real app runs under uvicorn on a free loopback port over a seeded SQLite store. Every
request the browser makes is recorded and must stay on 127.0.0.1; the console must stay
free of errors (except the 401s the wrong-token step causes on purpose).

``SCHOOLMON_UI_SCREENSHOT=/tmp/schoolmon-ui.png`` also saves the page's screenshot there
(to look at it by hand); the test always saves its screenshots in its tmp_path.
"""
import os
import re
import shutil
import time
from types import SimpleNamespace
from typing import Any, Iterator, List
from urllib.parse import urlsplit

import httpx
import pytest
from schoolmon.collector.api import create_app
from schoolmon.collector.api.server import ApiServer
from schoolmon.collector.store import StateStore, registry
from schoolmon.collector.store import schema as db

from tests.collector.storehelp import received
from tests.servers import free_port

CHROMIUM = "/usr/bin/chromium"
# As the machine notes say: no sandbox as root, and none of Chromium's own traffic
# (background networking, component updates, sync, QUIC) on a closed network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ADMIN = "adm-" + "a" * 28
READ = "read-" + "r" * 27
WAIT_MS = 10_000

# code, name, level, area, devices online, devices offline
SCHOOLS = [
    ("BX-KD", "Trường Tiểu học Kim Đồng", "TH", "Bát Xát", ["kd1", "kd2"], ["kd3"]),
    ("BX-S1", "Trường THPT số 1 Bát Xát", "THPT", "Bát Xát", [], ["bx1"]),
    ("SP-LQD", "Trường THCS Lê Quý Đôn", "THCS", "Sa Pa", ["sp1", "sp2"], []),
    ("SP-HH", "Trường Mầm non Hoa Hồng", "MN", "Sa Pa", [], []),
]


def seed(engine) -> StateStore:
    """Four schools in two areas: partly offline, offline, online, without devices."""
    db.create_all(engine)
    registry.add_schools(engine, [
        {"code": code, "name": name, "level": level, "area": area, "province": "Lào Cai"}
        for code, name, level, area, _, _ in SCHOOLS])
    store = StateStore(engine)
    now = time.time()

    def commit(batch: List[Any]) -> None:
        store.commit(store.prepare(batch))

    commit([received(code, d, "inventory", 1, now - 600, hostname="pc-" + d)
            for code, _, _, _, on, off in SCHOOLS for d in on + off])
    commit([received(code, d, "status", 2, now - 30, state="online", hb=60)
            for code, _, _, _, on, _ in SCHOOLS for d in on])
    commit([received(code, d, "status", 2, now - 20, state="offline", reason="lost")
            for code, _, _, _, _, off in SCHOOLS for d in off])
    registry.approve_device(engine, "kd1")  # the other five stay pending (chờ duyệt)
    store.maintain(now)
    return store


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[str]:
    engine = db.make_engine("sqlite:///%s" % (tmp_path_factory.mktemp("webui") / "state.db"))
    cfg = SimpleNamespace(api=SimpleNamespace(admin_token=ADMIN, read_tokens=[READ],
                                              listen="127.0.0.1:0"),
                          province=SimpleNamespace(timezone="Asia/Ho_Chi_Minh",
                                                   name="Lào Cai", code=""))
    server = None
    try:
        server = ApiServer(create_app(seed(engine), cfg), "127.0.0.1", free_port()).start()
        yield server.url
    finally:
        if server is not None:
            server.stop()
        engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is not installed: run `make servers` (Debian package chromium)")
    from playwright.sync_api import sync_playwright
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS, timeout=30_000)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


class Watched(SimpleNamespace):
    """A page with every request URL, console error and page error recorded."""


@pytest.fixture
def page(browser) -> Iterator[Watched]:
    # a fresh profile per test (Playwright's launch already uses its own temporary
    # --user-data-dir); a new context also starts with empty sessionStorage
    ctx = browser.new_context(locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh",
                              viewport={"width": 1280, "height": 800})
    w = Watched(requests=[], errors=[])
    ctx.on("request", lambda r: w.requests.append(r.url))
    # and should the page ever ask for another host, the request is stopped in the browser
    # (it still shows up in w.requests and as a failed request)
    ctx.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/])"), lambda route: route.abort())
    try:
        p = ctx.new_page()
        p.set_default_timeout(WAIT_MS)
        p.on("console", lambda m: m.type == "error" and w.errors.append(
            "%s (%s)" % (m.text, m.location.get("url"))))
        p.on("pageerror", lambda e: w.errors.append("pageerror: %s" % e))
        p.on("requestfailed", lambda r: w.errors.append("failed: %s %s" % (r.url, r.failure)))
        w.page = p
        yield w
    finally:
        ctx.close()


def assert_loopback_only(urls: List[str]) -> None:
    assert urls, "no request recorded"
    outside = [u for u in urls if urlsplit(u).scheme not in ("data", "blob")
               and urlsplit(u).hostname != "127.0.0.1"]
    assert outside == [], "requests leaving 127.0.0.1: %s" % outside


def screenshot(p: Any, path: Any) -> None:
    p.screenshot(path=str(path), full_page=True)
    extra = os.environ.get("SCHOOLMON_UI_SCREENSHOT")
    if extra:
        shutil.copyfile(str(path), extra if not extra.endswith("/") else
                        os.path.join(extra, os.path.basename(str(path))))


def settle(p: Any) -> None:
    """Wait until the page shows the answer to its latest request (the page marks it):
    assertions then read the final state, never one an answer still in flight replaces."""
    from playwright.sync_api import expect
    expect(p.locator("body")).to_have_attribute("data-settled", "1", timeout=30000)


def table_rows(p: Any) -> List[List[str]]:
    settle(p)
    return p.eval_on_selector_all(
        "#schools tr", "trs => trs.map(tr => [...tr.cells].map(td => td.innerText.trim()))")


def test_page_login_summary_schools_filters(live, page, tmp_path):
    from playwright.sync_api import expect
    p = page.page
    p.goto(live + "/")
    assert p.title() == "schoolmon — Giám sát mạng trường học"
    # no token yet: the page asks for it, in Vietnamese, and shows no data
    expect(p.locator("#login")).to_be_visible()
    expect(p.locator("#login h2")).to_have_text("Đăng nhập")
    expect(p.locator("#token")).to_have_attribute("placeholder", "Mã truy cập")
    expect(p.locator("#app")).to_be_hidden()

    # a wrong token: the page says so and asks again
    p.fill("#token", "wrong-token-xxxxxxxxxxxx")
    p.click("#login-form button[type=submit]")
    expect(p.locator("#login-error")).to_have_text("Mã truy cập không đúng hoặc đã hết hạn.")
    expect(p.locator("#login")).to_be_visible()
    expect(p.locator("#app")).to_be_hidden()
    expect(p.locator("#token")).to_have_value("")
    # the only console errors are Chromium's notes on the 401 answers
    assert all("401" in e for e in page.errors), page.errors
    page.errors.clear()

    # the right (read-only) token: summary cards and the school list, in Vietnamese
    p.fill("#token", READ)
    p.press("#token", "Enter")
    expect(p.locator("#app")).to_be_visible()
    expect(p.locator("#login")).to_be_hidden()
    expect(p.locator("#schools tr")).to_have_count(4)
    settle(p)
    cards = dict(p.eval_on_selector_all(
        "#cards .card", "cs => cs.map(c => [c.querySelector('.k').innerText,"
                        " c.querySelector('.v').innerText])"))
    assert cards["Trường"] == "4"
    assert cards["Trường trực tuyến"] == "1"
    assert cards["Trường một phần mất kết nối"] == "1"
    assert cards["Trường mất kết nối"] == "1"
    assert cards["Thiết bị"] == "6"
    assert cards["Thiết bị trực tuyến"] == "4"
    assert cards["Thiết bị mất kết nối"] == "2"
    assert cards["Thiết bị chờ duyệt"] == "5"
    assert cards["Dưới chuẩn ATTT"] == "—"  # not evaluated: no number is made up
    rows = {r[0]: r for r in table_rows(p)}
    assert rows["BX-KD"][1:5] == ["Trường Tiểu học Kim Đồng", "Bát Xát",
                                  "mất kết nối một phần", "3"]
    assert rows["BX-S1"][3] == "mất kết nối"
    assert rows["SP-LQD"][3] == "trực tuyến" and rows["SP-LQD"][5] == "2"
    assert rows["SP-HH"][3] == "chưa có thiết bị"
    assert table_rows(p)[0][3] == "mất kết nối"  # worst status first
    expect(p.locator("#pageinfo")).to_have_text("Trang 1 / 1 · 4 trường")
    assert re.match(r"\d\d:\d\d \d\d/\d\d/\d{4}$", p.inner_text("#updated"))

    # area filter: the areas come from the org tree, with their school counts
    options = p.eval_on_selector_all("#f-area option", "os => os.map(o => [o.value, o.text])")
    sapa = [v for v, t in options if "Sa Pa" in t]
    assert len(sapa) == 1 and any("Bát Xát (2 trường)" in t for _, t in options), options
    p.select_option("#f-area", sapa[0])
    settle(p)
    expect(p.locator("#pageinfo")).to_have_text("Trang 1 / 1 · 2 trường")
    assert sorted(r[0] for r in table_rows(p)) == ["SP-HH", "SP-LQD"]
    p.select_option("#f-status", "online")
    settle(p)
    expect(p.locator("#pageinfo")).to_have_text("Trang 1 / 1 · 1 trường")
    assert [r[0] for r in table_rows(p)] == ["SP-LQD"]
    p.select_option("#f-status", "")
    p.select_option("#f-area", "")
    settle(p)
    expect(p.locator("#pageinfo")).to_have_text("Trang 1 / 1 · 4 trường")

    # search without diacritics finds the school written with them
    p.fill("#f-q", "kim dong")
    settle(p)
    expect(p.locator("#pageinfo")).to_have_text("Trang 1 / 1 · 1 trường")
    assert [r[1] for r in table_rows(p)] == ["Trường Tiểu học Kim Đồng"]
    p.fill("#f-q", "khong co truong nay")
    settle(p)
    expect(p.locator("#schools")).to_have_text("Không có trường nào.")
    p.fill("#f-q", "")
    settle(p)
    expect(p.locator("#schools tr")).to_have_count(4)

    # nothing English or broken in what a teacher reads (the brand, API and token aside)
    text = p.inner_text("body")
    assert not re.search(r"\b(undefined|null|NaN|online|offline|partial|no_devices|"
                         r"Error|HTTP)\b", text), text
    assert "\ufffd" not in text and "Ã" not in text  # no mojibake
    screenshot(p, tmp_path / "schoolmon-ui.png")

    # logging out asks for the token again
    p.click("#logout")
    expect(p.locator("#login")).to_be_visible()
    expect(p.locator("#app")).to_be_hidden()
    assert p.evaluate("sessionStorage.getItem('schoolmon.token')") is None

    # English: the page has no language switch yet (only the API answers ?lang=en)
    assert page.errors == []
    assert_loopback_only(page.requests)


def test_docs_renders_offline(live, page, tmp_path):
    from playwright.sync_api import expect
    p = page.page
    p.goto(live + "/docs")
    expect(p.locator(".swagger-ui .info .title")).to_contain_text("schoolmon collector")
    # every operation of the API is listed
    expect(p.locator(".opblock-summary-path[data-path='/api/v1/summary']")).to_be_visible()
    paths = p.eval_on_selector_all(".opblock-summary-path",
                                   "es => es.map(e => e.getAttribute('data-path'))")
    spec = httpx.get(live + "/openapi.json", timeout=10).json()
    assert set(paths) == set(spec["paths"]) and "/api/v1/devices/{device_id}" in paths, paths
    expect(p.locator(".swagger-ui .btn.authorize")).to_be_visible()
    screenshot(p, tmp_path / "schoolmon-docs.png")
    assert page.errors == []
    assert_loopback_only(page.requests)
    assert any(u.endswith("/static/swagger/swagger-ui-bundle.js") for u in page.requests)
    assert any(u.endswith("/openapi.json") for u in page.requests)


def test_every_page_request_is_recorded(live, page):
    """The recording itself works: a page that asks for a foreign address is caught (the
    request is answered locally, so nothing leaves the machine)."""
    p = page.page
    p.route("http://example.invalid/**", lambda route: route.fulfill(status=204, body=""))
    p.goto(live + "/healthz")
    p.evaluate("fetch('http://example.invalid/x', {mode: 'no-cors'}).catch(() => 0)")
    p.wait_for_timeout(200)
    with pytest.raises(AssertionError, match="example.invalid"):
        assert_loopback_only(page.requests)


class HoldOneAnswer:
    """ASGI wrapper: once ``armed``, holds the answer to a school list filtered by
    ``status=offline`` until a later school list (another filter) has been answered, so
    the earlier request's answer reaches the page last, every time, without any timing."""

    def __init__(self, app: Any) -> None:
        import threading
        self.app = app
        self.armed = False
        self.later_answered = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import asyncio
        schools = scope.get("type") == "http" and scope.get("path") == "/api/v1/schools"
        if not (self.armed and schools):
            await self.app(scope, receive, send)
            return
        if b"status=offline" in scope.get("query_string", b""):
            await asyncio.get_running_loop().run_in_executor(
                None, self.later_answered.wait, 30)
            await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)
            self.later_answered.set()


def test_an_earlier_filter_answered_last_does_not_overwrite_a_later_one(page, tmp_path):
    from playwright.sync_api import expect
    engine = db.make_engine("sqlite:///%s" % (tmp_path / "state.db"))
    cfg = SimpleNamespace(api=SimpleNamespace(admin_token=ADMIN, read_tokens=[READ]),
                          province=SimpleNamespace(timezone="Asia/Ho_Chi_Minh"))
    held = HoldOneAnswer(create_app(seed(engine), cfg))
    server = ApiServer(held, "127.0.0.1", free_port()).start()
    try:
        p = page.page
        p.goto(server.url + "/")
        p.fill("#token", READ)
        p.press("#token", "Enter")
        expect(p.locator("#pageinfo")).to_have_text("Trang 1 / 1 · 4 trường")
        settle(p)
        held.armed = True
        with p.expect_response(lambda r: "status=offline" in r.url) as slow:
            p.select_option("#f-status", "offline")  # answered last (held)
            p.select_option("#f-status", "")         # answered first
        assert slow.value.ok and held.later_answered.is_set()
        slow.value.finished()  # the page has the late answer in hand
        settle(p)
        expect(p.locator("#pageinfo")).to_have_text("Trang 1 / 1 · 4 trường")
        assert len(table_rows(p)) == 4
    finally:
        server.stop()
        engine.dispose()
