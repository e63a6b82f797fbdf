"""``schoolmon-collector``: the collector's command line.

    schoolmon-collector run [--config FILE]        ingest + API + web page (Ctrl-C / SIGTERM stop)
    schoolmon-collector demo [...]                 the whole system on embedded defaults
    schoolmon-collector schools import FILE [--dry-run] [--config FILE]
    schoolmon-collector db upgrade|current [--config FILE]   the state store's schema revision
    schoolmon-collector simulate --broker URL --schools N --devices-per-school M [--rate R]

    schoolmon-collector user add NAME --role ROLE [--unit CODE ...] [--password-file FILE]
    schoolmon-collector user list | user disable NAME | user token NAME
    schoolmon-collector device approve|retire ID      (revoke: not available yet, exit 2)
    schoolmon-collector unit rename CODE NAME | unit former CODE [--undo]
    schoolmon-collector notify test [--channel email|apprise|webhook|zalo|all] [--to RECIPIENT]

``report`` and ``token create`` come with later versions: they say so and exit 2.
Exit status: 0 done, 1 the work failed (e.g. an import was rejected), 2 bad usage or
configuration (the message names the key).

This module must stay importable on old Pythons (no 3.10+ syntax at module level) so that
it can say clearly that the collector needs Python 3.11 or newer.
"""
import argparse
import os
import sys
from typing import Any, List, Optional, Tuple

PROG = "schoolmon-collector"
NOT_YET = ("report", "token")


def _err(msg: str) -> None:
    sys.stderr.write("%s: %s\n" % (PROG, msg))
    sys.stderr.flush()


