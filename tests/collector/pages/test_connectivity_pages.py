"""The connectivity pages in Debian's Chromium against the real app under uvicorn over a
small SQLite store whose connectivity rows are written straight into the tables (the shapes
of issue 10's decisions 2–4): the school page's "Kết nối Internet" section (status, reasons
in words, router, lease, data used, the speed chart with the contract and baseline lines,
the tests table with failed and refused tests shown as such), the list's column and
bookmarkable filter, the overview's card, the /connectivity page and a router's device
page; in Vietnamese and English, at 1366 and 390 px (no sideways scroll)."""
import re
import time
from types import SimpleNamespace
from typing import Iterator

import pytest
from playwright.sync_api import expect
from schoolmon.collector.api import create_app
from schoolmon.collector.api.server import ApiServer
from schoolmon.collector.store import schema as db
from schoolmon.collector.store import users as user_store

from tests.collector.api.apihelp import seed
from tests.collector.api.test_connectivity_api import write_connectivity, write_router
from tests.servers import free_port

from .pagehelp import PHONE, assert_loopback_only, login, new_page, screenshot, settle

ADMIN = ("quantri", "Mat-khau-quan-tri-1")
TOKEN = "adm-" + "k" * 28


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[SimpleNamespace]:
    engine = db.make_engine("sqlite:///%s" % (tmp_path_factory.mktemp("conn") / "s.db"))
    now = time.time()
    store = seed(engine)
    write_connectivity(engine, now)
    write_router(store, engine, now)
    write_router_polls(store, now)
    with engine.begin() as conn:
        user_store.add_user(conn, ADMIN[0], "so_admin", ADMIN[1], [])
    cfg = SimpleNamespace(api=SimpleNamespace(admin_token=TOKEN, read_tokens=[]),
                          province=SimpleNamespace(timezone="Asia/Ho_Chi_Minh"))
    server = ApiServer(create_app(store, cfg), "127.0.0.1", free_port()).start()
    try:
        yield SimpleNamespace(url=server.url)
    finally:
        server.stop()
        engine.dispose()


#: The WAN rates of the polls written through the store (Mbit/s in, out), oldest first.
WAN_IN = [8.0 + i for i in range(10)]
WAN_OUT = [1.5] * 10


def write_router_polls(store, now) -> None:
    """Ten SNMP polls of S01's router by its office PC, five minutes apart, through the
    store's ingest path (the router family feeds router.S01's rollups); older than the
    latest message write_router left, so that one stays the latest."""
    from tests.collector.api.apihelp import _commit, _msg
    base = (now - 3600) // 300 * 300
    _commit(store, [_msg("S01", "d01b", "router", 100 + i, base + 300 * i + 10,
                         host="192.168.1.1", gw_ok=True, gw_ms=0.8, snmp_ok=True,
                         uptime_s=86400 * 3, wan_if="eth0", wan_up=True, wan_mbps=100,
                         rx_bps=int(WAN_IN[i] * 1e6), tx_bps=int(WAN_OUT[i] * 1e6))
                    for i in range(10)])
    store.maintain(now)


