"""``schoolmon-agent``: collect, run, service, speedtest (enroll: a later version).

Exit status: 0 ok, 1 runtime failure, 2 bad configuration or usage (the message names
the key and what is wrong).
"""
import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

from schoolmon.protocol import ProtocolError, topic
from schoolmon.protocol.settings import ConfigError

from . import __version__
from .config import default_config_path, load_config, require_run_keys
from .families import SPECS, build_families
from .files import write_atomic
from .message import build_message, status_fields
from .runner import CommandRunner, SubprocessRunner

log = logging.getLogger("schoolmon.agent")

UNIT_NAME = "schoolmon-agent.service"
UNIT_DIR = "/etc/systemd/system"


def _setup_logging(level: str = "info") -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # paho's own logger stays quiet: it is not enabled on the client at all.


def _fail(message: str, status: int = 2) -> int:
    print("schoolmon-agent: %s" % message, file=sys.stderr)
    return status


def _runner() -> CommandRunner:
    return SubprocessRunner()


# --- collect ----------------------------------------------------------------------------

def cmd_collect(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    _setup_logging("warning")
    wanted: List[str] = args.family or [k for k, s in SPECS.items() if s.cheap]
    for kind in wanted:
        if kind not in SPECS:
            return _fail("unknown family %r (known: %s)" % (kind, ", ".join(SPECS)))
    from .identity import device_id
    from .spool import read_last_seq

    school = cfg.agent.school or "unknown"
    if not cfg.agent.school:
        print("schoolmon-agent: agent.school is not set; topics use %r" % school,
              file=sys.stderr)
    device = device_id(school, cfg.agent.state_dir, cfg.agent.device_id or cfg.mqtt.username,
                       runner=_runner(), persist=False)
    seq = read_last_seq(cfg.queue.dir)
    families = build_families(cfg, runner=_runner())
    missing = [k for k in wanted if k != "status" and k not in families]
    if args.family and missing:
        return _fail("family %s is not available in this version" % ", ".join(missing))
    for kind in wanted:
        if kind == "status":  # as the transport publishes it on connect
            fields: Dict[str, Any] = status_fields("online", __version__,
                                                   hb=cfg.intervals.health)
            msg_seq, ts = seq, time.time()
        elif kind in families:
            ts = time.time()
            fields = dict(families[kind].collect())
            if kind == "health":
                fields["q"] = 0
                fields["q_drop"] = 0
            seq += 1
            msg_seq = seq
        else:
            continue
        try:
            raw = build_message(kind, fields, msg_seq, ts, log)
        except ProtocolError as exc:
            print("schoolmon-agent: %s message would not be sent: %s" % (kind, exc),
                  file=sys.stderr)
            return 1
        line = {"topic": topic(school, device, kind), "payload": json.loads(raw)}
        print(json.dumps(line, ensure_ascii=False, separators=(",", ":")), flush=True)
    return 0


# --- speedtest --------------------------------------------------------------------------

def cmd_speedtest(args: argparse.Namespace) -> int:
    """One test now, printed like ``collect``; exit 1 when it did not complete."""
    cfg = load_config(args.config)
    _setup_logging("warning")
    from .families.speedtest import SHORT_BYTES, SpeedtestFamily
    from .identity import device_id
    from .spool import read_last_seq

    if args.server and not (args.server.startswith(("http://", "https://"))
                            and args.server.endswith("upload.php")):
        return _fail("--server: phải là địa chỉ http(s)://.../upload.php / must be an "
                     "http(s)://.../upload.php URL, got %r" % args.server)
    if args.budget is not None and not args.budget > 0:
        return _fail("--budget: phải lớn hơn 0 MB / must be more than 0 MB, got %s"
                     % args.budget)
    school = cfg.agent.school or "unknown"
    device = device_id(school, cfg.agent.state_dir, cfg.agent.device_id or cfg.mqtt.username,
                       runner=_runner(), persist=False)
    st = cfg.speedtest
    budget = st.budget if args.budget is None else int(args.budget * 10 ** 6)
    family = SpeedtestFamily(st.servers, timeout=st.timeout, io_timeout=st.io_timeout,
                             budget=budget, speedtest_net=st.speedtest_net, runner=_runner())
    cap = budget if args.mode == "full" else min(budget, SHORT_BYTES)
    print("schoolmon-agent: đo băng thông (%s), tối đa %s MB / bandwidth test (%s), at most "
          "%s MB" % (args.mode, _mb(cap, ","), args.mode, _mb(cap, ".")),
          file=sys.stderr, flush=True)
    ts = time.time()
    fields = family.run(server=args.server or "", mode=args.mode, trigger="manual")
    try:
        raw = build_message("speedtest", fields, read_last_seq(cfg.queue.dir) + 1, ts, log)
    except ProtocolError as exc:
        print("schoolmon-agent: speedtest message would not be sent: %s" % exc,
              file=sys.stderr)
        return 1
    line = {"topic": topic(school, device, "speedtest"), "payload": json.loads(raw)}
    print(json.dumps(line, ensure_ascii=False, separators=(",", ":")), flush=True)
    print(speedtest_summary(fields), file=sys.stderr, flush=True)
    if not fields.get("ok"):
        return _fail("đo băng thông không thành công / the bandwidth test failed: %s"
                     % fields.get("reason", "?"), 1)
    return 0


def _num(value: float, decimal: str, digits: int = 1) -> str:
    """``1,234.5`` (English) or ``1.234,5`` (Vietnamese, ``decimal`` ``,``)."""
    text = "{:,.{}f}".format(value, digits)
    if decimal == ",":
        text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
    return text


def _mb(n: float, decimal: str) -> str:
    """Megabytes (10^6 B, as the budgets are given), a decimal only when there is one."""
    mb = round(n / 1e6, 1)
    return _num(mb, decimal, 0 if mb == int(mb) else 1)


def _is_public(ip: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(ip).is_global
    except ValueError:
        return False


def speedtest_summary(f: Dict[str, Any]) -> str:
    """One line a person reads: Vietnamese, then English in brackets."""
    def part(dec: str, vi: bool) -> str:
        if f.get("ok"):
            ping = f.get("ping_ms") or 0.0
            head = ("Tải xuống %s Mbit/s, tải lên %s Mbit/s, độ trễ %s ms" if vi else
                    "Download %s Mbit/s, upload %s Mbit/s, latency %s ms") % (
                _num(f["down_mbps"], dec), _num(f["up_mbps"], dec),
                _num(ping, dec, 0 if ping >= 10 else 1))
        else:
            head = ("Đo không thành công (%s)" if vi else "Test failed (%s)") % f.get(
                "reason", "?")
        bits = []
        server = f.get("server_name") or f.get("server")
        if server:
            bits.append(("máy chủ %s" if vi else "server %s") % server)
        if f.get("if"):
            wired = (("có dây", "wired") if f.get("wired") is True else
                     ("không dây/di động", "wireless/mobile") if f.get("wired") is False else
                     ("không rõ có dây", "wired unknown"))
            speed = (", %s Mbit/s" % f["link_mbps"]) if f.get("link_mbps") else ""
            bits.append(("qua %s (%s%s)" if vi else "via %s (%s%s)")
                        % (f["if"], wired[0 if vi else 1], speed))
        if f.get("ip"):
            if _is_public(f["ip"]):
                bits.append(("IP công cộng %s" if vi else "public IP %s") % f["ip"])
            else:  # a server on the LAN or this PC: the address is not the school's own
                bits.append(("máy chủ thấy địa chỉ %s" if vi else "the server saw %s")
                            % f["ip"])
        if f.get("isp"):
            bits.append(("nhà mạng %s" if vi else "ISP %s") % f["isp"])
        moved = (f.get("bytes_rx") or 0) + (f.get("bytes_tx") or 0)
        bits.append(("đã dùng %s MB" if vi else "%s MB used") % _mb(moved, dec))
        return head + " — " + ", ".join(bits)

    return "%s (%s)" % (part(",", True), part(".", False))


# --- run --------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    require_run_keys(cfg)
    _setup_logging(cfg.agent.log_level)
    from .identity import device_id
    from .runtime import Runtime
    from .spool import Spool
    from .transport import Transport

    runner = _runner()
    device = device_id(cfg.agent.school, cfg.agent.state_dir,
                       cfg.agent.device_id or cfg.mqtt.username, runner=runner)
    families = build_families(cfg, runner=runner)
    lock = _single_instance(cfg.queue.dir)
    if lock is False:
        return _fail("another schoolmon-agent is already running with the queue %s"
                     % cfg.queue.dir, 1)
    spool = Spool(cfg.queue.dir, cfg.queue.max_bytes, cfg.queue.max_age_days * 86400.0)
    transport = Transport(cfg, cfg.agent.school, device, spool)
    runtime = Runtime(cfg, cfg.agent.school, device, families, spool, notify=transport.notify)
    if "speedtest" in families:
        from .commands import CommandHandler

        transport.on_command = CommandHandler(runtime, families["speedtest"],
                                              cfg.agent.state_dir, cfg.speedtest.enabled)
    for name in ("SIGTERM", "SIGINT", "SIGBREAK", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            try:
                signal.signal(sig, runtime.request_stop)
            except (ValueError, OSError):
                pass
    log.info("schoolmon-agent %s starting: device %s, school %s, broker %s, queue %s "
             "(%d message(s) waiting, last seq %d)", __version__, device, cfg.agent.school,
             _safe_url(cfg.mqtt.url), cfg.queue.dir, spool.count, spool.seq)
    transport.start()
    try:
        runtime.run()
    finally:
        log.info("stopping")
        transport.stop()
        spool.close()
        log.info("stopped (%d message(s) kept in the queue)", spool.count)
    return 0


def _single_instance(folder: str) -> Any:
    """Hold a lock file in the queue folder for the life of the process: two agents with
    one device id would take each other's MQTT session over forever. Returns the open
    file (keep it), False when another process holds it, None when locking is not
    possible here (then we run anyway)."""
    try:
        os.makedirs(folder, exist_ok=True)
        fh = open(os.path.join(folder, "agent.lock"), "a+")  # noqa: SIM115 - held open
    except OSError:
        return None
    try:
        if sys.platform.startswith("win"):
            import msvcrt

            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return False
    return fh


def _safe_url(url: str) -> str:
    """The broker URL without any user:password@ part."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    return "%s://%s%s" % (parts.scheme, host, ":%d" % parts.port if parts.port else "")


# --- service ----------------------------------------------------------------------------

def unit_text(config_path: str, exe: str) -> str:
    return """[Unit]
Description=schoolmon agent (school PC health, inventory, security and Internet link over MQTT)
Documentation=https://github.com/schoolmon/schoolmon
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={exe} run --config {config}
Restart=always
RestartSec=10
# The agent publishes its clean "offline" on SIGTERM, then exits.
KillSignal=SIGTERM
TimeoutStopSec=20
Nice=10
IOSchedulingClass=idle
StateDirectory=schoolmon
ConfigurationDirectory=schoolmon

[Install]
WantedBy=multi-user.target
""".format(exe=exe, config=config_path)


def _systemctl(*argv: str) -> int:
    if not shutil.which("systemctl"):
        print("systemctl not found: the unit file is written, start it yourself",
              file=sys.stderr)
        return 0
    return subprocess.call(["systemctl"] + list(argv))


def cmd_service(args: argparse.Namespace) -> int:
    if sys.platform.startswith("win"):
        return _fail("service: the Windows service is not available in this build; run "
                     "`schoolmon-agent run` from the Task Scheduler meanwhile")
    unit_path = os.path.join(args.unit_dir, UNIT_NAME)
    config_path = os.path.abspath(args.config or default_config_path())
    if args.action == "install":
        cfg = load_config(config_path, require_file=True)  # exit 2 before installing junk
        require_run_keys(cfg)
        exe = shutil.which("schoolmon-agent") or os.path.abspath(sys.argv[0])
        os.makedirs(args.unit_dir, exist_ok=True)
        write_atomic(unit_path, unit_text(config_path, exe))
        print("wrote %s" % unit_path)
        if args.no_systemctl:
            return 0
        rc = _systemctl("daemon-reload") or _systemctl("enable", "--now", UNIT_NAME)
        return 1 if rc else 0
    if args.action == "uninstall":
        if not args.no_systemctl and os.path.exists(unit_path):
            _systemctl("disable", "--now", UNIT_NAME)
        try:
            os.unlink(unit_path)
            print("removed %s" % unit_path)
        except FileNotFoundError:
            print("%s is not installed" % unit_path)
        if not args.no_systemctl:
            _systemctl("daemon-reload")
        return 0
    # status
    if not os.path.exists(unit_path):
        print("not installed (%s does not exist)" % unit_path)
        return 3
    print("installed: %s" % unit_path)
    if args.no_systemctl or not shutil.which("systemctl"):
        return 0
    return subprocess.call(["systemctl", "status", "--no-pager", UNIT_NAME])


def cmd_later(args: argparse.Namespace) -> int:
    return _fail("%s is not available in this version of the agent" % args.command)


# --- main -------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="schoolmon-agent",
        description="schoolmon agent %s: báo về qua MQTT tình trạng, cấu hình, an toàn thông "
                    "tin của máy này và kết nối Internet của trường (đo nhẹ, đo băng thông, "
                    "router) / reports this PC's health, inventory and security, and the "
                    "school's Internet link (light probe, bandwidth test, router), over MQTT"
                    % __version__)
    p.add_argument("--version", action="version", version="schoolmon-agent " + __version__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE",
                        help="configuration file (default %s)" % default_config_path())
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser("collect", parents=[common], help="collect once and print the "
                       "messages that would be published (no broker)")
    c.add_argument("--family", action="append", metavar="NAME",
                   help="family to collect, repeatable: %s (default: every one but "
                   "speedtest; router only with router.host; probe without mqtt.url or "
                   "probe.domestic_url has no domestic check)" % ", ".join(SPECS))
    c.set_defaults(func=cmd_collect)

    r = sub.add_parser("run", parents=[common], help="the service's main loop")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("service", parents=[common], help="install, uninstall or show the "
                       "system service")
    s.add_argument("action", choices=("install", "uninstall", "status"))
    s.add_argument("--unit-dir", default=UNIT_DIR, help=argparse.SUPPRESS)
    s.add_argument("--no-systemctl", action="store_true", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_service)

    e = sub.add_parser("enroll", parents=[common], help="(not in this version)")
    e.add_argument("--collector", metavar="URL")
    e.add_argument("--token", metavar="TOKEN")
    e.set_defaults(func=cmd_later)

    t = sub.add_parser("speedtest", parents=[common], help="one bandwidth test now, printed "
                       "like collect")
    t.add_argument("--server", metavar="URL", help="a legacy speedtest server by its "
                   "upload.php URL (default: speedtest.net, then speedtest.servers)")
    t.add_argument("--mode", choices=("full", "short"), default="full",
                   help="full: 10 s each way; short: at most 10 MB in all (use it on a "
                   "metered 3G/4G link)")
    t.add_argument("--budget", type=float, metavar="MB",
                   help="most megabytes (10^6 B) the test may move (default "
                   "speedtest.budget, 500 MB)")
    t.set_defaults(func=cmd_speedtest)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        return _fail("configuration error: %s" % exc)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
