"""Đo ngay: ``POST /api/v1/schools/{code}/speedtest`` over real HTTP (uvicorn on a loopback
port) on a real SQLite and PostgreSQL store: each role (202 / 403 / 404), CSRF for sessions,
409 while a lease is held (with when it ends), on a spent data budget and with no device
online, 429 past ``connectivity.manual_per_hour``, the audit rows, Vietnamese and English.
The grants go to a recording ``send`` here; test_speedtest_now_broker.py sends them through
a real broker to real agent Transports."""
import concurrent.futures
import threading
import time
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Tuple

import httpx
import pytest
from schoolmon.collector.api import create_app
from schoolmon.collector.connectivity import leases, manual
from schoolmon.collector.connectivity.leases import LEASE_KEY, Settings
from schoolmon.collector.connectivity.scheduler import Scheduler
from schoolmon.collector.metrics import IngestMetrics, Registry
from schoolmon.collector.store import school_state
from schoolmon.collector.store import users as user_store
from schoolmon.collector.store.schema import audit_log, devices, link_tests, schools
from sqlalchemy import select, update

from tests.collector.api.apihelp import ADMIN, READ, LiveServer, _cfg, seed
from tests.collector.storehelp import engine_for

PASSWORD = "correct horse battery"
USERS = {"boss": ("so_admin", []), "viewer": ("so_viewer", []),
         "officer": ("area_officer", ["lao-cai/bat-xat"]), "tech": ("school_tech", ["S01"])}
PER_HOUR = 3


