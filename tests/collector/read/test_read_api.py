"""The read side's routes through the real app (uvicorn, httpx) on a real state store,
SQLite and PostgreSQL alike (the collation and the search run in both): the overview and
the lists its counts link to, the school list's sorts, filters and search (diacritics,
abbreviations), the school page (router down is not one PC off), the device list's filters,
the device page and its series, hostile names returned as data, huge pages, unknown sorts."""
import time
from typing import Any, Dict, Iterator, List

import httpx
import pytest
from schoolmon.collector.api import create_app
from schoolmon.collector.api.deps import Principal, get_principal
from schoolmon.collector.store import StateStore, registry
from schoolmon.collector.store import schema as db
from schoolmon.collector.text import parse_time

from tests.collector.api.apihelp import PROVINCE, LiveServer, _cfg, client
from tests.collector.storehelp import received
from tests.e2e_help import fresh_database

DAY = 86400
HOSTILE_NAME = '<script>alert("x")</script> Trường "X" & co'
HOSTILE_ROOM = "<img src=x onerror=alert(1)>"
SCHOOLS = [
    ("K1", "Trường Tiểu học Kim Đồng", "TH", "Bát Xát", "VNPT", "fiber"),
    ("K2", "Trường Mầm non Kim Đồng", "MN", "Bảo Thắng", "Viettel", "4g"),
    ("L1", "Trường THCS Lê Lợi", "THCS", "Bảo Thắng", "VNPT", "fiber"),
    ("X1", HOSTILE_NAME, "THPT", "Sa Pa", None, None),
    ("E1", "Trường Tiểu học Ánh Dương", "TH", "Sa Pa", "Viettel", "fiber"),  # no devices
]
#: device → (school, role, OS version, room)
DEVICES = {
    "k1-r": ("K1", "router", None, ""),
    "k1-pc1": ("K1", "lab", "7", "Phòng Tin học 1"),
    "k1-pc2": ("K1", "lab", "10", "Phòng Tin học 1"),  # offline for 5 days
    "k2-r": ("K2", "router", None, ""),  # router down, PC on
    "k2-pc1": ("K2", "office", "10", "Văn phòng"),
    "l1-pc1": ("L1", "office", "11", "Văn phòng"),
    "x1-pc1": ("X1", "lab", "10", HOSTILE_ROOM),
}
ONLINE = ("k1-r", "k1-pc1", "k2-pc1", "l1-pc1", "x1-pc1")


def _seed(engine, now: float) -> None:
    db.create_all(engine)
    registry.add_schools(engine, [
        {"code": c, "name": n, "level": lv, "area": a, "province": PROVINCE, "isp": isp,
         "link_type": link, "contact_name": "Cô Lan" if c == "K1" else None,
         "contact_phone": "0912345678" if c == "K1" else None}
        for c, n, lv, a, isp, link in SCHOOLS])
    store = StateStore(engine)

    def commit(batch: List[Any]) -> None:
        store.commit(store.prepare(batch))

    old = now - 5 * DAY
    seq = {d: 1 for d in DEVICES}
    inv = []
    for d, (school, role, ver, room) in DEVICES.items():
        at = old if d == "k1-pc2" else now - 3 * 3600
        fields: Dict[str, Any] = {"hostname": d.upper(), "role": role, "room": room or None}
        fields["os_name"] = "RouterOS" if ver is None else "Windows"
        if ver:
            fields["os_version"] = ver
        inv.append(received(school, d, "inventory", 1, at, received_at=at, **fields))
    commit(inv)
    # two hours of health from every PC that is on, one message every five minutes
    batch = []
    for d in ONLINE:
        school = DEVICES[d][0]
        for i in range(24):
            seq[d] += 1
            ts = now - 2 * 3600 + 300 * i
            batch.append(received(school, d, "health", seq[d], ts, received_at=ts + 0.5,
                                  cpu_pct=20.0, mem_pct=40.0,
                                  disks=[{"mnt": "C:", "pct": 95.0 if d == "k1-pc1" else 50.0,
                                          "free": 10 ** 9}]))
    commit(batch)
    commit([received(DEVICES[d][0], d, "status", 0, now - 10, received_at=now - 10,
                     state="online", hb=60) for d in ONLINE])
    # k1-pc2 was on five days ago, then shut down; k2-r went away an hour ago
    commit([received("K1", "k1-pc2", "status", 0, old, received_at=old, state="online", hb=60)])
    commit([received("K1", "k1-pc2", "status", 0, old + 60, received_at=old + 60,
                     state="offline", reason="shutdown")])
    commit([received("K2", "k2-r", "status", 0, now - 3 * 3600, received_at=now - 3 * 3600,
                     state="online", hb=60)])
    commit([received("K2", "k2-r", "status", 0, now - 3600, received_at=now - 3600,
                     state="offline", reason="lost")])
    registry.approve_device(engine, "k1-pc1")
    store.maintain(now)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory) -> Iterator[Any]:
    if request.param == "sqlite":
        engine = db.make_engine("sqlite:///%s" % (tmp_path_factory.mktemp("read") / "s.db"))
    else:
        engine = db.make_engine(fresh_database(request.getfixturevalue("postgres")))
    _seed(engine, time.time())
    app = create_app(engine, _cfg())
    srv = LiveServer(app)
    yield app, srv
    srv.stop()
    engine.dispose()


