"""Device series from the real state store's rollups (SQLite), as ``store.rollup_5m_days``
leaves them: the resolution follows the configured retention, so a range is never answered
from rollups that retention has pruned, nor at hourly resolution while 5-minute ones exist."""
import time

import pytest
from schoolmon.collector.read import devices as read
from schoolmon.collector.store import StateStore, registry
from schoolmon.collector.store import schema as db

from tests.collector.storehelp import health

DAY = 86400


@pytest.fixture
def engine(tmp_path):
    e = db.make_engine("sqlite:///%s" % (tmp_path / "state.db"))
    db.create_all(e)
    registry.add_schools(e, [{"code": "S1", "name": "Trường 1", "level": "TH",
                              "area": "Bát Xát", "province": "Lào Cai"}])
    yield e
    e.dispose()


def _store_with_history(engine, five_min_days, now, ago_days):
    """One health message every five minutes for two hours, ``ago_days`` ago, then the
    store's own maintenance (hourly rollups built, past-retention rows pruned)."""
    store = StateStore(engine, rollup_5m_days=five_min_days)
    start = (now - ago_days * DAY) // 3600 * 3600
    batch = [health("S1", "pc1", i + 1, start + 300 * i, cpu_pct=float(i)) for i in range(24)]
    store.commit(store.prepare(batch))
    store.maintain(now)
    return store, start


@pytest.mark.parametrize("five_min_days, ago_days, want", [
    (7, 10, 3600),   # pruned after 7 days: hourly (default 30 would answer from nothing)
    (7, 3, 300),
    (90, 40, 300),   # kept 90 days: 5-minute (default 30 would answer hourly)
    (90, 100, 3600),
])
def test_resolution_follows_the_configured_retention(engine, five_min_days, ago_days, want):
    now = float(int(time.time()))
    _store, start = _store_with_history(engine, five_min_days, now, ago_days)
    with engine.connect() as conn:
        body = read.device_series(conn, "pc1", "cpu_pct", start, start + 2 * 3600, None,
                                  now=now, five_min_days=five_min_days)
    assert body is not None and body["resolution"] == want
    if ago_days <= five_min_days:
        assert len(body["points"]) == 24
    elif ago_days <= 365:  # hourly rollups are kept a year
        assert [p["n"] for p in body["points"]] == [12, 12]
        assert body["points"][0]["min"] == 0.0 and body["points"][1]["max"] == 23.0


def test_the_api_passes_the_configured_retention(engine):
    from types import SimpleNamespace

    import httpx
    from schoolmon.collector.api import create_app
    from schoolmon.collector.api.server import ApiServer

    from tests.servers import free_port
    now = float(int(time.time()))
    _store, start = _store_with_history(engine, 7, now, 10)
    token = "Adm1n-" + "x7Y" * 8
    cfg = SimpleNamespace(api=SimpleNamespace(admin_token=token, read_tokens=[]),
                          province=SimpleNamespace(timezone="Asia/Ho_Chi_Minh"),
                          store=SimpleNamespace(rollup_5m_days=7))
    srv = ApiServer(create_app(engine, cfg), "127.0.0.1", free_port()).start()
    try:
        r = httpx.get(srv.url + "/api/v1/devices/pc1/series",
                      params={"metric": "cpu_pct", "from": str(start),
                              "to": str(start + 7200)},
                      headers={"Authorization": "Bearer " + token}, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["resolution"] == 3600 and len(r.json()["points"]) == 2
    finally:
        srv.stop()
