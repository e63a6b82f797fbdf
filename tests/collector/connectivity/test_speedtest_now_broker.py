"""Đo ngay through a real Mosquitto: the running collector service (ingest, scheduler,
command publisher) behind its real API, and real agent Transports whose ``on_command``
records what arrives. ``POST .../speedtest`` grants the lease to the device the slot tests
would get (the designated test PC) and the grant reaches that agent alone; then
``schoolmon-collector speedtest request`` (a child process, its own broker connection) does
the same from the server's shell, audited as ``cli:<user>``, and says why when refused."""
import getpass
import subprocess

import httpx
from schoolmon.collector.api import create_app
from schoolmon.collector.connectivity.leases import LEASE_KEY
from schoolmon.collector.store import school_state
from schoolmon.collector.store.schema import audit_log
from sqlalchemy import select

from tests.collector.api.apihelp import LiveServer
from tests.collector.helpers import wait_until
from tests.e2e_help import COLLECTOR, clean_env

from .connhelp import Clock, local
from .test_speedtests_broker import SCHOOL, _fleet, _grants, _seed, _service

TOKEN = "adm-" + "n" * 28


def _lease(engine):
    with engine.connect() as c:
        return school_state.read(c, SCHOOL, LEASE_KEY).value


def test_api_and_cli_grant_reaches_the_chosen_agent(mosquitto, tmp_path):
    url = "sqlite:///%s" % (tmp_path / "state.db")
    engine = _seed(url)
    clock = Clock(local(7))
    svc = _service(mosquitto.url, url, clock, "speedtests-now")
    svc.cfg.api.admin_token = TOKEN
    agents = _fleet(engine, tmp_path, mosquitto.url, 5)
    svc.start()
    live = None
    try:
        assert svc.ingest.wait_subscribed(10) and svc.publisher.wait_connected(10)
        for a in agents:
            a.start()
        wait_until(lambda: svc.metrics.stored.get(kind="probe") >= 5, timeout=30,
                   what="5 probes stored")
        live = LiveServer(create_app(svc, svc.cfg))
        api = httpx.Client(base_url=live.url, headers={"Authorization": "Bearer " + TOKEN},
                           timeout=20)
        r = api.post("/api/v1/schools/%s/speedtest" % SCHOOL)
        assert r.status_code == 202, r.text
        lease = r.json()["lease"]
        assert lease["device"] == "tester"  # the designated test PC, as for a slot
        wait_until(lambda: len(_grants(agents)) == 1, timeout=20, what="the grant")
        (holder, g), = _grants(agents)
        assert holder == "tester" and g["id"] == lease["id"] and g["trigger"] == "command"
        assert g["server"] == "http://so.example/speedtest/upload.php"
        wait_until(lambda: svc.metrics.commands_published.get(cmd="speedtest") == 1,
                   timeout=10, what="the grant acknowledged")
        # the CLI runs on the real clock (the service's is a Monday in March 2026, 07:00,
        # when no slot is due): the API's lease has long expired for it, so it grants ...
        env = clean_env(SCHOOLMON_STORE_URL=url, SCHOOLMON_MQTT_URL=mosquitto.url,
                        SCHOOLMON_CONNECTIVITY_TEST_SERVER="http://so.example/speedtest/"
                                                           "upload.php")
        cli = [COLLECTOR, "speedtest", "request", "--school", SCHOOL]
        p = subprocess.run(cli, capture_output=True, text=True, timeout=60, env=env)
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert "Đang đo trên máy tester, kết quả trong khoảng 3 phút." in p.stdout
        assert "Testing on tester; the result should arrive within about 3 minutes." \
            in p.stdout
        second = _lease(engine)
        assert second["id"] != lease["id"] and second["trigger"] == "command"
        assert "lease %s device tester" % second["id"] in p.stdout
        # ... and the same agent receives the grant
        wait_until(lambda: len(_grants(agents)) == 2, timeout=20, what="the CLI's grant")
        holder, g = _grants(agents)[1]
        assert holder == "tester" and g["id"] == second["id"] and g["trigger"] == "command"
        assert 200 <= g["ttl"] <= 240
        # while it is held, the CLI is told so (exit 1) and nothing more is sent
        p = subprocess.run(cli, capture_output=True, text=True, timeout=60, env=env)
        assert p.returncode == 1, (p.stdout, p.stderr)
        assert "Trường đang có một lần đo trên máy tester" in p.stdout
        assert "A test is already running on tester" in p.stdout
        assert len(_grants(agents)) == 2
        with engine.connect() as c:
            rows = [(r.actor, r.target, r.detail) for r in c.execute(
                select(audit_log).where(audit_log.c.action == "speedtest_request")
                .order_by(audit_log.c.id))]
        cli_actor = "cli:" + getpass.getuser()
        assert [(a, t) for a, t, _ in rows] == [("admin-token", SCHOOL), (cli_actor, SCHOOL),
                                                (cli_actor, SCHOOL)]
        assert rows[1][2]["lease"] == second["id"] and rows[2][2]["refused"] == "held"
        # an unknown school: exit 1, nothing granted
        p = subprocess.run([COLLECTOR, "speedtest", "request", "--school", "NOPE"],
                           capture_output=True, text=True, timeout=60, env=env)
        assert p.returncode == 1 and "no school 'NOPE'" in p.stderr
    finally:
        if live is not None:
            live.stop()
        for a in agents:
            a.close()
        svc.stop()
        engine.dispose()
