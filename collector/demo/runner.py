"""The demo itself: folder, registry seeded from the simulated province, broker, collector
service, API and web page, one real agent, the simulated fleet; stopped in order."""
import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

from schoolmon.protocol.settings import ConfigError

from ..text import DEMO_TEXTS
from .brokers import PIDFILE, AmqttBroker, MosquittoBroker, find_mosquitto
from .mailbox import DEMO_MAIL_DOMAIN, Mailbox
from .processes import free_port, popen_logged, stop_process

log = logging.getLogger("schoolmon.collector.demo")

DEMO_TOKEN = "demo-admin-token"
#: the demo's area officer (no password: no login, a reader of the area's e-mails)
DEMO_AREA_OFFICER = "canbo_khuvuc"


def demo_logins(engine: Any, school_code: str) -> List[Tuple[str, str]]:
    """The demo's two logins, (name, password): an administrator and the technician of
    ``school_code``; random passwords, printed in the demo banner only (demo mode only:
    the demo's store is emptied at every start)."""
    import secrets

    from sqlalchemy import select, update

    from ..store import schema as db
    from ..store import users as user_store
    out = [("admin", secrets.token_urlsafe(9)), ("kythuat", secrets.token_urlsafe(9))]
    roles: Tuple[Tuple[str, List[str]], ...] = (("so_admin", []), ("school_tech", [school_code]))
    with engine.begin() as conn:
        for i, ((name, password), (role, units)) in enumerate(zip(out, roles)):
            if user_store.get_user(conn, name) is None:  # a kept store (--config) has them
                u = user_store.add_user(conn, name, role, password, units)
                # an address on a reserved domain: their alert e-mails go to the demo's own
                # mail sink (mailbox.py), never further
                conn.execute(update(db.users).where(db.users.c.id == u.id)
                             .values(email="%s@%s" % (name, DEMO_MAIL_DOMAIN)))
            else:
                out[i] = (name, "(đã có / exists)")
        # the officer of that school's area, without a login: the area route's e-mails have
        # a reader (the demo's mail folder shows what an area officer gets)
        area = conn.execute(select(db.org_units.c.code).join(
            db.schools, db.schools.c.org_unit_id == db.org_units.c.id)
            .where(db.schools.c.code == school_code)).scalar()
        if area is not None and user_store.get_user(conn, DEMO_AREA_OFFICER) is None:
            u = user_store.add_user(conn, DEMO_AREA_OFFICER, "area_officer", None, [area])
            conn.execute(update(db.users).where(db.users.c.id == u.id).values(
                email="%s@%s" % (DEMO_AREA_OFFICER, DEMO_MAIL_DOMAIN)))
    return out
PROG = "schoolmon-collector demo"




def stop_stale_broker(folder: str) -> None:
    """Stop the Mosquitto an earlier demo in ``folder`` left running (it was SIGKILLed)."""
    path = os.path.join(folder, "broker", PIDFILE)
    try:
        with open(path) as fh:
            pid = int(fh.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            cmdline = fh.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return
    if "mosquitto" in cmdline and os.path.join(folder, "broker", "mosquitto.conf") in cmdline:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            return
        for _ in range(50):
            if not os.path.exists("/proc/%d" % pid):
                break
            time.sleep(0.1)


def _clean_folder(folder: str) -> None:
    """Remove what an earlier demo left (only the files the demo itself makes)."""
    stop_stale_broker(folder)
    for name in ("schoolmon.db", "schoolmon.db-wal", "schoolmon.db-shm", "agent.toml",
                 "agent.log", "demo.log"):
        try:
            os.remove(os.path.join(folder, name))
        except FileNotFoundError:
            pass
    for sub in ("agent", "broker", "mail"):
        shutil.rmtree(os.path.join(folder, sub), ignore_errors=True)


def _agent_command() -> List[str]:
    script = os.path.join(os.path.dirname(sys.executable), "schoolmon-agent")
    if os.path.isfile(script) and os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-c", "import sys; from schoolmon.agent.cli import main; "
            "sys.exit(main())"]


