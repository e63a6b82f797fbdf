"""The ATTT posture through the real HTTP API (uvicorn on loopback) on SQLite and
PostgreSQL: the baseline listing, a device's checks, a school's status with its gates,
checklist and history, the list filters and the counts of the summary, overview and org."""
import time

import pytest
from schoolmon.collector.api import create_app
from schoolmon.collector.posture import Evaluator, rules_from_config
from schoolmon.collector.store import schema as db

from tests.collector.api.apihelp import LiveServer, _cfg, client, seed
from tests.collector.postures import DAY, good_security, send, windows_inventory
from tests.collector.storehelp import engine_for


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    for engine in engine_for(request.param, tmp_path, postgres):
        store = seed(engine)
        app = create_app(store, _cfg())
        live = LiveServer(app)
        try:
            yield engine, store, live
        finally:
            live.stop()


def evaluate(engine, now=None):
    return Evaluator(engine, rules_from_config(_cfg())).run_once(now or time.time())


def test_baselines_route(world):
    _, _, live = world
    b = client(live).get("/api/v1/baselines").json()
    checks = b["attt"]["checks"]
    assert b["attt"]["source"] == "shipped" and len(b["attt"]["hash"]) == 64
    assert len(checks) == 12 and checks[0]["id"] == "os_supported"
    assert checks[0]["severity"] == "critical" and checks[0]["severity_label"] == "Nghiêm trọng"
    assert checks[0]["pass"] == "os_supported == true" and checks[0]["citation"]
    assert checks[1]["title"].startswith("Có phần mềm phòng chống mã độc")
    assert b["attt"]["school_rule"] == {"coverage_pct": 90.0, "coverage_days": 7.0,
                                        "office_critical_pct": 100.0,
                                        "all_critical_pct": 95.0, "critical_high_pct": 80.0}
    # the connectivity checks in force, each with its limits and citation
    conn = b["connectivity"]
    assert conn["source"] == "shipped" and len(conn["hash"]) == 64
    by = {c["id"]: c for c in conn["checks"]}
    assert set(by) >= {"no_recent_test", "tests_failing", "down_below_bad",
                       "down_below_good", "up_below_good", "below_contract", "ping_high",
                       "uptime_low", "intl_unreachable", "high_variability"}
    assert by["down_below_good"]["limits"] == {"good_down_mbps": 20, "per_student_kbps": 50,
                                               "per_student_above": 400}
    assert by["down_below_good"]["citation"].startswith("UNICEF/ITU Giga")
    assert (by["down_below_bad"]["effect"], by["down_below_bad"]["effect_label"]) == (
        "below", "Không đạt")
    assert by["below_contract"]["limits"] == {"contract_pct": 80} and by["below_contract"][
        "enabled"] and by["below_contract"]["citation"].startswith("Giga Meter")
    assert by["intl_unreachable"]["citation"].startswith("2023 submarine-cable")
    assert by["tests_failing"]["title"] == "Các lần đo liên tiếp thất bại"
    assert all(c["citation"] and c["title"] for c in conn["checks"])
    assert conn["window"]["recent_days"] == 7 and conn["window"]["citation"]
    assert conn["school_hours"] == dict(conn["school_hours"], days=[1, 2, 3, 4, 5, 6],
                                        start=7, end=17)
    w10 = [o for o in b["os_support"] if o["os"] == "windows" and o["version"] == "10"
           and o["esu_end"]]
    assert w10 and w10[0]["end"] == "2025-10-14" and w10[0]["label"].startswith("Windows 10")
    en = client(live).get("/api/v1/baselines", params={"lang": "en"}).json()
    assert en["attt"]["checks"][0]["severity_label"] == "Critical"
    assert en["attt"]["checks"][1]["title"].startswith("Anti-malware present")
    en_conn = {c["id"]: c for c in en["connectivity"]["checks"]}
    assert en_conn["ping_high"]["title"] == "Latency (ping)"
    assert en_conn["down_below_bad"]["effect_label"] == "Fails the baseline"


