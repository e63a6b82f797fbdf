"""Collector throughput: simulate → real Mosquitto → collector (own process) → state store
and real VictoriaMetrics.

    .venv/bin/python bench/ingest_throughput.py [--schools 1000 --devices-per-school 10]
        [--rate 12000] [--bare-rate 0] [--duration 30] [--store sqlite|postgres] [--collectors 1]

Two phases with the same simulated fleet and duration, a fresh broker each:

1. bare: a paho MQTT 5 client in its own process that subscribes to
   ``schoolmon/v1/+/+/+`` at QoS 1 and does nothing with a message — the ceiling for any
   paho-based consumer on this machine while the publisher and the broker run. The
   publisher offers ``--bare-rate`` (default: as fast as it can, to find that ceiling);
2. collector: ``python -m schoolmon.collector.service`` (one process, or several sharing
   ``$share/bench/...`` with ``--collectors N``), decode → state store → VictoriaMetrics →
   acknowledgements, offered ``--rate`` messages/s (default 12,000). The time series are
   created first (``--no-warm-up`` to skip), as in a province that has been running.

For each it prints messages/s end to end: every message the broker acknowledged to the
publisher, divided by the time from the first publish until the consumer has it (received
for bare, stored and acknowledged for the collector); then the ratio, and the collector's
p50/p99 ingest-to-stored latency (receive by the collector → committed).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def bare_client(url: str, out: str) -> None:
    """A paho consumer that does nothing: count, acknowledge (paho's automatic PUBACK)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from schoolmon.protocol.settings import mqtt_endpoint

    count = [0]

    def on_message(client, userdata, msg):
        count[0] += 1

    def on_connect(client, userdata, flags, reason, props):
        client.subscribe("schoolmon/v1/+/+/+", qos=1)

    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                    client_id="bench-bare", protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.on_connect = on_connect
    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = 50000
    host, port, _tls = mqtt_endpoint(url)
    c.connect(host, port, properties=props)
    c.loop_start()
    print("ready", flush=True)
    while True:
        time.sleep(0.25)
        tmp = out + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"time": time.time(), "received": count[0]}, fh)
        os.replace(tmp, out)


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process used so far, from /proc."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def warm_up_series(url: str, province, store_url: str) -> None:
    """Create every series in the time-series server first, as in a province that has
    been running for a while (creating ~200,000 new series costs VictoriaMetrics seconds
    that a steady-state collector never pays)."""
    import random

    from schoolmon.collector.simulate import health_fields
    from schoolmon.collector.state import Accepted, Received
    from schoolmon.collector.store import registry
    from schoolmon.collector.store import schema as db
    from schoolmon.collector.timeseries import InfluxTimeSeries, build_lines
    from schoolmon.protocol import Message
    engine = db.make_engine(store_url)
    with engine.connect() as conn:
        places = registry.school_tags(conn)
    engine.dispose()
    rng = random.Random(0)
    ts = InfluxTimeSeries(url, "bench", "bench", batch_lines=20000, gzip=False)
    old = time.time() - 86400
    acc = []
    for d in province.devices:
        f = health_fields(d, rng, 1)
        f.update(v=1, ts=old, seq=0)
        m = Message(d.school, d.id, "health", 1, old, 0, f, 0)
        tags = {"province": places[d.school][0], "area": places[d.school][1],
                "school": d.school, "device": d.id, "role": d.role}
        acc.append(Accepted(Received(m, old, old), tags))
        st = Message(d.school, d.id, "status", 1, old, 0, {"state": "online"}, 0)
        acc.append(Accepted(Received(st, old, old), tags))
    ts.write_lines(build_lines(acc))
    ts.close()


