"""End to end through the real boundary: simulated agents sending real security payloads
(``simulate.posture``) → a private Mosquitto → the real ``schoolmon-collector run``
process (ingest, the ATTT evaluator, the API and the pages) → Debian's Chromium. A school
that meets the ATTT baseline goes to Không đạt when its PCs' antivirus goes off, and back
to Đạt when it comes on again; the page shows each, and each change is one
``attt_status_changed`` event."""
import json

from playwright.sync_api import expect
from schoolmon.collector.simulate import Simulation, province_fixture
from schoolmon.collector.store import schema as db
from sqlalchemy import select

from tests.collector.helpers import seed_schools, wait_until
from tests.e2e_help import Collector

from .conftest import _add_user
from .pagehelp import login, new_page, screenshot, settle

USER = ("sogdlaocai", "Mat-khau-So-GD-2026")


def _events(store_url, school):
    engine = db.make_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(db.events.c.detail).where(
                db.events.c.kind == "attt_status_changed", db.events.c.school == school)
                .order_by(db.events.c.id)).scalars().all()
    finally:
        engine.dispose()
    return [(d if isinstance(d, dict) else json.loads(d)) for d in rows]


def test_a_school_flips_from_dat_to_khong_dat_when_its_antivirus_goes_off_and_back(
        mosquitto, browser, tmp_path):
    prov = province_fixture(6, 6, seed=1, province_code="93")
    for d in prov.devices:  # every PC reports (none went away)
        if d.profile == "offline":
            d.profile = "normal"
    school = next(s for s in prov.schools if prov.plans[s.code] == "meets")
    windows_pcs = [d for d in prov.devices if d.school == school.code and d.os[0] == "Windows"]
    assert windows_pcs
    store_url = "sqlite:///%s" % (tmp_path / "state.db")
    seed_schools(store_url, prov.school_rows())
    coll = Collector(str(tmp_path), mosquitto.url, store_url, "")
    with open(coll.config_path, "a", encoding="utf-8") as fh:
        fh.write("\n[baseline]\nevaluate_interval = 0.5\n")
    sim = None
    w = None
    try:
        coll.start()
        _add_user(store_url, USER[0], "so_viewer", USER[1])
        sim = Simulation(mosquitto.url, prov, rate=6, connections=2, final_status=False).start()

        def status():
            return coll.get("/api/v1/schools/" + school.code)["attt"]["status"]
        wait_until(lambda: status() == "meets", timeout=90, every=0.5,
                   what=lambda: "the school to meet the baseline (now %s)\n%s"
                   % (status(), coll.log()))
        w = new_page(browser)
        p = w.page
        login(w, coll.url, *USER, start="/schools/" + school.code)
        expect(p.locator("#attt h3 .st.attt")).to_have_text("Đạt")
        av = p.locator("#attt-checks > li[data-check='av_on']")
        expect(av.locator("[data-count='fail']")).to_have_count(0)
        screenshot(p, "e2e-attt-dat")

        # the antivirus goes off on every PC of the school: Không đạt, on the page too
        assert sim.set_antivirus(school.code, on=False) == len(
            [d for d in prov.devices if d.school == school.code and d.role != "router"])
        wait_until(lambda: status() == "below", timeout=90, every=0.5,
                   what=lambda: "the school to fall below (now %s)" % status())
        p.reload()
        settle(p)
        expect(p.locator("#attt h3 .st.attt")).to_have_text("Không đạt")
        expect(p.locator("#attt-link .st.attt")).to_have_text("Không đạt")
        expect(av.locator("[data-count='fail']")).to_have_text("Không đạt %d" % len(windows_pcs))
        gate = p.locator("#attt-gates tr[data-gate='all_critical'] .st")
        expect(gate).to_have_text("chưa đạt")
        screenshot(p, "e2e-attt-khong-dat")
        # the PC's own page says why
        one = windows_pcs[0].id
        p.click("#attt-checks > li[data-check='av_on'] li[data-device='%s'] a" % one)
        settle(p)
        expect(p.locator("#findings-table tr[data-check='av_on'] td").first).to_have_text("Không đạt")

        # and back on: Đạt again
        sim.set_antivirus(school.code, on=True)
        wait_until(lambda: status() == "meets", timeout=90, every=0.5,
                   what=lambda: "the school to meet the baseline again (now %s)" % status())
        p.goto(coll.url + "/schools/" + school.code)
        settle(p)
        expect(p.locator("#attt h3 .st.attt")).to_have_text("Đạt")
        expect(p.locator("#attt-history li").last).to_have_attribute("data-status", "meets")
        w.expect_errors()
        # one event per change, as alerting will read them
        changes = [(e["from"], e["to"]) for e in _events(store_url, school.code)]
        assert changes[-2:] == [("meets", "below"), ("below", "meets")], changes
        # the rest of the province was not touched
        others = coll.get("/api/v1/schools", per_page=50)["items"]
        assert all(s["attt"]["status"] != "not_evaluated" for s in others)
    finally:
        if w is not None:
            w.context.close()
        if sim is not None:
            sim.stop()
            sim.join(20)
        coll.close()
