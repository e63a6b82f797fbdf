"""The declared family specs (agent/families SPECS) are what the runtime, ``collect`` and the
configuration schema go by."""
import random
import threading
import time

from schoolmon.agent.config import SCHEMA, load_config
from schoolmon.agent.families import (
    INTERVAL,
    ON_CHANGE,
    ON_COMMAND,
    ON_CONNECT,
    SPECS,
    FamilySpec,
    build_families,
)
from schoolmon.agent.runtime import Runtime
from schoolmon.agent.spool import Spool
from schoolmon.protocol import FAMILIES, UP_KINDS

from ..agenthelp import wait_for


def test_every_contract_kind_has_one_spec():
    assert set(SPECS) == set(UP_KINDS)
    for kind, spec in SPECS.items():
        assert spec.kind == kind
        assert spec.trigger in (INTERVAL, ON_CHANGE, ON_COMMAND, ON_CONNECT)
        if spec.build is not None:  # built families are in the wire format and scheduled
            assert kind in FAMILIES  # (or run by a command)
            assert (spec.trigger in (INTERVAL, ON_CHANGE) and spec.period_key) or (
                spec.trigger == ON_COMMAND and not spec.period_key)
    assert [k for k, s in SPECS.items() if not s.cheap] == ["speedtest"]
    assert sorted(k for k, s in SPECS.items() if s.build) == ["health", "inventory", "probe",
                                                                "router", "security",
                                                                "speedtest"]
    # the link check never waits behind a security scan on the slow worker
    assert not SPECS["probe"].slow and SPECS["router"].slow
    security = SPECS["security"]
    assert (security.trigger, security.slow, security.period_key) == (
        INTERVAL, True, "intervals.security")
    assert security.cheap, "no network, a few seconds: in collect's default set"


def test_family_config_keys_are_in_the_schema():
    for spec in SPECS.values():
        for dotted, key in spec.keys:
            section, name = dotted.split(".")
            assert SCHEMA[section][name] is key
        for key_name in (spec.period_key, spec.first_delay_key):
            if key_name:
                section, name = key_name.split(".")
                assert name in SCHEMA[section]
    # the families' keys come first, as docs/configuration.md lists them
    assert list(SCHEMA["intervals"])[:3] == ["health", "inventory", "security"]
    assert list(SCHEMA["security"]) == ["first_delay", "probe_timeout", "wu_search_interval",
                                        "wu_search_timeout"]


def test_build_families_reads_the_config():
    cfg = load_config(None, env={"SCHOOLMON_AGENT_ROLE": "office",
                                 "SCHOOLMON_AGENT_ROOM": "Văn phòng"})
    inv = build_families(cfg)["inventory"]
    assert (inv.role, inv.room) == ("office", "Văn phòng")
    cfg = load_config(None, env={"SCHOOLMON_SECURITY_PROBE_TIMEOUT": "30",
                                 "SCHOOLMON_AGENT_STATE_DIR": "/srv/sm"})
    sec = build_families(cfg)["security"]
    assert (sec.settings.probe_timeout, sec.settings.wu_search_interval) == (30, 21600)
    assert sec.state_dir == "/srv/sm"


class _Counting:
    def __init__(self, fields, hang=0.0):
        self.fields, self.hang, self.calls = fields, hang, 0

    def collect(self):
        self.calls += 1
        time.sleep(self.hang)
        return dict(self.fields)


HEALTH = {"cpu_pct": 1.0, "cpu_n": 1, "mem_pct": 1.0, "up": 1}


def test_runtime_schedules_by_spec(tmp_path):
    """Period from the spec's key, slow families share one worker, on-command ones are not
    scheduled at all."""
    cfg = load_config(None, env={})
    cfg.intervals.start_delay_min = cfg.intervals.start_delay_max = 0.0
    cfg.intervals.timeout = 30
    cfg.intervals.health = 0.05
    specs = dict(SPECS)
    # two slow interval families (kinds the wire format knows) and one on command
    specs["inventory"] = FamilySpec("inventory", INTERVAL, slow=True,
                                    period_key="intervals.health")
    specs["status"] = FamilySpec("status", INTERVAL, slow=True,
                                 period_key="intervals.health")
    specs["health"] = FamilySpec("health", ON_COMMAND)
    slow_a = _Counting({"hostname": "a", "role": "lab", "os_name": "Linux", "agent": "1"},
                       hang=0.2)
    slow_b = _Counting({"state": "online"}, hang=0.2)
    on_command = _Counting(HEALTH)
    rt = Runtime(cfg, "79000101", "d-1",
                 {"inventory": slow_a, "status": slow_b, "health": on_command},
                 Spool(str(tmp_path)), rand=random.Random(2), specs=specs)
    assert set(rt.schedules) == {"inventory", "status"}
    assert rt.schedules["inventory"].slow and rt.schedules["status"].slow
    t = threading.Thread(target=rt.run)
    t.start()
    try:
        wait_for(lambda: slow_a.calls >= 2 and slow_b.calls >= 2, 30, "both slow families ran")
    finally:
        rt.request_stop()
        t.join(10)
    assert set(rt._workers) == {"slow"}, "slow families share one worker"
    assert on_command.calls == 0
