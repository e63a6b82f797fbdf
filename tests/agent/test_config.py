"""Agent configuration: defaults, file, SCHOOLMON_* overrides, and every bad input → exit 2
naming the key (through the real CLI for the process-level cases)."""
import os
import stat
import subprocess

import pytest
from schoolmon.agent.config import SCHEMA, load_config, render_toml, require_run_keys, write_config
from schoolmon.protocol.settings import ConfigError

from .agenthelp import AGENT


def _write(tmp_path, text, name="agent.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def test_defaults_without_file(tmp_path):
    cfg = load_config(None, env={})
    assert cfg.intervals.health == 60
    assert cfg.intervals.inventory == 3600
    assert (cfg.intervals.start_delay_min, cfg.intervals.start_delay_max) == (5.0, 30.0)
    assert cfg.queue.max_bytes == 20 * 1024 * 1024
    assert cfg.queue.max_age_days == 7
    assert cfg.agent.role == "lab"
    assert cfg.queue.dir == os.path.join(cfg.agent.state_dir, "queue")
    # the contract's keys keep their names
    for key in ("agent.school", "agent.device_id", "agent.role", "mqtt.url", "mqtt.username",
                "mqtt.password", "mqtt.ca_file", "intervals.health", "queue.dir"):
        section, name = key.split(".")
        assert name in SCHEMA[section], key


def test_file_and_environment_wins(tmp_path):
    path = _write(tmp_path, '[agent]\nschool = "79000101"\nrole = "office"\n'
                            '[mqtt]\nurl = "mqtts://broker.example:8883"\n'
                            '[intervals]\nhealth = 30\n')
    cfg = load_config(path, env={"SCHOOLMON_INTERVALS_HEALTH": "45",
                                 "SCHOOLMON_MQTT_URL": "mqtt://10.0.0.1:1883"})
    assert cfg.agent.school == "79000101" and cfg.agent.role == "office"
    assert cfg.intervals.health == 45
    assert cfg.mqtt.url == "mqtt://10.0.0.1:1883"
    require_run_keys(cfg)


@pytest.mark.parametrize("text,env,key", [
    ('[mqtt]\nbogus = 1\n', {}, "mqtt.bogus"),
    ('[nosuch]\na = 1\n', {}, "[nosuch]"),
    ('[intervals]\nhealth = "sixty"\n', {}, "intervals.health"),
    ('[intervals]\nhealth = 0\n', {}, "intervals.health"),
    ('[mqtt]\nurl = "http://broker:1883"\n', {}, "mqtt.url"),
    ('[mqtt]\nurl = "mqtt://broker:99999"\n', {}, "mqtt.url"),
    ('[mqtt]\nurl = "mqtt://"\n', {}, "mqtt.url"),
    ('[agent]\nrole = "teacher"\n', {}, "agent.role"),
    ('[agent]\ndevice_id = "a/b#"\n', {}, "agent.device_id"),
    ('[queue]\nmax_bytes = 1.5\n', {}, "queue.max_bytes"),
    ('[mqtt]\nca_file = "/nonexistent/ca.pem"\n', {}, "mqtt.ca_file"),
    ('', {"SCHOOLMON_MQTT_KEEPALIVE": "soon"}, "mqtt.keepalive"),
    ('', {"SCHOOLMON_AGENT_NOPE": "1"}, "agent.nope"),
    ('[intervals]\nstart_delay_min = 10.0\nstart_delay_max = 2.0\n', {},
     "intervals.start_delay_max"),
])
def test_bad_values_name_the_key(tmp_path, text, env, key):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env=env)
    assert key in str(err.value)


