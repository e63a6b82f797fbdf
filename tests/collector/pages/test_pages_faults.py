"""The pages when things go wrong, against the real app under uvicorn over a small seeded
SQLite store: the collector stops (a banner in the page's language, the data greyed, no
browser error text; back when it is back), the session expires (back to the login page
with a message), names carrying HTML and script (shown as text, never run), and an
earlier filter's answer arriving after a later one's (dropped)."""
import threading
import time
from types import SimpleNamespace
from typing import Any, Iterator, List

import pytest
from playwright.sync_api import expect
from schoolmon.collector.api import create_app
from schoolmon.collector.api.server import ApiServer
from schoolmon.collector.store import StateStore, registry
from schoolmon.collector.store import schema as db
from schoolmon.collector.store import users as user_store
from sqlalchemy import delete, select

from tests.collector.storehelp import received
from tests.servers import free_port

from .pagehelp import assert_loopback_only, login, new_page, screenshot, settle

EVIL_SCHOOL = '<img src=x onerror="window.__xss=1">Trường <b>Thử</b>'
EVIL_ROOM = "<script>window.__xss=2</script>Phòng 1"
ADMIN = ("quantri", "Mat-khau-quan-tri-1")
TECH = ("giaovien", "Mat-khau-giao-vien-1")

# code, name, level, area, devices online, devices offline
SCHOOLS = [
    ("BX-KD", "Trường Tiểu học Kim Đồng", "TH", "Bát Xát", ["kd1", "kd2"], ["kd3"]),
    ("BX-S1", "Trường THPT số 1 Bát Xát", "THPT", "Bát Xát", [], ["bx1"]),
    ("SP-LQD", "Trường THCS Lê Quý Đôn", "THCS", "Sa Pa", ["sp1", "sp2"], []),
    ("SP-EV", EVIL_SCHOOL, "MN", "Sa Pa", ["ev1"], []),
]


def seed(engine: Any) -> StateStore:
    db.create_all(engine)
    registry.add_schools(engine, [
        {"code": code, "name": name, "level": level, "area": area, "province": "Lào Cai"}
        for code, name, level, area, _, _ in SCHOOLS])
    store = StateStore(engine)
    now = time.time()

    def commit(batch: List[Any]) -> None:
        store.commit(store.prepare(batch))

    commit([received(code, d, "inventory", 1, now - 600, hostname="pc-" + d,
                     room=EVIL_ROOM if d == "ev1" else "Phòng tin học 1")
            for code, _, _, _, on, off in SCHOOLS for d in on + off])
    commit([received(code, d, "status", 2, now - 30, state="online", hb=60)
            for code, _, _, _, on, _ in SCHOOLS for d in on])
    commit([received(code, d, "status", 2, now - 20, state="offline", reason="lost")
            for code, _, _, _, _, off in SCHOOLS for d in off])
    store.maintain(now)
    with engine.begin() as conn:
        user_store.add_user(conn, ADMIN[0], "so_admin", ADMIN[1], [])
        user_store.add_user(conn, TECH[0], "school_tech", TECH[1], ["BX-KD"])
        code = conn.execute(select(db.org_units.c.code).where(
            db.org_units.c.name == "Sa Pa")).scalar_one()
        registry.set_unit_former(conn, code)  # abolished by the 2025 reform: "(cũ)"
    return store


