"""The overview and the lists it opens, in Debian's Chromium against the real app under
uvicorn over a small seeded SQLite store, judged by the real ATTT evaluator: nothing moves
while a test runs, so a card's number and the size of the list it opens are compared
exactly. Every card and area link lands on a list of the same size that shows the filter it
applied (and the filter can be taken off); the schools needing attention first are offline,
partly offline, then not meeting the ATTT baseline, each saying why; the 24 and the 12 of
the ATTT cards read differently in both languages; on a 390 px phone the lists' names stay
on the screen; and the small things of the review (gates, chart ticks, spacing, cut texts,
capitals, the router's title, the technician's /audit)."""
import re
import time
from types import SimpleNamespace
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.sync_api import expect
from schoolmon.collector.api import create_app
from schoolmon.collector.api.server import ApiServer
from schoolmon.collector.posture import Evaluator, rules_from_config
from schoolmon.collector.store import StateStore, registry
from schoolmon.collector.store import schema as db
from schoolmon.collector.store import users as user_store

from tests.collector.postures import DAY, good_security, send, windows_inventory
from tests.servers import free_port

from .pagehelp import LAPTOP, PHONE, assert_loopback_only, login, new_page, screenshot, settle

ADMIN = ("quantri", "Mat-khau-quan-tri-1")
TECH = ("giaovien", "Mat-khau-giao-vien-1")  # the technician of SP-BEL (Không đạt, online)
TOKEN = "adm-" + "t" * 28

# code, name, level, area: each school one case of the overview
SCHOOLS = [
    ("BX-OFF", "Trường Tiểu học Kim Đồng", "TH", "Bát Xát"),       # every PC offline, Đạt
    ("BX-PAR", "Trường THCS Lê Lợi", "THCS", "Bát Xát"),           # one PC offline, Đạt
    ("SP-BEL", "Trường THPT số 1 Sa Pa", "THPT", "Sa Pa"),         # online, Không đạt
    ("SP-IMP", "Trường Mầm non Hoa Sen", "MN", "Sa Pa"),           # online, Cần cải thiện
    ("SP-INS", "Trường Tiểu học Sa Pa", "TH", "Sa Pa"),            # online, Không đủ dữ liệu
    ("SP-OK", "Trường THCS Sa Pa", "THCS", "Sa Pa"),               # online, Đạt: not listed
]
#: The schools needing attention first, in order, and why.
ATTENTION = [("BX-OFF", ["offline"]), ("BX-PAR", ["partial"]), ("SP-BEL", ["attt_below"]),
             ("SP-INS", ["attt_insufficient"]), ("SP-IMP", ["attt_improve"])]


def seed(engine: Any, now: float) -> StateStore:
    db.create_all(engine)
    registry.add_schools(engine, [{"code": c, "name": n, "level": lv, "area": a,
                                   "province": "Lào Cai"} for c, n, lv, a in SCHOOLS])
    store = StateStore(engine)

    def pc(school: str, dev: str, at: float, online: bool, role: str = "lab",
           security: Any = "good", **inventory: Any) -> None:
        inv = dict(windows_inventory(role=role), **inventory)
        send(store, school, dev, "inventory", 1, at - 120, hostname="PC-" + dev.upper(), **inv)
        if security == "good":
            security = good_security(now)
        if security is not None:
            send(store, school, dev, "security", 2, at - 60, **security)
        if online:
            send(store, school, dev, "status", 3, at - 30, state="online", hb=60)
        else:
            send(store, school, dev, "status", 3, at - 20, state="offline", reason="lost")

    recent = now - 600
    pc("BX-OFF", "kd1", recent, False)
    pc("BX-OFF", "kd2", now - 2 * DAY, False)  # last reported two days ago: not in "24 h"
    pc("BX-PAR", "ll1", recent, True)
    pc("BX-PAR", "ll2", recent, True)
    pc("BX-PAR", "ll3", recent, False)
    pc("SP-BEL", "b1", recent, True, role="office",
       security=good_security(now, av_on=False, av_name=""))
    pc("SP-BEL", "b2", recent, True, build="7601", edition="Professional", display=None,
       os_version="7")  # Windows 7: out of support
    pc("SP-IMP", "i1", recent, True, security=good_security(now, av_sig_age_d=10.0))
    pc("SP-INS", "n1", recent, True, security=None)  # no security report yet
    pc("SP-INS", "n2", recent, True, security=None)
    for i in range(1, 8):  # nine devices with the router and the retired PC: the chart's
        # y axis goes 0..9, where uPlot's own steps were 2,5 and 7,5
        pc("SP-OK", "ok%d" % i, recent, True, security=good_security(
            now, autorun_off=i != 7))  # ok7: AutoRun on, a medium check: still Đạt
    send(store, "SP-OK", "ok-router", "inventory", 1, recent, hostname="router", role="router",
         os_name="Linux OpenWrt 21.02")
    send(store, "SP-OK", "ok-router", "status", 2, recent + 10, state="online", hb=60)
    pc("SP-OK", "ok-old", recent, False)  # retired below: in no figure, in no list
    with engine.begin() as conn:
        registry.set_device_state(conn, "ok-old", "retired")
        user_store.add_user(conn, ADMIN[0], "so_admin", ADMIN[1], [])
        user_store.add_user(conn, TECH[0], "school_tech", TECH[1], ["SP-BEL"])
    store.maintain(now)
    Evaluator(engine, rules_from_config(SimpleNamespace())).run_once(now)
    return store


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[SimpleNamespace]:
    engine = db.make_engine("sqlite:///%s" % (tmp_path_factory.mktemp("overview") / "s.db"))
    cfg = SimpleNamespace(api=SimpleNamespace(admin_token=TOKEN, read_tokens=[]),
                          province=SimpleNamespace(timezone="Asia/Ho_Chi_Minh"))
    server = ApiServer(create_app(seed(engine, time.time()), cfg), "127.0.0.1",
                       free_port()).start()
    try:
        yield SimpleNamespace(url=server.url)
    finally:
        server.stop()
        engine.dispose()