def test_before_the_evaluator_ran(world):
    _, _, live = world
    c = client(live)
    b = c.get("/api/v1/summary").json()["below_baseline"]
    assert b["security"] is None and b["evaluated"] is False and b["connectivity"] is None
    s = c.get("/api/v1/schools/S01").json()
    assert s["attt"]["status"] == "not_evaluated" and s["attt"]["label"] == "Chưa đánh giá"
    assert s["below_baseline"]["security"] is None
    assert c.get("/api/v1/devices/d01a").json()["security"] is None
    assert c.get("/api/v1/schools", params={"baseline": "attt"}).json()["total"] == 0


def test_school_device_and_lists_after_evaluation(world):
    engine, store, live = world
    now = time.time()
    # S01: d01a (lab) fine, d01b (office) with its antivirus off -> below
    for school, dev in (("S01", "d01a"), ("S01", "d01b"), ("S02", "d02a"), ("S02", "d02b")):
        role = "office" if dev.endswith("b") else "lab"
        send(store, school, dev, "inventory", 100, now - 120, hostname="pc-" + dev,
             **windows_inventory(role=role))
        over = {"av_on": False, "av_name": ""} if dev == "d01b" else {}
        if dev == "d02b":
            over = {"av_sig_age_d": 10.0}
        send(store, school, dev, "security", 101, now - 60, **good_security(now, **over))
    # S03's one PC runs Windows 7
    send(store, "S03", "d03a", "inventory", 100, now - 120, hostname="pc-d03a",
         **windows_inventory(build="7601", edition="Professional", display=None,
                             os_version="7"))
    send(store, "S03", "d03a", "security", 101, now - 60,
         **good_security(now, unknown=[{"field": "lock_s", "reason": "access denied"}],
                         lock_s=None))
    stats, _ = evaluate(engine, now)
    assert stats.full
    c = client(live)

    s = c.get("/api/v1/schools/S01").json()
    a = s["attt"]
    assert a["status"] == "below" and a["label"] == "Không đạt" and a["status_label"] == "Không đạt"
    assert a["since"].endswith("Z") and a["since_local"].endswith("+07:00")
    assert a["coverage"] == {"reporting": 2, "pcs": 2, "pct": 100.0, "days": 7.0}
    gates = {g["id"]: g for g in a["gates"]}
    assert not gates["office_critical"]["ok"] and gates["office_critical"]["value_pct"] == 0.0
    assert gates["coverage"]["label"] == "Máy gửi báo cáo ATTT trong 7 ngày"
    assert gates["coverage"]["missing"] == [] and gates["coverage"]["missing_total"] == 0
    av = [x for x in a["checks"] if x["id"] == "av_on"][0]
    assert (av["pass"], av["fail"]) == (1, 1) and av["hint"] and av["citation"]
    assert av["devices"] == [{"id": "d01b", "hostname": "pc-d01b", "role": "office",
                              "role_label": "máy văn phòng", "state": "fail",
                              "state_label": "Không đạt",
                              "evidence": "Bảo vệ thời gian thực: không; sản phẩm: không có"}]
    assert [h["status"] for h in a["history"]] == ["below"] and len(a["history"][0]["day"]) == 10
    assert s["below_baseline"]["security"] is True and s["below_baseline"]["evaluated"] is True
    assert s["baseline"] == "below"
    # S02: an office PC's signatures 10 days old fails a high check: improve
    assert c.get("/api/v1/schools/S02").json()["attt"]["status"] == "improve"

    d = c.get("/api/v1/devices/d03a").json()["security"]
    assert d["stale"] is False and d["frozen"] is False and d["worst"] == "fail"
    assert d["os_support"]["status"] == "unsupported" and d["os_support"]["end"] == "2020-01-14"
    assert d["reported_at"].endswith("Z") and d["evaluated_at"].endswith("Z")
    by = {x["id"]: x for x in d["checks"]}
    assert by["os_supported"]["state"] == "fail" and by["os_supported"]["state_label"] == \
        "Không đạt"
    # the values used and those the evidence shows ("hết hỗ trợ từ 14/01/2020")
    assert by["os_supported"]["values"] == {"os_supported": False, "os_support_status":
                                            "unsupported", "os_end": "2020-01-14"}
    assert "14/01/2020" in by["os_supported"]["evidence"]
    assert by["screen_lock"]["state"] == "unknown"
    # the fact in words, the agent's well-known reason translated; how to make it known
    assert by["screen_lock"]["evidence"] == \
        "Không xác định được thời gian chờ khóa màn hình: agent không đủ quyền đọc"
    assert by["screen_lock"]["hint_kind"] == "unknown"
    assert by["screen_lock"]["hint"].startswith("Chạy agent với quyền quản trị")
    assert by["firewall_on"]["since"].endswith("Z") and by["firewall_on"]["hint"]
    en = c.get("/api/v1/devices/d03a", params={"lang": "en"}).json()["security"]
    assert {x["id"]: x for x in en["checks"]}["os_supported"]["state_label"] == "Fail"

    lst = c.get("/api/v1/devices", params={"attt": "fail", "per_page": 100}).json()
    assert sorted(x["id"] for x in lst["items"]) == ["d01b", "d02b", "d03a"]
    # antivirus off: av_on fails once (its signatures are not a second failure)
    assert {x["id"]: x["attt"]["fail"] for x in lst["items"]}["d01b"] == 1
    unsupported = c.get("/api/v1/devices", params={"os_support": "unsupported"}).json()
    assert [x["id"] for x in unsupported["items"]] == ["d03a"]
    # d05a and d06a (S05, S06) never sent a security report: unknown, not passing
    assert sorted(x["id"] for x in c.get("/api/v1/devices", params={"attt": "unknown"}).json()[
        "items"]) == ["d03a", "d05a", "d06a"]
    passing = c.get("/api/v1/devices", params={"attt": "pass"}).json()
    assert sorted(x["id"] for x in passing["items"]) == ["d01a", "d02a"]
    assert c.get("/api/v1/devices", params={"attt": "burning"}).status_code == 422

    below = c.get("/api/v1/schools", params={"baseline": "attt"}).json()
    assert {x["code"]: x["attt"]["status"] for x in below["items"]} == {
        "S01": "below", "S02": "improve", "S03": "below", "S05": "insufficient",
        "S06": "insufficient"}
    labels = {x["code"]: x["attt"]["label"] for x in below["items"]}
    assert (labels["S01"], labels["S02"], labels["S05"]) == ("Không đạt", "Cần cải thiện",
                                                             "Không đủ dữ liệu")
    assert "baseline_note" not in below
    one = c.get("/api/v1/schools", params={"attt": "improve"}).json()
    assert [x["code"] for x in one["items"]] == ["S02"]
    order = [x["attt"]["status"] for x in c.get("/api/v1/schools", params={
        "sort": "attt"}).json()["items"]]
    assert order == ["below", "below", "insufficient", "insufficient", "improve", "no_pcs",
                     "no_pcs"]
    assert c.get("/api/v1/schools", params={"baseline": "connectivity"}).json()["total"] == 0

    summ = c.get("/api/v1/summary").json()["below_baseline"]
    assert summ["security"] == 5 and summ["evaluated"] is True and summ["connectivity"] is None
    assert summ["attt_by_status"]["below"] == 2 and summ["attt_by_status"]["no_pcs"] == 2
    assert summ["attt_labels"]["insufficient"] == "Không đủ dữ liệu"
    ov = c.get("/api/v1/overview").json()
    assert ov["below_baseline"]["security"] == 5
    assert ov["links"]["below_baseline_security"] == {"path": "/api/v1/schools",
                                                      "params": {"baseline": "attt"}}
    assert sum(a["attt_below_baseline"] for a in ov["areas"]) == 5
    org = c.get("/api/v1/org").json()
    assert org["below_baseline"]["security"] == 5 and org["counts"]["attt_below_baseline"] == 5

    # 8 days without a report: every check unknown, the schools insufficient
    evaluate(engine, now + 8 * DAY)
    d = c.get("/api/v1/devices/d01a").json()["security"]
    assert d["stale"] is True and d["counts"]["unknown"] == 12
    assert c.get("/api/v1/schools/S01").json()["attt"]["status"] == "insufficient"


