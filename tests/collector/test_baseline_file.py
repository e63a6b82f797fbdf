"""The ATTT baseline file: the shipped one, and files the collector must refuse at start
with the file, the line and the reason (also through `schoolmon-collector baseline check`
and the service's start)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
from schoolmon.collector.baseline import (
    SHIPPED_ATTT_FILE,
    BaselineError,
    load_baseline,
    parse_baseline,
)
from schoolmon.collector.config import load_config
from schoolmon.collector.service import CollectorService

SHIPPED = Path(SHIPPED_ATTT_FILE).read_text(encoding="utf-8")


def test_shipped_baseline_has_the_twelve_checks_of_the_domain():
    b = load_baseline()
    assert b.source == "shipped" and len(b.hash) == 64
    ids = [c.id for c in b.checks]
    assert ids == ["os_supported", "av_on", "av_signatures", "av_managed", "patch_recent",
                   "auto_update", "firewall_on", "smb1_off", "default_accounts_off",
                   "rdp_safe", "autorun_off", "screen_lock"]
    sev = {c.id: c.severity for c in b.checks}
    assert sev["os_supported"] == sev["av_on"] == "critical"
    assert {sev[i] for i in ("av_signatures", "patch_recent", "firewall_on", "smb1_off")} \
        == {"high"}
    lock = b.checks[-1]
    assert lock.severity_for("office") == "medium" and lock.severity_for("lab") == "low"
    for c in b.checks:
        assert c.title["vi"] and c.title["en"] and c.hint["vi"] and c.citation
    assert {c.id for c in b.checks if c.when_frozen == "na"} == {"av_signatures",
                                                                  "patch_recent"}
    assert b.rule.coverage_pct == 90 and b.rule.coverage_days == 7
    assert (b.rule.office_critical_pct, b.rule.all_critical_pct, b.rule.critical_high_pct) \
        == (100, 95, 80)
    assert any("14/CT-TTg" in c.citation for c in b.checks)
    assert any("CIS Microsoft Windows 11 L1" in c.citation for c in b.checks)


def _line_of(text: str, needle: str, nth: int = 0) -> int:
    return [i + 1 for i, ln in enumerate(text.splitlines()) if needle in ln][nth]


def _refused(text: str) -> BaselineError:
    with pytest.raises(BaselineError) as info:
        parse_baseline(text, "test", "/etc/schoolmon/attt.toml")
    assert str(info.value).startswith("/etc/schoolmon/attt.toml:%s: " % info.value.line)
    return info.value


def test_unknown_key_in_a_check_names_its_line():
    text = SHIPPED.replace('id = "smb1_off"\n', 'id = "smb1_off"\nseverty = "high"\n')
    err = _refused(text)
    assert err.line == _line_of(text, "severty =") and "severty" in err.reason


def test_bad_condition_names_the_line_of_pass():
    text = SHIPPED.replace('pass = "fw_on == true"', 'pass = "fw_on == true and __import__(1)"')
    err = _refused(text)
    assert err.line == _line_of(text, "__import__") and "firewall_on" in err.reason


def test_unknown_field_name_in_a_condition():
    text = SHIPPED.replace('pass = "autorun_off == true"', 'pass = "autorun_of == true"')
    err = _refused(text)
    assert err.line == _line_of(text, "autorun_of ==") and "autorun_of" in err.reason


def test_duplicate_id_points_at_the_second_id_line():
    text = SHIPPED.replace('id = "rdp_safe"', 'id = "smb1_off"')
    err = _refused(text)
    assert err.line == _line_of(text, 'id = "smb1_off"', 1) and "duplicate" in err.reason


def test_bad_severity_and_bad_role():
    text = SHIPPED.replace('severity = "medium"\nroles', 'severity = "urgent"\nroles', 1)
    err = _refused(text)
    assert err.line == _line_of(text, 'severity = "urgent"') and "urgent" in err.reason
    head, _, tail = SHIPPED.partition('id = "av_managed"')
    text = head + 'id = "av_managed"' + tail.replace('roles = ["lab", "office", "server"]',
                                                    'roles = ["lab", "teacher"]', 1)
    err = _refused(text)
    assert err.line == _line_of(text, '"teacher"') and "roles" in err.reason


def test_school_rule_and_top_level_keys():
    err = _refused(SHIPPED.replace("coverage_pct = 90", "coverage_pct = 190"))
    assert err.line == _line_of(SHIPPED, "coverage_pct = 90") and "coverage_pct" in err.reason
    err = _refused(SHIPPED.replace("coverage_days = 7", "coverage_day = 7"))
    assert err.line == _line_of(SHIPPED, "coverage_days = 7")
    err = _refused("versoin = 1\n" + SHIPPED)
    assert err.line == 1 and "versoin" in err.reason


def test_toml_syntax_error_has_tomllibs_line():
    text = SHIPPED.replace('id = "av_on"', 'id = "av_on', 1)
    err = _refused(text)
    assert err.line == _line_of(text, 'id = "av_on') and "TOML" in err.reason


def test_a_wrong_file_stops_the_collector_at_start(tmp_path):
    bad = tmp_path / "attt.toml"
    bad.write_text(SHIPPED.replace('pass = "fw_on == true"', 'pass = "fw_on ="'),
                   encoding="utf-8")
    cfg = load_config(env={}, demo=True, overrides={"baseline": {"attt_file": str(bad)},
                                                    "store": {"url": "sqlite://"}})
    with pytest.raises(BaselineError) as info:
        CollectorService(cfg)
    assert info.value.path == str(bad) and info.value.line == _line_of(bad.read_text(), "fw_on =")


def _cli(*args: str):
    return subprocess.run([sys.executable, "-m", "schoolmon.collector.cli", "baseline",
                           "check", *args], capture_output=True, text=True, timeout=60)


def test_cli_baseline_check_prints_the_checks_or_the_error(tmp_path):
    r = _cli()
    assert r.returncode == 0, r.stderr
    assert "shipped" in r.stdout and "- smb1_off [Cao]" in r.stdout
    assert "pass: rdp_on == false or rdp_nla == true" in r.stdout
    assert "school_rule: coverage 90% in 7 days" in r.stdout
    bad = tmp_path / "mine.toml"
    bad.write_text(SHIPPED.replace('id = "screen_lock"', 'id = "Screen Lock"'), encoding="utf-8")
    r = _cli(str(bad))
    assert r.returncode == 2 and r.stdout == ""
    m = re.search(r"%s:(\d+): " % re.escape(str(bad)), r.stderr)
    assert m and int(m.group(1)) == _line_of(bad.read_text(), 'id = "Screen Lock"'), r.stderr
    r = _cli(str(tmp_path / "absent.toml"))
    assert r.returncode == 2 and "absent.toml" in r.stderr


def test_applies_if_evidence_cases_and_by_os_are_checked_with_their_line():
    """The format's per-check extensions: applies_if with its na_evidence, evidence_cases,
    by_os per OS family; refused with the line when they cannot be used."""
    b = load_baseline()
    sig = next(c for c in b.checks if c.id == "av_signatures")
    assert sig.applies_if is not None and sig.applies_if.text == "av_on == true"
    assert sig.na_evidence and sig.na_evidence["vi"].startswith("Không có phần mềm diệt virus")
    lock = b.checks[-1]
    assert [cond.text for cond, _ in lock.evidence_cases] == ["lock_s == 0"]
    fw = next(c for c in b.checks if c.id == "firewall_on")
    assert set(fw.by_os) == {"linux"} and "ufw" in fw.by_os["linux"]["hint"]["vi"]
    # applies_if without the sentence shown when it does not apply
    text = SHIPPED.replace('na_evidence = { vi = "Không có phần mềm diệt virus đang bảo vệ: '
                           'không đánh giá mẫu nhận diện', 'na_evidenc = { vi = "x', 1)
    err = _refused(text)
    assert "na_evidenc" in err.reason
    start = SHIPPED.index('id = "av_signatures"')
    one = SHIPPED[:start] + SHIPPED[start:].replace(
        SHIPPED[start:].split("na_evidence = ", 1)[1].split("\n", 1)[0], '{ vi = "x" }', 1)
    assert parse_baseline(one, "t").checks[2].na_evidence == {"vi": "x", "en": "x"}
    gone = "\n".join(ln for ln in one.splitlines() if not ln.startswith('na_evidence = { vi = "x"'))
    err = _refused(gone)
    assert err.line == _line_of(gone, 'applies_if = "av_on == true"') and \
        "na_evidence" in err.reason
    # a case's condition, and an unknown field in its sentence
    text = SHIPPED.replace('{ when = "lock_s == 0",', '{ when = "lock_s = 0",')
    err = _refused(text)
    assert err.line == _line_of(text, "evidence_cases = [", 3) and "screen_lock" in err.reason
    text = SHIPPED.replace('vi = "Chưa đặt khóa màn hình', 'vi = "{lock_secs} Chưa đặt khóa màn hình')
    assert "lock_secs" in _refused(text).reason
    # by_os: an OS family and keys it knows, at the line of its table
    text = SHIPPED.replace("[check.by_os.linux]\nhint = { vi = \"Bật tường lửa",
                           "[check.by_os.macos]\nhint = { vi = \"Bật tường lửa")
    err = _refused(text)
    assert err.line == _line_of(text, "[check.by_os.macos]") and "macos" in err.reason
    text = SHIPPED.replace("[check.by_os.linux]\nhint = { vi = \"Bật tường lửa",
                           "[check.by_os.linux]\ntitle = \"x\"\nhint = { vi = \"Bật tường lửa")
    assert "by_os.linux" in _refused(text).reason
