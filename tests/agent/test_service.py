"""``schoolmon-agent service install|uninstall|status`` (systemd unit written to a test
folder, systemctl not called) and the refusal of a bad config before installing."""
import os
import subprocess

from .agenthelp import AGENT


def _cli(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    return subprocess.run([AGENT] + list(args), capture_output=True, text=True, env=env,
                          timeout=60)


def test_install_status_uninstall(tmp_path):
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[agent]\nschool = "79000101"\n[mqtt]\nurl = "mqtts://b.example:8883"\n'
                   'password = "hunter2-secret"\n')
    units = str(tmp_path / "units")
    common = ["--config", str(cfg), "--unit-dir", units, "--no-systemctl"]
    r = _cli("service", "status", *common)
    assert r.returncode == 3 and "not installed" in r.stdout
    r = _cli("service", "install", *common)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(units, "schoolmon-agent.service")) as fh:
        text = fh.read()
    assert "ExecStart=" in text and "run --config %s" % cfg in text
    assert "KillSignal=SIGTERM" in text and "Restart=always" in text
    assert "hunter2" not in text, "credentials stay in the config file"
    r = _cli("service", "status", *common)
    assert r.returncode == 0 and "installed" in r.stdout
    r = _cli("service", "uninstall", *common)
    assert r.returncode == 0
    assert not os.path.exists(os.path.join(units, "schoolmon-agent.service"))


def test_install_refuses_a_bad_config(tmp_path):
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[agent]\nschool = "79000101"\n[mqtt]\nurl = "mqtt://b:1883"\nport = 1\n')
    units = str(tmp_path / "units")
    r = _cli("service", "install", "--config", str(cfg), "--unit-dir", units,
             "--no-systemctl")
    assert r.returncode == 2 and "mqtt.port" in r.stderr
    assert not os.path.exists(units)
    r = _cli("service", "install", "--config", str(tmp_path / "missing.toml"),
             "--unit-dir", units, "--no-systemctl")
    assert r.returncode == 2 and "not found" in r.stderr