def _check_python() -> Optional[int]:
    if sys.version_info < (3, 11):
        _err("the collector needs Python 3.11 or newer; this is Python %d.%d (%s). "
             "Install python3.11 and run `make demo` / `make test` again (the agent alone "
             "runs on 3.8+)." % (sys.version_info[0], sys.version_info[1], sys.executable))
        return 2
    return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="schoolmon collector: ingest, state "
                                "store, REST API and web UI for a Sở GD&ĐT.")
    from . import __version__
    p.add_argument("--version", action="version", version="%s %s" % (PROG, __version__))
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser("run", help="run the collector (ingest, API, web UI)")
    r.add_argument("--config", metavar="FILE", help="TOML configuration file")

    d = sub.add_parser("demo", help="run everything on embedded defaults (make demo)")
    d.add_argument("--dir", metavar="DIR", default=os.environ.get("SCHOOLMON_DEMO_DIR",
                                                                   os.path.join("var", "demo")),
                   help="folder for the demo's state store, broker and agent files "
                        "(default ./var/demo; emptied at start)")
    d.add_argument("--config", metavar="FILE", help="optional TOML file (e.g. mqtt.url of "
                   "an existing broker); demo defaults fill the rest")
    d.add_argument("--schools", type=int, default=36, metavar="N",
                   help="simulated schools (default 36)")
    d.add_argument("--devices-per-school", type=int, default=9, metavar="M",
                   help="simulated devices per school (default 9)")
    d.add_argument("--rate", type=float, default=None, metavar="R",
                   help="simulated health messages per second for the whole fleet "
                        "(default: each device every 15 s)")
    d.add_argument("--broker", choices=("auto", "mosquitto", "amqtt"), default="auto",
                   help="embedded broker when mqtt.url is not set: a private Mosquitto when "
                        "installed (auto), or amqtt in-process (MQTT 3.1.1 clients only)")
    d.add_argument("--mqtt-port", type=int, default=0, metavar="PORT",
                   help="port of the embedded broker (default: a free one)")
    d.add_argument("--no-agent", action="store_true", help="do not start the local agent")
    d.add_argument("--settle", type=float,
                   default=float(os.environ.get("SCHOOLMON_DEMO_SETTLE", "30")), metavar="S",
                   help="longest wait, seconds, for the fleet to show up before the summary "
                        "is printed (default 30; env SCHOOLMON_DEMO_SETTLE)")
    d.add_argument("--duration", type=float, default=None, help=argparse.SUPPRESS)

    s = sub.add_parser("schools", help="the school registry")
    ssub = s.add_subparsers(dest="schools_command", metavar="ACTION")
    ssub.required = True
    si = ssub.add_parser("import", help="import schools from CSV or XLSX (all or nothing)")
    si.add_argument("file", metavar="FILE")
    si.add_argument("--dry-run", action="store_true",
                    help="check and report every row, change nothing")
    si.add_argument("--config", metavar="FILE", help="TOML configuration file (store.url)")
    si.add_argument("--lang", choices=("vi", "en"), default="vi",
                    help="language of the report (default vi)")

    b = sub.add_parser("db", help="the state store's schema (migrations)")
    bsub = b.add_subparsers(dest="db_command", metavar="ACTION")
    bsub.required = True
    for name, text in (("upgrade", "bring the database to the newest schema revision"),
                       ("current", "print the database's schema revision")):
        x = bsub.add_parser(name, help=text)
        x.add_argument("--config", metavar="FILE", help="TOML configuration file (store.url)")
    x = bsub.add_parser("backup", help="(not available in this version)")
    x.add_argument("file", metavar="FILE")

    m = sub.add_parser("simulate", help="a simulated fleet speaking the real wire format")
    m.add_argument("--broker", required=True, metavar="URL", help="mqtt://host:port")
    m.add_argument("--schools", type=int, required=True, metavar="N")
    m.add_argument("--devices-per-school", type=int, required=True, metavar="M")
    m.add_argument("--rate", type=float, default=None, metavar="R",
                   help="health messages per second for the whole fleet (default: each "
                        "device every 60 s)")
    m.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: until Ctrl-C)")
    m.add_argument("--no-connectivity", action="store_true",
                   help="no probe, router or speedtest messages and no command subscription "
                        "(the message mix of the ingest benchmark)")
    m.add_argument("--seed", type=int, default=1)

    u = sub.add_parser("user", help="web users and their personal API tokens")
    usub = u.add_subparsers(dest="user_command", metavar="ACTION")
    usub.required = True
    ua = usub.add_parser("add", help="add a user (password from a prompt, --password-file "
                         "or SCHOOLMON_USER_PASSWORD; never the command line)")
    ua.add_argument("name", metavar="NAME")
    ua.add_argument("--role", required=True,
                    choices=("so_admin", "so_viewer", "area_officer", "school_tech"))
    ua.add_argument("--unit", action="append", default=[], metavar="CODE",
                    help="area code (org unit) or school code the user is limited to "
                         "(area_officer, school_tech); repeat for more")
    ua.add_argument("--password-file", metavar="FILE",
                    help="read the password from the first line of FILE")
    ul = usub.add_parser("list", help="list users")
    ud = usub.add_parser("disable", help="disable a user: sessions and tokens refused at once")
    ud.add_argument("name", metavar="NAME")
    ut = usub.add_parser("token", help="print a new personal API token (shown once)")
    ut.add_argument("name", metavar="NAME")
    for x in (ua, ul, ud, ut):
        x.add_argument("--config", metavar="FILE", help="TOML configuration file (store.url)")

    dv = sub.add_parser("device", help="approve or retire a device")
    dsub = dv.add_subparsers(dest="device_command", metavar="ACTION")
    dsub.required = True
    for name, text in (("approve", "approve a pending device"),
                       ("retire", "retire a device (kept in history, no longer counted)"),
                       ("revoke", "(not available in this version: comes with enrollment)")):
        x = dsub.add_parser(name, help=text)
        x.add_argument("id", metavar="ID")
        x.add_argument("--config", metavar="FILE", help="TOML configuration file (store.url)")

    un = sub.add_parser("unit", help="org units: rename keeping history, mark former")
    nsub = un.add_subparsers(dest="unit_command", metavar="ACTION")
    nsub.required = True
    nr = nsub.add_parser("rename", help="rename an org unit (same id; the old name is kept)")
    nr.add_argument("code", metavar="CODE")
    nr.add_argument("name", metavar="NAME")
    nf = nsub.add_parser("former", help="mark an org unit former ('(cũ)', 2025 reform)")
    nf.add_argument("code", metavar="CODE")
    nf.add_argument("--undo", action="store_true", help="mark it current again")
    for x in (nr, nf):
        x.add_argument("--config", metavar="FILE", help="TOML configuration file (store.url)")

    st = sub.add_parser("speedtest", help="bandwidth tests: ask for one now (Đo ngay)")
    stsub = st.add_subparsers(dest="speedtest_command", metavar="ACTION")
    stsub.required = True
    sr = stsub.add_parser("request", help="grant the school's test lease now to the device "
                          "the scheduler would choose and send it the test (exit 1 with "
                          "the reason when refused)")
    sr.add_argument("--school", metavar="CODE", required=True, help="the school's code")
    sr.add_argument("--config", metavar="FILE", help="TOML configuration file (store.url, "
                    "mqtt.*, connectivity.*)")

    bl = sub.add_parser("baseline", help="the baseline files (ATTT checks and school rule, "
                        "OS support, connectivity)")
    blsub = bl.add_subparsers(dest="baseline_command", metavar="ACTION")
    blsub.required = True
    bc = blsub.add_parser("check", help="check a baseline file and print its checks "
                          "(exit 2 with the line and the reason when it cannot be used)")
    bc.add_argument("file", metavar="FILE", nargs="?",
                    help="the file (default: baseline.attt_file, else the shipped one)")
    bc.add_argument("--config", metavar="FILE", help="TOML configuration file")
    bc.add_argument("--os-support", metavar="FILE", help="an OS support table to check too")
    bc.add_argument("--connectivity", metavar="FILE", help="a connectivity baseline to check "
                    "(default: baseline.connectivity_file, else the shipped one)")
    bc.add_argument("--lang", choices=("vi", "en"), default="vi")

    ca = sub.add_parser("calendar", help="the school calendar (school hours, holidays)")
    casub = ca.add_subparsers(dest="calendar_command", metavar="ACTION")
    casub.required = True
    cc = casub.add_parser("check", help="check a calendar file and print the school years "
                          "and holidays, and for a date whether it is a school day (exit 1 "
                          "with the line and the reason when the file cannot be used)")
    cc.add_argument("--file", metavar="FILE", help="the file (default: "
                    "alerting.calendar_file, else the shipped one)")
    cc.add_argument("--config", metavar="FILE", help="TOML configuration file")
    cc.add_argument("--school", metavar="CODE", help="a school's code: its overrides")
    cc.add_argument("--area", metavar="UNIT", help="the school's org unit code (its "
                    "area's overrides; read from the store when --school is given)")
    cc.add_argument("--date", metavar="YYYY-MM-DD", help="a day to show (default: today)")
    cc.add_argument("--lang", choices=("vi", "en"), default="vi")
    nt = sub.add_parser("notify", help="notifications: send a test message now")
    ntsub = nt.add_subparsers(dest="notify_command", metavar="ACTION")
    ntsub.required = True
    ntt = ntsub.add_parser("test", help="enqueue and send one test message in Vietnamese on "
                           "each channel now; prints ✓/✗ with the reason (exit 1 if any "
                           "failed)")
    ntt.add_argument("--channel", choices=("email", "apprise", "webhook", "zalo", "all"),
                     default="all")
    ntt.add_argument("--to", metavar="RECIPIENT", help="e-mail address (email), Zalo chat id "
                     "(zalo) or Apprise URL name (apprise; default: every URL)")
    ntt.add_argument("--config", metavar="FILE", help="TOML configuration file (notify.*, "
                     "store.url)")
    ntt.add_argument("--lang", choices=("vi", "en"), default="vi")

    for name, usage in (("report", "report --format xlsx|csv --out FILE [--org UNIT]"),
                        ("token", "token create --school CODE [--ttl DAYS]")):
        x = sub.add_parser(name, help="(not available in this version)", usage=usage)
        x.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def _config_error(exc: Exception) -> int:
    _err("lỗi cấu hình / configuration error: %s" % exc)
    return 2