class World:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.store = seed(engine)
        with engine.begin() as conn:
            for name, (role, units) in USERS.items():
                user_store.add_user(conn, name, role, PASSWORD, units)
            # S01's two PCs online and approved; S03's only PC is offline
            conn.execute(update(devices).where(devices.c.school_code.in_(["S01", "S03"]))
                         .values(state="active"))
            conn.execute(update(schools).where(schools.c.code == "S01").values(
                link_type="fiber", contracted_down_mbps=20.0, contracted_up_mbps=5.0))
        self.sent: List[Tuple[str, str, Dict[str, Any]]] = []
        self.metrics = IngestMetrics(Registry())
        self.scheduler = Scheduler(engine, Settings(server="http://so.example/upload.php"),
                                   ["08:00-12:00"], 900, self._send, self.metrics)
        cfg = _cfg()
        cfg.connectivity = SimpleNamespace(manual_per_hour=PER_HOUR)
        self.app = create_app(self.store, cfg, scheduler=self.scheduler)
        self.live = LiveServer(self.app)

    def _send(self, school: str, device: str, fields: Dict[str, Any], ts: float) -> bool:
        self.sent.append((school, device, fields))
        return True

    def client(self, token: str = "", **headers: str) -> httpx.Client:
        if token:
            headers["Authorization"] = "Bearer " + token
        return httpx.Client(base_url=self.live.url, headers=headers, timeout=20)

    def token(self, name: str) -> httpx.Client:
        with self.engine.begin() as conn:
            _, tok = user_store.create_token(conn, name)
        return self.client(tok)

    def login(self, name: str) -> Tuple[httpx.Client, str]:
        c = self.client()
        r = c.post("/api/v1/session", json={"name": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return c, r.json()["csrf_token"]

    def audit(self) -> List[Tuple[str, str, Any, Any]]:
        with self.engine.connect() as conn:
            return [(r.actor, r.action, r.target, r.detail) for r in conn.execute(
                select(audit_log).where(audit_log.c.action == "speedtest_request")
                .order_by(audit_log.c.id))]

    def lease(self, school: str = "S01") -> Any:
        with self.engine.connect() as conn:
            return school_state.read(conn, school, LEASE_KEY).value

    def give_back(self, school: str = "S01") -> None:
        lease = self.lease(school)
        with self.engine.begin() as conn:
            assert leases.release(conn, school, lease["id"], lease["device"], time.time())


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path) -> Iterator[World]:
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    for engine in engine_for(request.param, tmp_path, postgres):
        w = World(engine)
        try:
            yield w
        finally:
            w.live.stop()


def test_roles_lease_budget_device_and_limit(world):
    w = world
    path = "/api/v1/schools/%s/speedtest"
    # a viewer may not (403); outside one's units and unknown schools are 404
    assert w.client(READ).post(path % "S01").status_code == 403
    assert w.token("viewer").post(path % "S01").json()["error"] == "forbidden_role"
    tech = w.token("tech")
    assert tech.post(path % "S05").status_code == 404
    assert w.token("officer").post(path % "S05").status_code == 404
    assert w.client(ADMIN).post(path % "NOPE").status_code == 404
    assert w.sent == []

    # a session needs its CSRF token
    session, csrf = w.login("tech")
    r = session.post(path % "S01")
    assert r.status_code == 403 and r.json()["error"] == "csrf_invalid"
    r = session.post(path % "S01", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 202, r.text
    body = r.json()
    lease = body["lease"]
    assert lease["device"] in ("d01a", "d01b") and lease["trigger"] == "command"
    assert body["message"] == "Đang đo trên máy pc-%s, kết quả trong khoảng 3 phút." % \
        lease["device"]
    assert lease["device_name"] == "pc-" + lease["device"] and body["minutes"] == 3
    assert lease["expires"].endswith("Z") and lease["expires_local"].endswith("+07:00")
    assert body["sent"] is True
    (school, device, fields), = w.sent
    assert (school, device) == ("S01", lease["device"])
    assert fields["id"] == lease["id"] and fields["trigger"] == "command"
    assert fields["server"] == "http://so.example/upload.php" and fields["mode"] == "full"
    # the school page shows the lease held, with its id (the page waits for it to end)
    k = w.client(ADMIN).get("/api/v1/schools/S01").json()["connectivity"]["lease"]
    assert k["held"] is True and k["id"] == lease["id"] and k["trigger"] == "command"

    # one lease per school: 409 with the lease held and when it ends
    r = w.client(ADMIN).post(path % "S01", params={"lang": "en"})
    assert r.status_code == 409, r.text
    b = r.json()
    assert b["error"] == "speedtest_held" and b["lease"]["id"] == lease["id"]
    assert 200 < b["retry_after"] <= 240
    assert b["message"].startswith("A test is already running on pc-%s (its lease ends at "
                                   % lease["device"])
    assert len(w.sent) == 1

    # the month's data budget: 409 with used and limit
    w.give_back()
    with w.engine.begin() as conn:
        conn.execute(link_tests.insert().values(
            school_code="S01", device_id="d01a", seq=99, ts=time.time() - 60,
            received_at=time.time() - 59, ok=True, mode="full", bytes_rx=29_990_000_000,
            bytes_tx=0, down_mbps=20.0, up_mbps=5.0))
    r = w.client(ADMIN).post(path % "S01")
    assert r.status_code == 409 and r.json()["error"] == "speedtest_budget", r.text
    b = r.json()
    assert b["used"] == 29_990_000_000 and b["limit"] == 30_000_000_000
    assert b["expected"] == 29_990_000_000  # the last full test's bytes
    assert "Đã hết hạn mức dữ liệu đo tháng này" in b["message"]

    # no device online: 409 saying so
    r = w.client(ADMIN).post(path % "S03")
    assert r.status_code == 409 and r.json()["error"] == "speedtest_no_device"
    assert r.json()["message"].startswith("Không có máy nào của trường đang trực tuyến")

    # the area officer: their third request in an hour is the last (PER_HOUR = 3)
    officer = w.token("officer")
    for _ in range(PER_HOUR):
        assert officer.post(path % "S03").status_code == 409
    r = officer.post(path % "S03", params={"lang": "en"})
    assert r.status_code == 429, r.text
    assert r.json()["error"] == "speedtest_rate_limited" and r.json()["count"] == PER_HOUR
    assert 3500 <= int(r.headers["Retry-After"]) <= 3600
    assert r.json()["message"].startswith("You asked for 3 tests in the last hour (at most 3)")
    # ... the admin token has had its three (held, budget, no device); another user has not
    assert w.client(ADMIN).post(path % "S03").status_code == 429
    assert w.token("boss").post(path % "S03").status_code == 409

    # every request that reached a decision is audited: who, which school, lease or reason
    rows = w.audit()
    assert rows[0][:3] == ("tech", "speedtest_request", "S01")
    assert rows[0][3]["lease"] == lease["id"] and rows[0][3]["device"] == lease["device"]
    assert rows[1][0] == "admin-token" and rows[1][3]["refused"] == "held"
    assert rows[1][3]["lease"] == lease["id"]
    assert rows[2][3]["refused"] == "budget" and rows[3][3]["refused"] == "no_device"
    assert [r[0] for r in rows[4:]] == ["officer"] * PER_HOUR + ["boss"]
    assert len(rows) == 8  # the 429 is not a decision: not audited, not counted
    m = w.metrics.speedtest_requests
    assert (m.get(outcome="granted"), m.get(outcome="held"), m.get(outcome="budget"),
            m.get(outcome="no_device"), m.get(outcome="rate_limited")) == (1, 1, 1, 5, 2)
    # the audit page names the action
    page = w.client(ADMIN).get("/api/v1/audit", params={"action": "speedtest_request"})
    assert page.status_code == 200 and page.json()["total"] == 8


def test_off_without_a_scheduler(tmp_path):
    """An app with no scheduler (connectivity.scheduler = false): 503, nothing granted."""
    for engine in engine_for("sqlite", tmp_path, None):
        store = seed(engine)
        live = LiveServer(create_app(store, _cfg()))
        try:
            r = httpx.post(live.url + "/api/v1/schools/S01/speedtest",
                           headers={"Authorization": "Bearer " + ADMIN}, timeout=10)
            assert r.status_code == 503 and r.json()["error"] == "speedtest_unavailable"
            with engine.connect() as conn:
                assert school_state.read(conn, "S01", LEASE_KEY).value is None
        finally:
            live.stop()


def test_request_text_both_languages():
    got = manual.Asked("budget", used=95_000_000, limit=1_000_000_000, expected=10_000_000)
    assert manual.request_text(got, "vi") == (
        "Đã hết hạn mức dữ liệu đo tháng này: đã dùng 95 MB trên 1000 MB, lần đo cần "
        "khoảng 10 MB.")
    assert manual.request_text(got, "en").startswith("This month's test data budget")
    late = manual.Asked("granted", lease={"device": "d1", "exp": 0.0}, device_name="pc-1",
                        sent=False, minutes=3)
    assert manual.request_text(late, "en").endswith("the collector has no broker connection.")


def test_many_ask_at_once_one_lease(world):
    """Six requests for one school at the same moment (two callers, three each): exactly
    one lease, one grant sent; the others are told it is held."""
    w = world
    boss = w.token("boss")
    admin = w.client(ADMIN)
    barrier = threading.Barrier(6)

    def ask(c: httpx.Client) -> int:
        barrier.wait(30)
        return c.post("/api/v1/schools/S01/speedtest").status_code

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(ask, [admin, boss] * 3))
    assert codes == [202] + [409] * 5, codes
    assert len(w.sent) == 1 and w.sent[0][2]["id"] == w.lease()["id"]
    assert len(w.audit()) == 6
