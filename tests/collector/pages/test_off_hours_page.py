"""The pages on the school calendar, in Debian's Chromium against the real app under
uvicorn: at 21:00 on a school day (the app's clock is the test's, not the hour the test
runs at) a lab PC that was switched off after school shows "ngoài giờ học", its school is
not "mất kết nối một phần", and the list filters and overview cards have the new status."""
import datetime as dt
from types import SimpleNamespace
from typing import Any, Iterator

import httpx
import pytest
from playwright.sync_api import expect
from schoolmon.collector.alerting.calendar import SHIPPED_FILE, load_calendar
from schoolmon.collector.api import create_app
from schoolmon.collector.api.server import ApiServer
from schoolmon.collector.store import StateStore, registry
from schoolmon.collector.store import schema as db
from schoolmon.collector.store import users as user_store

from tests.collector.storehelp import received
from tests.servers import free_port

from .pagehelp import login, new_page, settle

TZ = load_calendar(None).tz
WED_21 = dt.datetime(2026, 12, 2, 21, 0, tzinfo=TZ).timestamp()
ADMIN = ("quantri", "Mat-khau-quan-tri-1")
TOKEN = "adm-" + "k" * 28


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[SimpleNamespace]:
    engine = db.make_engine("sqlite:///%s" % (tmp_path_factory.mktemp("offhours") / "s.db"))
    db.create_all(engine)
    registry.add_schools(engine, [
        {"code": "BX-KD", "name": "Trường Tiểu học Kim Đồng", "level": "TH", "area": "Bát Xát",
         "province": "Lào Cai"},
        {"code": "SP-HS", "name": "Trường Mầm non Hoa Sen", "level": "MN", "area": "Sa Pa",
         "province": "Lào Cai"}])
    store = StateStore(engine)
    morning, evening = WED_21 - 14 * 3600, WED_21 - 3.5 * 3600  # 07:00 and 17:30

    def device(school: str, dev: str, role: str, online: bool) -> None:
        msgs = [received(school, dev, "inventory", 1, morning, role=role, hostname=dev.upper()),
                received(school, dev, "status", 2, morning + 1, state="online", hb=60)]
        if not online:
            msgs.append(received(school, dev, "status", 3, evening, state="offline",
                                 reason="shutdown"))
        store.commit(store.prepare(msgs))

    device("BX-KD", "kd-lab1", "lab", False)
    device("BX-KD", "kd-srv", "server", True)
    device("SP-HS", "hs-lab1", "lab", False)
    with engine.begin() as conn:
        user_store.add_user(conn, ADMIN[0], "so_admin", ADMIN[1], [])
    cfg = SimpleNamespace(api=SimpleNamespace(admin_token=TOKEN, read_tokens=[]),
                          province=SimpleNamespace(timezone="Asia/Ho_Chi_Minh"),
                          alerting=SimpleNamespace(calendar_file=SHIPPED_FILE))
    server = ApiServer(create_app(store, cfg, clock=lambda: WED_21), "127.0.0.1",
                       free_port()).start()
    try:
        yield SimpleNamespace(url=server.url)
    finally:
        server.stop()
        engine.dispose()


def api(world: Any, path: str) -> Any:
    r = httpx.get(world.url + path, headers={"Authorization": "Bearer " + TOKEN}, timeout=30)
    r.raise_for_status()
    return r.json()


def test_the_api_at_21h(world):
    s = api(world, "/api/v1/schools/BX-KD")
    assert s["status"] == "online" and s["status_label"] == "trực tuyến"
    lab = next(d for d in s["devices"] if d["id"] == "kd-lab1")
    assert (lab["status"], lab["status_label"]) == ("off_hours", "ngoài giờ học")
    en = api(world, "/api/v1/devices/kd-lab1?lang=en")
    assert en["status_label"] == "outside school hours"
    o = api(world, "/api/v1/overview")
    assert o["schools"]["by_status"] == {"offline": 0, "partial": 0, "online": 1,
                                         "off_hours": 1, "no_devices": 0}
    assert o["devices"]["by_status"]["off_hours"] == 2


def test_the_school_page_shows_ngoai_gio_hoc(world, browser):
    w = new_page(browser)
    try:
        login(w, world.url, *ADMIN, start="/schools/BX-KD")
        p = w.page
        settle(p)
        row = p.locator('tr[data-device="kd-lab1"]')
        expect(row).to_contain_text("ngoài giờ học")
        expect(row).not_to_contain_text("mất kết nối")
        expect(p.locator('tr[data-device="kd-srv"]')).to_contain_text("trực tuyến")
        expect(p.locator("body")).not_to_contain_text("mất kết nối một phần")
        expect(p.locator("body")).to_contain_text("1 trực tuyến, 0 mất kết nối, 2 chờ duyệt, 1 ngoài giờ học")
        # the device list's filter has the new status and lists the two lab PCs
        p.goto(world.url + "/devices?status=off_hours")
        settle(p)
        expect(p.locator('select[name="status"] option[value="off_hours"]')).to_have_text(
            "ngoài giờ học")
        expect(p.locator("tr[data-device]")).to_have_count(2)
        # the school list: the filter and the school whose only PC is off
        p.goto(world.url + "/schools?status=off_hours")
        settle(p)
        expect(p.locator('select[name="status"] option[value="off_hours"]')).to_have_count(1)
        expect(p.locator("body")).to_contain_text("Trường Mầm non Hoa Sen")
        expect(p.locator("body")).not_to_contain_text("Trường Tiểu học Kim Đồng")
        # the overview's cards: one school and two devices off hours, linked to their lists
        p.goto(world.url + "/")
        settle(p)
        card = p.locator("#cards-schools .card.off_hours")
        expect(card).to_contain_text("1")
        expect(card).to_contain_text("Ngoài giờ học")
        expect(p.locator("#cards-devices .card.off_hours")).to_contain_text("2")
        w.expect_errors()
    finally:
        w.context.close()