def api(world, path: str) -> Any:
    import httpx
    r = httpx.get(world.url + path, headers={"Authorization": "Bearer " + TOKEN}, timeout=30)
    r.raise_for_status()
    return r.json()


def test_the_seeded_province_is_what_the_tests_expect(world):
    """The cases the page tests rely on, as the API counts them."""
    o = api(world, "/api/v1/overview")
    assert o["schools"]["by_status"] == {"offline": 1, "partial": 1, "online": 4,
                                         "off_hours": 0, "no_devices": 0}
    assert o["devices"]["total"] == 18 and o["devices"]["seen_24h"] == 17
    assert o["devices"]["by_status"]["offline"] == 3
    by = o["below_baseline"]["attt_by_status"]
    assert (by["below"], by["insufficient"], by["improve"], by["meets"]) == (1, 1, 1, 3)
    assert o["below_baseline"]["security"] == 3


def _count(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def _address(url: str) -> tuple:
    """A page address with its parameters in any order."""
    u = urlsplit(url)
    return u.path, sorted(parse_qsl(u.query))


def _shown_filters(p: Any, url: str) -> None:
    """Every filter of the list's address is shown in its form, with its value."""
    for key, value in parse_qsl(urlsplit(url).query):
        if key == "baseline":
            expect(p.locator("#f-attt")).to_have_value("not_meeting")
        elif key not in ("sort", "page"):
            expect(p.locator("#f-" + key)).to_have_value(value)


def test_every_card_and_area_link_opens_a_list_of_the_same_size(world, browser):
    """Defect 1: "Báo về trong 24 giờ" opened every device (the page dropped seen_hours), and
    a retired device made the device lists one longer than the cards."""
    w = new_page(browser)
    try:
        p = w.page
        login(w, world.url, *ADMIN)
        links = ("#cards-schools .card .v a, #cards-devices .card .v a, #cards-attt .card .v a,"
                 " #areas td.num a")
        n = p.locator(links).count()
        assert n == 6 + 6 + 6 + 2 * 5, n  # every card with a number, every area figure
        checked = []
        for i in range(n):
            if i:
                p.goto(world.url + "/")
                settle(p)
            a = p.locator(links).nth(i)
            value, href = _count(a.inner_text()), a.get_attribute("href")
            a.click()
            settle(p)
            assert _address(p.url) == _address(world.url + href), (p.url, href)
            total = int(p.locator("#pagecount").get_attribute("data-total"))
            checked.append((href, value, total))
            assert total == value, checked
            _shown_filters(p, href)
        assert "/devices?seen_hours=24" in [c[0] for c in checked]
        # the 24-hour list says what it is, and the filter comes off
        p.goto(world.url + "/devices?seen_hours=24")
        settle(p)
        expect(p.locator("#page-title")).to_have_text("Thiết bị báo về trong 24 giờ qua")
        expect(p.locator("#pagecount")).to_have_attribute("data-total", "17")
        p.fill("#f-seen_hours", "")
        p.press("#f-seen_hours", "Tab")
        settle(p)
        expect(p).to_have_url(world.url + "/devices")
        expect(p.locator("#pagecount")).to_have_attribute("data-total", "18")
        expect(p.locator("#filters .clear")).to_be_hidden()
        # an area's devices: the area named in its filter, and "clear the filters"
        p.goto(world.url + "/devices?area=sa-pa&status=online")
        settle(p)
        expect(p.locator("#f-area")).to_have_value("sa-pa")
        expect(p.locator("#f-area option:checked")).to_have_text("Sa Pa")
        p.click("#filters .clear a")
        settle(p)
        expect(p).to_have_url(world.url + "/devices")
        expect(p.locator("#f-area")).to_have_value("")
        w.expect_errors()
        assert_loopback_only(w.requests)
    finally:
        w.context.close()


def _attention(p: Any) -> list:
    return p.eval_on_selector_all("#worst tbody tr", """rs => rs.map(r => [r.dataset.code,
        Array.from(r.querySelectorAll('[data-reason]')).map(x => x.dataset.reason)])""")


def test_schools_needing_attention_consider_connectivity_and_attt(world, browser):
    """Defect 7: offline first, then partly offline, then Không đạt / Không đủ dữ liệu / Cần
    cải thiện, each with why; a technician whose only school is online and Không đạt sees it."""
    o = api(world, "/api/v1/overview")
    assert [(x["code"], [r["code"] for r in x["reasons"]]) for x in o["worst_schools"]] == \
        [(c, r) for c, r in ATTENTION]
    assert o["worst_schools_total"] == len(ATTENTION)
    assert o["worst_schools"][2]["reasons"][0]["label"] == "ATTT: Không đạt"
    w = new_page(browser)
    try:
        p = w.page
        login(w, world.url, *ADMIN)
        assert [tuple(x) for x in _attention(p)] == [(c, r) for c, r in ATTENTION]
        row = p.locator("#worst tr[data-code='SP-BEL']")
        expect(row.locator("td.reason")).to_have_text("ATTT: Không đạt")
        expect(row.locator(".st.attt")).to_have_text("Không đạt")
        expect(p.locator("#worst tr[data-code='BX-PAR'] td.reason")).to_have_text(
            "Một số máy mất kết nối")
        expect(p.locator("#worst-more")).to_have_count(0)  # all five are shown
        screenshot(p, "overview-attention-laptop")
        p.click("#logout")
        expect(p.locator("#login-form")).to_be_visible()
        login(w, world.url, *TECH)
        assert _attention(p) == [["SP-BEL", ["attt_below"]]]
        p.click("#lang")
        settle(p)
        expect(p.locator("#worst td.reason")).to_have_text("ATTT: fails the baseline")
        p.click("#lang")
        settle(p)
        w.expect_errors()
    finally:
        w.context.close()


def test_the_attt_cards_say_which_number_is_which_in_both_languages(world, browser):
    """Defect 6: "Below the security baseline 24" beside "Below the baseline 12"."""
    w = new_page(browser)
    try:
        p = w.page
        login(w, world.url, *ADMIN)
        first = p.locator("#cards-attt .card").first.locator(".k")
        below = p.locator("#cards-attt .card[data-attt='below'] .k")
        expect(first).to_have_text("Chưa đạt chuẩn ATTT")
        expect(below).to_have_text("Không đạt")
        expect(p.locator("#areas th").last).to_have_text("Trường chưa đạt chuẩn ATTT")
        p.click("#lang")
        settle(p)
        expect(first).to_have_text("Not meeting the security baseline")
        expect(below).to_have_text("Fails the baseline")
        expect(p.locator("#areas th").last).to_have_text("Schools not meeting the ATTT baseline")
        texts = p.eval_on_selector_all("#cards-attt .card .k", "ks => ks.map(k => k.innerText)")
        assert not any("below" in x.lower() for x in texts), texts
        p.click("#lang")
        settle(p)
        w.expect_errors()
    finally:
        w.context.close()


def _within(p: Any, selector: str, what: str) -> None:
    loc = p.locator(selector).first
    expect(loc).to_be_visible()
    box = loc.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (what, box)


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_phone_lists_keep_the_name_on_the_screen(world, browser, lang):
    """Defect 8: at 390 px the badges took the width, the name was cut and the area table's
    ATTT column was off the screen."""
    w = new_page(browser, PHONE)
    try:
        p = w.page
        login(w, world.url, *ADMIN)
        if lang == "en":
            p.click("#lang")
            settle(p)
        pages = [("/", "#worst tbody tr td.name"), ("/", "#areas tbody tr td.name"),
                 ("/", "#areas tbody tr td.attt"), ("/schools", "#schools tbody tr td.name"),
                 ("/schools?baseline=attt", "#schools tbody tr td.name"),
                 ("/areas/sa-pa", "#schools tbody tr td.name"),
                 ("/devices", "#devices tbody tr td.name"),
                 ("/schools/SP-OK", "#devices tbody tr td.name")]
        for path, cell in pages:
            p.goto(world.url + path)
            settle(p)
            for i in range(p.locator(cell).count()):
                _within(p, "%s >> nth=%d" % (cell, i), (path, cell, i))
            # the badges of a row are on the screen too
            row = cell.replace(" td.name", ":first-child").replace(" td.attt", ":first-child")
            badges = p.locator(row + " td.badge")
            for i in range(badges.count()):
                _within(p, "%s td.badge >> nth=%d" % (row, i), (path, "badge", i))
            assert p.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
        screenshot(p, "school-devices-stacked-phone-" + lang)
        # a list that sorts keeps its sort buttons on the phone
        p.goto(world.url + "/schools")
        settle(p)
        p.click("th button[data-sort='name']")
        settle(p)
        expect(p.locator("th button[data-sort='name']")).to_have_attribute("aria-sort",
                                                                           "ascending")
        w.expect_errors()
    finally:
        w.context.close()


FITS = """el => { const c = document.createElement('canvas').getContext('2d');
  const s = getComputedStyle(el); c.font = s.font;
  const text = el.tagName === 'SELECT' ? el.options[el.selectedIndex].text : el.placeholder;
  const room = el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight)
    - (el.tagName === 'SELECT' ? 18 : 0);
  return [c.measureText(text).width, room]; }"""


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_filter_texts_are_not_cut(world, browser, viewport):
    """"Mã, tên hoặc viết tắt (T…" and, on the phone, "Chưa đạt chuẩn (m…"."""
    w = new_page(browser, viewport)
    try:
        p = w.page
        login(w, world.url, *ADMIN, start="/schools?baseline=attt")
        for lang in ("vi", "en"):
            for sel in ("#f-q", "#f-attt"):
                width, room = p.eval_on_selector(sel, FITS)
                assert width <= room, (lang, sel, width, room)
            p.goto(world.url + "/devices?attt=unknown&os_support=esu")
            settle(p)
            for sel in ("#f-attt", "#f-os_support"):
                width, room = p.eval_on_selector(sel, FITS)
                assert width <= room, (lang, sel, width, room)
            p.click("#lang")
            p.goto(world.url + "/schools?baseline=attt")
            settle(p)
        p.click("#lang")
        settle(p)
        w.expect_errors()
    finally:
        w.context.close()


def test_the_review_s_small_things(world, browser):
    w = new_page(browser)
    try:
        p = w.page
        login(w, world.url, *ADMIN)
        # card titles all start with a capital ("Mất kết nối", not "mất kết nối")
        titles = p.eval_on_selector_all(".card .k", "ks => ks.map(k => k.innerText)")
        assert titles and all(x[:1] == x[:1].upper() for x in titles), titles
        # the trend chart keeps its distance from the ATTT cards
        p.wait_for_function("() => document.getElementById('chart-trend').uplot")
        cards = p.locator("#cards-attt").bounding_box()
        chart = p.locator("#chart-trend").bounding_box()
        assert cards and chart and chart["y"] - (cards["y"] + cards["height"]) >= 8, (cards, chart)
        # a school: "100 %" (nothing is more than all) beside "≥ 90 %"; the PCs not passing
        # say they include the unknown, open when one fails; the hourly chart counts devices
        # in whole numbers
        p.goto(world.url + "/schools/SP-BEL")
        settle(p)
        expect(p.locator("#attt-gates tr[data-gate='office_critical'] td").nth(2)).to_have_text(
            "100 %")
        expect(p.locator("#attt-gates tr[data-gate='coverage'] td").nth(2)).to_have_text("≥ 90 %")
        av = p.locator("#attt-checks > li[data-check='av_on'] details")
        expect(av.locator("summary")).to_have_text("Máy chưa đạt / chưa xác định (1)")
        assert av.evaluate("d => d.open")
        p.goto(world.url + "/schools/SP-OK")
        settle(p)
        p.wait_for_function("() => document.getElementById('chart-school-7d').dataset.yticks")
        ticks = p.locator("#chart-school-7d").get_attribute("data-yticks").split()
        assert ticks and all(float(x) == int(float(x)) for x in ticks), ticks
        # the router: its page is "Router của <school>", its role one term ("router")
        expect(p.locator("#router a")).to_have_attribute("href", "/devices/ok-router")
        p.click("#router a")
        settle(p)
        expect(p.locator("#page-title")).to_contain_text("Router của Trường THCS Sa Pa")
        assert p.title().startswith("Router của Trường THCS Sa Pa")
        expect(p.locator(".facts dt:text-is('Loại máy') + dd")).to_have_text("router")
        expect(p.locator("#not-applicable")).to_contain_text(
            "Chuẩn ATTT của máy tính không áp dụng cho router")
        expect(p.locator("#findings-table")).to_have_count(0)
        # a PC without a security report says what the technician does about it
        p.goto(world.url + "/devices/n1")
        settle(p)
        expect(p.locator("#never-reported")).to_contain_text("schoolmon-agent 0.1.0")
        expect(p.locator("#never-reported")).to_contain_text("2 phút sau khi agent khởi động")
        expect(p.locator("#stale")).to_have_count(0)  # never reported is not "silent 7 days"
        w.expect_errors()
        # a technician typing /audit reads only why not
        p.click("#logout")
        expect(p.locator("#login-form")).to_be_visible()
        login(w, world.url, *TECH, start="/audit")
        expect(p.locator("#forbidden")).to_contain_text("Thao tác này cần quyền quản trị.")
        expect(p.locator("#filters")).to_have_count(0)
        expect(p.locator("#audit")).to_have_count(0)
        w.expect_errors(r"403")
    finally:
        w.context.close()


def test_minor_findings_are_not_red_and_the_coverage_gate_names_the_missing(world, browser):
    """After wt-fix-evidence's API: a PC that passes the required (critical and high) checks
    but fails a medium one is not shown red, its school stays Đạt; the coverage gate links
    the PCs that did not report."""
    ok7 = api(world, "/api/v1/devices/ok7")["security"]
    assert ok7["summary"] == "findings" and ok7["worst"] == "fail"
    w = new_page(browser)
    try:
        p = w.page
        login(w, world.url, *ADMIN, start="/schools/SP-OK")
        expect(p.locator("#page-title .st.attt")).to_have_text("Đạt")
        cell = p.locator("#devices tr[data-device='ok7'] td.attt .st")
        expect(cell).to_have_attribute("data-summary", "findings")
        expect(cell).to_have_text("Đạt tiêu chí bắt buộc")
        expect(p.locator("#devices tr[data-device='ok7'] td.attt")).to_contain_text(
            "1 tiêu chí cần khắc phục")
        red = "rgb(179, 38, 30)"  # the failing red of style.css
        assert cell.evaluate("e => getComputedStyle(e).color") != red
        expect(p.locator("#devices tr[data-device='ok1'] td.attt .st")).to_have_attribute(
            "data-summary", "pass")
        autorun = p.locator("#attt-checks > li[data-check='autorun_off']")
        assert "minor" in (autorun.get_attribute("class") or "")
        p.goto(world.url + "/devices/ok7")
        settle(p)
        expect(p.locator("#findings h3 .st")).to_have_attribute("data-summary", "findings")
        # a PC failing a required check is red
        p.goto(world.url + "/schools/SP-BEL")
        settle(p)
        bad = p.locator("#devices tr[data-device='b1'] td.attt .st")
        expect(bad).to_have_attribute("data-summary", "fail")
        assert bad.evaluate("e => getComputedStyle(e).color") == red
        # Không đủ dữ liệu: the PCs that did not report, each a link
        p.goto(world.url + "/schools/SP-INS")
        settle(p)
        missing = p.locator("#attt-missing")
        expect(missing).to_contain_text("Máy chưa gửi báo cáo ATTT trong 7 ngày (2):")
        expect(missing.locator("a")).to_have_count(2)
        expect(missing.locator("a").first).to_have_attribute("href", "/devices/n1")
        expect(missing).to_contain_text("chưa gửi lần nào")
        missing.locator("a").first.click()
        settle(p)
        expect(p).to_have_url(world.url + "/devices/n1")
        w.expect_errors()
    finally:
        w.context.close()
