"""The REST API through the real HTTP stack: uvicorn on a free loopback port, httpx, and a
real state store (SQLite; one run on PostgreSQL) seeded through the registry and the
StateStore's own prepare/commit with messages built by the wire format."""
import re
import time
import uuid
from typing import Dict

import httpx
from schoolmon.collector.api import create_app
from schoolmon.collector.api.deps import Principal, get_principal
from schoolmon.collector.store import StateStore
from schoolmon.collector.store import schema as db

from tests.collector.api.apihelp import (
    ADMIN,
    PROVINCE,
    READ,
    LiveServer,
    _cfg,
    client,
    seed,
)

# --- authentication -----------------------------------------------------------------------

def _api_routes(app):
    """Every (method, path) under /api/: from the router (flattening included routers,
    whatever this FastAPI version calls them) and from the OpenAPI document."""
    found = set()
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        pairs = ([(c.path, c.original_route) for c in contexts()] if callable(contexts)
                 else [(getattr(route, "path", ""), route)])
        for path, original in pairs:
            for method in getattr(original, "methods", None) or {"GET"}:
                found.add((method, path))
    for path, ops in app.openapi()["paths"].items():
        found.update((m.upper(), path) for m in ops)
    return sorted((m, re.sub(r"\{[^}]+\}", "x", p)) for m, p in found
                  if p.startswith("/api/") and m != "HEAD")


def test_every_api_route_requires_a_token(app, live):
    # logging in (POST /api/v1/session) is the one route open without credentials
    routes = [r for r in _api_routes(app) if r != ("POST", "/api/v1/session")]
    assert len(routes) >= 6  # summary, org, schools, school, device, series
    anon = client(live, token="")
    for method, path in routes:
        if (method, path) == ("POST", "/api/v1/session"):
            continue  # logging in: the one open /api/ route (tests/collector/api/test_auth.py)
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                        {"Authorization": "Basic " + ADMIN}, {"Authorization": "Bearer"},
                        {"Authorization": "Bearer " + ADMIN[:-1]}):
            r = anon.request(method, path, headers=headers, params={"metric": "cpu_pct"})
            assert r.status_code == 401, (method, path, headers, r.status_code)
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert r.json()["error"] in ("auth_required", "auth_invalid")


def test_health_metrics_docs_are_open(live):
    anon = client(live, token="")
    r = anon.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = anon.get("/metrics")
    assert r.status_code == 200
    r = anon.get("/docs")
    assert r.status_code == 200
    spec = anon.get("/openapi.json").json()
    assert any(s.get("scheme") == "bearer"
               for s in spec["components"]["securitySchemes"].values())
    # a page without a session goes to the login page, served with a strict CSP
    r = anon.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F"
    r = anon.get("/login")
    assert r.status_code == 200 and '<script type="module" src="/static/js/app.js">' in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "script-src 'self';" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert client(live).get("/api/v1/summary").headers["cache-control"] == "no-store"
    assert anon.get("/static/js/app.js").status_code == 200


def test_admin_and_read_tokens(app, live):
    for token in (ADMIN, READ):
        r = client(live, token).get("/api/v1/summary")
        assert r.status_code == 200, token
    # an admin-only route: read tokens are refused (403), admin passes
    from schoolmon.collector.api.deps import AdminPrincipal

    @app.get("/api/v1/_admin_probe")
    def probe(p: AdminPrincipal) -> Dict[str, str]:
        return {"role": p.role}

    assert client(live, ADMIN).get("/api/v1/_admin_probe").json() == {"role": "so_admin"}
    r = client(live, READ).get("/api/v1/_admin_probe")
    assert r.status_code == 403 and r.json()["error"] == "admin_required"
    assert client(live, "").get("/api/v1/_admin_probe").status_code == 401


