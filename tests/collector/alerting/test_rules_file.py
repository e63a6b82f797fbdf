"""The rules file: the shipped one loads, every kind of error is refused naming the file and
the LINE (Vietnamese first), the collector refuses to start with one, and templates render
with units and local times in both languages."""
import os
import subprocess
import sys

import pytest
from schoolmon.collector.alerting.rules import (
    SHIPPED_RULES_FILE,
    RulesError,
    load_rules,
    parse_duration,
    render,
)
from schoolmon.collector.config import load_config
from schoolmon.collector.metrics import Registry
from schoolmon.collector.service import CollectorService
from schoolmon.collector.timeseries import NullTimeSeries
from schoolmon.protocol.settings import ConfigError

GOOD = '''version = 1

[[rule]]
id = "server_offline"
condition = "device_offline"
severity = "critical"
roles = ["server"]
for = "10m"
clear_for = "5m"
title = { vi = "{school_name}: máy chủ {device_name} mất kết nối", en = "{device_name} offline" }
text = { vi = "Từ {since} ({duration}), lý do: {reason}", en = "Since {since} ({duration}): {reason}" }

[[rule]]
id = "disk"
condition = "device_disk_full"
severity = "warning"
params = { pct = 90 }
title = { vi = "Ổ đĩa {disk_pct}", en = "Disk {disk_pct}" }
text = { vi = "{device_name}: {disk_pct} > {threshold_pct}", en = "{disk_pct} > {threshold_pct}" }
'''


def write(tmp_path, text):
    p = tmp_path / "rules.toml"
    p.write_text(text, encoding="utf-8")
    return str(p)


def test_shipped_rules_load():
    rules = load_rules()
    ids = [r.id for r in rules.rules]
    for want in ("school_offline", "school_internet_down", "router_down", "lab_pc_offline",
                 "office_pc_offline", "server_offline", "below_connectivity", "below_attt",
                 "device_av_off", "device_disk_full", "device_cpu_hot",
                 "device_reboot_pending", "agent_silent", "ingest_stalled",
                 "timeseries_failing", "notify_channel_failing"):
        assert want in ids
    by = {r.id: r for r in rules.rules}
    assert by["lab_pc_offline"].window == "school_hours" and by["lab_pc_offline"].roles == (
        "lab",)
    assert by["office_pc_offline"].window == "office_hours"
    assert by["router_down"].window == "always" and by["router_down"].suppresses
    assert by["device_reboot_pending"].for_s == 7 * 86400
    assert by["device_disk_full"].params["pct"] == 95
    assert rules.source == "shipped" and load_rules(SHIPPED_RULES_FILE).hash == rules.hash


def test_an_override_file_loads(tmp_path):
    rules = load_rules(write(tmp_path, GOOD))
    assert [r.id for r in rules.rules] == ["server_offline", "disk"]
    assert rules.rules[0].for_s == 600 and rules.rules[0].clear_for_s == 300
    assert rules.rules[1].params == {"pct": 90, "max_age_s": 86400.0}


@pytest.mark.parametrize("change,line,words", [
    # TOML syntax: tomllib's own line
    (lambda t: t.replace('severity = "warning"', 'severity = "warning'), 16, "TOML"),
    (lambda t: t.replace('clear_for = "5m"', 'clear_for = "5m"\ncolour = "red"'), 10,
     "unknown key 'colour'"),
    (lambda t: t.replace('condition = "device_disk_full"', 'condition = "disk_full"'), 15,
     "unknown condition 'disk_full'"),
    (lambda t: t.replace('for = "10m"', 'for = "ten minutes"'), 8, "bad duration"),
    (lambda t: t.replace('clear_for = "5m"', 'clear_for = -5'), 9, "bad duration"),
    (lambda t: t.replace('{disk_pct} > {threshold_pct}", en', '{disk_pcent}", en'), 19,
     "unknown placeholder {disk_pcent} in text.vi"),
    (lambda t: t.replace('Ổ đĩa {disk_pct}', 'Ổ đĩa {disk_pct:.1f}'), 18, "bad placeholder"),
    (lambda t: t.replace('Ổ đĩa {disk_pct}', 'Ổ đĩa {disk_pct'), 18, "bad placeholder"),
    (lambda t: t.replace('severity = "critical"', 'severity = "high"'), 6,
     "unknown severity 'high'"),
    (lambda t: t.replace('params = { pct = 90 }', 'params = { percent = 90 }'), 17,
     "unknown parameter 'percent'"),
    (lambda t: t.replace('params = { pct = 90 }', 'params = { pct = "90" }'), 17,
     "must be a float"),
    (lambda t: t.replace('roles = ["server"]', 'roles = ["printer"]'), 7, "unknown role"),
    (lambda t: t.replace('params = { pct = 90 }', 'window = "night"'), 17,
     "unknown window 'night'"),
    (lambda t: t.replace('id = "disk"', 'id = "server_offline"'), 14, "duplicate id"),
    (lambda t: t.replace('version = 1', 'version = 1\nrules = []'), 2, "unknown key 'rules'"),
])
def test_errors_name_the_file_and_line(tmp_path, change, line, words):
    path = write(tmp_path, change(GOOD))
    with pytest.raises(RulesError) as err:
        load_rules(path)
    msg = str(err.value)
    assert msg.startswith("%s:%d: " % (path, line)), msg
    assert words in msg
    assert err.value.line == line


