"""The demo's agent file loads with the agent's own loader (which refuses unknown keys and
a section given twice): a renamed agent key fails here, not silently in the demo."""
from schoolmon.agent.config import load_config
from schoolmon.collector.demo.runner import _write_agent_config


def test_the_demo_agent_file_loads_and_probes_the_demo_collector(tmp_path):
    path = _write_agent_config(str(tmp_path), "10010001", "mqtt://127.0.0.1:1883", "5",
                               "http://127.0.0.1:8099")
    cfg = load_config(path, env={})
    assert cfg.agent.school == "10010001"
    assert cfg.intervals.health == 15
    assert cfg.intervals.probe == 60
    assert cfg.probe.domestic_url == "http://127.0.0.1:8099/healthz"
    assert cfg.probe.intl_url == "http://127.0.0.1:8099/speedtest/latency.txt"
    assert cfg.probe.dns_name == "localhost" and cfg.speedtest.designated is True
    with open(path, encoding="utf-8") as fh:
        assert fh.read().count("[intervals]") == 1


def test_without_an_api_the_file_has_no_probe_targets(tmp_path):
    cfg = load_config(_write_agent_config(str(tmp_path), "10010001", "mqtt://127.0.0.1:1883"),
                      env={})
    assert cfg.intervals.health == 15


def test_the_demo_probe_targets_answer(tmp_path):
    """The demo's local stand-ins answer 2xx on the collector's own API (a URL the API
    refuses, like ``/healthz?intl=local`` (422), made the demo PC's international probe
    fail)."""
    from fastapi.testclient import TestClient
    from schoolmon.collector.api import create_app
    from schoolmon.collector.config import load_config as collector_config
    from schoolmon.collector.store import schema as db
    cfg = collector_config(None, env={}, demo=True)
    engine = db.make_engine("sqlite:///%s" % (tmp_path / "s.db"))
    db.create_all(engine)
    agent = load_config(_write_agent_config(str(tmp_path), "10010001",
                                            "mqtt://127.0.0.1:1883", "5",
                                            "http://testserver"), env={})
    with TestClient(create_app(engine, cfg)) as c:
        for url in (agent.probe.domestic_url, agent.probe.intl_url):
            assert c.get(url).status_code == 200, url
    engine.dispose()