@pytest.fixture
def c(served) -> Iterator[httpx.Client]:
    app, srv = served
    app.dependency_overrides.clear()
    with client(srv) as cl:
        yield cl
    app.dependency_overrides.clear()


def codes(c: httpx.Client, **params: Any) -> List[str]:
    r = c.get("/api/v1/schools", params=params)
    assert r.status_code == 200, r.text
    return [x["code"] for x in r.json()["items"]]


def device_ids(c: httpx.Client, **params: Any) -> List[str]:
    r = c.get("/api/v1/devices", params=params)
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()["items"]]


# --- school list: search -------------------------------------------------------------------

@pytest.mark.parametrize("q, want", [
    ("TH Kim Đồng", ["K1"]),
    ("th kim dong", ["K1"]),
    ("mn kim dong", ["K2"]),
    ("MN Kim Đồng", ["K2"]),
    ("truong kim dong", ["K1", "K2"]),
    ("Trường Kim Đồng", ["K1", "K2"]),
    ("kim dong", ["K1", "K2"]),
    ("KIM ĐỒNG", ["K1", "K2"]),
    ("tieu hoc", ["E1", "K1"]),
    ("THCS Lê Lợi", ["L1"]),
    ("thcs le loi", ["L1"]),
    ("k2", ["K2"]),
    ("anh duong", ["E1"]),
    ("thpt kim dong", []),
    ("kim dong xyz", []),
])
def test_search_by_code_name_without_diacritics_and_abbreviations(c, q, want):
    assert sorted(codes(c, q=q)) == want


def test_area_filter_folds_diacritics_and_includes_every_school(c):
    assert codes(c, area="bat xat") == ["K1"]
    assert codes(c, area="Bát Xát") == ["K1"]
    assert sorted(codes(c, area="BAO THANG")) == ["K2", "L1"]
    assert codes(c, area="nowhere") == []


# --- school list: sorts and filters --------------------------------------------------------

def test_sorts_are_vietnamese(c):
    by_area = c.get("/api/v1/schools", params={"sort": "area"}).json()["items"]
    areas = [x["area"]["name"] for x in by_area]
    assert areas == ["Bảo Thắng", "Bảo Thắng", "Bát Xát", "Sa Pa", "Sa Pa"]
    assert [x["area"]["name"] for x in c.get(
        "/api/v1/schools", params={"sort": "-area"}).json()["items"]][:2] == ["Sa Pa", "Sa Pa"]
    named = [n for n in (x["name"] for x in c.get(
        "/api/v1/schools", params={"sort": "name"}).json()["items"]) if n.startswith("Tr")]
    assert named == ["Trường Mầm non Kim Đồng", "Trường THCS Lê Lợi",
                     "Trường Tiểu học Ánh Dương", "Trường Tiểu học Kim Đồng"]
    assert codes(c, sort="code") == ["E1", "K1", "K2", "L1", "X1"]
    assert codes(c, sort="-code") == ["X1", "L1", "K2", "K1", "E1"]


