"""The connectivity baseline file: the shipped defaults (DOMAIN.md), and files the
collector refuses at start with the file, the line and the reason (also through
`schoolmon-collector baseline check --connectivity` and the service's start)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
from schoolmon.collector.baseline import BaselineError
from schoolmon.collector.config import load_config
from schoolmon.collector.connectivity.baseline import (
    SHIPPED_CONNECTIVITY_FILE,
    load_connectivity,
    parse_connectivity,
)
from schoolmon.collector.service import CollectorService

SHIPPED = Path(SHIPPED_CONNECTIVITY_FILE).read_text(encoding="utf-8")


def line_of(text, needle, after=None):
    lines = text.splitlines()
    start = 0
    if after is not None:
        start = next(i for i, ln in enumerate(lines) if ln.startswith(after))
    return next(i + 1 for i in range(start, len(lines)) if needle in lines[i])


def test_shipped_defaults_are_the_domain_ones():
    b = load_connectivity()
    assert b.source == "shipped" and len(b.hash) == 64
    assert (b.good_down_mbps, b.bad_down_mbps, b.per_student_kbps, b.per_student_above) == (
        20, 1, 50, 400)
    assert b.contract_pct == 80 and b.fail_after == 3 and b.week_days == 5
    assert b.recent_days == 7 and b.school_days == (1, 2, 3, 4, 5, 6) and b.hours == (7, 17)
    assert b.required_down_mbps(None) == 20 and b.required_down_mbps(400) == 20
    assert b.required_down_mbps(1000) == 50
    assert set(b.sources) == {"download", "upload", "contract", "latency", "uptime",
                              "international", "failures", "variability", "window",
                              "school_hours"}
    assert "Giga" in b.sources["download"]


@pytest.mark.parametrize("old,new,needle,table", [
    ("bad_mbps = 1", "bad_mbps = 30", "bad_mbps = 30", "[download]"),
    ("fail_after = 3", "fail_after = 0", "fail_after = 0", "[failures]"),
    ("fail_after = 3", 'fail_after = "3"', "fail_after =", "[failures]"),
    ('target = "dom"', 'target = "www"', 'target = "www"', "[uptime]"),
    ("days = [1, 2, 3, 4, 5, 6]", "days = [1, 8]", "days = [1, 8]", "[school_hours]"),
    ("max_ping_ms = 100", "max_ping_ms = 100\nmax_jitter = 3", "max_jitter", "[latency]"),
    ("[latency]", "[latency]\n[latencies]", "[latencies]", None),
    ("min_tests = 4", "min_tests = 4 x", "min_tests = 4 x", None),
])
def test_a_wrong_value_is_refused_with_its_line(tmp_path, old, new, needle, table):
    text = SHIPPED.replace(old, new, 1)
    with pytest.raises(BaselineError) as info:
        parse_connectivity(text, "mine", "mine.toml")
    assert info.value.line == line_of(text, needle, table), str(info.value)
    assert str(info.value).startswith("mine.toml:%d: " % info.value.line)


def test_a_table_needs_its_source():
    text = re.sub(r'(\[latency\]\nmax_ping_ms = 100\n)source = "[^"]*"\n', r"\1", SHIPPED)
    assert text != SHIPPED
    with pytest.raises(BaselineError) as info:
        parse_connectivity(text, "mine")
    assert info.value.line == line_of(text, "[latency]") and "source" in str(info.value)


def test_a_wrong_file_stops_the_collector_at_start(tmp_path):
    bad = tmp_path / "connectivity.toml"
    bad.write_text(SHIPPED.replace("good_mbps = 20", "good_mbps = -2"), encoding="utf-8")
    cfg = load_config(env={}, demo=True, overrides={
        "baseline": {"connectivity_file": str(bad)}, "store": {"url": "sqlite://"}})
    with pytest.raises(BaselineError) as info:
        CollectorService(cfg)
    assert info.value.path == str(bad)
    assert info.value.line == line_of(bad.read_text(encoding="utf-8"), "good_mbps = -2")


def test_cli_baseline_check_covers_the_file(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "schoolmon.collector.cli", "baseline",
                               "check", *args], capture_output=True, text=True, timeout=60)
    r = cli()
    assert r.returncode == 0, r.stderr
    assert "connectivity: shipped" in r.stdout and "download good >= 20 Mbps" in r.stdout
    bad = tmp_path / "mine.toml"
    bad.write_text(SHIPPED.replace("end = 17", "end = 6"), encoding="utf-8")
    r = cli("--connectivity", str(bad))
    assert r.returncode == 2 and r.stdout == ""
    m = re.search(r"%s:(\d+): " % re.escape(str(bad)), r.stderr)
    assert m and int(m.group(1)) == line_of(bad.read_text(encoding="utf-8"), "end = 6"), \
        r.stderr