def cmd_run(args: argparse.Namespace) -> int:
    import logging

    from schoolmon.protocol.settings import ConfigError

    from .config import load_config
    try:
        cfg = load_config(args.config, demo=False)
    except ConfigError as exc:
        return _config_error(exc)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .api.app import create_app
    from .api.server import ApiServer, split_listen
    from .mqtt import ClientIdTaken
    from .service import CollectorService, tune_gc
    from .signals import stop_on_signals

    stop, restore_signals = stop_on_signals()
    service = None
    server = None
    try:
        try:
            service = CollectorService(cfg)
            service.start()
        except (ConfigError, ClientIdTaken) as exc:
            service = None
            return _config_error(exc)
        tune_gc()
        # The overview's 30-day trend and the province's counts, counted before the first
        # visitor asks for them (seconds at province scale).
        from .read.summary import warm
        from .store import StateStore
        if isinstance(service.store, StateStore):
            warm(service.store.engine, cfg.province.timezone)
        host, port = split_listen(cfg.api.listen)
        try:
            server = ApiServer(create_app(service, cfg), host, port, log_level="info").start()
        except RuntimeError as exc:
            _err(str(exc))
            return 2
        print("%s: API and web UI on %s (OpenAPI: %s/docs)" % (PROG, server.url, server.url),
              flush=True)
        stop.wait()
        print("%s: stopping" % PROG, flush=True)
        return 0
    finally:
        if server is not None:
            server.stop()
        if service is not None:
            service.stop()
        restore_signals()