def test_status_sort_offline_count_and_online_pct(c):
    items = c.get("/api/v1/schools").json()["items"]
    assert [x["status"] for x in items] == ["partial", "partial", "online", "online",
                                            "no_devices"]
    by_code = {x["code"]: x for x in items}
    assert by_code["K1"]["offline_count"] == 1 and by_code["K1"]["online_pct"] == 66.7
    assert by_code["E1"]["offline_count"] == 0 and by_code["E1"]["online_pct"] is None
    worst = c.get("/api/v1/schools", params={"sort": "-offline"}).json()["items"]
    assert [x["offline_count"] for x in worst] == [1, 1, 0, 0, 0]
    pct = c.get("/api/v1/schools", params={"sort": "online_pct"}).json()["items"]
    assert [x["online_pct"] for x in pct] == [50.0, 66.7, 100.0, 100.0, None]
    pct = c.get("/api/v1/schools", params={"sort": "-online_pct"}).json()["items"]
    assert [x["online_pct"] for x in pct] == [100.0, 100.0, 66.7, 50.0, None]


@pytest.mark.parametrize("params, want", [
    ({"level": "TH"}, ["E1", "K1"]),
    ({"level": "MN"}, ["K2"]),
    ({"isp": "vnpt"}, ["K1", "L1"]),
    ({"isp": "VIETTEL"}, ["E1", "K2"]),
    ({"link_type": "4G"}, ["K2"]),
    ({"status": "no_devices"}, ["E1"]),
    ({"status": "partial"}, ["K1", "K2"]),
    ({"status": "online", "level": "THCS"}, ["L1"]),
    ({"isp": "vnpt", "area": "bao thang"}, ["L1"]),
])
def test_school_filters(c, params, want):
    assert sorted(codes(c, **params)) == want


@pytest.mark.parametrize("path", ["/api/v1/schools", "/api/v1/devices"])
def test_unknown_sort_and_huge_pages_are_localized_422(c, path):
    r = c.get(path, params={"sort": "password"})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid_request" and body["message"] == "Tham số không hợp lệ."
    assert body["errors"][0]["loc"] == ["query", "sort"]
    assert body["errors"][0]["msg"] == "Không phải một trong các giá trị cho phép."
    en = c.get(path, params={"sort": "password", "lang": "en"}).json()
    assert en["message"] == "Invalid parameters."
    assert en["errors"][0]["msg"] == "Input is not one of the allowed values"
    for size in ("501", "100000000", "99999999999999999999999"):
        r = c.get(path, params={"per_page": size})
        assert r.status_code == 422, size
        assert r.json()["errors"][0]["loc"] == ["query", "per_page"]
    assert c.get(path, params={"per_page": 500}).status_code == 200


def test_hostile_names_come_back_as_data(c):
    r = c.get("/api/v1/schools", params={"q": "<script>"})
    assert r.headers["content-type"].startswith("application/json")
    assert [x["name"] for x in r.json()["items"]] == [HOSTILE_NAME]
    page = c.get("/api/v1/schools/X1").json()
    assert page["name"] == HOSTILE_NAME
    assert page["devices"][0]["room"] == HOSTILE_ROOM
    assert c.get("/api/v1/devices", params={"school": "X1"}).json()["items"][0]["room"] == \
        HOSTILE_ROOM


# --- school page ----------------------------------------------------------------------------

def test_router_down_is_not_one_pc_off(c):
    k2 = c.get("/api/v1/schools/K2").json()
    assert k2["condition"] == "router_down"
    assert k2["condition_label"] == "mất kết nối Internet/router"
    assert k2["router"]["id"] == "k2-r" and k2["router"]["status"] == "offline"
    assert k2["router"]["offline_since"] is not None
    assert k2["devices"][0]["role"] == "router"  # the router comes first
    k1 = c.get("/api/v1/schools/K1", params={"lang": "en"}).json()
    assert k1["condition"] == "some_devices_off" and k1["condition_label"] == "some devices off"
    assert k1["router"]["status"] == "online"
    assert c.get("/api/v1/schools/L1").json()["condition"] == "all_online"
    assert c.get("/api/v1/schools/E1").json()["condition"] == "no_devices"


