"""API latency at province scale: ``python bench/api_scale.py [--schools 3000] [--devices 17]``.

Seeds a throwaway SQLite state store (registry through ``registry.add_schools``, devices as
rows), serves the API with uvicorn on a free port and prints the median of 5 requests per
route. The figures in docs/api.md come from this script.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schools", type=int, default=3000)
    ap.add_argument("--devices", type=int, default=17, help="devices per school")
    ap.add_argument("--areas", type=int, default=40)
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="schoolmon-apibench-")
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
    token = "bench-" + "x" * 20
    cfg = SimpleNamespace(api=SimpleNamespace(admin_token=token, read_tokens=[]),
                          province=SimpleNamespace(timezone="Asia/Ho_Chi_Minh"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ApiServer(create_app(engine, cfg), "127.0.0.1", port).start()
    print("%d schools, %d devices (SQLite)" % (args.schools, len(rows)))
    try:
        with httpx.Client(base_url=server.url, timeout=60,
                          headers={"Authorization": "Bearer " + token}) as c:
            for path in ("/api/v1/summary", "/api/v1/org", "/api/v1/org?schools=false",
                         "/api/v1/schools?per_page=50",
                         "/api/v1/schools?status=offline&area=Khu%20v%E1%BB%B1c%205",
                         "/api/v1/schools?q=truong%201234", "/api/v1/schools/00001234",
                         "/api/v1/devices/d5-3"):
                c.get(path)
                times = []
                for _ in range(5):
                    t = time.perf_counter()
                    r = c.get(path)
                    times.append(time.perf_counter() - t)
                print("%-55s %d %6.0f ms %9d bytes"
                      % (path, r.status_code, statistics.median(times) * 1000, len(r.content)))
    finally:
        server.stop()
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