def _write_agent_config(folder: str, school: str, mqtt_url: str, protocol: str = "5",
                        api_url: str = "") -> str:
    """The demo agent's file. Every key is written as it is: the agent refuses a file with
    an unknown key (exit 2), and tests/collector/demo loads this file with the agent's
    own loader, so a renamed key fails a test instead of being dropped here."""
    path = os.path.join(folder, "agent.toml")
    state = os.path.join(folder, "agent")
    os.makedirs(state, exist_ok=True)
    intervals = "health = 15\nstart_delay_min = 0.0\nstart_delay_max = 1.0\n"
    probe = ""
    if api_url:
        # No Internet here: the domestic target is the demo's own collector; the
        # "international" one and the DNS name are local too, labelled so — real ones
        # would only ever fail on this machine. The agent is its school's designated
        # test PC, so the scheduler's grants reach a real test too.
        intervals += "# faster than the agent's 300 s, for the demo\nprobe = 60\n"
        probe = ("\n[probe]\n# domestic target: the demo's collector\n"
                 "domestic_url = \"%s/healthz\"\n"
                 "# NOT international: this machine has no Internet; a local URL stands in\n"
                 "intl_url = \"%s/speedtest/latency.txt\"\n"
                 "# NOT a real DNS check: no resolver for public names here\n"
                 "dns_name = \"localhost\"\n"
                 "\n[speedtest]\n# the school's designated test PC (the demo's real test)\n"
                 "designated = true\n" % (api_url, api_url))
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("# the demo's real agent: this machine, as an office PC of school %s\n"
                 "[agent]\nschool = \"%s\"\nrole = \"office\"\nroom = \"Phòng hành chính\"\n"
                 "state_dir = \"%s\"\nlog_level = \"warning\"\n\n"
                 "[mqtt]\nurl = \"%s\"\nkeepalive = 15\nprotocol = \"%s\"\n\n"
                 "[intervals]\n%s\n[security]\nfirst_delay = 5.0\n%s"
                 % (school, school, state.replace("\\", "/"), mqtt_url, protocol, intervals,
                    probe))
    return path


def _fleet_counts(engine: Any, since: float) -> tuple:
    """(devices heard since ``since``, devices online): the history's rows do not count."""
    from sqlalchemy import func, select

    from ..store.schema import devices
    with engine.connect() as conn:
        seen = conn.execute(select(func.count()).select_from(devices)
                            .where(devices.c.last_seen >= since)).scalar_one()
        online = conn.execute(select(func.count()).select_from(devices)
                              .where(devices.c.online)).scalar_one()
    return int(seen), int(online)


