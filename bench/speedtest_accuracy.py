"""Bandwidth-test accuracy on emulated school links (docs/benchmarks.md, "Bandwidth test
accuracy").

Two network namespaces joined by a veth pair; each direction shaped with ``tc tbf`` (the
server side's egress is the school's download, the client side's its upload; ``netem`` is
not available here). The collector's own test server (create_app under uvicorn, exactly as
the collector serves ``/speedtest/``) runs in one namespace; in the other run the agent's
``speedtest`` family and, as the baseline, bare speedtest-cli 2.1.3 (its own download and
upload with speedtest.net's usual configuration, pointed at the same server). Prints
measured vs link as % error per direction and the bytes each test used.

Needs root and ``ip netns``. Every namespace is named uniquely per run and removed at the
end, also on failure or Ctrl-C.

    sudo .venv/bin/python bench/speedtest_accuracy.py [--links 20/5,100/30,300/100]
         [--no-bare] [--json]
"""
import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PORT = 8080
#: tbf's queue: how long a packet may wait (a school router's buffer is of this order).
TBF_LATENCY_MS = 50


def available() -> Optional[str]:
    """None when the bench can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and tc)"
    if not shutil.which("ip") or not shutil.which("tc"):
        return "needs iproute2 (ip, tc)"
    name = "spdchk%s" % uuid.uuid4().hex[:6]
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode:
        return "ip netns does not work here: %s" % r.stderr.strip()
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def _sh(*argv: str) -> None:
    r = subprocess.run(list(argv), capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.strip()))


def _burst(mbit: float) -> int:
    """tbf's bucket: 64 KiB plus 1 ms at the rate. veth hands tbf GSO super-packets of up to
    64 KiB (no ethtool here to turn GSO off), and a bucket smaller than one packet drops it;
    against 10 s of test the bucket is at most 0.5 % of the bytes at 5 Mbit."""
    return 65536 + int(mbit * 1e6 / 8 * 0.001)


@contextlib.contextmanager
def link(down_mbit: float, up_mbit: float) -> Iterator[Tuple[str, str, str]]:
    """(server netns, client netns, server address) of a shaped veth link; removed after."""
    tag = uuid.uuid4().hex[:6]
    srv, cli = "spds%s" % tag, "spdc%s" % tag
    made: List[str] = []
    try:
        for ns in (srv, cli):
            _sh("ip", "netns", "add", ns)
            made.append(ns)
        _sh("ip", "link", "add", "vs" + tag, "type", "veth", "peer", "name", "vc" + tag)
        _sh("ip", "link", "set", "vs" + tag, "netns", srv)
        _sh("ip", "link", "set", "vc" + tag, "netns", cli)
        for ns, dev, addr, rate in ((srv, "vs" + tag, "10.201.0.1/24", down_mbit),
                                    (cli, "vc" + tag, "10.201.0.2/24", up_mbit)):
            _sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            _sh("ip", "-n", ns, "link", "set", dev, "up")
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
            _sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf",
                "rate", "%gmbit" % rate, "burst", str(_burst(rate)),
                "latency", "%dms" % TBF_LATENCY_MS)
        yield srv, cli, "10.201.0.1"
    finally:
        for ns in made:  # deleting a namespace removes its end of the veth, so both
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _python(ns: str, *args: str, **kw: Any) -> List[str]:
    return ["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__)] + list(args)


@contextlib.contextmanager
def server(ns: str, host: str) -> Iterator[str]:
    """The collector's app under uvicorn in ``ns``; yields its upload.php URL."""
    folder = tempfile.mkdtemp(prefix="spdbench")
    log = open(os.path.join(folder, "server.log"), "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(_python(ns, "--serve", host, str(PORT), folder), stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        ready = os.path.join(folder, "ready")
        deadline = time.monotonic() + 60
        while not os.path.exists(ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                with open(log.name) as fh:
                    raise RuntimeError("test server did not start: %s" % fh.read()[-2000:])
            time.sleep(0.05)
        yield "http://%s:%d/speedtest/upload.php" % (host, PORT)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _serve(host: str, port: int, folder: str) -> None:
    sys.path.insert(0, ROOT)
    import signal

    from schoolmon.collector.api import create_app
    from schoolmon.collector.api.server import ApiServer
    from schoolmon.collector.config import load_config
    from schoolmon.collector.store import schema as db
    from schoolmon.collector.store.writer import StateStore

    cfg = load_config(env={}, demo=True)
    store = StateStore(db.make_engine("sqlite:///%s" % os.path.join(folder, "state.db")))
    srv = ApiServer(create_app(store, cfg), host, port).start()
    open(os.path.join(folder, "ready"), "w").close()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    srv.stop()


def client(ns: str, which: str, url: str, mode: str = "full") -> Dict[str, Any]:
    out = subprocess.run(_python(ns, "--client", which, url, mode), capture_output=True,
                         text=True, timeout=300)
    if out.returncode:
        raise RuntimeError("%s client failed: %s" % (which, out.stderr[-2000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _client(which: str, url: str, mode: str) -> None:
    if which == "agent":
        from schoolmon.agent.families.speedtest import SpeedtestFamily

        r = SpeedtestFamily(speedtest_net=False).run(server=url, mode=mode, budget=10 ** 10)
        print(json.dumps(r))
        return
    print(json.dumps(bare(url)))


def bare(url: str) -> Dict[str, Any]:
    """Bare speedtest-cli 2.1.3: its own transfers, with the configuration speedtest.net
    serves (download: 4 requests per size, 10 s; upload: ratio 5, 50 chunks, 2 threads,
    10 s; threadcount 4), pointed at ``url`` without speedtest.net."""
    import speedtest

    class Bare(speedtest.Speedtest):
        def get_config(self) -> Dict[str, Any]:
            up_sizes = [32768, 65536, 131072, 262144, 524288, 1048576, 7340032]
            sizes = {"upload": up_sizes[5 - 1:],
                     "download": [350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000]}
            count = int(-(-50 // len(sizes["upload"])))
            self.config.update({
                "client": {"ip": "", "isp": "", "lat": "0", "lon": "0"},
                "ignore_servers": [], "sizes": sizes,
                "counts": {"upload": count, "download": 4},
                "threads": {"upload": 2, "download": 8},
                "length": {"upload": 10, "download": 10},
                "upload_max": count * len(sizes["upload"])})
            self.lat_lon = (0.0, 0.0)
            return self.config

    st = Bare(timeout=10)
    srv = {"url": url, "name": "bench", "sponsor": "", "id": "0", "d": 0}
    st.get_best_server([srv])
    down = st.download()
    up = st.upload()
    return {"down_mbps": down / 1e6, "up_mbps": up / 1e6,
            "bytes_rx": st.results.bytes_received, "bytes_tx": st.results.bytes_sent}


def run(links: List[Tuple[float, float]], with_bare: bool = True) -> List[Dict[str, Any]]:
    rows = []
    for down, up in links:
        with link(down, up) as (srv_ns, cli_ns, host), server(srv_ns, host) as url:
            for which in (("agent", "bare") if with_bare else ("agent",)):
                r = client(cli_ns, which, url)
                rows.append({
                    "link": "%g/%g" % (down, up), "client": which,
                    "down_mbps": r.get("down_mbps"), "up_mbps": r.get("up_mbps"),
                    "down_err_pct": _err(r.get("down_mbps"), down),
                    "up_err_pct": _err(r.get("up_mbps"), up),
                    "mb": round((r.get("bytes_rx", 0) + r.get("bytes_tx", 0)) / 1e6, 1),
                    "ok": r.get("ok", True), "reason": r.get("reason")})
    return rows


def _err(got: Optional[float], want: float) -> Optional[float]:
    return None if got is None else round((got - want) / want * 100.0, 1)


def table(rows: List[Dict[str, Any]]) -> str:
    lines = ["| link (Mbit down/up) | client | down Mbit/s | error | up Mbit/s | error | MB "
             "per test |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            r["link"], "schoolmon agent" if r["client"] == "agent" else "bare speedtest-cli",
            _f(r["down_mbps"]), _pct(r["down_err_pct"]), _f(r["up_mbps"]),
            _pct(r["up_err_pct"]), r["mb"]))
    return "\n".join(lines)


def _f(v: Optional[float]) -> str:
    return "—" if v is None else "%.1f" % v


def _pct(v: Optional[float]) -> str:
    return "—" if v is None else "%+.1f %%" % v


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--links", default="20/5,100/30,300/100")
    p.add_argument("--no-bare", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    p.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.serve:
        _serve(a.serve[0], int(a.serve[1]), a.serve[2])
        return 0
    if a.client:
        _client(*a.client)
        return 0
    why = available()
    if why:
        print("speedtest_accuracy: %s" % why, file=sys.stderr)
        return 2
    links = [tuple(float(x) for x in pair.split("/")) for pair in a.links.split(",")]
    rows = run(links, not a.no_bare)  # type: ignore[arg-type]
    print(json.dumps(rows, indent=1) if a.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