def test_messages_are_vietnamese_first(tmp_path):
    path = write(tmp_path, GOOD.replace('severity = "critical"', 'severity = "urgent"'))
    with pytest.raises(RulesError) as err:
        load_rules(path)
    reason = err.value.reason
    assert reason.index("mức độ không biết") < reason.index("unknown severity")


def test_unreadable_file(tmp_path):
    with pytest.raises(RulesError) as err:
        load_rules(str(tmp_path / "absent.toml"))
    assert "không đọc được tệp" in str(err.value)


def test_collector_refuses_to_start_with_a_bad_rules_file(tmp_path):
    path = write(tmp_path, GOOD.replace('for = "10m"', 'for = "10 phút"'))
    cfg = load_config(env={}, demo=True, overrides={
        "mqtt": {"url": ""}, "store": {"url": "sqlite:///%s" % (tmp_path / "s.db")},
        "alerting": {"rules_file": path}})
    with pytest.raises(ConfigError) as err:
        CollectorService(cfg, timeseries=NullTimeSeries(), registry=Registry())
    assert "%s:8:" % path in str(err.value)


def test_durations():
    assert parse_duration("30s") == 30 and parse_duration("15m") == 900
    assert parse_duration("2h") == 7200 and parse_duration("7d") == 604800
    assert parse_duration(45) == 45 and parse_duration("1.5h") == 5400
    for bad in ("", "5", "5 weeks", -1, True, None):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_render_units_and_local_time():
    now = 1_796_181_300.0  # 10:15 in Hà Nội
    values = {"since": 1_796_180_400.0, "disk_pct": 97.24, "temp": 91.0, "silent_days": 8.4,
              "reason": "lost", "role": "lab", "status": "below", "school_name": "Trường A",
              "device_name": None}
    vi = render("{school_name} {device_name}: {disk_pct}, {temp}, {silent_days}, {reason}, "
                "{role}, {status}, {since} ({duration})", values, "vi", now)
    assert vi == ("Trường A ?: 97 %, 91 °C, 8.4 ngày, mất kết nối đột ngột, máy phòng tin "
                  "học, Không đạt, 10:00 02/12/2026 (15 phút)")
    en = render("{silent_days}, {reason}, {role}, {duration}", values, "en", now)
    assert en == "8.4 days, connection lost, lab PC, 15 min"


def test_collector_run_exits_2_naming_the_line(tmp_path):
    """``schoolmon-collector run`` as a person starts it: the rules file's error on
    stderr with its line, exit status 2, nothing served."""
    path = write(tmp_path, GOOD.replace('condition = "device_disk_full"',
                                        'condition = "disk_is_full"'))
    cfg = tmp_path / "collector.toml"
    cfg.write_text('[store]\nurl = "sqlite:///%s"\n[api]\nadmin_token = "%s"\n'
                   'listen = "127.0.0.1:1"\n[alerting]\nrules_file = "%s"\n'
                   % (tmp_path / "s.db", "Zq8-xW3v_Lp9Tr2Yk6Hm", path), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "schoolmon.collector.cli", "run", "--config",
                        str(cfg)], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, SCHOOLMON_MQTT_URL=""))
    assert r.returncode == 2, r.stderr
    assert "%s:15: rule disk: điều kiện không biết / unknown condition 'disk_is_full'" % path \
        in r.stderr