def read_json(path: str) -> dict:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def wait_ready(proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == b"ready":
            return
        if not line and proc.poll() is not None:
            break
    raise RuntimeError("consumer did not start")


def run_phase(name, args, province, consumer_start, progress, sim_cls, rate):
    from tests.servers import Mosquitto
    broker = Mosquitto()
    try:
        procs = consumer_start(broker)
        for d in province.devices:
            d.seq = 0
        sim = sim_cls(broker.url, province, rate=rate or 1e9,
                      duration=args.duration, final_status=False, window=args.window,
                      connections=args.connections, chunk=500)
        cpu_before = {p.pid: proc_cpu(p.pid) for p in procs}
        t0 = time.time()
        sim.start()
        cpu0 = os.times()
        stats = sim.join()
        cpu1 = os.times()
        t_pub = time.time() - t0
        target = stats.acked
        deadline = time.time() + args.drain_timeout
        done = progress()
        while done < target and time.time() < deadline:
            time.sleep(0.1)
            done = progress()
        t_done = time.time() - t0
        pub_cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        consumer_cpu = sum(proc_cpu(p.pid) - cpu_before[p.pid] for p in procs)
        broker_cpu = proc_cpu(broker.proc.pid)
        return {"consumer_cpu_seconds": consumer_cpu,
                "consumer_cpu_us_per_msg": 1e6 * consumer_cpu / max(1, done),
                "broker_cpu_seconds": broker_cpu, "name": name, "published": target, "publish_seconds": t_pub,
                "publish_rate": target / t_pub, "consumed": done, "seconds": t_done,
                "rate": done / t_done, "complete": done >= target,
                "publisher_cpu_pct": 100 * pub_cpu / t_pub}, procs, broker
    except BaseException:
        broker.stop()
        raise


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schools", type=int, default=1000)
    ap.add_argument("--devices-per-school", type=int, default=10)
    ap.add_argument("--rate", type=float, default=12000,
                    help="health messages/s offered to the collector (0: as fast as the "
                    "publisher can)")
    ap.add_argument("--bare-rate", type=float, default=0,
                    help="health messages/s offered to the bare client (0: as fast as the "
                    "publisher can, to find the ceiling)")
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--collectors", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--batch-wait", type=float, default=0.2)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--max-pending", type=int, default=50000)
    ap.add_argument("--window", type=int, default=5000)
    ap.add_argument("--drain-timeout", type=float, default=120)
    ap.add_argument("--skip-bare", action="store_true")
    ap.add_argument("--no-warm-up", action="store_true",
                    help="do not create the time series before measuring")
    ap.add_argument("--gzip", choices=("on", "off"), default="on",
                    help="influx.gzip of the collector")
    ap.add_argument("--bare-client", nargs=2, metavar=("URL", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_client:
        bare_client(*args.bare_client)
        return 0

    from schoolmon.collector.simulate import Simulation, province_fixture

    from tests.collector.helpers import seed_schools, write_config
    from tests.servers import Postgres, VictoriaMetrics

    tmp = tempfile.mkdtemp(prefix="schoolmon-bench-ingest-")
    province = province_fixture(args.schools, args.devices_per_school, seed=1)
    for d in province.devices:  # the benchmark wants every device publishing
        d.profile = "normal" if d.profile == "offline" else d.profile
    n_dev = len(province.devices)
    n_sec = sum(1 for d in province.devices if d.sec is not None and d.sec.reports)
    print("fleet: %d schools, %d devices; offered %s health msg/s to the collector, %s to the "
          "bare client, for %.0f s (+ %d status, %d inventory and %d security at start)"
          % (args.schools, n_dev, args.rate or "max", args.bare_rate or "max", args.duration,
             n_dev, n_dev, n_sec))
    results = []

    # ---------------------------------------------------------------- bare paho client
    if not args.skip_bare:
        out = os.path.join(tmp, "bare.json")
        holder = {}

        def start_bare(broker):
            p = subprocess.Popen([sys.executable, __file__, "--bare-client", broker.url, out],
                                 stdout=subprocess.PIPE, start_new_session=True)
            wait_ready(p)
            time.sleep(0.5)
            holder["p"] = [p]
            return [p]

        res, procs, broker = run_phase("bare paho client", args, province, start_bare,
                                       lambda: read_json(out).get("received", 0), Simulation,
                                       args.bare_rate)
        for p in procs:
            p.kill()
            p.wait()
        broker.stop()
        results.append(res)
        print("bare:      %(published)d msgs, publisher %(publish_rate).0f msg/s "
              "(%(publisher_cpu_pct).0f%% CPU); consumer got %(consumed)d in %(seconds).1f s "
              "= %(rate).0f msg/s" % res, flush=True)

    # ---------------------------------------------------------------- collector
    victoria = VictoriaMetrics()
    pg = None
    try:
        if args.store == "postgres":
            pg = Postgres()
            store_url = pg.url
        else:
            store_url = "sqlite:///%s" % os.path.join(tmp, "state.db")
        seed_schools(store_url, province.school_rows())
        if not args.no_warm_up:
            warm_up_series(victoria.url, province, store_url)
        stats_paths = [os.path.join(tmp, "collector-%d.json" % i) for i in range(args.collectors)]

        def start_collectors(broker):
            procs = []
            for i in range(args.collectors):
                cfg = write_config(os.path.join(tmp, "collector-%d.toml" % i), broker.url,
                                   store_url, victoria.url, client_id="bench-collector-%d" % i,
                                   batch_size=args.batch_size, batch_wait=args.batch_wait,
                                   max_pending=args.max_pending,
                                   **({"shared_group": "bench"} if args.collectors > 1 else {}))
                with open(cfg) as fh:
                    text = fh.read()
                with open(cfg, "w") as fh:
                    fh.write(text.replace("[influx]\n", "[influx]\ngzip = %s\n"
                                          % ("true" if args.gzip == "on" else "false")))
                p = subprocess.Popen([sys.executable, "-m", "schoolmon.collector.service",
                                      "--config", cfg, "--stats", stats_paths[i]],
                                     stdout=subprocess.PIPE, start_new_session=True)
                wait_ready(p)
                procs.append(p)
            time.sleep(1.0)
            return procs

        def handled():
            total = 0
            for path in stats_paths:
                s = read_json(path)
                total += s.get("stored", 0) + s.get("duplicates", 0) + s.get("rejected", 0)
            return total

        vm_cpu0 = proc_cpu(victoria.proc.pid)
        res, procs, broker = run_phase("collector", args, province, start_collectors, handled,
                                       Simulation, args.rate)
        res["timeseries_server_cpu_seconds"] = proc_cpu(victoria.proc.pid) - vm_cpu0
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        broker.stop()
        stats = [read_json(path) for path in stats_paths]
        res["latency_p50"] = max(s.get("latency_p50") or 0 for s in stats)
        res["latency_p99"] = max(s.get("latency_p99") or 0 for s in stats)
        res["stored"] = sum(s.get("stored", 0) for s in stats)
        res["duplicates"] = sum(s.get("duplicates", 0) for s in stats)
        res["collector_cpu_seconds"] = sum(s.get("cpu_seconds", 0) for s in stats)
        res["collector_stage_seconds"] = [s.get("stages") for s in stats]
        victoria.flush()
        import urllib.request
        with urllib.request.urlopen(victoria.url + "/api/v1/series/count", timeout=10) as r:
            res["vm_series"] = json.loads(r.read()).get("data")
        results.append(res)
        print("collector: %(published)d msgs, publisher %(publish_rate).0f msg/s "
              "(%(publisher_cpu_pct).0f%% CPU); stored %(stored)d (+%(duplicates)d duplicates) "
              "in %(seconds).1f s = %(rate).0f msg/s end to end; ingest-to-stored latency "
              "p50 %(latency_p50).2f s, p99 %(latency_p99).2f s" % res, flush=True)
    finally:
        victoria.stop()
        if pg is not None:
            pg.stop()
    if len(results) == 2:
        print("ratio collector / bare: %.2f" % (results[1]["rate"] / results[0]["rate"]))
    print(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "argv": sys.argv[1:],
                      "cpus": os.cpu_count(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    raise SystemExit(main())