def test_device_summary_tells_required_from_medium_findings_and_gate_names_missing_pcs(world):
    """A PC failing only a medium check passes what the school rule counts: its summary says
    so ("Đạt tiêu chí bắt buộc · 1 tiêu chí cần khắc phục"), not a red "Không đạt"; the
    coverage gate names the PCs that did not report, for a link to each."""
    engine, store, live = world
    now = time.time()
    send(store, "S01", "d01a", "inventory", 100, now - 120, hostname="pc-d01a",
         **windows_inventory(role="lab"))
    send(store, "S01", "d01a", "security", 101, now - 60,
         **good_security(now, autorun_off=False, autorun_detail="NoDriveTypeAutoRun=145",
                         lock_s=None, unknown=[{"field": "lock_s",
                                                "reason": "no user logged on"}]))
    send(store, "S01", "d01b", "inventory", 100, now - 120, hostname="pc-d01b",
         **windows_inventory(role="office"))
    send(store, "S01", "d01b", "security", 101, now - 60,
         **good_security(now, av_on=False, av_name=""))
    send(store, "S02", "d02a", "inventory", 100, now - 120, hostname="pc-d02a",
         **windows_inventory(role="lab"))
    send(store, "S02", "d02a", "security", 101, now - 60, **good_security(now))
    evaluate(engine, now)
    c = client(live)
    items = {x["id"]: x["attt"] for x in c.get("/api/v1/devices", params={
        "per_page": 100}).json()["items"]}
    a = items["d01a"]
    assert a["worst"] == "fail" and a["fail"] == 1  # as before: the worst of any check
    assert a["summary"] == "findings" and (a["required_fail"], a["required_unknown"]) == (0, 0)
    assert (a["other_fail"], a["other_unknown"]) == (1, 1)
    assert a["summary_label"] == ("Đạt tiêu chí bắt buộc · 1 tiêu chí cần khắc phục"
                                  " · 1 tiêu chí chưa xác định")
    b = items["d01b"]
    assert b["summary"] == "fail" and b["summary_label"] == "Không đạt 1 tiêu chí bắt buộc"
    assert items["d02a"]["summary"] == "pass" and items["d02a"]["summary_label"] == \
        "Đạt mọi tiêu chí"
    # never reported: every required check unknown
    assert items["d05a"]["summary"] == "unknown" and items["d05a"]["required_unknown"] == 6
    en = {x["id"]: x["attt"] for x in c.get("/api/v1/devices", params={
        "per_page": 100, "lang": "en"}).json()["items"]}
    assert en["d01a"]["summary_label"] == "Passes the required checks · 1 to fix · 1 unknown"
    # the same on the school page's device table and the device's own page
    s = c.get("/api/v1/schools/S01").json()
    assert {d["id"]: d["attt"]["summary"] for d in s["devices"]} == {"d01a": "findings",
                                                                   "d01b": "fail"}
    sec = c.get("/api/v1/devices/d01a").json()["security"]
    assert sec["summary"] == "findings" and sec["summary_label"] == a["summary_label"]
    # the coverage gate: S05's one PC never sent a security report
    gates = {g["id"]: g for g in c.get("/api/v1/schools/S05").json()["attt"]["gates"]}
    cov = gates["coverage"]
    assert not cov["ok"] and cov["missing_total"] == 1
    assert cov["missing"] == [{"id": "d05a", "hostname": "pc-d05a", "role": "lab",
                               "role_label": "máy phòng tin học", "reported_at": None,
                               "reported_at_local": None, "never_reported": True}]
    # nine days later S01's PCs are silent: named too, with when they last reported
    evaluate(engine, now + 9 * DAY)
    cov = {g["id"]: g for g in c.get("/api/v1/schools/S01").json()["attt"]["gates"]}["coverage"]
    assert [m["id"] for m in cov["missing"]] == ["d01a", "d01b"]
    assert cov["missing"][0]["never_reported"] is False and cov["missing"][0]["reported_at"]