def test_school_page_has_devices_contacts_health_and_a_week_by_hour(c):
    k1 = c.get("/api/v1/schools/K1").json()
    assert k1["contacts"] == [{"name": "Cô Lan", "phone": "0912345678", "email": None}]
    devs = {d["id"]: d for d in k1["devices"]}
    pc1, pc2 = devs["k1-pc1"], devs["k1-pc2"]
    assert pc1["room"] == "Phòng Tin học 1" and pc1["role_label"] == "máy phòng tin học"
    assert pc1["os"] == "Windows 7" and pc1["health"]["disk_pct"] == 95.0
    assert pc1["health"]["cpu_pct"] == 20.0 and pc1["health"]["mem_pct"] == 40.0
    assert pc1["offline_since"] is None and pc1["last_seen"] is not None
    assert pc2["status"] == "offline" and pc2["offline_since"] is not None
    assert pc2["offline_since_local"].endswith("+07:00")
    assert pc2["offline_reason_label"] == "tắt máy"
    hourly = k1["online_hourly"]
    assert len(hourly["points"]) == 168 and hourly["resolution"] == 3600
    assert max(p["n"] for p in hourly["points"]) == 2  # the router and k1-pc1; k1-pc2 is off
    assert hourly["points"][0]["n"] == 0


# --- device list ----------------------------------------------------------------------------

@pytest.mark.parametrize("params, want", [
    ({"os": "windows 7"}, ["k1-pc1"]),
    ({"os": "Windows 1"}, ["k1-pc2", "k2-pc1", "l1-pc1", "x1-pc1"]),
    ({"disk_over": 90}, ["k1-pc1"]),
    ({"offline_days": 3}, ["k1-pc2"]),
    ({"offline_days": 10}, []),
    ({"status": "offline"}, ["k1-pc2", "k2-r"]),
    ({"role": "router"}, ["k1-r", "k2-r"]),
    ({"role": "router", "status": "offline"}, ["k2-r"]),
    ({"school": "K1"}, ["k1-pc1", "k1-pc2", "k1-r"]),
    ({"area": "bao thang"}, ["k2-pc1", "k2-r", "l1-pc1"]),
    ({"state": "active"}, ["k1-pc1"]),
    ({"seen_hours": 24}, ["k1-pc1", "k1-r", "k2-pc1", "k2-r", "l1-pc1", "x1-pc1"]),
    ({"q": "K2-"}, ["k2-pc1", "k2-r"]),
    ({"school": "NOPE"}, []),
])
def test_device_filters(c, params, want):
    assert sorted(device_ids(c, **params)) == want


def test_device_sorts_and_paging(c):
    assert device_ids(c)[:2] == ["k1-pc2", "k2-r"]  # offline first
    seen = device_ids(c, sort="-last_seen")
    assert seen[-1] == "k1-pc2"
    assert device_ids(c, sort="hostname") == sorted(DEVICES, key=str.upper)
    first = c.get("/api/v1/devices", params={"per_page": 3, "sort": "id"}).json()
    second = c.get("/api/v1/devices", params={"per_page": 3, "page": 2, "sort": "id"}).json()
    assert first["total"] == 7 and first["pages"] == 3
    assert [x["id"] for x in first["items"] + second["items"]] == sorted(DEVICES)[:6]
    item = first["items"][0]
    assert item["school"]["code"] and item["area"]["name"]


# --- device page and series -----------------------------------------------------------------

def test_device_page_health_counts_and_history(c):
    d = c.get("/api/v1/devices/k1-pc2").json()
    assert d["status"] == "offline" and d["status_since"] and d["last_seen"]
    assert [h["event"] for h in d["history"]][:2] == ["device_offline", "device_online"]
    assert d["history"][0]["reason"] == "shutdown"
    assert d["history"][0]["reason_label"] == "tắt máy"
    on = c.get("/api/v1/devices/k1-pc1", params={"lang": "en"}).json()
    assert on["health"]["disk_pct"] == 95.0
    assert on["messages"]["received"] >= 24 and on["messages"]["lost"] == 0
    assert on["series_labels"]["temp"] == {"label": "Highest CPU temperature", "unit": "°C"}
    assert "inventory" in on["latest"]


def test_series_30_days_and_too_long(c):
    now = int(time.time())
    r = c.get("/api/v1/devices/k1-pc1/series",
              params={"metric": "cpu_pct", "from": now - 30 * DAY, "to": now})
    assert r.status_code == 200 and r.json()["resolution"] == 3600
    assert r.json()["points"] and r.json()["unit"] == "%"
    assert r.json()["label"] == "CPU đang dùng"
    day = c.get("/api/v1/devices/k1-pc1/series", params={"metric": "disk_pct"}).json()
    assert day["resolution"] == 300 and len(day["points"]) >= 20
    long = c.get("/api/v1/devices/k1-pc1/series",
                 params={"metric": "cpu_pct", "from": now - 500 * DAY, "to": now})
    assert long.status_code == 400 and long.json()["error"] == "range_too_long"
    assert "quá dài" in long.json()["message"]
    en = c.get("/api/v1/devices/k1-pc1/series",
               params={"metric": "cpu_pct", "from": now - 500 * DAY, "to": now, "lang": "en"})
    assert "too long" in en.json()["message"]
    back = c.get("/api/v1/devices/k1-pc1/series",
                 params={"metric": "cpu_pct", "from": now, "to": now - DAY})
    assert back.json()["error"] == "bad_range"


