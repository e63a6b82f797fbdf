"""``schoolmon-collector calendar check`` as a real subprocess."""
import os
import subprocess
import sys

CLI = [sys.executable, "-m", "schoolmon.collector.cli", "calendar", "check"]


def run(*args, env=None):
    e = dict(os.environ, **(env or {}))
    e.pop("SCHOOLMON_ALERTING_CALENDAR_FILE", None)  # the shipped file, not the tests' "always"
    return subprocess.run(CLI + list(args), capture_output=True, text=True, env=e, timeout=120)


def test_shipped_calendar_in_vietnamese():
    r = run("--date", "2027-04-16")
    assert r.returncode == 0, r.stderr
    assert "Năm học 2026–2027: 2026-09-05 → 2027-05-31" in r.stdout
    assert "Giỗ Tổ Hùng Vương" in r.stdout
    assert "Không phải ngày học: Giỗ Tổ Hùng Vương." in r.stdout


def test_a_school_day_in_english_with_its_hours():
    r = run("--date", "2026-12-05", "--lang", "en")
    assert r.returncode == 0, r.stderr
    assert "A school day." in r.stdout
    assert "school_hours: 07:00–11:30" in r.stdout


def test_a_school_override(tmp_path):
    f = tmp_path / "cal.toml"
    f.write_text('[windows.school_hours]\nmon = "07:00-17:00"\n'
                 '[[school_years]]\nname = "Y"\nstart = 2026-09-05\nend = 2027-05-31\n'
                 '[[school."S1".holidays]]\nname = "Nghỉ do lũ lụt"\ndate = 2026-12-07\n',
                 encoding="utf-8")
    r = run("--file", str(f), "--school", "S1", "--area", "LCI/bat-xat", "--date", "2026-12-07")
    assert r.returncode == 0, r.stderr
    assert "Không phải ngày học: Nghỉ do lũ lụt." in r.stdout
    r = run("--file", str(f), "--date", "2026-12-07")
    assert "Ngày học." in r.stdout and "school_hours: 07:00–17:00" in r.stdout


def test_bad_file_exit_1_with_the_line(tmp_path):
    f = tmp_path / "cal.toml"
    f.write_text('[windows.school_hours]\nmon = "07:00-17:00"\nsat = "07:00-25:00"\n',
                 encoding="utf-8")
    r = run("--file", str(f))
    assert r.returncode == 1
    assert "%s:3:" % f in r.stderr
    assert "25:00" in r.stderr and "giờ không hợp lệ" in r.stderr


def test_the_collector_refuses_to_start_with_a_bad_calendar(tmp_path):
    f = tmp_path / "cal.toml"
    f.write_text('[windows.school_hours]\nmon = "07:00-17:00"\nfunday = "07:00-11:00"\n',
                 encoding="utf-8")
    cmd = [sys.executable, "-m", "schoolmon.collector.cli", "run"]
    env = dict(os.environ, SCHOOLMON_ALERTING_CALENDAR_FILE=str(f),
               SCHOOLMON_STORE_URL="sqlite:///%s" % (tmp_path / "s.db"),
               SCHOOLMON_API_ADMIN_TOKEN="Xk3-p9Qz_7LmN2vB4tR8")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "%s:3:" % f in r.stderr and "funday" in r.stderr