def _no_sideways_scroll(p) -> None:
    assert p.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), \
        p.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def test_school_page_section_charts_and_tests(world, browser):
    w = new_page(browser)
    try:
        p = w.page
        login(w, world.url, *ADMIN, start="/schools/S02")
        sec = p.locator("#connectivity")
        expect(sec.locator("h3 .st.conn")).to_have_text("Cần cải thiện")
        expect(p.locator("#conn-link .st.conn")).to_have_text("Cần cải thiện")
        expect(p.locator("#conn-reasons li[data-reason='down_below_good']")).to_have_text(
            "Tốc độ tải xuống 15 Mbit/s, chưa đạt 20 Mbit/s")
        p.goto(world.url + "/schools/S01")
        settle(p)
        expect(sec.locator("h3 .st.conn")).to_have_text("Đạt")
        expect(p.locator("#conn-router [data-up='true']")).to_have_text("hoạt động")
        expect(p.locator("#connectivity")).to_contain_text("d01a đang đo")
        # data in powers of 10, as connectivity.budget_*_mb counts (250,000,000 B = 250 MB)
        expect(p.locator("#connectivity")).to_contain_text("250 MB / 1 GB (5 lần đo)")
        # a Đạt school shows why, the WAN against the contract and the port
        expect(p.locator("#conn-evidence li[data-evidence='down']")).to_have_text(
            "✓ Trung vị tải xuống 46 Mbit/s ≥ 20 Mbit/s")
        expect(p.locator("#conn-wan")).to_contain_text("25 % hợp đồng, 12,5 % cổng 100 Mbit/s")
        # the speed chart: download, upload, the contract (50) and the baseline lines (20, 1)
        chart = p.locator("#chart-conn-speed")
        expect(chart).to_have_attribute("data-points", "1")
        series = p.evaluate("document.getElementById('chart-conn-speed').uplot.data.slice(1)"
                            ".map(s => s.filter(v => v !== null))")
        assert series == [[46], [19], [50], [20], [1]], series
        rows = p.locator("#conn-tests tbody tr")
        expect(rows).to_have_count(3)
        expect(p.locator("#conn-tests tr[data-state='refused']")).to_contain_text("Không tính")
        expect(p.locator("#conn-tests tr[data-state='failed']")).to_contain_text(
            "Thất bại quá thời gian")
        p.locator("#conn-ranges button[data-days='30']").click()
        settle(p)
        expect(p.locator("#conn-ranges button.on")).to_have_attribute("data-days", "30")
        screenshot(p, "school-connectivity-laptop")
        p.click("#lang")
        settle(p)
        expect(sec.locator("h3 .st.conn")).to_have_text("Meets the baseline")
        expect(p.locator("#conn-tests tr[data-state='failed']")).to_contain_text("Failed")
        p.click("#lang")
        settle(p)
        w.expect_errors()
        assert_loopback_only(w.requests)
    finally:
        w.context.close()


def test_phone_width_has_no_sideways_scroll(world, browser):
    w = new_page(browser, PHONE)
    try:
        p = w.page
        login(w, world.url, *ADMIN, start="/schools/S01")
        expect(p.locator("#conn-tests")).to_be_visible()
        _no_sideways_scroll(p)
        # the list's two status badges say which is which on a phone
        p.goto(world.url + "/schools")
        settle(p)
        tag = p.evaluate("getComputedStyle(document.querySelector('#schools tbody td.badge"
                         ".tagged'), '::before').content")
        assert tag == '"ATTT: "', tag
        screenshot(p, "school-connectivity-phone")
        p.goto(world.url + "/connectivity")
        settle(p)
        expect(p.locator("#isps")).to_be_visible()
        _no_sideways_scroll(p)
        w.expect_errors()
    finally:
        w.context.close()