class HoldOneAnswer:
    """ASGI wrapper: once ``armed``, holds the answer to a school list filtered by
    ``status=offline`` until a later school list has been answered, so the earlier
    request's answer reaches the page last, every time, without any timing."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.armed = False
        self.later_answered = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import asyncio
        schools = scope.get("type") == "http" and scope.get("path") == "/api/v1/schools"
        if not (self.armed and schools):
            await self.app(scope, receive, send)
        elif b"status=offline" in scope.get("query_string", b""):
            await asyncio.get_running_loop().run_in_executor(None, self.later_answered.wait, 30)
            await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)
            self.later_answered.set()


@pytest.fixture
def live(tmp_path) -> Iterator[SimpleNamespace]:
    engine = db.make_engine("sqlite:///%s" % (tmp_path / "state.db"))
    cfg = SimpleNamespace(api=SimpleNamespace(admin_token="adm-" + "a" * 28, read_tokens=[]),
                          province=SimpleNamespace(timezone="Asia/Ho_Chi_Minh"))
    held = HoldOneAnswer(create_app(seed(engine), cfg))
    port = free_port()
    servers = [ApiServer(held, "127.0.0.1", port).start()]
    try:
        yield SimpleNamespace(url=servers[0].url, engine=engine, held=held, port=port,
                              servers=servers)
    finally:
        for s in servers:
            s.stop()
        engine.dispose()


def test_collector_gone_shows_a_banner_and_greys_the_data(live, browser):
    w = new_page(browser)
    try:
        p = w.page
        login(w, live.url, *ADMIN, start="/schools")
        expect(p.locator("#banner")).to_be_hidden()
        live.servers[0].stop()
        p.select_option("#f-status", "offline")  # a request that finds nobody
        expect(p.locator("#banner")).to_be_visible()
        expect(p.locator("#banner")).to_contain_text("Không kết nối được máy chủ schoolmon")
        expect(p.locator("body")).to_have_class("stale")
        assert float(p.evaluate("getComputedStyle(document.querySelector('main')).opacity")) < 1
        # the data shown before stays, greyed; no browser error text anywhere
        expect(p.locator("#schools tbody tr")).to_have_count(4)
        assert "Failed to fetch" not in p.inner_text("body")
        screenshot(p, "unreachable-laptop")
        w.expect_errors(r"ERR_CONNECTION_REFUSED")
        # the collector is back: the next request clears the banner and redraws
        live.servers.append(ApiServer(live.held, "127.0.0.1", live.port).start())
        p.select_option("#f-status", "")
        expect(p.locator("#banner")).to_be_hidden()
        expect(p.locator("body")).not_to_have_class("stale")
        w.expect_errors(r"ERR_CONNECTION_REFUSED")
        assert_loopback_only(w.requests)
    finally:
        w.context.close()


def test_banner_in_english_when_the_page_is(live, browser):
    w = new_page(browser)
    try:
        p = w.page
        login(w, live.url, *ADMIN, start="/schools")
        p.click("#lang")
        settle(p)
        live.servers[0].stop()
        p.select_option("#f-status", "offline")
        expect(p.locator("#banner")).to_contain_text("The schoolmon server cannot be reached")
        w.expect_errors(r"ERR_CONNECTION_REFUSED")
    finally:
        w.context.close()


def test_expired_session_goes_back_to_login_with_a_message(live, browser):
    w = new_page(browser)
    try:
        p = w.page
        login(w, live.url, *ADMIN, start="/schools")
        with live.engine.begin() as conn:  # the session ends on the server (expiry, purge)
            conn.execute(delete(db.sessions))
        p.click("#nav-devices")
        expect(p.locator("#login-note")).to_have_text(
            "Phiên đăng nhập đã hết hạn. Vui lòng đăng nhập lại.")
        assert "next=%2Fdevices" in p.url
        w.expect_errors(r"401")
        # logging in again lands on the page asked for
        p.fill("#login-name", ADMIN[0])
        p.fill("#login-password", ADMIN[1])
        p.press("#login-password", "Enter")
        expect(p).to_have_url(live.url + "/devices")
        w.expect_errors()
    finally:
        w.context.close()


def test_markup_in_names_is_shown_as_text(live, browser):
    w = new_page(browser)
    try:
        p = w.page
        login(w, live.url, *ADMIN, start="/schools/SP-EV")
        expect(p.locator("#page-title")).to_contain_text(EVIL_SCHOOL)
        expect(p.locator(".crumbs")).to_contain_text("Sa Pa (cũ)")  # a former unit
        expect(p.locator("#devices")).to_contain_text(EVIL_ROOM)
        p.goto(live.url + "/schools")
        settle(p)
        expect(p.locator("#schools")).to_contain_text(EVIL_SCHOOL)
        p.goto(live.url + "/devices?school=SP-EV")
        settle(p)
        expect(p.locator("#devices")).to_contain_text(EVIL_ROOM)
        assert p.evaluate("window.__xss") is None
        assert p.locator("main img, main b, main script").count() == 0
        w.expect_errors()
    finally:
        w.context.close()


def test_an_earlier_filter_answered_last_does_not_overwrite_a_later_one(live, browser):
    w = new_page(browser)
    try:
        p = w.page
        login(w, live.url, *ADMIN, start="/schools")
        expect(p.locator("#pagecount")).to_contain_text("4 trường")
        live.held.armed = True
        with p.expect_response(lambda r: "status=offline" in r.url) as slow:
            p.select_option("#f-status", "offline")  # answered last (held)
            p.select_option("#f-status", "")         # answered first
        assert slow.value.ok and live.held.later_answered.is_set()
        slow.value.finished()  # the page has the late answer in hand
        settle(p)
        expect(p.locator("#pagecount")).to_contain_text("4 trường")
        expect(p.locator("#schools tbody tr")).to_have_count(4)
        w.expect_errors()
    finally:
        w.context.close()


def test_admin_disables_a_user_who_is_refused_at_once(live, browser):
    tech, admin = new_page(browser), new_page(browser)
    try:
        login(tech, live.url, *TECH, start="/schools/BX-KD")
        expect(tech.page.locator("#page-title")).to_contain_text("Kim Đồng")
        login(admin, live.url, *ADMIN, start="/users")
        admin.page.click("#users button[data-user='%s']" % TECH[0])
        expect(admin.page.locator("#users tr:has-text('%s') .st" % TECH[0])).to_have_text("đã khóa")
        expect(admin.page.locator("#users button[data-user='%s']" % TECH[0])).to_have_count(0)
        screenshot(admin.page, "users-disabled-laptop")
        admin.expect_errors()
        # the technician's next step finds the session gone: back to the login page
        tech.page.click("#nav-devices")
        expect(tech.page.locator("#login-note")).to_have_text(
            "Phiên đăng nhập đã hết hạn. Vui lòng đăng nhập lại.")
        tech.expect_errors(r"401")
    finally:
        tech.context.close()
        admin.context.close()