def run_demo(args: argparse.Namespace) -> int:
    from ..api.app import create_app
    from ..api.server import ApiServer, port_free, split_listen
    from ..config import load_config
    from ..signals import stop_on_signals
    from ..simulate import (
        connectivity_province,
        live_province,
        province_fixture,
        run_simulation,
        write_attt_history,
        write_history,
        write_link_history,
    )

    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.schools < 1 or args.devices_per_school < 1:
        sys.stderr.write("%s: --schools and --devices-per-school must be at least 1\n" % PROG)
        return 2
    folder = os.path.abspath(args.dir)
    try:
        os.makedirs(folder, exist_ok=True)
        _clean_folder(folder)
    except OSError as exc:
        sys.stderr.write("%s: --dir %s: %s\n" % (PROG, folder, exc.strerror))
        return 2
    try:
        cfg = load_config(args.config, demo=True)
    except ConfigError as exc:
        sys.stderr.write("%s: configuration error: %s\n" % (PROG, exc))
        return 2
    if not cfg.api.admin_token:
        cfg.api.admin_token = DEMO_TOKEN
    if cfg.store.url == "sqlite:///schoolmon.db":  # the default: keep the demo in its folder
        cfg.store.url = "sqlite:///" + os.path.join(folder, "schoolmon.db")
    cfg.liveness.sweep_interval = min(cfg.liveness.sweep_interval, 5.0)

    stop, restore_signals = stop_on_signals()
    cleanup: List[Callable[[], None]] = []
    t_start = time.monotonic()
    try:
        # 1. broker
        broker: Any = None
        if not cfg.mqtt.url:
            port = args.mqtt_port or free_port()
            binary = find_mosquitto() if args.broker in ("auto", "mosquitto") else None
            if args.broker == "mosquitto" and binary is None:
                sys.stderr.write("%s: --broker mosquitto: Mosquitto is not installed "
                                 "(Debian: apt-get install mosquitto)\n" % PROG)
                return 2
            if binary is not None:
                broker = MosquittoBroker(binary, os.path.join(folder, "broker"), port)
            else:
                why_vi, why_en = (("Mosquitto không có trên máy này; dùng", "Mosquitto is not "
                                   "installed; falling back to") if args.broker == "auto"
                                  else ("dùng theo yêu cầu", "using, as asked,"))
                sys.stderr.write(
                    "%s: %s broker amqtt nhúng (MQTT 3.1.1); collector và agent dùng MQTT 3.1.1. "
                    "Cài mosquitto để có MQTT 5.\n"
                    "%s: %s the embedded amqtt broker (MQTT 3.1.1); the collector and the agent "
                    "use MQTT 3.1.1. Install mosquitto for MQTT 5.\n"
                    % (PROG, why_vi, PROG, why_en))
                broker = AmqttBroker(port)
                cfg.mqtt.protocol = "3.1.1"
            try:
                broker.start()
            except RuntimeError as exc:
                sys.stderr.write("%s: the embedded broker (%s) did not start: %s\n"
                                 % (PROG, broker.kind, exc))
                return 1
            cleanup.append(broker.stop)
            cfg.mqtt.url = broker.url

        # 1b. the mail sink: the alerts' e-mails land in {folder}/mail, never on the Internet
        mailbox: Optional[Mailbox] = None
        if not cfg.notify.smtp_url:
            mailbox = Mailbox(os.path.join(folder, "mail"))
            try:
                cfg.notify.smtp_url = mailbox.start()
                cleanup.append(mailbox.stop)
            except ImportError:
                mailbox = None
                sys.stderr.write(DEMO_TEXTS["mail_off"] % (PROG, PROG))

        # 2. state store and registry, seeded from the simulated province
        from ..store import registry
        from ..store import schema as db
        province = province_fixture(args.schools, args.devices_per_school, seed=1)
        engine = db.make_engine(cfg.store.url)
        cleanup.append(engine.dispose)
        db.create_all(engine)
        # the schools' contacts on the reserved domain too: a demo run with its own
        # notify.smtp_url (--config) still mails nobody real
        rows = [dict(r, contact_email="truong%s@%s" % (r["code"], DEMO_MAIL_DOMAIN))
                for r in province.school_rows()]
        registry.add_schools(engine, rows)
        agent_school = province.schools[0]
        logins = demo_logins(engine, agent_school.code)
        # the province's past 30 days, so the charts have history from the first minute,
        # and each school's ATTT status of those days, judged by the baseline in force
        # one router per school: the collector's router.{school}, polled by the school's
        # tester PC (write_link_history writes its past), not the fixture's own router
        # device beside it
        fleet = connectivity_province(province)
        past = write_history(engine, fleet, seed=1)
        from ..posture import rules_from_config
        attt_days = write_attt_history(engine, province, rules_from_config(cfg), seed=1,
                                       tz=cfg.province.timezone)
        # and their links' tests and probes, for the connectivity evaluator to judge
        write_link_history(engine, province, seed=1,
                           router_hb=int(cfg.connectivity.router_hb))

        # 3. the collector service
        from ..service import CollectorService
        service = CollectorService(cfg)
        service.start()
        cleanup.append(service.stop)

        # 4. the API and web page
        host, port = split_listen(cfg.api.listen)
        if not port_free(host, port):
            port = free_port(host if host not in ("", "0.0.0.0") else "127.0.0.1")
        from ..read.summary import warm
        from ..store import StateStore
        if isinstance(service.store, StateStore):
            warm(service.store.engine, cfg.province.timezone)
        server = ApiServer(create_app(service, cfg), host, port).start()
        cleanup.append(server.stop)

        # 5. one real agent on this machine
        agent: Optional[subprocess.Popen] = None
        if not args.no_agent:
            conf = _write_agent_config(folder, agent_school.code, cfg.mqtt.url,
                                       cfg.mqtt.protocol, server.url)
            env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
            agent = popen_logged(_agent_command() + ["run", "--config", conf],
                           os.path.join(folder, "agent.log"), env=env)
            cleanup.append(lambda: stop_process(agent))

        # 6. the simulated province
        live = live_province(fleet)  # the devices that went away days ago stay away
        online = sum(1 for d in live.devices if d.online)
        rate = args.rate if args.rate else max(1.0, online / 15.0)
        sim_stop = threading.Event()
        sim_result: List[Any] = []

        def simulate() -> None:
            try:
                sim_result.append(run_simulation(cfg.mqtt.url, province=live, rate=rate,
                                                 stop_event=sim_stop))
            except Exception as exc:  # reported, the rest of the demo keeps running
                log.error("simulator stopped: %s", exc)

        sim = threading.Thread(target=simulate, name="schoolmon-simulator", daemon=True)
        sim.start()

        def stop_sim() -> None:
            sim_stop.set()
            sim.join(20)

        cleanup.append(stop_sim)

        url = server.url
        print(DEMO_TEXTS["banner"]
              % (url, url, logins[0][0], logins[0][1], agent_school.code, logins[1][0],
                 logins[1][1], cfg.api.admin_token, cfg.api.admin_token, url, cfg.mqtt.url,
                 broker.kind if broker else "configured", len(province.schools),
                 len(province.devices), len(province.areas), past.days, past.rows_5m,
                 past.rows_1h, past.events, past.seconds, attt_days,
                 (DEMO_TEXTS["real_agent"] % (agent_school.code, agent_school.name))
                 if agent else DEMO_TEXTS["no_agent"], folder), flush=True)
        if mailbox is not None:
            print(DEMO_TEXTS["mail_folder"] % (mailbox.folder, mailbox.url), flush=True)

        # wait until the fleet shows up (or --settle passes), then say so once
        # the live devices, each school's router.{school} (polled by its tester) and
        # the real agent
        from ..simulate import deal_links
        routers = sum(1 for lp in deal_links(live, 1).values() if lp.tester)
        expected = len(live.devices) + routers + (1 if agent else 0)
        started = time.time()
        announced = False
        agent_exit_told = False
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while not stop.wait(0.5):
            if agent is not None and not agent_exit_told and agent.poll() is not None:
                sys.stderr.write("%s: the local agent exited with status %s (see %s)\n"
                                 % (PROG, agent.returncode, os.path.join(folder, "agent.log")))
                agent_exit_told = True  # said once; the fleet line still comes
            if announced is False:
                seen, on = _fleet_counts(engine, started - 60)
                waited = time.monotonic() - t_start
                if seen >= 0.8 * expected or waited >= args.settle:
                    print(DEMO_TEXTS["fleet_after"]
                          % (waited, waited, seen, expected, on), flush=True)
                    if not service.ingest.connected:
                        sys.stderr.write(DEMO_TEXTS["not_connected"] % (PROG, cfg.mqtt.url))
                    announced = True
            if deadline is not None and time.monotonic() >= deadline:
                break
        print(DEMO_TEXTS["stopping"], flush=True)
        return 0
    except ConfigError as exc:
        sys.stderr.write("%s: configuration error: %s\n" % (PROG, exc))
        return 2
    except RuntimeError as exc:
        sys.stderr.write("%s: %s\n" % (PROG, exc))
        return 1
    finally:
        for fn in reversed(cleanup):
            try:
                fn()
            except Exception as exc:  # keep stopping the rest
                log.warning("while stopping: %s", exc)
        restore_signals()
