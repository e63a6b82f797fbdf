"""``schoolmon-collector`` as a user runs it: a subprocess of the installed console script."""
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from schoolmon.collector import cli

from tests.servers import free_port

SCRIPT = os.path.join(os.path.dirname(sys.executable), "schoolmon-collector")
GOOD_TOKEN = "k3J9-very-long-random-admin-token"


def run_cli(*args, env=None, timeout=60, cwd=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    full_env.update(env or {})
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=cwd)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


# --- configuration errors -----------------------------------------------------------------

@pytest.mark.parametrize("toml, key", [
    ('[api]\nlisten = "nowhere"\nadmin_token = "%s"\n' % GOOD_TOKEN, "api.listen"),
    ('[api]\nadmin_token = "%s"\nsurprise = 1\n' % GOOD_TOKEN, "api.surprise"),
    ('[mqtt]\nurl = "http://broker"\n[api]\nadmin_token = "%s"\n' % GOOD_TOKEN, "mqtt.url"),
    ('[ingest]\nbatch_size = "many"\n[api]\nadmin_token = "%s"\n' % GOOD_TOKEN,
     "ingest.batch_size"),
    ('[api\n', "not valid TOML"),
])
def test_config_errors_exit_2_naming_the_key(tmp_path, toml, key):
    r = run_cli("run", "--config", write(tmp_path, "c.toml", toml))
    assert r.returncode == 2, r.stderr
    assert key in r.stderr
    assert "Traceback" not in r.stderr


def test_config_error_from_environment(tmp_path):
    r = run_cli("run", env={"SCHOOLMON_MQTT_URL": "ftp://x", "SCHOOLMON_API_ADMIN_TOKEN":
                            GOOD_TOKEN})
    assert r.returncode == 2 and "mqtt.url" in r.stderr and "SCHOOLMON_MQTT_URL" in r.stderr


@pytest.mark.parametrize("token", ["", "changeme", "demo-admin-token", "short-token"])
def test_run_refuses_empty_default_or_short_admin_token(tmp_path, token):
    r = run_cli("run", "--config",
                write(tmp_path, "c.toml", '[api]\nadmin_token = "%s"\n' % token))
    assert r.returncode == 2
    assert "api.admin_token" in r.stderr
    assert token == "" or token not in r.stderr  # the secret is never echoed


def test_run_refuses_default_read_token(tmp_path):
    r = run_cli("run", env={"SCHOOLMON_API_ADMIN_TOKEN": GOOD_TOKEN,
                            "SCHOOLMON_API_READ_TOKENS": "secret"})
    assert r.returncode == 2 and "api.read_tokens" in r.stderr


def test_missing_config_file(tmp_path):
    r = run_cli("run", "--config", str(tmp_path / "nope.toml"))
    assert r.returncode == 2 and "not found" in r.stderr


@pytest.mark.parametrize("argv", [["report", "--format", "xlsx", "--out", "x.xlsx"],
                                  ["token", "create", "--school", "S1"],
                                  ["device", "revoke", "d1"]])
def test_later_commands_say_not_available(argv):
    r = run_cli(*argv)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "not available in this version" in lines[0]


def test_usage_errors_exit_2():
    assert run_cli().returncode == 2
    assert run_cli("frobnicate").returncode == 2
    r = run_cli("simulate", "--broker", "http://x", "--schools", "2",
                "--devices-per-school", "2")
    assert r.returncode == 2 and "--broker" in r.stderr
    r = run_cli("simulate", "--broker", "mqtt://127.0.0.1:1", "--schools", "0",
                "--devices-per-school", "2")
    assert r.returncode == 2 and "--schools" in r.stderr


def test_old_python_is_refused_clearly(monkeypatch, capsys):
    monkeypatch.setattr(sys, "version_info", (3, 9, 18, "final", 0))
    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err
    assert "Python 3.11 or newer" in err and "3.9" in err


# --- run ----------------------------------------------------------------------------------