def cmd_schools_import(args: argparse.Namespace) -> int:
    from schoolmon.protocol.settings import ConfigError, load

    from .config import SCHEMA
    try:
        # No API is served here: the admin-token rule of `run` does not apply.
        cfg = load(SCHEMA, args.config)
    except ConfigError as exc:
        return _config_error(exc)
    if not os.path.isfile(args.file):
        _err("%s: no such file" % args.file)
        return 2
    from .store import schema as db
    from .store.schools_import import import_schools
    # A dry run writes nothing: it neither creates a SQLite file nor upgrades the schema.
    missing = args.dry_run and not db.database_exists(cfg.store.url)
    engine = None if missing else db.make_engine(cfg.store.url)
    try:
        if engine is not None and not args.dry_run:
            db.create_all(engine)
        report = import_schools(engine, args.file, args.dry_run)
    except ConfigError as exc:
        return _config_error(exc)
    except ValueError as exc:  # unreadable file: wrong format, no header ...
        _err("%s: %s" % (args.file, exc))
        return 1
    finally:
        if engine is not None:
            engine.dispose()
    if report.ok and not args.dry_run and engine is not None:
        from .store import audit
        with engine.begin() as conn:
            audit.record(conn, _cli_actor(), "schools_import", os.path.basename(args.file),
                         {"file": os.path.abspath(args.file)})
        engine.dispose()
    text = report.text(args.lang)
    if text:
        print(text, flush=True)
    return 0 if report.ok else 1


def cmd_db(args: argparse.Namespace) -> int:
    if args.db_command == "backup":
        _err("`db backup` is not available in this version (use the database's own tools: "
             "sqlite3 .backup, pg_dump)")
        return 2
    from schoolmon.protocol.settings import ConfigError, load

    from .config import SCHEMA
    try:
        cfg = load(SCHEMA, args.config)
    except ConfigError as exc:
        return _config_error(exc)
    from .store import migrate
    from .store import schema as db
    engine = db.make_engine(cfg.store.url)
    try:
        if args.db_command == "upgrade":
            before = migrate.current(engine)
            after = migrate.upgrade(engine)
            print("%s → %s" % (before or "(none)", after), flush=True)
        else:
            rev = migrate.current(engine)
            print("%s%s" % (rev or "(none)", " (head)" if rev == migrate.head() else
                            " (head: %s)" % migrate.head()), flush=True)
    finally:
        engine.dispose()
    return 0


def _cli_actor() -> str:
    """Who the audit log names for a command run on the server: ``cli:<OS user>``."""
    import getpass
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _store_engine(args: argparse.Namespace) -> Tuple[Optional[Any], int]:
    """(engine at the newest schema, 0) or (None, exit status) after saying what is wrong."""
    from schoolmon.protocol.settings import ConfigError, load

    from .config import SCHEMA
    try:
        cfg = load(SCHEMA, args.config)
    except ConfigError as exc:
        return None, _config_error(exc)
    from .store import schema as db
    engine = db.make_engine(cfg.store.url)
    db.create_all(engine)
    return engine, 0


