"""Scoped API latency at province scale: ``python bench/auth_scale.py [--schools 3000]
[--devices 17] [--n 60]``.

Seeds a throwaway SQLite state store (3,000 schools in 40 areas, 17 devices each = 51,000),
adds an area officer and a school technician, serves the API with uvicorn and prints, per
route and caller (admin token, area officer's personal token, school technician's token
and session), the median and p95 of ``--n`` requests. What authentication and scope cost
per request: the session or token lookup and the cached unit → schools map.
"""
import argparse
import os
import random
import shutil
import socket
import statistics
import tempfile
import time
from types import SimpleNamespace

import httpx
from schoolmon.collector.api.app import create_app
from schoolmon.collector.api.server import ApiServer
from schoolmon.collector.store import registry
from schoolmon.collector.store import schema as db
from schoolmon.collector.store import users as user_store

PASSWORD = "bench password 1"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schools", type=int, default=3000)
    ap.add_argument("--devices", type=int, default=17, help="devices per school")
    ap.add_argument("--areas", type=int, default=40)
    ap.add_argument("--n", type=int, default=60, help="requests per route and caller")
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="schoolmon-authbench-")
    engine = db.make_engine("sqlite:///" + os.path.join(folder, "state.db"))
    db.create_all(engine)
    rng = random.Random(1)
    registry.add_schools(engine, [{"code": "%08d" % i, "name": "Trường %d" % i, "level": "TH",
                                   "area": "Khu vực %d" % (i % args.areas),
                                   "province": "Lào Cai"} for i in range(args.schools)])
    now = time.time()
    rows = [dict(id="d%d-%d" % (i, j), school_code="%08d" % i,
                 state="active" if j else "pending", online=rng.random() < 0.8,
                 last_seen=now - rng.random() * 3600, role="lab")
            for i in range(args.schools) for j in range(args.devices)]
    with engine.begin() as conn:
        conn.execute(db.devices.insert(), rows)
        user_store.add_user(conn, "officer", "area_officer", PASSWORD, ["lao-cai/khu-vuc-5"])
        user_store.add_user(conn, "tech", "school_tech", PASSWORD, ["00000005"])
        _, officer_token = user_store.create_token(conn, "officer")
        _, tech_token = user_store.create_token(conn, "tech")
    token = "bench-" + "x" * 20
    cfg = SimpleNamespace(api=SimpleNamespace(admin_token=token, read_tokens=[]),
                          province=SimpleNamespace(timezone="Asia/Ho_Chi_Minh"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ApiServer(create_app(engine, cfg), "127.0.0.1", port).start()
    print("%d schools, %d devices (SQLite); %d requests per route and caller"
          % (args.schools, len(rows), args.n))
    session = httpx.Client(base_url=server.url, timeout=60)
    session.post("/api/v1/session", json={"name": "tech", "password": PASSWORD}).raise_for_status()
    callers = {
        "admin token": httpx.Client(base_url=server.url, timeout=60,
                                    headers={"Authorization": "Bearer " + token}),
        "area officer token": httpx.Client(base_url=server.url, timeout=60, headers={
            "Authorization": "Bearer " + officer_token}),
        "school tech token": httpx.Client(base_url=server.url, timeout=60, headers={
            "Authorization": "Bearer " + tech_token}),
        "school tech session": session,
    }
    paths = ("/api/v1/summary", "/api/v1/schools?per_page=50", "/api/v1/schools/00000005",
             "/api/v1/devices/d5-3", "/api/v1/session")
    try:
        print("%-28s %-22s %8s %8s" % ("route", "caller", "median", "p95"))
        for path in paths:
            for who, c in callers.items():
                c.get(path).raise_for_status()
                times = []
                for _ in range(args.n):
                    t = time.perf_counter()
                    c.get(path).raise_for_status()
                    times.append((time.perf_counter() - t) * 1000)
                times.sort()
                p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
                print("%-28s %-22s %6.1f ms %6.1f ms" % (path, who, statistics.median(times),
                                                          p95), flush=True)
    finally:
        for c in callers.values():
            c.close()
        server.stop()
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