def test_run_serves_the_api_and_stops_on_sigterm(tmp_path, shared_mosquitto):
    port = free_port()
    conf = write(tmp_path, "c.toml",
                 '[mqtt]\nurl = "%s"\nclient_id = "cli-test-%d"\n'
                 '[store]\nurl = "sqlite:///%s"\n'
                 '[api]\nlisten = "127.0.0.1:%d"\nadmin_token = "%s"\n'
                 % (shared_mosquitto.url, port, tmp_path / "state.db", port, GOOD_TOKEN))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    proc = subprocess.Popen([SCRIPT, "run", "--config", conf], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = "http://127.0.0.1:%d" % port
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            try:
                status = httpx.get(url + "/healthz", timeout=2).status_code
                if status == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
        assert status == 200
        assert httpx.get(url + "/api/v1/summary").status_code == 401
        r = httpx.get(url + "/api/v1/summary", headers={"Authorization": "Bearer " + GOOD_TOKEN})
        assert r.status_code == 200 and r.json()["schools"]["total"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        out = proc.stdout.read()
        assert "Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- schools import -----------------------------------------------------------------------

GOOD_CSV = (
    "Mã trường,Tên trường,Cấp học,Xã/phường,Tỉnh,Số học sinh\n"
    "10010001,Trường Tiểu học Kim Đồng,Tiểu học,Phường Cốc Lếu,Lào Cai,420\n"
    "10010002,Trường THCS Lê Quý Đôn,THCS,Phường Cốc Lếu,Lào Cai,510\n"
    "10020001,Trường Mầm non Hoa Sen,MN,Xã Bản Vược,Lào Cai,\n"
)
BAD_CSV = GOOD_CSV + "10020002,,Đại học,Xã Bản Vược,Lào Cai,-5\n"


def _school_codes(db_path):
    from schoolmon.collector.store import schema as db
    from sqlalchemy import select
    engine = db.make_engine("sqlite:///%s" % db_path)
    try:
        db.create_all(engine)
        with engine.connect() as conn:
            return sorted(conn.execute(select(db.schools.c.code)).scalars())
    finally:
        engine.dispose()


def test_schools_import_dry_run_then_import(tmp_path):
    db_path = tmp_path / "state.db"
    env = {"SCHOOLMON_STORE_URL": "sqlite:///%s" % db_path}
    good = write(tmp_path, "truong.csv", GOOD_CSV)
    r = run_cli("schools", "import", good, "--dry-run", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "--dry-run" in r.stdout and "3" in r.stdout
    assert _school_codes(db_path) == []  # a dry run writes nothing
    r = run_cli("schools", "import", good, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _school_codes(db_path) == ["10010001", "10010002", "10020001"]


def test_schools_import_rejects_the_whole_file_with_a_row_report(tmp_path):
    db_path = tmp_path / "state.db"
    env = {"SCHOOLMON_STORE_URL": "sqlite:///%s" % db_path}
    bad = write(tmp_path, "truong.csv", BAD_CSV)
    for dry in ([], ["--dry-run"]):
        r = run_cli("schools", "import", bad, *dry, env=env)
        assert r.returncode == 1, r.stdout + r.stderr
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("Dòng 5")]
        assert len(lines) >= 2, r.stdout  # the empty name, the unknown level, the count
        assert "Traceback" not in r.stderr
    assert _school_codes(db_path) == []  # all or nothing
    r = run_cli("schools", "import", bad, "--dry-run", "--lang", "en", env=env)
    assert r.returncode == 1 and "Row 5" in r.stdout and "nothing was written" in r.stdout


def test_schools_import_xlsx(tmp_path):
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    for line in GOOD_CSV.strip().splitlines():
        ws.append(line.split(","))
    path = str(tmp_path / "truong.xlsx")
    wb.save(path)
    db_path = tmp_path / "state.db"
    r = run_cli("schools", "import", path, env={"SCHOOLMON_STORE_URL": "sqlite:///%s" % db_path})
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(_school_codes(db_path)) == 3


def test_schools_import_usage_errors(tmp_path):
    r = run_cli("schools", "import", str(tmp_path / "missing.csv"))
    assert r.returncode == 2 and "missing.csv" in r.stderr
    r = run_cli("schools", "import", write(tmp_path, "x.csv", GOOD_CSV),
                env={"SCHOOLMON_STORE_ROLLUP_5M_DAYS": "zero"})
    assert r.returncode == 2 and "store.rollup_5m_days" in r.stderr


def test_run_healthz_names_the_broker_when_it_is_down(tmp_path):
    port, dead = free_port(), free_port()
    conf = write(tmp_path, "c.toml",
                 '[mqtt]\nurl = "mqtt://127.0.0.1:%d"\n[store]\nurl = "sqlite:///%s"\n'
                 '[api]\nlisten = "127.0.0.1:%d"\nadmin_token = "%s"\n'
                 % (dead, tmp_path / "state.db", port, GOOD_TOKEN))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    proc = subprocess.Popen([SCRIPT, "run", "--config", conf], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        r = None
        while time.monotonic() < deadline:
            try:
                r = httpx.get("http://127.0.0.1:%d/healthz" % port, timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert r is not None and r.status_code == 503
        assert r.json()["down"] == ["broker"] and "broker" in r.json()["message"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _old_pythons():
    """A working interpreter older than 3.11 (not a pyenv shim that refuses to run)."""
    return _find_old_python()


def _find_old_python():
    import glob
    import shutil
    if hasattr(_find_old_python, "cache"):
        return _find_old_python.cache
    candidates = [shutil.which(n) for n in ("python3.8", "python3.9", "python3.10")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python")))
    found = []
    for c in candidates:
        if not c or "/shims/" in c:
            continue
        try:
            r = subprocess.run([c, "-c", "import sys; print(sys.version_info < (3, 11) "
                                "and sys.version_info >= (3, 8))"],
                               capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0 and r.stdout.strip() == "True":
            found.append(c)
            break
    _find_old_python.cache = found
    return found


@pytest.mark.skipif(not _old_pythons(), reason="no Python older than 3.11 on this machine")
def test_cli_module_says_clearly_it_needs_311_on_a_real_old_python():
    """The module must import on an old Python (the agent's) and refuse in one line."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (
        "import sys, types, importlib.util\n"
        "for name, path in (('schoolmon', []), ('schoolmon.collector', [%r])):\n"
        "    m = types.ModuleType(name); m.__path__ = path; sys.modules[name] = m\n"
        "spec = importlib.util.spec_from_file_location('schoolmon.collector.cli', %r)\n"
        "cli = importlib.util.module_from_spec(spec); spec.loader.exec_module(cli)\n"
        "sys.exit(cli.main(['run']))\n"
        % (os.path.join(here, "collector"), os.path.join(here, "collector", "cli.py")))
    r = subprocess.run([_old_pythons()[0], "-c", code], capture_output=True, text=True,
                       timeout=60, env={"PATH": os.environ.get("PATH", "")})
    assert r.returncode == 2, r.stderr
    assert "needs Python 3.11 or newer" in r.stderr and "Traceback" not in r.stderr


def test_run_says_when_the_api_port_is_taken(tmp_path):
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        conf = write(tmp_path, "c.toml",
                     '[mqtt]\nurl = "mqtt://127.0.0.1:%d"\n[store]\nurl = "sqlite:///%s"\n'
                     '[api]\nlisten = "127.0.0.1:%d"\nadmin_token = "%s"\n'
                     % (free_port(), tmp_path / "state.db", port, GOOD_TOKEN))
        r = run_cli("run", "--config", conf, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "api.listen" in r.stderr and str(port) in r.stderr


def test_simulate_publishes_the_wire_format(shared_mosquitto):
    import json

    import paho.mqtt.client as mqtt
    from schoolmon.protocol import decode
    got = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sim-watch-%d" % free_port(),
                      protocol=mqtt.MQTTv5)
    sub.on_message = lambda c, u, m: got.append((m.topic, m.payload))
    host, port = shared_mosquitto.url.split("//")[1].split(":")
    sub.connect(host, int(port))
    sub.subscribe("schoolmon/v1/#", qos=1)
    sub.loop_start()
    try:
        time.sleep(0.3)
        r = run_cli("simulate", "--broker", shared_mosquitto.url, "--schools", "2",
                    "--devices-per-school", "3", "--rate", "30", "--duration", "2",
                    "--seed", "7")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "acknowledged by the broker" in r.stdout
        time.sleep(0.5)
    finally:
        sub.loop_stop()
        sub.disconnect()
    kinds = {t.rsplit("/", 1)[1] for t, _ in got}
    assert {"status", "inventory", "health"} <= kinds
    health = [(t, p) for t, p in got if t.endswith("/health")]
    assert len(health) >= 20
    for t, p in health:
        decode(t, p)  # every one is valid wire format
    assert json.loads(health[0][1])["v"] == 1