def _read_password(args: argparse.Namespace) -> Optional[str]:
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    env = os.environ.get("SCHOOLMON_USER_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():
        return None
    import getpass
    first = getpass.getpass("Mật khẩu / password: ")
    if getpass.getpass("Nhập lại / again: ") != first:
        _err("the two passwords differ")
        return None
    return first


def cmd_user(args: argparse.Namespace) -> int:
    from .store import audit
    from .store import users as user_store
    from .text import message
    if args.user_command == "add":
        try:
            password = _read_password(args)
        except OSError as exc:
            _err("--password-file: %s" % exc)
            return 2
        if not password:
            _err("no password: give --password-file FILE, set SCHOOLMON_USER_PASSWORD or "
                 "run in a terminal to be asked")
            return 2
    engine, status = _store_engine(args)
    if engine is None:
        return status
    actor = _cli_actor()
    try:
        with engine.begin() as conn:
            if args.user_command == "add":
                user = user_store.add_user(conn, args.name, args.role, password, args.unit)
                audit.record(conn, actor, "user_add", user.name,
                             {"role": user.role, "units": [c for _, c in user.units]})
                print("%s: user %s (%s%s) added" % (PROG, user.name, user.role,
                      "; " + ", ".join(c for _, c in user.units) if user.units else ""))
            elif args.user_command == "list":
                for u in user_store.list_users(conn):
                    print("%-24s %-13s %-9s %s" % (u["name"], u["role"],
                          "disabled" if u["disabled"] else "active", " ".join(u["units"])))
            elif args.user_command == "disable":
                user_store.disable_user(conn, args.name)
                audit.record(conn, actor, "user_disable", args.name)
                print("%s: user %s disabled; sessions and tokens refused" % (PROG, args.name))
            else:
                user, token = user_store.create_token(conn, args.name)
                audit.record(conn, actor, "token_create", user.name)
                print(token)
                _err("personal token of %s (%s): shown once, store it now" % (user.name,
                                                                               user.role))
    except user_store.UserError as exc:
        _err("%s%s" % (message(exc.code, "en"), " (%s)" % exc.detail if exc.detail else ""))
        return 1
    finally:
        engine.dispose()
    return 0


def cmd_device(args: argparse.Namespace) -> int:
    if args.device_command == "revoke":
        _err("`device revoke` is not available in this version (it comes with enrollment)")
        return 2
    engine, status = _store_engine(args)
    if engine is None:
        return status
    from .store import audit, registry
    try:
        with engine.begin() as conn:
            found = registry.device_school(conn, args.id)
            if found is None:
                _err("no device %r" % args.id)
                return 1
            if args.device_command == "approve" and found[1] == "retired":
                _err("device %s is retired" % args.id)
                return 1
            state = "active" if args.device_command == "approve" else "retired"
            registry.set_device_state(conn, args.id, state)
            audit.record(conn, _cli_actor(), "device_" + args.device_command, args.id,
                         {"school": found[0], "from": found[1]})
        print("%s: device %s %s" % (PROG, args.id, state))
    finally:
        engine.dispose()
    return 0


def cmd_unit(args: argparse.Namespace) -> int:
    engine, status = _store_engine(args)
    if engine is None:
        return status
    from .store import audit, registry
    try:
        with engine.begin() as conn:
            if args.unit_command == "rename":
                done = registry.rename_unit(conn, args.code, args.name)
                if done is None:
                    _err("no org unit %r" % args.code)
                    return 1
                audit.record(conn, _cli_actor(), "unit_rename", args.code,
                             {"from": done[0], "to": done[1]})
                print("%s: %s renamed %r → %r" % (PROG, args.code, done[0], done[1]))
            else:
                if not registry.set_unit_former(conn, args.code, not args.undo):
                    _err("no org unit %r" % args.code)
                    return 1
                audit.record(conn, _cli_actor(), "unit_former", args.code,
                             {"former": not args.undo})
                print("%s: %s %s" % (PROG, args.code, "current" if args.undo else "former"))
    finally:
        engine.dispose()
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import logging

    from schoolmon.protocol.settings import check_mqtt_url
    problem = check_mqtt_url(args.broker) if args.broker else "must be set"
    if problem:
        _err("--broker: %s" % problem)
        return 2
    for name in ("schools", "devices_per_school"):
        if getattr(args, name) < 1:
            _err("--%s: must be at least 1" % name.replace("_", "-"))
            return 2
    if args.rate is not None and not args.rate > 0:
        _err("--rate: must be more than 0")
        return 2
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .signals import stop_on_signals
    from .simulate import run_simulation
    stop, restore_signals = stop_on_signals()
    try:
        stats = run_simulation(args.broker, schools=args.schools,
                               devices_per_school=args.devices_per_school, rate=args.rate,
                               duration=args.duration, stop_event=stop, seed=args.seed,
                               connectivity=not args.no_connectivity)
    finally:
        restore_signals()
    print("%s simulate: %d messages sent, %d acknowledged by the broker (%d health) in "
          "%.1f s, %.0f msg/s, %d reconnects"
          % (PROG, stats.sent, stats.acked, stats.health_sent, stats.elapsed, stats.rate,
             stats.reconnects), flush=True)
    if not stats.connected:
        _err("could not connect to the broker %s (%s)" % (args.broker, stats.connect_error))
        return 1
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    """``baseline check [FILE]``: the checks in force, or the file's error (exit 2)."""
    from schoolmon.protocol.settings import ConfigError

    from .baseline import load_baseline, load_os_table
    from .connectivity.baseline import load_connectivity
    from .text import SEVERITY_LABELS, label
    path = args.file
    os_path = args.os_support
    conn_path = args.connectivity
    if path is None or os_path is None or conn_path is None:
        from .config import load_config
        try:
            cfg = load_config(args.config, demo=True)
        except ConfigError as exc:
            return _config_error(exc)
        path = path or cfg.baseline.attt_file or None
        os_path = os_path or cfg.baseline.os_support_file or None
        conn_path = conn_path or cfg.baseline.connectivity_file or None
    try:
        b = load_baseline(path)
        table = load_os_table(os_path)
        cb = load_connectivity(conn_path)
    except ConfigError as exc:
        _err(str(exc))
        return 2
    lang = args.lang
    print("%s (%s) sha256 %s" % (b.source, "ok", b.hash))
    for c in b.checks:
        by_role = "".join(", %s: %s" % (r, s) for r, s in sorted(c.severity_by_role.items()))
        print("- %s [%s%s] %s" % (c.id, label(SEVERITY_LABELS, c.severity, lang), by_role,
                                  c.title[lang]))
        print("    roles: %s; os: %s" % (", ".join(c.roles), ", ".join(c.os)))
        print("    pass: %s" % c.passes.text)
        if c.warn is not None:
            print("    warn: %s" % c.warn.text)
        if c.when_frozen:
            print("    when_frozen: %s" % c.when_frozen)
        print("    %s" % c.citation)
    r = b.rule
    print("school_rule: coverage %g%% in %g days; office PCs %g%% critical; all PCs %g%% "
          "critical; %g%% critical + high" % (r.coverage_pct, r.coverage_days,
                                              r.office_critical_pct, r.all_critical_pct,
                                              r.critical_high_pct))
    print("os_support: %s, %d entries" % (table.source, len(table.entries)))
    print("connectivity: %s sha256 %s" % (cb.source, cb.hash))
    print("    download good >= %g Mbps (%g kbps/student above %d), bad < %g; upload good >= "
          "%g; contract %s; ping <= %g ms; uptime >= %g%% (%s); international >= %g%%; "
          "below after %d failed tests; variability > %g" % (
              cb.good_down_mbps, cb.per_student_kbps, cb.per_student_above, cb.bad_down_mbps,
              cb.good_up_mbps, "off" if cb.contract_pct is None else "%g%%" % cb.contract_pct,
              cb.max_ping_ms, cb.min_uptime_pct, cb.uptime_target, cb.min_intl_ok_pct,
              cb.fail_after, cb.max_spread_ratio))
    for table_name, src in sorted(cb.sources.items()):
        print("    [%s] %s" % (table_name, src))
    return 0


def _school_area(cfg: Any, code: str) -> Optional[str]:
    """The org unit code of school ``code`` from the store (None when unknown)."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.exc import SQLAlchemyError

    from .store.schema import org_units, schools
    try:
        engine = create_engine(cfg.store.url)
        try:
            with engine.connect() as conn:
                return conn.execute(
                    select(org_units.c.code).select_from(schools.join(
                        org_units, org_units.c.id == schools.c.org_unit_id))
                    .where(schools.c.code == code)).scalar()
        finally:
            engine.dispose()
    except SQLAlchemyError:
        return None


def cmd_calendar(args: argparse.Namespace) -> int:
    """``calendar check``: the calendar in force, or its error with the line (exit 1)."""
    import datetime as dt

    from schoolmon.protocol.settings import ConfigError

    from .alerting.calendar import CalendarError, load_calendar
    from .config import load_config
    from .text import message
    lang = args.lang
    try:
        cfg = load_config(args.config, demo=True)
    except ConfigError as exc:
        return _config_error(exc)
    path = args.file or cfg.alerting.calendar_file or None
    try:
        cal = load_calendar(path)
    except CalendarError as exc:
        _err(str(exc))
        return 1
    try:
        day = (dt.date.fromisoformat(args.date) if args.date
               else dt.datetime.now(cal.tz).date())
    except ValueError:
        _err(message("calendar.bad_date", lang).format(args.date))
        return 2
    area = args.area
    if args.school and area is None:
        area = _school_area(cfg, args.school)

    def say(key: str, *values: Any) -> None:
        print(message(key, lang).format(*values))

    say("calendar.file", cal.source, cal.tz.key)
    if cal.always_open:
        say("calendar.always")
        return 0
    for y in cal.school_years:
        say("calendar.year", y.name, y.start.isoformat(), y.end.isoformat())
    say("calendar.holidays")
    for h in sorted(cal.holidays, key=lambda h: h.start):
        span = h.start.isoformat() + ("" if h.end == h.start else " … " + h.end.isoformat())
        print("  %s  %s%s" % (span, h.name, "" if h.closes == "all"
                              else " (" + message("calendar.school_only", lang) + ")"))
    overrides = [("area", c) for c in cal.areas] + [("school", c) for c in cal.schools]
    if overrides:
        say("calendar.overrides", ", ".join("%s %s" % o for o in overrides))
    where = " ".join(x for x in (args.school, area and "(%s)" % area) if x)
    say("calendar.day", day.isoformat(), where)
    holiday = cal.holiday(day, args.school, area)
    if cal.is_school_day(day, args.school, area):
        say("calendar.school_day")
    else:
        say("calendar.no_school", holiday or message("calendar.no_lessons", lang))
    for window in cal.window_names():
        spans = cal.hours(window, day, args.school, area)
        print("  %s: %s" % (window, ", ".join("%s–%s" % s for s in spans) if spans
                            else message("calendar.closed", lang)))
    return 0


def cmd_speedtest(args: argparse.Namespace) -> int:
    """``speedtest request --school CODE``: what ``POST /api/v1/schools/{code}/speedtest``
    does (connectivity/manual.py), with the grant sent by a connection of its own; the
    audit names ``cli:<OS user>``; no per-user limit (the server's own operator)."""
    import time

    from schoolmon.protocol.settings import ConfigError, load
    from sqlalchemy import select

    from .config import SCHEMA
    from .connectivity import manual
    from .connectivity.leases import settings_from_config
    from .connectivity.scheduler import Scheduler, test_server_url
    from .mqtt.publisher import CommandPublisher
    from .store import schema as db
    try:
        cfg = load(SCHEMA, args.config)
    except ConfigError as exc:
        return _config_error(exc)
    if not cfg.mqtt.url:
        _err("mqtt.url chưa đặt: không gửi được lệnh đo / mqtt.url is not set: the test "
             "command cannot be sent")
        return 1
    engine = db.make_engine(cfg.store.url)
    publisher = None
    try:
        db.create_all(engine)
        with engine.connect() as conn:
            if conn.execute(select(db.schools.c.code).where(
                    db.schools.c.code == args.school)).first() is None:
                _err("không có trường %r / no school %r" % (args.school, args.school))
                return 1
        import socket
        base = cfg.mqtt.client_id or "schoolmon-collector-" + socket.gethostname()[:40]
        # its own id: never the running collector's ingest or publisher connection
        publisher = CommandPublisher(cfg.mqtt, "%s-cli-%d" % (base, os.getpid())).start()
        if not publisher.wait_connected(10.0):
            _err("không kết nối được broker %s: chưa cấp lượt đo / cannot reach the broker "
                 "%s: no lease granted" % (cfg.mqtt.url, cfg.mqtt.url))
            return 1
        scheduler = Scheduler(engine, settings_from_config(cfg, test_server_url(cfg)),
                              list(cfg.connectivity.slots), float(cfg.connectivity.boot_window),
                              publisher.send_grant)
        got = manual.request_now(scheduler, args.school, _cli_actor())
        tz = cfg.province.timezone
        print(manual.request_text(got, "vi", tz))
        print(manual.request_text(got, "en", tz))
        if got.outcome != "granted" or got.lease is None:
            return 1
        deadline = time.monotonic() + 10.0
        while publisher.published + publisher.failed == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # the broker's acknowledgement of the grant (QoS 1)
        if publisher.published == 0:
            _err("broker chưa xác nhận lệnh đo; lượt đo %s hết hạn tự nhiên / the broker did "
                 "not acknowledge the grant; lease %s expires by itself"
                 % (got.lease["id"], got.lease["id"]))
            return 1
        from .text import iso_local
        print("lease %s device %s expires %s" % (got.lease["id"], got.lease["device"],
                                                 iso_local(float(got.lease["exp"]), tz)))
        return 0
    finally:
        if publisher is not None:
            publisher.stop()
        engine.dispose()


def cmd_notify(args: argparse.Namespace) -> int:
    """``notify test``: one test message per channel (and recipient), through the outbox
    (so it is recorded like any other) and sent at once by a sender of this process. A
    test that fails is ``dead`` at once (one attempt): a running collector does not send
    it later, after the configuration was fixed."""
    import logging
    import time
    import uuid

    from schoolmon.protocol.settings import ConfigError, load
    from sqlalchemy import select

    from .config import SCHEMA, check_notify
    from .notify import outbox
    from .notify.channels import channels_from_config
    from .notify.channels.apprise_urls import names as apprise_names
    from .notify.delivery import Sender
    from .notify.text import error_text, test_text
    from .store import schema as db
    from .text import iso_local
    try:
        cfg = load(SCHEMA, args.config)
        check_notify(cfg)
    except ConfigError as exc:
        return _config_error(exc)
    lang = args.lang
    # each outcome is printed below; the sender's own warning would say it twice
    logging.getLogger("schoolmon.collector.notify").setLevel(logging.ERROR)
    chosen = list(outbox.CHANNELS) if args.channel == "all" else [args.channel]
    engine = db.make_engine(cfg.store.url)
    failed = 0
    try:
        db.create_all(engine)
        sender = Sender(engine, channels_from_config(cfg), max_attempts=1,
                        claim_seconds=float(cfg.notify.claim_seconds),
                        name="cli:%d" % os.getpid())
        now = time.time()
        when = iso_local(now, cfg.province.timezone) or ""
        for channel in chosen:
            if args.to:
                recipients = [args.to]
            elif channel == "webhook":
                recipients = ["webhook"]
            elif channel == "apprise":
                recipients = apprise_names(list(cfg.notify.apprise_urls)) or ["1"]
            else:
                recipients = []
            if not recipients:
                failed += 1
                print("✗ %s: %s" % (channel, test_text("no_recipient", lang)))
                continue
            for recipient in recipients:
                msg = outbox.Message(
                    dedup_key="test:%s:%s" % (channel, uuid.uuid4().hex), channel=channel,
                    recipient=recipient, lang="vi",
                    subject=test_text("subject", "vi", channel=channel),
                    body=test_text("body", "vi", channel=channel, time=when),
                    route="test", payload={"test": True, "channel": channel,
                                           "text": test_text("body", "vi", channel=channel,
                                                             time=when)}
                    if channel == "webhook" else None)
                with engine.begin() as conn:
                    outbox.enqueue(conn, msg, now)
                    row_id = conn.execute(select(db.notifications.c.id).where(
                        db.notifications.c.dedup_key == msg.dedup_key)).scalar_one()
                got = sender.attempt(int(row_id), now)
                if got is not None and got.result == "sent":
                    print("✓ %s → %s: %s" % (channel, recipient, test_text("sent", lang)))
                else:
                    failed += 1
                    why = error_text(got.error if got is not None else "crashed: ?", lang)
                    print("✗ %s → %s: %s" % (channel, recipient, why))
    finally:
        engine.dispose()
    return 1 if failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    return run_demo(args)


def main(argv: Optional[List[str]] = None) -> int:
    bad = _check_python()
    if bad is not None:
        return bad
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in NOT_YET:
        _err("`%s` is not available in this version (it comes with a later release)"
             % " ".join(argv[:2]))
        return 2
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "demo":
        return cmd_demo(args)
    if args.command == "schools":
        return cmd_schools_import(args)
    if args.command == "db":
        return cmd_db(args)
    if args.command == "simulate":
        return cmd_simulate(args)
    if args.command == "user":
        return cmd_user(args)
    if args.command == "device":
        return cmd_device(args)
    if args.command == "unit":
        return cmd_unit(args)
    if args.command == "baseline":
        return cmd_baseline(args)
    if args.command == "speedtest":
        return cmd_speedtest(args)
    if args.command == "calendar":
        return cmd_calendar(args)
    if args.command == "notify":
        return cmd_notify(args)
    _err("`%s` is not available in this version" % args.command)  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