# --- overview -------------------------------------------------------------------------------

def _follow(c: httpx.Client, link: Dict[str, Any]) -> int:
    r = c.get(link["path"], params=link["params"])
    assert r.status_code == 200, (link, r.text)
    return int(r.json()["total"])


def test_overview_cards_add_up_and_link_to_what_they_count(c):
    o = c.get("/api/v1/overview").json()
    sch, dev, links = o["schools"], o["devices"], o["links"]
    assert sch["total"] == 5 == sum(sch["by_status"].values())
    assert sch["by_status"]["no_devices"] == 1
    assert _follow(c, links["schools"]) == sch["total"]
    for status, n in sch["by_status"].items():
        assert _follow(c, links["schools_by_status"][status]) == n, status
    assert _follow(c, links["devices"]) == dev["total"] == 7
    for status, n in dev["by_status"].items():
        assert _follow(c, links["devices_by_status"][status]) == n, status
    for state, n in dev["by_state"].items():
        assert _follow(c, links["devices_by_state"][state]) == n, state
    for role, n in dev["by_role"].items():
        assert _follow(c, links["devices_by_role"][role]) == n, role
    assert _follow(c, links["seen_24h"]) == dev["seen_24h"] == 6


def test_overview_areas_worst_schools_and_trend(c):
    o = c.get("/api/v1/overview").json()
    areas = o["areas"]
    assert [a["name"] for a in areas] == ["Bảo Thắng", "Bát Xát", "Sa Pa"]
    assert [a["online_pct"] for a in areas] == [66.7, 66.7, 100.0]
    assert sum(a["schools"] for a in areas) == o["schools"]["total"]
    for a in areas:
        assert _follow(c, a["links"]["schools"]) == a["schools"]
        assert _follow(c, a["links"]["devices"]) == a["devices"]
        assert _follow(c, a["links"]["devices_offline"]) == a["offline"]
        assert _follow(c, a["links"]["schools_offline"]) == a["schools_offline"]
    assert [w["code"] for w in o["worst_schools"]] == ["K2", "K1"]
    assert o["worst_schools"][0]["link"]["path"] == "/api/v1/schools/K2"
    points = o["trend"]["points"]
    assert len(points) == 30 and points[0]["n"] == 0
    # today: devices heard since local midnight (five were heard seconds ago, k2-r 3 h ago)
    midnight = parse_time(points[-1]["ts"]).timestamp()
    assert points[-1]["n"] == 5 + (midnight <= time.time() - 3 * 3600)
    # finished days from the hourly rollups: the health of two hours ago, if yesterday
    if midnight > time.time() - 2 * 3600:
        assert points[-2]["n"] == 5
    assert o["field_labels"]["last_seen"] == "Báo về lần cuối"


# --- a school technician's scope ------------------------------------------------------------

def test_one_school_scope_sees_only_that_school(served, c):
    app, _ = served
    app.dependency_overrides[get_principal] = lambda: Principal(
        "tech", "read", frozenset({"school:K1"}))
    o = c.get("/api/v1/overview").json()
    assert o["schools"]["total"] == 1 and o["devices"]["total"] == 3
    assert [a["name"] for a in o["areas"]] == ["Bát Xát"]
    assert [w["code"] for w in o["worst_schools"]] == ["K1"]
    assert o["trend"]["points"][-1]["n"] == 2  # its router and one PC heard today
    assert codes(c) == ["K1"] and codes(c, q="kim dong") == ["K1"]
    assert sorted(device_ids(c)) == ["k1-pc1", "k1-pc2", "k1-r"]
    assert device_ids(c, school="K2") == [] and device_ids(c, area="bao thang") == []
    for path in ("/api/v1/schools/K2", "/api/v1/devices/k2-r",
                 "/api/v1/devices/k2-pc1/series?metric=cpu_pct"):
        assert c.get(path).status_code == 404, path
