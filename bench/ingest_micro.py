"""Per-message costs of the collector's decode path, in one process (ratios are what count;
the machine is shared):

    .venv/bin/python bench/ingest_micro.py [--n 100000]

Prints µs per health message for: parsing with the standard library vs orjson
(``protocol.wire``), the whole ``decode`` both ways, the time-series line bodies
(``families.health.health_bodies``), and the resident memory that importing orjson adds (why
the agent never switches it on).
"""
import argparse
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from schoolmon.collector.families.health import health_bodies  # noqa: E402
from schoolmon.collector.simulate import health_fields, province_fixture  # noqa: E402
from schoolmon.protocol import decode, encode, envelope, topic, wire  # noqa: E402


def per_call(fn, items, n):
    t = time.perf_counter()
    for i in range(n):
        fn(items[i % len(items)])
    return 1e6 * (time.perf_counter() - t) / n


def import_rss_mb(module: str) -> float:
    code = ("import sys\n"
            "def rss():\n"
            "    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 1e6\n"
            "a = rss()\nimport %s\nprint(rss() - a)\n" % module)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return float(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100000)
    n = ap.parse_args().n
    rng = random.Random(1)
    devices = province_fixture(20, 10, seed=1).devices
    msgs = []
    for i, d in enumerate(devices):
        f = health_fields(d, rng, i)
        msgs.append((topic(d.school, d.id, "health"),
                     encode(envelope("health", f, i + 1, 1_795_000_000 + i)), f))
    raws = [raw for _t, raw, _f in msgs]
    wire._orjson = None
    parse_std = per_call(wire.parse_json, raws, n)
    decode_std = per_call(lambda m: decode(m[0], m[1]), msgs, n)
    have_orjson = wire.use_orjson()
    parse_fast = per_call(wire.parse_json, raws, n) if have_orjson else float("nan")
    decode_fast = per_call(lambda m: decode(m[0], m[1]), msgs, n) if have_orjson else float("nan")
    bodies = per_call(lambda m: health_bodies(m[2], 1_795_000_000), msgs, n)
    print("health messages: %d distinct, %d calls each measurement" % (len(msgs), n))
    print("parse_json   standard %.2f µs, orjson %.2f µs (ratio %.2f)"
          % (parse_std, parse_fast, parse_fast / parse_std))
    print("decode       standard %.2f µs, orjson %.2f µs (ratio %.2f)"
          % (decode_std, decode_fast, decode_fast / decode_std))
    print("health_bodies %.2f µs" % bodies)
    if have_orjson:
        print("import orjson adds %.1f MB RSS" % import_rss_mb("orjson"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