def test_list_overview_connectivity_page_and_router(world, browser):
    w = new_page(browser)
    try:
        p = w.page
        login(w, world.url, *ADMIN)
        # the connectivity cards: a section of their own (schools), one card per status
        expect(p.locator("#cards-devices .card.conn")).to_have_count(0)
        expect(p.locator("#cards-conn .card[data-conn='meets'] .v a")).to_have_text("3")
        card = p.locator("#cards-conn .card.offline.below .v a")
        expect(card).to_have_text("2")
        card.click()
        settle(p)
        assert p.url.endswith("/schools?baseline=connectivity"), p.url
        expect(p.locator("#f-connectivity")).to_have_value("not_meeting")
        expect(p.locator("#pagecount")).to_have_attribute("data-total", "2")
        p.select_option("#f-connectivity", "insufficient")
        settle(p)
        assert "connectivity=insufficient" in p.url and "baseline" not in p.url, p.url
        expect(p.locator("#schools tbody tr")).to_have_count(2)
        expect(p.locator("#schools tbody tr").first.locator(".st.conn")).to_have_text(
            "Không đủ dữ liệu")
        # bookmarkable: the address alone gives the same list
        p.goto(world.url + "/schools?connectivity=meets&sort=-connectivity")
        settle(p)
        expect(p.locator("#schools tbody tr")).to_have_count(3)
        expect(p.locator("#f-connectivity")).to_have_value("meets")
        # the overview's areas table has the connectivity column
        p.goto(world.url + "/")
        settle(p)
        expect(p.locator("#areas td.conn a")).to_have_count(2)
        # the connectivity page: each number a link to the list it counts
        p.click("#nav-connectivity")
        settle(p)
        expect(p.locator("#isps tbody tr")).to_have_count(4)
        expect(p.locator("#isps tbody tr").first).to_contain_text("Bưu điện")
        vnpt = p.locator("#isps tbody tr[data-group='VNPT'] td").nth(1).locator("a")
        expect(vnpt).to_have_text("3")
        vnpt.click()
        settle(p)
        expect(p.locator("#pagecount")).to_have_attribute("data-total", "3")
        p.goto(world.url + "/connectivity")
        settle(p)
        p.locator("#cards-conn .card[data-conn='meets'] a").click()
        settle(p)
        expect(p.locator("#pagecount")).to_have_attribute("data-total", "3")
        # a router's device page: its fields and interfaces
        p.goto(world.url + "/devices/router.S01")
        settle(p)
        expect(p.locator("#router-fields")).to_contain_text("ER605")
        expect(p.locator("#router-ifs tbody tr")).to_have_count(1)
        # a router's page, not a PC's: no move, no PC charts, no CPU; its WAN chart
        expect(p.locator("#move")).to_have_count(0)
        expect(p.locator("main")).not_to_contain_text("CPU")
        _router_charts(p)
        _no_sideways_scroll(p)
        screenshot(p, "router-device-phone")
        w.expect_errors()
        assert_loopback_only(w.requests)
    finally:
        w.context.close()


def _router_charts(p) -> None:
    """router.S01's WAN chart draws the polls' rates from the rollups (Mbit/s, in and out)
    against its contract (50 Mbit/s), and the router answering, from its history."""
    chart = p.locator("#chart-wan")
    expect(chart).to_have_attribute("data-points", "10")
    expect(chart.locator("figcaption")).to_have_text("Lưu lượng WAN của router (Mbit/s)")
    series = p.evaluate("document.getElementById('chart-wan').uplot.data.slice(1)"
                        ".map(s => s.filter(v => v !== null))")
    assert series[0] == WAN_IN and series[1] == WAN_OUT, series
    assert series[2] == [50] * len(WAN_IN), series  # the contract: a line, not two dots
    expect(p.locator("#chart-router-state")).to_be_visible()
    state = p.evaluate("document.getElementById('chart-router-state').uplot.data[1]"
                       ".filter(v => v !== null)")
    assert state and set(state) <= {0, 1} and state[-1] == 1, state
    # a state is joined across long gaps (no break inserted between its changes)
    assert p.evaluate("document.getElementById('chart-router-state').uplot.data[1]"
                      ".every(v => v !== null)")
    expect(p.locator("#wan-note")).to_be_visible()


def test_router_page_wan_chart_at_laptop_width(world, browser):
    w = new_page(browser)
    try:
        p = w.page
        login(w, world.url, *ADMIN, start="/devices/router.S01")
        expect(p.locator("#page-title")).to_contain_text("Router của Trường 1")
        _router_charts(p)
        p.locator("#range-7d").click()
        settle(p)
        # hourly buckets over 7 days: the ten polls make one or two hours
        expect(p.locator("#chart-wan")).to_have_attribute("data-points", re.compile("^[12]$"))
        _no_sideways_scroll(p)
        screenshot(p, "router-device-laptop")
        p.click("#lang")
        settle(p)
        expect(p.locator("#chart-wan figcaption")).to_have_text("The router's WAN traffic (Mbit/s)")
        p.click("#lang")
        settle(p)
        w.expect_errors()
        assert_loopback_only(w.requests)
    finally:
        w.context.close()