def test_router_never_reported_frozen_linux_and_since_in_the_api(world):
    """A router: no check applies, so no stale flag and no warning (defect 3); a PC that
    never reported says so apart from a silent one (defect 4); since when, and whether that
    is only the first evaluation (defect 11); the frozen checks named; a Linux PC's hints
    and citations are Linux ones; the OS support in one phrase."""
    engine, store, live = world
    now = time.time()
    send(store, "S04", "r04", "inventory", 1, now - 120, hostname="gw-s04", role="router",
         os_name="Linux", os_version="OpenWrt 21.02", os_edition="OpenWrt")
    send(store, "S04", "d04f", "inventory", 1, now - 120, hostname="pc-d04f",
         **windows_inventory(role="lab"))
    send(store, "S04", "d04f", "security", 2, now - 60, **good_security(
        now, frozen=True, freeze_product="Deep Freeze Standard",
        patch_last_ts=int(now - 200 * DAY)))
    send(store, "S04", "d04l", "inventory", 1, now - 120, hostname="pc-d04l", role="lab",
         os_name="Linux", os_version="24.04", os_edition="Ubuntu 24.04.1 LTS")
    send(store, "S04", "d04l", "security", 2, now - 60, os_family="linux", os_id="ubuntu",
         fw_on=False, auto_update=True, auto_update_detail="APT::Periodic::Unattended-Upgrade=1",
         patch_last_ts=int(now - 3 * DAY))
    evaluate(engine, now)
    c = client(live)
    r = c.get("/api/v1/devices/r04").json()["security"]
    assert r["applicable"] is False and r["stale"] is False and r["never_reported"] is False
    assert r["summary"] == "na" and r["counts"]["na"] == 12
    with engine.connect() as conn:
        assert conn.execute(db.attt_devices.select().where(
            db.attt_devices.c.device_id == "r04")).first().stale is False
    # never reported (S05's d05a): told apart from silent, with how to make it known
    n = c.get("/api/v1/devices/d05a").json()["security"]
    assert n["never_reported"] is True and n["stale"] is True and n["applicable"] is True
    k = n["checks"][0]
    assert k["evidence"] == "Máy chưa gửi báo cáo ATTT" and k["hint_kind"] == "unknown"
    assert k["hint"].startswith("Kiểm tra phiên bản agent")
    # frozen: the checks it leaves unjudged, by name
    f = c.get("/api/v1/devices/d04f").json()["security"]
    assert [x["id"] for x in f["frozen_checks"]] == ["av_signatures", "patch_recent"]
    assert f["frozen_checks"][1]["title"].startswith("Bản vá bảo mật")
    assert f["os_support"]["text"] == "được hỗ trợ đến 12/10/2027"
    # first evaluation: each check's since is flagged (it may have begun before)
    assert all(x["since_first_evaluation"] is True for x in f["checks"])
    s = c.get("/api/v1/schools/S04").json()["attt"]
    assert s["since_first_evaluation"] is True
    # Linux: its own hint and citation
    lx = {x["id"]: x for x in c.get("/api/v1/devices/d04l").json()["security"]["checks"]}
    assert lx["firewall_on"]["state"] == "fail" and "ufw enable" in lx["firewall_on"]["hint"]
    assert "Windows" not in lx["firewall_on"]["hint"]
    assert "Windows" not in lx["firewall_on"]["citation"]
    assert lx["smb1_off"]["evidence"] == "Không áp dụng cho Linux"
    fw = next(x for x in s["checks"] if x["id"] == "firewall_on")
    assert "ufw" in fw["by_os"]["linux"]["hint"] and "Windows" in fw["hint"]
    # a change seen later: since is then, no longer "the first evaluation"
    send(store, "S04", "d04l", "security", 3, now + 60, os_family="linux", os_id="ubuntu",
         fw_on=True, auto_update=True, auto_update_detail="APT::Periodic::Unattended-Upgrade=1",
         patch_last_ts=int(now - 3 * DAY))
    evaluate(engine, now + 120)
    lx = {x["id"]: x for x in c.get("/api/v1/devices/d04l").json()["security"]["checks"]}
    assert lx["firewall_on"]["state"] == "pass" and lx["firewall_on"]["since_first_evaluation"] \
        is False
    assert lx["patch_recent"]["since_first_evaluation"] is True
    b = c.get("/api/v1/baselines").json()["attt"]["checks"]
    assert next(x for x in b if x["id"] == "av_signatures")["applies_if"] == "av_on == true"
    assert "ufw" in next(x for x in b if x["id"] == "firewall_on")["by_os"]["linux"]["hint"]


def test_technician_sees_only_their_schools_posture(world):
    engine, store, live = world
    now = time.time()
    send(store, "S01", "d01a", "security", 200, now - 60, **good_security(now))
    evaluate(engine, now)
    from tests.collector.api.apihelp import READ
    c = client(live, READ)
    assert c.get("/api/v1/schools/S01").json()["attt"]["status"] != "not_evaluated"
    # scoped callers: covered for every route by test_auth.test_every_api_route_is_scoped
    assert db.attt_schools.name == "attt_schools"
