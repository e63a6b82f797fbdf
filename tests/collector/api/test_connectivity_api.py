"""Connectivity through the real HTTP API (uvicorn on loopback) on SQLite and PostgreSQL,
over rows written straight into the connectivity tables and school_state in the shapes of
issue 10's decisions 2–4: a school's status with its reasons in words, lease, budget and
router; its tests, days and probe hours; the list's filter and sort; the counts of the
summary, overview and org; the ISP comparison; scope (404 outside); null, never 0, where
nothing was measured."""
import time

import pytest
from schoolmon.collector.api import create_app
from schoolmon.collector.store import schema as db
from schoolmon.collector.store import school_state
from schoolmon.collector.store import users as user_store
from sqlalchemy import insert, update

from tests.collector.api.apihelp import LiveServer, _cfg, _commit, _msg, client, seed
from tests.collector.storehelp import engine_for

PASSWORD = "correct horse battery"
THRESHOLDS = {"good_down_mbps": 20.0, "bad_down_mbps": 1.0, "required_down_mbps": 20.0,
              "contract_pct": 80.0, "max_ping_ms": 150.0, "min_uptime_pct": 90.0,
              "fail_after": 3}
#: school -> (isp, link type, contracted down/up, status, week's down/up/ping/uptime)
LINKS = {
    "S01": ("VNPT", "fiber", (50.0, 20.0), "meets", (46.0, 19.0, 12.0, 99.0)),
    "S02": ("Viettel", "fiber", (100.0, 30.0), "improve", (15.0, 6.0, 20.0, 97.0)),
    "S03": ("Viettel", "4g", (20.0, 5.0), "below", (0.6, 0.3, 240.0, 70.0)),
    "S04": ("Bưu điện", "adsl", (None, None), "meets", (25.0, 5.0, 30.0, None)),
    "S05": ("VNPT", "fiber", (40.0, 10.0), "meets", (38.0, 12.0, 15.0, 98.0)),
    # S06: no row (never judged) -> insufficient; S07: no ISP on file
}


def _week(down, up, ping, uptime, days=5):
    return {"date": None, "tests": 12, "down_mbps": down, "up_mbps": up, "ping_ms": ping,
            "uptime_pct": uptime, "intl_ok_pct": 100.0, "gw_ms": 1.0, "dom_ms": 20.0,
            "intl_ms": 90.0, "days": days}


