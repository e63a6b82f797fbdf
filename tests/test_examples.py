"""The example configurations under deploy/ load without error (docs that cannot rot),
the commented-out router examples (SNMP v2c and v3) included."""
import os
import re

import pytest
from schoolmon.agent.config import SCHEMA as AGENT_SCHEMA
from schoolmon.agent.families import build_families
from schoolmon.agent.runner import RecordedRunner
from schoolmon.collector.config import load_config as load_collector
from schoolmon.protocol.settings import load

DEPLOY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deploy")


def test_collector_example_loads_with_a_token_from_the_environment():
    cfg = load_collector(os.path.join(DEPLOY, "collector.example.toml"),
                         env={"SCHOOLMON_API_ADMIN_TOKEN": "k3J9-a-long-random-example-token"})
    assert cfg.ingest.shared_group == "collectors"
    assert cfg.store.url.startswith("postgresql")
    assert cfg.connectivity.test_server == "auto" and cfg.connectivity.budget_fibre_mb == 30000
    assert cfg.speedtest_server.enabled is True
    assert cfg.baseline.connectivity_file == ""  # the shipped baseline


def _agent_example(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    with open(os.path.join(DEPLOY, "agent.example.toml"), encoding="utf-8") as fh:
        return fh.read().replace("/etc/schoolmon/ca.pem", str(ca))


def test_agent_example_loads(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text(_agent_example(tmp_path), encoding="utf-8")
    cfg = load(AGENT_SCHEMA, str(path), env={})
    assert cfg.agent.school == "79000101" and cfg.agent.role == "lab"
    assert cfg.probe.domestic_url.endswith("/speedtest/latency.txt")
    assert cfg.speedtest.budget == 500 * 10 ** 6 and cfg.speedtest.servers
    assert cfg.router.host == ""  # a lab PC does not poll the router
    families = build_families(cfg, runner=RecordedRunner({}))
    assert "probe" in families and "speedtest" in families and "router" not in families


def _router_variant(text, variant):
    """The [router] section with the common keys and one variant's uncommented."""
    head, _, section = text.partition("[router]\n")
    section, sep, tail = section.partition("\n[")
    keep, lines, current = [], [], "common"
    for line in section.splitlines():
        m = re.match(r"# --- (SNMP v2c|SNMPv3|both)", line)
        if m:
            current = {"SNMP v2c": "v2c", "SNMPv3": "v3", "both": "common"}[m.group(1)]
            continue
        m = re.match(r"# ([a-z_]+ = .*)", line)
        if m and current in ("common", variant):
            if not (variant != "off" and m.group(1).startswith("snmp = \"off\"")):
                lines.append(m.group(1))
        else:
            keep.append(line)
    return head + "[router]\n" + "\n".join(keep + lines) + "\n" + sep + tail


@pytest.mark.parametrize("variant", ["off", "v2c", "v3"])
def test_agent_router_examples_load_and_build(tmp_path, variant):
    path = tmp_path / "agent.toml"
    path.write_text(_router_variant(_agent_example(tmp_path), variant), encoding="utf-8")
    cfg = load(AGENT_SCHEMA, str(path), env={})
    assert cfg.router.host == "192.168.1.1" and cfg.router.snmp == variant
    if variant == "v3":
        assert cfg.router.user and cfg.router.priv_key
    families = build_families(cfg, runner=RecordedRunner({}))
    assert "router" in families
