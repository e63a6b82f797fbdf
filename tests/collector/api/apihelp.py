"""Helpers for the API tests: a seeded real state store, the configuration, a live
uvicorn server on a free loopback port and an authenticated client."""
import threading
import time
from types import SimpleNamespace
from typing import Any

import httpx
import uvicorn
from schoolmon.collector.state import Received
from schoolmon.collector.store import StateStore, registry
from schoolmon.collector.store import schema as db

from tests.collector.storehelp import received
from tests.servers import free_port

ADMIN = "adm-" + "a" * 28
READ = "read-" + "r" * 27
PROVINCE = "Lào Cai"


def _cfg(**api: Any) -> SimpleNamespace:
    values = {"admin_token": ADMIN, "read_tokens": [READ], "listen": "127.0.0.1:0"}
    values.update(api)
    return SimpleNamespace(api=SimpleNamespace(**values),
                           province=SimpleNamespace(timezone="Asia/Ho_Chi_Minh", name=PROVINCE,
                                                    code=""))


def _msg(school: str, device: str, kind: str, seq: int, ts: float, **fields: Any) -> Received:
    return received(school, device, kind, seq, ts, received_at=ts + 0.5, **fields)


def _commit(store: StateStore, batch) -> None:
    store.commit(store.prepare(batch))


def seed(engine) -> StateStore:
    """Seven schools in two areas; devices online, offline, pending; an hour of health."""
    rows = []
    for i, area in ((1, "Bát Xát"), (2, "Bát Xát"), (3, "Bát Xát"), (4, "Bát Xát"),
                    (5, "Sa Pa"), (6, "Sa Pa"), (7, "Sa Pa")):
        rows.append({"code": "S%02d" % i, "name": "Trường %d" % i,
                     "level": ("TH", "THCS", "THPT")[i % 3], "area": area,
                     "province": PROVINCE, "students": 100 * i})
    db.create_all(engine)
    registry.add_schools(engine, rows)
    store = StateStore(engine)
    now = time.time()
    online = {"S01": ["d01a", "d01b"], "S02": ["d02a"], "S05": ["d05a"]}
    offline = {"S02": ["d02b"], "S03": ["d03a"], "S06": ["d06a"]}
    batch = []
    for school, devs in list(online.items()) + list(offline.items()):
        for d in devs:
            batch.append(_msg(school, d, "inventory", 1, now - 3600, hostname="pc-" + d,
                              role="office" if d.endswith("b") else "lab"))
    _commit(store, batch)
    # an hour of health from d01a, one message every five minutes
    _commit(store, [_msg("S01", "d01a", "health", 2 + i, now - 3300 + 300 * i,
                         cpu_pct=float(10 * (i % 10)))
                    for i in range(11)])
    _commit(store, [_msg(s, d, "status", 0, now - 10, state="online", hb=60)
                    for s, devs in online.items() for d in devs])
    _commit(store, [_msg(s, d, "status", 0, now - 5, state="offline", reason="lost")
                    for s, devs in offline.items() for d in devs])
    registry.approve_device(engine, "d05a")
    store.maintain(now)
    return store


class LiveServer:
    """uvicorn serving ``app`` in a thread on a free loopback port."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start")
            time.sleep(0.01)
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def client(live: LiveServer, token: str = ADMIN, **headers: str) -> httpx.Client:
    h = dict(headers)
    if token:
        h["Authorization"] = "Bearer " + token
    return httpx.Client(base_url=live.url, headers=h, timeout=10)