def write_connectivity(engine, now):
    with engine.begin() as conn:
        for code, (isp, lt, (cd, cu), st, week) in LINKS.items():
            conn.execute(update(db.schools).where(db.schools.c.code == code).values(
                isp=isp, link_type=lt, contracted_down_mbps=cd, contracted_up_mbps=cu))
            reasons = []
            if st == "improve":
                # below_contract as the evaluator writes it: the median (Mbit/s) and
                # contract_pct % of the contracted speed (Mbit/s), once per direction
                reasons = [{"code": "down_below_good", "value": 15.0, "limit": 20.0},
                           {"code": "below_contract", "value": 15.0, "limit": 80.0},
                           {"code": "below_contract", "value": 6.0, "limit": 24.0}]
            if st == "below":
                reasons = [{"code": "down_below_bad", "value": 0.6, "limit": 1.0},
                           {"code": "ping_high", "value": 240.0, "limit": 150.0}]
            conn.execute(insert(db.connectivity_schools).values(
                school_code=code, status=st, since=now - 3 * 86400, evaluated_at=now - 60,
                rev=1, detail={"thresholds": THRESHOLDS,
                               "contracted": {"down_mbps": cd, "up_mbps": cu},
                               "day": None, "week": _week(*week),
                               "consecutive_failures": 0,
                               "last_test": {"ts": now - 3600, "ok": True,
                                             "down_mbps": week[0], "up_mbps": week[1],
                                             "ping_ms": week[2], "reason": None,
                                             "device": "d01a"},
                               "reasons": reasons}))
        conn.execute(update(db.schools).where(db.schools.c.code == "S06").values(
            isp="VNPT", link_type="fiber", contracted_down_mbps=30.0))
        # S01's tests: one counted, one failed, one refused, one 100 days ago
        base = {c: None for c in ("lease", "reason", "down_mbps", "up_mbps", "ping_ms",
                                  "jitter_ms", "bytes_rx", "bytes_tx", "server", "isp",
                                  "wired", "refused")}
        base.update(school_code="S01", received_at=now, trigger="slot", mode="full")
        conn.execute(insert(db.link_tests), [
            dict(base, device_id="d01a", seq=10, ts=now - 3600, ok=True, down_mbps=46.0,
                 up_mbps=19.0, ping_ms=12.0, jitter_ms=1.5, bytes_rx=60_000_000,
                 bytes_tx=25_000_000, server="http://127.0.0.1/upload.php", wired=True,
                 lease="L1"),
            dict(base, device_id="d01a", seq=11, ts=now - 7200, ok=False, reason="timeout",
                 bytes_rx=1_000_000, lease="L0"),
            dict(base, device_id="d01b", seq=12, ts=now - 9000, ok=True, down_mbps=9000.0,
                 up_mbps=1.0, ping_ms=1.0, refused="implausible", wired=False),
            dict(base, device_id="d01a", seq=13, ts=now - 100 * 86400, ok=True,
                 down_mbps=40.0, up_mbps=18.0, ping_ms=14.0),
            dict(base, school_code="S02", device_id="d02a", seq=14, ts=now - 86400, ok=True,
                 down_mbps=15.0, up_mbps=6.0, ping_ms=20.0),
        ])
        day = time.strftime("%Y-%m-%d", time.gmtime(now + 7 * 3600))
        conn.execute(insert(db.connectivity_school_days).values(
            school_code="S01", day=day, status="meets", tests=2, down_mbps=46.0,
            up_mbps=19.0, ping_ms=12.0, uptime_pct=None, bytes=86_000_000,
            evaluated_at=now))
        hour = int(now // 3600 * 3600) - 3600
        conn.execute(insert(db.link_probe_hours).values(
            school_code="S01", hour_start=hour, n=24, gw_n=24, gw_ok=24, gw_ms=48.0,
            dns_n=24, dns_ok=24, dns_ms=240.0, dom_n=24, dom_ok=18, dom_ms=360.0,
            intl_n=0, intl_ok=0, intl_ms=0.0))
        school_state.write(conn, "S01", "speedtest.lease", {
            "id": "L1", "device": "d01a", "granted_at": now - 30, "exp": now + 570,
            "server": "", "budget": 10 ** 9, "mode": "full", "trigger": "slot",
            "released_at": None})
        school_state.write(conn, "S01", "speedtest.plan", {
            "day": day, "boot": None, "slots": {"0": now - 7200, "1": now + 4000,
                                                "2": now + 9000}, "done": ["0"]})
        school_state.write(conn, "S01", "speedtest.budget", {
            "month": day[:7], "bytes": 250_000_000, "tests": 5, "limit": 10 ** 9})
        user_store.add_user(conn, "tech", "school_tech", PASSWORD, ["S01"])


def write_router(store, engine, now):
    _commit(store, [_msg("S01", "router.S01", "inventory", 1, now - 100, hostname="router",
                         role="router")])
    with engine.begin() as conn:
        conn.execute(insert(db.device_latest).values(
            device_id="router.S01", kind="router", ts=now - 50, seq=2, received_at=now - 49,
            payload={"v": 1, "ts": now - 50, "seq": 2, "host": "192.168.1.1", "gw_ok": True,
                     "gw_ms": 0.8, "snmp_ok": True, "uptime_s": 86400 * 3, "model": "ER605",
                     "firmware": "2.1", "wan_if": "eth0", "wan_up": True, "wan_mbps": 100,
                     "rx_bps": 12_500_000, "tx_bps": 2_000_000, "rx_util_pct": 12.5,
                     "tx_util_pct": 2.0,
                     "ifs": [{"name": "eth0", "index": 1, "up": True, "mbps": 100}]}))


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


def test_before_any_judgement_every_school_is_insufficient_and_counts_are_null(world):
    _, _, live = world
    c = client(live)
    s = c.get("/api/v1/schools/S01").json()["connectivity"]
    assert s["status"] == "insufficient" and s["label"] == "Không đủ dữ liệu"
    assert [r["code"] for r in s["reasons"]] == ["no_recent_test"]
    assert s["reasons"][0]["text"] == "Không có lần đo tốc độ nào được tính trong 7 ngày qua"
    assert s["lease"]["held"] is False and s["lease"]["next_planned"] is None
    assert s["budget"] is None and s["router"] is None and s["last_test"] is None
    assert s["week"] is None and s["thresholds"] is None
    assert s["contracted"] == {"down_mbps": None, "up_mbps": None}
    b = c.get("/api/v1/summary").json()["below_baseline"]
    assert b["connectivity"] is None and b["connectivity_by_status"] is None
    assert b["connectivity_evaluated"] is False
    assert b["note"] == ("Chưa đánh giá chuẩn ATTT và chuẩn kết nối: bộ đánh giá chưa "
                         "chạy.")
    lst = c.get("/api/v1/schools", params={"baseline": "connectivity"}).json()
    assert lst["total"] == 0
    assert lst["baseline_note"] == "Chưa đánh giá chuẩn kết nối: bộ đánh giá chưa chạy."
    assert {x["connectivity"]["status"] for x in c.get("/api/v1/schools").json()["items"]} \
        == {"insufficient"}
    h = c.get("/api/v1/schools/S01/connectivity").json()
    assert h["tests"] == [] and h["school_days"] == [] and h["hours"] == []
    isps = c.get("/api/v1/connectivity/isps").json()
    assert isps["evaluated"] is False and isps["schools"] == 7
    assert isps["by_isp"] == [dict(isps["by_isp"][0], isp=None, schools=7, tested_7d=0,
                                   down_mbps=None, meets_pct=0.0, below_contract_pct=None)]


def test_school_status_reasons_lease_budget_router(world):
    engine, store, live = world
    now = time.time()
    write_connectivity(engine, now)
    write_router(store, engine, now)
    c = client(live)
    s = c.get("/api/v1/schools/S02").json()
    k = s["connectivity"]
    assert k["status"] == "improve" and k["label"] == "Cần cải thiện"
    assert k["since"].endswith("Z") and k["since_local"].endswith("+07:00")
    assert [r["text"] for r in k["reasons"]] == [
        "Tốc độ tải xuống 15 Mbit/s, chưa đạt 20 Mbit/s",
        "Tải xuống 15 Mbit/s, dưới 80 Mbit/s (80 % tốc độ hợp đồng 100 Mbit/s)",
        "Tải lên 6 Mbit/s, dưới 24 Mbit/s (80 % tốc độ hợp đồng 30 Mbit/s)"]
    assert [r.get("dir") for r in k["reasons"]] == [None, "down", "up"]
    # what S02 did pass: its latency, uptime and the number of tests, not its download
    assert [e["code"] for e in k["evidence"]] == ["ping", "uptime", "tests"]
    en2 = c.get("/api/v1/schools/S02", params={"lang": "en"}).json()["connectivity"]
    assert en2["reasons"][2]["text"] == ("Upload 6 Mbit/s, below 24 Mbit/s (80 % of the "
                                         "contracted 30 Mbit/s)")
    assert k["thresholds"]["good_down_mbps"] == 20.0 and k["week"]["down_mbps"] == 15.0
    assert s["below_baseline"]["connectivity"] is True
    en = c.get("/api/v1/schools/S03", params={"lang": "en"}).json()["connectivity"]
    assert en["label"] == "Fails the baseline"
    assert en["reasons"][0]["text"] == "Download 0.6 Mbit/s, below the minimum of 1 Mbit/s"
    vi = c.get("/api/v1/schools/S03").json()["connectivity"]["reasons"][0]["text"]
    assert vi == "Tốc độ tải xuống 0,6 Mbit/s, dưới mức tối thiểu 1 Mbit/s"

    one = c.get("/api/v1/schools/S01").json()
    k = one["connectivity"]
    assert k["status"] == "meets" and k["reasons"] == [] and k["contracted"]["down_mbps"] == 50
    # a Đạt school shows why: each check passed with its figure and threshold
    assert [e["text"] for e in k["evidence"]] == [
        "Trung vị tải xuống 46 Mbit/s ≥ 20 Mbit/s",
        "Tải xuống bằng 92 % tốc độ hợp đồng ≥ 80 %",
        "Độ trễ trung vị 12 ms ≤ 150 ms",
        "Có kết nối 99 % giờ học ≥ 90 %",
        "12 lần đo trong 5 ngày học gần nhất"]
    assert k["lease"]["held"] is True and k["lease"]["holder"] == "d01a"
    assert k["lease"]["expires"].endswith("Z") and k["lease"]["next_planned_local"]
    assert k["budget"]["used"] == 250_000_000 and k["budget"]["used_pct"] == 25.0
    assert k["budget"]["tests"] == 5
    r = k["router"]
    assert r["id"] == "router.S01" and r["up"] is True and r["uptime_s"] == 3 * 86400
    assert (r["rx_mbps"], r["tx_mbps"], r["rx_util_pct"], r["model"]) == (12.5, 2.0, 12.5,
                                                                         "ER605")
    assert r["interfaces"] == [{"name": "eth0", "index": 1, "up": True, "mbps": 100}]
    assert k["last_test"]["ts"].endswith("Z") and k["last_test"]["device"] == "d01a"
    # S06 has no row: insufficient, whatever its contract says
    s6 = c.get("/api/v1/schools/S06").json()["connectivity"]
    assert s6["status"] == "insufficient" and s6["contracted"]["down_mbps"] == 30.0
    assert c.get("/api/v1/schools/S06").json()["below_baseline"]["connectivity"] is None


def test_history_tests_days_hours_honest_about_missing_figures(world):
    engine, store, live = world
    now = time.time()
    write_connectivity(engine, now)
    c = client(live)
    h = c.get("/api/v1/schools/S01/connectivity").json()
    assert h["days"] == 7 and h["from"].endswith("Z")
    tests = h["tests"]
    assert [t["device"] for t in tests] == ["d01b", "d01a", "d01a"]  # oldest first
    refused, failed, ok = tests
    assert refused["refused"] == "implausible" and refused["counted"] is False
    assert failed["ok"] is False and failed["reason"] == "timeout"
    assert failed["reason_label"] == "quá thời gian" and failed["refused_label"] is None
    assert refused["refused_label"] == "implausible"  # a code without words reads as itself
    assert failed["down_mbps"] is None and failed["bytes"] == 1_000_000
    assert ok["bytes"] == 85_000_000 and ok["wired"] is True and ok["ts"].endswith("Z")
    assert refused["bytes"] is None  # nothing reported, not 0
    assert h["school_days"][0]["uptime_pct"] is None
    assert h["school_days"][0]["status_label"] == "Đạt"
    hr = h["hours"][0]
    assert (hr["n"], hr["uptime_pct"], hr["gw_ms"], hr["dom_ms"]) == (24, 75.0, 2.0, 20.0)
    assert hr["intl_ms"] is None and hr["intl_ok_pct"] is None and hr["hour"].endswith("Z")
    assert h["thresholds"]["bad_down_mbps"] == 1.0
    assert h["contracted"] == {"down_mbps": 50.0, "up_mbps": 20.0}
    assert len(c.get("/api/v1/schools/S01/connectivity", params={"days": 90}).json()[
        "tests"]) == 3
    long = c.get("/api/v1/schools/S01/connectivity", params={"days": "30"}).json()
    assert len(long["tests"]) == 3
    assert c.get("/api/v1/schools/S01/connectivity", params={"days": 12}).status_code == 422
    assert c.get("/api/v1/schools/NOPE/connectivity").status_code == 404


def test_list_filter_sort_and_counts(world):
    engine, store, live = world
    now = time.time()
    write_connectivity(engine, now)
    c = client(live)
    below = c.get("/api/v1/schools", params={"baseline": "connectivity"}).json()
    assert {x["code"]: x["connectivity"]["status"] for x in below["items"]} == {
        "S02": "improve", "S03": "below"}
    assert "baseline_note" not in below
    assert below["items"][0]["connectivity"]["label"] in ("Cần cải thiện", "Không đạt")
    ins = c.get("/api/v1/schools", params={"connectivity": "insufficient"}).json()
    assert sorted(x["code"] for x in ins["items"]) == ["S06", "S07"]
    assert c.get("/api/v1/schools", params={"connectivity": "meets"}).json()["total"] == 3
    assert c.get("/api/v1/schools", params={"connectivity": "bad"}).status_code == 422
    order = [x["connectivity"]["status"] for x in c.get("/api/v1/schools", params={
        "sort": "connectivity"}).json()["items"]]
    assert order == ["below", "improve", "insufficient", "insufficient", "meets", "meets",
                     "meets"]
    back = [x["connectivity"]["status"] for x in c.get("/api/v1/schools", params={
        "sort": "-connectivity"}).json()["items"]]
    assert back == list(reversed(order))
    # the ATTT baseline values still work beside it
    assert c.get("/api/v1/schools", params={"baseline": "attt"}).status_code == 200

    b = c.get("/api/v1/summary").json()["below_baseline"]
    assert b["connectivity"] == 2 and b["connectivity_evaluated"] is True
    assert b["connectivity_by_status"] == {"below": 1, "improve": 1, "insufficient": 2,
                                           "meets": 3}
    assert b["connectivity_labels"]["improve"] == "Cần cải thiện"
    # the note names what is not evaluated yet: ATTT here, never connectivity once it is
    assert b["evaluated"] is False and b["note"] == "Chưa đánh giá ATTT: bộ đánh giá chưa chạy."
    assert "kết nối" not in b["note"] and "phiên bản" not in b["note"]
    ov = c.get("/api/v1/overview").json()
    assert ov["below_baseline"]["note"] == b["note"]
    assert ov["below_baseline"]["connectivity"] == 2
    assert ov["links"]["below_baseline_connectivity"] == {
        "path": "/api/v1/schools", "params": {"baseline": "connectivity"}}
    areas = {a["name"]: a for a in ov["areas"]}
    assert areas["Bát Xát"]["connectivity_below_baseline"] == 2
    assert areas["Sa Pa"]["connectivity_by_status"] == {"below": 0, "improve": 0,
                                                        "insufficient": 2, "meets": 1}
    org = c.get("/api/v1/org").json()
    assert org["below_baseline"]["note"] == b["note"]
    assert org["below_baseline"]["connectivity"] == 2
    assert org["counts"]["connectivity_below_baseline"] == 2
    assert org["counts"]["connectivity_by_status"]["meets"] == 3


def test_isp_comparison(world):
    engine, store, live = world
    now = time.time()
    write_connectivity(engine, now)
    c = client(live)
    body = c.get("/api/v1/connectivity/isps").json()
    assert body["evaluated"] is True and body["schools"] == 7
    by = {g["isp"]: g for g in body["by_isp"]}
    # Vietnamese order ("Bưu điện" before "VNPT", "Viettel"), the unknown ISP last
    assert [g["isp"] for g in body["by_isp"]] == ["Bưu điện", "Viettel", "VNPT", None]
    v = by["VNPT"]  # S01, S05 meet; S06 never judged
    assert (v["schools"], v["tested_7d"], v["down_mbps"], v["meets_pct"]) == (3, 1, 42.0,
                                                                              66.7)
    assert v["below_contract_pct"] == 0.0 and v["with_contract"] == 2
    vt = by["Viettel"]  # S02 at 15 % of 100, S03 at 3 % of 20
    assert vt["below_contract_pct"] == 100.0 and vt["down_mbps"] == 7.8
    assert vt["tested_7d"] == 1 and vt["by_status"]["below"] == 1
    bd = by["Bưu điện"]  # no contract on file, no uptime measured: null, not 0
    assert bd["below_contract_pct"] is None and bd["uptime_pct"] is None
    assert by[None]["down_mbps"] is None and by[None]["meets_pct"] == 0.0
    assert {g["link_type"] for g in body["by_link_type"]} == {"fiber", "4g", "adsl", None}
    assert body["by_status"] == {"below": 1, "improve": 1, "insufficient": 2, "meets": 3}
    sapa = c.get("/api/v1/connectivity/isps", params={"area": "sa pa"}).json()
    assert sapa["schools"] == 3


def test_scope_a_school_technician_sees_only_their_school(world):
    engine, store, live = world
    now = time.time()
    write_connectivity(engine, now)
    with engine.begin() as conn:
        _, tok = user_store.create_token(conn, "tech")
    c = client(live, token=tok)
    assert c.get("/api/v1/schools/S01/connectivity").status_code == 200
    assert c.get("/api/v1/schools/S02/connectivity").status_code == 404
    assert c.get("/api/v1/schools/S02").status_code == 404
    assert [x["code"] for x in c.get("/api/v1/schools", params={
        "connectivity": "meets"}).json()["items"]] == ["S01"]
    isps = c.get("/api/v1/connectivity/isps").json()
    assert isps["schools"] == 1 and [g["isp"] for g in isps["by_isp"]] == ["VNPT"]
    assert c.get("/api/v1/summary").json()["below_baseline"]["connectivity"] == 0
