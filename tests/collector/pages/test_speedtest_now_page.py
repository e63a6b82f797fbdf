"""The school page's "Đo ngay / Test now" in Debian's Chromium, against the real app under
uvicorn over a SQLite store, with the speed-test scheduler's grants recorded (the broker
path is tests/collector/connectivity/test_speedtest_now_broker.py): a school technician
presses it, the page says which PC tests and for how long, and draws the section again when
the lease is given back (the holder's result); while a lease is held the button is disabled
with the reason; a Sở viewer gets no button."""
import re
import time
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List

import pytest
from playwright.sync_api import expect
from schoolmon.collector.api import create_app
from schoolmon.collector.api.server import ApiServer
from schoolmon.collector.connectivity import leases
from schoolmon.collector.connectivity.leases import LEASE_KEY, Settings
from schoolmon.collector.connectivity.scheduler import Scheduler
from schoolmon.collector.store import schema as db
from schoolmon.collector.store import school_state
from schoolmon.collector.store import users as user_store
from schoolmon.collector.store.schema import devices
from sqlalchemy import update

from tests.collector.api.apihelp import seed
from tests.servers import free_port

from .pagehelp import login, new_page, settle

TECH = ("kythuat", "Ky-thuat-truong-2026")
VIEWER = ("xem", "Chi-xem-toan-tinh-26")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[SimpleNamespace]:
    engine = db.make_engine("sqlite:///%s" % (tmp_path_factory.mktemp("now") / "s.db"))
    store = seed(engine)
    with engine.begin() as conn:
        user_store.add_user(conn, TECH[0], "school_tech", TECH[1], ["S01"])
        user_store.add_user(conn, VIEWER[0], "so_viewer", VIEWER[1], [])
        conn.execute(update(devices).where(devices.c.school_code == "S01")
                     .values(state="active"))
    sent: List[Dict[str, Any]] = []

    def send(school: str, device: str, fields: Dict[str, Any], ts: float) -> bool:
        sent.append(dict(fields, device=device))
        return True

    scheduler = Scheduler(engine, Settings(), ["08:00-12:00"], 900, send)
    cfg = SimpleNamespace(api=SimpleNamespace(admin_token="adm-" + "p" * 28, read_tokens=[]),
                          province=SimpleNamespace(timezone="Asia/Ho_Chi_Minh"),
                          connectivity=SimpleNamespace(manual_per_hour=6))
    server = ApiServer(create_app(store, cfg, scheduler=scheduler), "127.0.0.1",
                       free_port()).start()
    try:
        yield SimpleNamespace(url=server.url, engine=engine, sent=sent)
    finally:
        server.stop()
        engine.dispose()


def _lease(engine: Any) -> Any:
    with engine.connect() as c:
        return school_state.read(c, "S01", LEASE_KEY).value


def test_press_test_now_then_the_result(world, browser):
    w = new_page(browser)
    try:
        p = w.page
        login(w, world.url, *TECH, start="/schools/S01")
        button = p.locator("#conn-test-now")
        expect(button).to_have_text("Đo ngay")
        expect(button).to_be_enabled()
        button.click()
        msg = p.locator("#conn-test-msg")
        expect(msg).to_have_text(
            re.compile(r"^Đang đo trên máy pc-d01[ab], kết quả trong khoảng 3 phút$"))
        expect(button).to_be_disabled()
        lease = _lease(world.engine)
        assert lease["trigger"] == "command" and lease["released_at"] is None
        assert [g["id"] for g in world.sent] == [lease["id"]]
        expect(p.locator("#connectivity")).to_have_attribute("data-testing", lease["id"])
        # the holder's result arrives: the lease is given back, the page draws the section
        # again (it looks every few seconds) and says so
        with world.engine.begin() as conn:
            assert leases.release(conn, "S01", lease["id"], lease["device"], time.time())
        sec = p.locator("#connectivity[data-tested='%s']" % lease["id"])
        expect(sec.locator("#conn-test-msg")).to_have_text("Đã có kết quả đo.", timeout=30_000)
        expect(sec.locator("#conn-test-now")).to_be_enabled()
        settle(p)

        # a lease held (a slot test, or someone else's): disabled, with the reason
        with world.engine.begin() as conn:
            got = leases.grant(conn, "S01", "d01b", time.time(), Settings(), trigger="slot")
        assert got.lease is not None
        p.reload()
        settle(p)
        expect(p.locator("#conn-test-now")).to_be_disabled()
        expect(p.locator("#conn-test-msg")).to_contain_text("Đang có lần đo trên máy d01b, đến")
        # in English
        p.evaluate("localStorage.setItem('schoolmon.lang', 'en')")
        p.reload()
        settle(p)
        expect(p.locator("#conn-test-now")).to_have_text("Test now")
        expect(p.locator("#conn-test-msg")).to_contain_text("A test is running on d01b, until")
        w.expect_errors()
    finally:
        w.context.close()


def test_viewer_has_no_button(world, browser):
    w = new_page(browser)
    try:
        p = w.page
        login(w, world.url, *VIEWER, start="/schools/S01")
        expect(p.locator("#connectivity h3").first).to_be_visible()
        expect(p.locator("#conn-test-now")).to_have_count(0)
        w.expect_errors()
    finally:
        w.context.close()