def test_secret_never_echoed(tmp_path):
    path = _write(tmp_path, '[mqtt]\npassword = 12345678\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert "mqtt.password" in str(err.value)
    assert "12345678" not in str(err.value)


def test_missing_and_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "nope.toml"), env={})
    path = _write(tmp_path, "[agent\nschool = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, env={})


def test_run_needs_school_and_url(tmp_path):
    cfg = load_config(_write(tmp_path, '[mqtt]\nurl = "mqtt://b:1883"\n'), env={})
    with pytest.raises(ConfigError, match="agent.school"):
        require_run_keys(cfg)
    cfg = load_config(_write(tmp_path, '[agent]\nschool = "1"\n'), env={})
    with pytest.raises(ConfigError, match="mqtt.url"):
        require_run_keys(cfg)


def test_username_must_be_the_device_id(tmp_path):
    path = _write(tmp_path, '[agent]\ndevice_id = "a-1"\n[mqtt]\nusername = "b-2"\n')
    with pytest.raises(ConfigError, match="mqtt.username"):
        load_config(path, env={})


def test_write_config_merges_atomically_and_privately(tmp_path):
    path = str(tmp_path / "etc" / "agent.toml")
    write_config(path, {"agent": {"school": "79000101", "room": 'Phòng "máy" 1'},
                        "mqtt": {"url": "mqtts://b.example:8883"}})
    write_config(path, {"mqtt": {"username": "79000101-pc-abcde", "password": "p@ss\\word"}})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    cfg = load_config(path, env={})
    assert cfg.agent.room == 'Phòng "máy" 1'
    assert cfg.mqtt.url == "mqtts://b.example:8883"
    assert cfg.mqtt.password == "p@ss\\word"
    with pytest.raises(ConfigError, match="mqtt.bogus"):
        write_config(path, {"mqtt": {"bogus": 1}})
    with pytest.raises(ConfigError, match="intervals.health"):
        write_config(path, {"intervals": {"health": "x"}})
    assert load_config(path, env={}).mqtt.username == "79000101-pc-abcde"
    assert [f for f in os.listdir(tmp_path / "etc") if f != "agent.toml"] == []


def test_render_toml_roundtrip_types(tmp_path):
    text = render_toml({"a": {"s": "x\ty", "i": 3, "f": 1.5, "b": True, "l": ["p", "q"]}})
    import sys
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    assert tomllib.loads(text) == {"a": {"s": "x\ty", "i": 3, "f": 1.5, "b": True,
                                         "l": ["p", "q"]}}


def _cli(*args, env=None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    full.update(env or {})
    return subprocess.run([AGENT] + list(args), capture_output=True, text=True, env=full,
                          timeout=60)


@pytest.mark.parametrize("text,key", [
    (None, "not found"),
    ("[agent\n", "not valid TOML"),
    ('[agent]\nschool = "1"\ncolour = "red"\n', "agent.colour"),
    ('[agent]\nschool = "1"\n[mqtt]\nurl = "tcp://x:1"\n', "mqtt.url"),
    ('[agent]\nschool = "1"\n[mqtt]\nurl = "mqtt://x:1"\nkeepalive = "60"\n', "mqtt.keepalive"),
    ('[mqtt]\nurl = "mqtt://x:1"\n', "agent.school"),
])
def test_cli_run_exits_2_naming_the_key(tmp_path, text, key):
    path = str(tmp_path / "agent.toml")
    if text is not None:
        _write(tmp_path, text)
    r = _cli("run", "--config", path)
    assert r.returncode == 2, r.stderr
    assert key in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_env_override_error(tmp_path):
    path = _write(tmp_path, '[agent]\nschool = "1"\n[mqtt]\nurl = "mqtt://x:1"\n')
    r = _cli("run", "--config", path, env={"SCHOOLMON_QUEUE_MAX_BYTES": "lots"})
    assert r.returncode == 2 and "queue.max_bytes" in r.stderr
    r = _cli("collect", "--config", path, env={"SCHOOLMON_MQTT_PASSWORD": "x",
                                               "SCHOOLMON_MQTT_PASWORD": "typo"})
    assert r.returncode == 2 and "mqtt.pasword" in r.stderr


def test_cli_later_commands_exit_2():
    for argv in (["enroll", "--collector", "https://c", "--token", "t"],):
        r = _cli(*argv)
        assert r.returncode == 2
        assert "not available in this version" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