def test_empty_configured_tokens_never_match(engine):
    app = create_app(StateStore(engine), _cfg(admin_token="", read_tokens=[""]))
    srv = LiveServer(app)
    try:
        r = httpx.get(srv.url + "/api/v1/summary", headers={"Authorization": "Bearer"})
        assert r.status_code == 401
        r = httpx.get(srv.url + "/api/v1/summary", headers={"Authorization": "Bearer x"})
        assert r.status_code == 401
    finally:
        srv.stop()


# --- data ---------------------------------------------------------------------------------

def test_summary_counts_and_baseline_not_evaluated(live):
    s = client(live).get("/api/v1/summary").json()
    assert s["schools"]["total"] == 7
    assert s["schools"]["by_status"] == {"online": 2, "partial": 1, "offline": 2,
                                         "off_hours": 0, "no_devices": 2}
    assert s["devices"]["total"] == 7
    assert s["devices"]["by_status"]["online"] == 4
    assert s["devices"]["by_status"]["offline"] == 3
    assert s["devices"]["by_state"] == {"pending": 6, "active": 1, "retired": 0}
    b = s["below_baseline"]
    assert b["connectivity"] is None and b["security"] is None and b["evaluated"] is False
    assert b["status_label"] == "chưa đánh giá" and b["note"]


def test_org_tree_rollups(live):
    t = client(live).get("/api/v1/org").json()
    (prov,) = t["roots"]
    assert prov["name"] == PROVINCE and prov["level"] == "province"
    assert prov["counts"]["schools"] == 7 and prov["counts"]["devices"] == 7
    areas = {a["name"]: a for a in prov["children"]}
    assert set(areas) == {"Bát Xát", "Sa Pa"}
    bx = areas["Bát Xát"]
    assert bx["counts"]["schools"] == 4 and bx["counts"]["online"] == 3
    assert bx["counts"]["schools_partial"] == 1
    assert {c["code"] for c in bx["children"]} == {"S01", "S02", "S03", "S04"}
    assert all(c["type"] == "school" and c["status_label"] for c in bx["children"])
    units_only = client(live).get("/api/v1/org", params={"schools": "false"}).json()
    (prov,) = units_only["roots"]
    assert prov["counts"]["schools"] == 7
    assert all(a["type"] == "unit" and a["children"] == [] for a in prov["children"])


def test_school_list_paging(live):
    c = client(live)
    seen = []
    for page in (1, 2, 3):
        r = c.get("/api/v1/schools", params={"per_page": 3, "page": page}).json()
        assert r["total"] == 7 and r["pages"] == 3 and r["page"] == page
        seen += [s["code"] for s in r["items"]]
    assert len(seen) == 7 and set(seen) == {"S%02d" % i for i in range(1, 8)}
    # worst first: offline, partial, online, no devices
    order = ["offline", "partial", "online", "no_devices"]
    statuses = [s["status"] for s in c.get("/api/v1/schools").json()["items"]]
    assert statuses == sorted(statuses, key=order.index)
    assert c.get("/api/v1/schools", params={"page": 9}).json()["items"] == []
    for bad in ({"per_page": 0}, {"per_page": 501}, {"page": 0}, {"page": "x"}):
        r = c.get("/api/v1/schools", params=bad)
        assert r.status_code == 422, bad
        assert r.json()["error"] == "invalid_request"


def test_school_list_filters(live):
    c = client(live)

    def codes(**params):
        r = c.get("/api/v1/schools", params=params)
        assert r.status_code == 200, r.text
        return sorted(s["code"] for s in r.json()["items"])

    assert codes(status="offline") == ["S03", "S06"]
    assert codes(status="partial") == ["S02"]
    assert codes(status="no_devices") == ["S04", "S07"]
    assert codes(area="Sa Pa") == ["S05", "S06", "S07"]
    assert codes(area="lao-cai/sa-pa") == ["S05", "S06", "S07"]
    assert codes(area="sa-pa", status="online") == ["S05"]
    assert codes(area="lao-cai") == ["S%02d" % i for i in range(1, 8)]
    assert codes(area="nowhere") == []
    assert codes(q="S04") == ["S04"]
    assert codes(q="trường 7") == ["S07"]
    assert codes(q="%") == [] and codes(q="_") == []  # wildcards are plain characters
    assert codes(q="TRUONG 7") == ["S07"]  # case and diacritics ignored (SQLite too)
    assert codes(q="TRƯỜNG 3") == ["S03"]
    # no baseline is evaluated yet: nobody "meets" or is "below"; everyone not_evaluated
    r = c.get("/api/v1/schools", params={"baseline": "below"}).json()
    assert r["items"] == [] and r["total"] == 0 and r["baseline_note"]
    assert len(codes(baseline="not_evaluated")) == 7
    assert c.get("/api/v1/schools", params={"status": "burning"}).status_code == 422


