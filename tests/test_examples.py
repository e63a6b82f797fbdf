"""The example configurations under deploy/ load without error (docs that cannot rot)."""
import os

from schoolmon.agent.config import SCHEMA as AGENT_SCHEMA
from schoolmon.collector.config import load_config as load_collector
from schoolmon.protocol.settings import load

DEPLOY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deploy")


def test_collector_example_loads_with_a_token_from_the_environment():
    cfg = load_collector(os.path.join(DEPLOY, "collector.example.toml"),
                         env={"SCHOOLMON_API_ADMIN_TOKEN": "k3J9-a-long-random-example-token"})
    assert cfg.ingest.shared_group == "collectors"
    assert cfg.store.url.startswith("postgresql")


def test_agent_example_loads(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    path = tmp_path / "agent.toml"
    with open(os.path.join(DEPLOY, "agent.example.toml"), encoding="utf-8") as fh:
        path.write_text(fh.read().replace("/etc/schoolmon/ca.pem", str(ca)), encoding="utf-8")
    cfg = load(AGENT_SCHEMA, str(path), env={})
    assert cfg.agent.school == "79000101" and cfg.agent.role == "lab"
