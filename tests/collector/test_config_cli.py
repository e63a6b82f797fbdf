"""Configuration as a careless operator writes it, through the real ``schoolmon-collector
run`` (a subprocess of the installed console script): each mistake stops the program with
exit status 2 and a message that names the key, never with a traceback, never echoing a
secret."""
import os
import sys

import pytest

from tests.collector.test_cli import GOOD_TOKEN, run_cli, write

TOKEN = '[api]\nadmin_token = "%s"\n' % GOOD_TOKEN
SECRET = "hunter2-Secret-Pw"


@pytest.mark.parametrize("toml, key", [
    ("[ingest]\nbatch_wait = nan\n", "ingest.batch_wait"),
    ("[ingest]\nmax_future_skew = inf\n", "ingest.max_future_skew"),
    ("[liveness]\nsweep_interval = inf\n", "liveness.sweep_interval"),
    ("[influx]\ntimeout = inf\n", "influx.timeout"),
    ("[influx]\ntimeout = -inf\n", "influx.timeout"),
    ('[province]\ntimezone = "Mars/Olympus"\n', "province.timezone"),
    ('[province]\ntimezone = "../../etc/passwd"\n', "province.timezone"),
    ('[store]\nurl = "foo://x"\n', "store.url"),
    ('[store]\nurl = "mysql://u:%s@db/schoolmon"\n' % SECRET, "store.url"),
    ('[store]\nurl = "postgresql+nosuchdriver://u:%s@db/schoolmon"\n' % SECRET, "store.url"),
    ('[store]\nurl = "postgresql://u:%s@db:port/schoolmon"\n' % SECRET, "store.url"),
    ('[store]\nurl = "not a url"\n', "store.url"),
    ('[mqtt]\nurl = "mqtt://dev:%s@broker:99999"\n' % SECRET, "mqtt.url"),
    ('[mqtt]\nurl = "mqtt://dev:%s@[::1:1883"\n' % SECRET, "mqtt.url"),
    ('[mqtt]\nurl = "tcp://dev:%s@broker"\n' % SECRET, "mqtt.url"),
    ('[influx]\nurl = "http://dev:%s@[::1"\n' % SECRET, "influx.url"),
    ('[api]\nlisten = "127.0.0.1:²"\n', "api.listen"),
])
def test_careless_values_exit_2_naming_the_key(tmp_path, toml, key):
    text = toml + ('admin_token = "%s"\n' % GOOD_TOKEN if toml.startswith("[api]") else TOKEN)
    r = run_cli("run", "--config", write(tmp_path, "c.toml", text), cwd=str(tmp_path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert key in r.stderr
    assert "Traceback" not in r.stderr
    assert SECRET not in r.stderr + r.stdout
    assert "lỗi cấu hình" in r.stderr.split("configuration error")[0]  # Vietnamese first
    assert not os.path.exists(tmp_path / "schoolmon.db")  # stopped before opening anything


@pytest.mark.parametrize("var, value", [
    ("SCHOOLMON_INGEST_BATCH_WAIT", "nan"),
    ("SCHOOLMON_LIVENESS_SWEEP_INTERVAL", "inf"),
    ("SCHOOLMON_PROVINCE_TIMEZONE", "Mars/Olympus"),
    ("SCHOOLMON_STORE_URL", "foo://x"),
    ("SCHOOLMON_MQTT_URL", "mqtt://dev:%s@broker:0" % SECRET),
])
def test_careless_environment_exits_2_naming_the_variable(tmp_path, var, value):
    r = run_cli("run", env={var: value, "SCHOOLMON_API_ADMIN_TOKEN": GOOD_TOKEN},
                cwd=str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert var in r.stderr and "Traceback" not in r.stderr
    assert SECRET not in r.stderr + r.stdout


@pytest.mark.parametrize("token", [" " * 16, "a" * 16, "0" * 16, "ab" * 12, "  " + GOOD_TOKEN,
                                   GOOD_TOKEN[:10] + " " + GOOD_TOKEN[10:]])
def test_run_refuses_white_space_and_guessable_admin_tokens(tmp_path, token):
    r = run_cli("run", "--config", write(tmp_path, "c.toml", '[api]\nadmin_token = "%s"\n'
                                         % token), cwd=str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert "api.admin_token" in r.stderr and "Traceback" not in r.stderr
    assert not token.strip() or token.strip() not in r.stderr  # the secret is never echoed


def test_run_refuses_a_guessable_read_token(tmp_path):
    r = run_cli("run", env={"SCHOOLMON_API_ADMIN_TOKEN": GOOD_TOKEN,
                            "SCHOOLMON_API_READ_TOKENS": "%s,%s" % (GOOD_TOKEN[::-1], "0" * 20)},
                cwd=str(tmp_path))
    assert r.returncode == 2 and "api.read_tokens[1]" in r.stderr
    assert "0" * 20 not in r.stderr


AGENT = os.path.join(os.path.dirname(sys.executable), "schoolmon-agent")


@pytest.mark.parametrize("toml, key", [
    ('[mqtt]\nurl = "mqtt://dev:%s@broker:99999"\n' % SECRET, "mqtt.url"),
    ('[mqtt]\nurl = "mqtt://dev:%s@[::1:1883"\n' % SECRET, "mqtt.url"),
    ("[mqtt]\nreconnect_min = nan\n", "mqtt.reconnect_min"),
    ("[intervals]\ntimeout = inf\n", "intervals.timeout"),
    ("[queue]\nreplay_rate = nan\n", "queue.replay_rate"),
])
def test_the_agent_refuses_the_same_shared_mistakes(tmp_path, toml, key):
    """The loader is shared: the agent's own CLI gives the same answer for its keys."""
    import subprocess
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    r = subprocess.run([AGENT, "run", "--config", write(tmp_path, "a.toml", toml)],
                       capture_output=True, text=True, env=env, timeout=60, cwd=str(tmp_path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert key in r.stderr and "Traceback" not in r.stderr
    assert SECRET not in r.stderr + r.stdout