def test_school_and_device_detail(live):
    c = client(live)
    s = c.get("/api/v1/schools/S02").json()
    assert s["name"] == "Trường 2" and s["status"] == "partial"
    assert s["area"]["name"] == "Bát Xát" and s["province"]["name"] == PROVINCE
    assert {d["id"]: d["status"] for d in s["devices"]} == {"d02a": "online",
                                                           "d02b": "offline"}
    d = c.get("/api/v1/devices/d01a").json()
    assert d["school"] == {"code": "S01", "name": "Trường 1"}
    assert d["status"] == "online" and d["state"] == "pending"
    assert d["state_label"] == "chờ duyệt" and d["status_label"] == "trực tuyến"
    assert set(d["latest"]) >= {"health", "inventory", "status"}
    assert d["latest"]["health"]["payload"]["cpu_n"] == 4
    # the raw payload keeps its epoch ts; the envelope's time is rendered
    assert isinstance(d["latest"]["health"]["payload"]["ts"], (int, float))
    assert d["latest"]["health"]["ts"].endswith("Z")
    off = c.get("/api/v1/devices/d03a").json()
    assert off["status"] == "offline" and off["offline_reason"] == "lost"


def test_series_from_rollups(live):
    c = client(live)
    r = c.get("/api/v1/devices/d01a/series", params={"metric": "cpu_pct"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["resolution"] == 300
    pts = body["points"]
    assert 9 <= len(pts) <= 12
    assert all(p["n"] >= 1 and p["min"] <= p["mean"] <= p["max"] for p in pts)
    assert all(p["ts"].endswith("Z") and p["ts_local"].endswith("+07:00") for p in pts)
    now = time.time()
    r = c.get("/api/v1/devices/d01a/series",
              params={"metric": "cpu_pct", "from": str(now - 10 * 86400), "to": str(now)})
    body = r.json()
    assert body["resolution"] == 3600 and len(body["points"]) in (1, 2)
    assert sum(p["n"] for p in body["points"]) == 11
    r = c.get("/api/v1/devices/d01a/series",
              params={"metric": "cpu_pct", "from": "2026-01-01T08:00:00+07:00",
                      "to": "2026-01-01T00:00:00Z"})
    assert r.status_code == 400 and r.json()["error"] == "bad_range"
    r = c.get("/api/v1/devices/d01a/series", params={"metric": "cpu_pct", "from": "soon"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "from"]
    r = c.get("/api/v1/devices/d01a/series", params={"metric": "cpu_pct",
                                                     "from": "2026-02-29"})  # a common year
    assert r.status_code == 400 and r.json()["error"] == "bad_time"
    r = c.get("/api/v1/devices/d01a/series", params={"metric": "nope"})
    assert r.status_code == 422 and r.json()["error"] == "metric_unknown"
    assert c.get("/api/v1/devices/d01a/series").status_code == 422  # metric is required


def test_not_found(live):
    c = client(live)
    for path, code in (("/api/v1/schools/NOPE", "school_not_found"),
                       ("/api/v1/devices/nope", "device_not_found"),
                       ("/api/v1/devices/nope/series?metric=cpu_pct", "device_not_found")):
        r = c.get(path)
        assert r.status_code == 404 and r.json()["error"] == code
        assert r.json()["message"].startswith("Không tìm thấy")


def test_scope_limits_everything_and_hides_codes(app, live):
    """A caller scoped to one area sees only its schools; others are 404 like unknowns."""
    app.dependency_overrides[get_principal] = lambda: Principal(
        "area-user", "read", frozenset({"org:lao-cai/bat-xat"}))
    c = client(live)
    s = c.get("/api/v1/summary").json()
    assert s["schools"]["total"] == 4 and s["devices"]["total"] == 5
    assert sorted(x["code"] for x in c.get("/api/v1/schools").json()["items"]) == \
        ["S01", "S02", "S03", "S04"]
    assert c.get("/api/v1/schools", params={"area": "Sa Pa"}).json()["items"] == []
    t = c.get("/api/v1/org").json()
    (prov,) = t["roots"]
    assert [a["name"] for a in prov["children"]] == ["Bát Xát"]
    assert prov["counts"]["schools"] == 4
    for path in ("/api/v1/schools/S05", "/api/v1/devices/d05a",
                 "/api/v1/devices/d05a/series?metric=cpu_pct"):
        hidden = c.get(path)
        unknown = c.get(path.replace("S05", "S99").replace("d05a", "d99z"))
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.json() == unknown.json()
    assert c.get("/api/v1/schools/S01").status_code == 200
    # one school by code
    app.dependency_overrides[get_principal] = lambda: Principal(
        "school-user", "read", frozenset({"school:S05"}))
    assert [x["code"] for x in c.get("/api/v1/schools").json()["items"]] == ["S05"]
    assert c.get("/api/v1/devices/d05a").status_code == 200
    assert c.get("/api/v1/devices/d01a").status_code == 404
    # an empty scope sees nothing, but is not an error
    app.dependency_overrides[get_principal] = lambda: Principal("nobody", "read", frozenset())
    s = c.get("/api/v1/summary").json()
    assert s["schools"]["total"] == 0 and s["devices"]["total"] == 0
    app.dependency_overrides.clear()


# --- language and time --------------------------------------------------------------------

def test_vietnamese_by_default_english_on_request(live):
    c = client(live)
    s = c.get("/api/v1/schools/S03").json()
    assert s["status_label"] == "mất kết nối" and s["level_label"]
    en = c.get("/api/v1/schools/S03", params={"lang": "en"}).json()
    assert en["status_label"] == "offline"
    en2 = client(live, ADMIN, **{"Accept-Language": "en-US,en;q=0.9,vi;q=0.5"}).get(
        "/api/v1/schools/S03").json()
    assert en2["status_label"] == "offline"
    vi = client(live, ADMIN, **{"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.8"}).get(
        "/api/v1/schools/S03").json()
    assert vi["status_label"] == "mất kết nối"
    r = client(live, "").get("/api/v1/summary", params={"lang": "en"})
    assert r.json()["message"].startswith("Authentication required")
    r = client(live, "").get("/api/v1/summary")
    assert r.json()["message"].startswith("Cần xác thực")


def test_times_are_utc_z_with_local_rendering(live):
    d = client(live).get("/api/v1/devices/d01a").json()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", d["last_seen"])
    assert d["last_seen_local"].endswith("+07:00")
    from datetime import datetime
    utc = datetime.fromisoformat(d["last_seen"].replace("Z", "+00:00"))
    local = datetime.fromisoformat(d["last_seen_local"])
    assert utc == local and local.utcoffset().total_seconds() == 7 * 3600


# --- health and metrics -------------------------------------------------------------------

class FakeService:
    def __init__(self, store, checks) -> None:
        self.store = store
        self.checks = checks
        from schoolmon.collector.metrics import IngestMetrics, Registry
        self.metrics = IngestMetrics(Registry())

    def readiness(self):
        return dict(self.checks)


def test_healthz_names_what_is_down(engine):
    store = StateStore(engine)
    svc = FakeService(store, {"broker": True, "store": True, "timeseries": None})
    srv = LiveServer(create_app(svc, _cfg()))
    try:
        r = httpx.get(srv.url + "/healthz")
        assert r.status_code == 200 and r.json()["down"] == []
        assert r.json()["checks"]["timeseries"]["configured"] is False
        svc.checks = {"broker": False, "store": True, "timeseries": True}
        r = httpx.get(srv.url + "/healthz")
        assert r.status_code == 503 and r.json()["down"] == ["broker"]
        assert "broker" in r.json()["message"]
        svc.checks = {"broker": True, "store": False, "timeseries": False}
        r = httpx.get(srv.url + "/healthz", params={"lang": "en"})
        assert r.status_code == 503 and r.json()["down"] == ["store", "timeseries"]
        assert r.json()["message"].startswith("A dependency")
    finally:
        srv.stop()


def test_healthz_store_down_without_service(tmp_path):
    engine = db.make_engine("sqlite:///%s" % (tmp_path / "missing" / "dir" / "x.db"))
    srv = LiveServer(create_app(engine, _cfg()))
    try:
        r = httpx.get(srv.url + "/healthz")
        assert r.status_code == 503 and r.json()["down"] == ["store"]
        assert r.json()["checks"]["store"]["detail"]
    finally:
        srv.stop()


def test_metrics_prometheus_text(engine):
    svc = FakeService(StateStore(engine), {"broker": True, "store": True})
    svc.metrics.received.inc(5)
    svc.metrics.rejected.inc(2, reason="invalid_json")
    srv = LiveServer(create_app(svc, _cfg()))
    try:
        r = httpx.get(srv.url + "/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        # name, optional labels, one value (a number, NaN or ±Inf), optional timestamp
        line = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? '
                          r'([-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?|NaN|[+-]Inf)'
                          r'( -?[0-9]+)?$')
        for ln in r.text.splitlines():
            assert ln.startswith("# HELP ") or ln.startswith("# TYPE ") or line.match(ln), ln
        # the pattern itself refuses what is not a sample line
        for wrong in ("schoolmon_x 5 6 7", "schoolmon_x{a=\"b\"}", "x 1.2.3", "NaN",
                      "schoolmon_x five", "a b NaN"):
            assert not line.match(wrong), wrong
        assert "schoolmon_messages_received_total 5" in r.text
        assert 'schoolmon_rejected_total{reason="invalid_json"} 2' in r.text
    finally:
        srv.stop()


# --- PostgreSQL ---------------------------------------------------------------------------

def test_api_on_postgresql(postgres):
    import psycopg
    name = "api_" + uuid.uuid4().hex[:10]
    admin = postgres.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE %s" % name)
    engine = db.make_engine(postgres.url.rsplit("/", 1)[0] + "/" + name)
    srv = None
    try:
        srv = LiveServer(create_app(seed(engine), _cfg()))
        c = client(srv)
        s = c.get("/api/v1/summary").json()
        assert s["schools"]["by_status"] == {"online": 2, "partial": 1, "offline": 2,
                                             "off_hours": 0, "no_devices": 2}
        r = c.get("/api/v1/schools", params={"per_page": 3, "page": 3}).json()
        assert r["total"] == 7 and len(r["items"]) == 1
        assert sorted(x["code"] for x in c.get(
            "/api/v1/schools", params={"area": "Sa Pa"}).json()["items"]) == \
            ["S05", "S06", "S07"]
        assert c.get("/api/v1/org").json()["roots"][0]["counts"]["devices"] == 7
        assert c.get("/api/v1/schools/S02").json()["status"] == "partial"
        assert c.get("/api/v1/devices/d01a").json()["latest"]["health"]["seq"] >= 2
        assert len(c.get("/api/v1/devices/d01a/series",
                         params={"metric": "cpu_pct"}).json()["points"]) >= 9
        assert c.get("/api/v1/schools/NOPE").status_code == 404
    finally:
        if srv is not None:
            srv.stop()
        engine.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE %s WITH (FORCE)" % name)

