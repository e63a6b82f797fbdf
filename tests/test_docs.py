"""Generated documentation stays in step with the code it documents."""
import os

from schoolmon.collector.docs import config_reference, stale_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_config_reference_and_protocol_doc_are_current():
    assert stale_files(ROOT) == [], "run `make docs` and commit the result"


def test_reference_names_the_contract_keys():
    table = config_reference()
    for key in ("agent.school", "agent.device_id", "agent.role", "mqtt.url", "mqtt.username",
                "mqtt.password", "mqtt.ca_file", "intervals.health", "queue.dir",
                "store.url", "influx.url", "influx.org", "influx.bucket", "influx.token",
                "api.listen", "api.admin_token"):
        assert "| `%s` |" % key in table, key


def test_readme_opens_with_the_two_commands():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        head = fh.read(600)
    assert "make demo" in head and "make test" in head
