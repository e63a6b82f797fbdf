"""The store's command line: ``db upgrade`` / ``db current``, and a dry-run import that
writes nothing (not even an empty SQLite file)."""
import os

from tests.collector.test_cli import GOOD_CSV, _school_codes, run_cli, write


def test_dry_run_without_config_creates_no_database(tmp_path):
    work = tmp_path / "cwd"
    work.mkdir()
    good = write(tmp_path, "truong.csv", GOOD_CSV)
    r = run_cli("schools", "import", good, "--dry-run", cwd=str(work))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3" in r.stdout
    assert os.listdir(work) == []  # no ./schoolmon.db, no WAL files


def test_dry_run_counts_against_an_existing_database(tmp_path):
    db_path = tmp_path / "state.db"
    env = {"SCHOOLMON_STORE_URL": "sqlite:///%s" % db_path}
    good = write(tmp_path, "truong.csv", GOOD_CSV)
    assert run_cli("schools", "import", good, env=env).returncode == 0
    before = _school_codes(db_path)
    r = run_cli("schools", "import", good, "--dry-run", "--lang", "en", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "would add 0 schools and update 3" in r.stdout, r.stdout
    assert _school_codes(db_path) == before


def test_db_current_and_upgrade(tmp_path):
    db_path = tmp_path / "state.db"
    env = {"SCHOOLMON_STORE_URL": "sqlite:///%s" % db_path}
    r = run_cli("db", "current", env=env)
    assert r.returncode == 0 and r.stdout.startswith("(none)"), r.stdout + r.stderr
    r = run_cli("db", "upgrade", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "(none) → 0008_alert_notifications"
    r = run_cli("db", "current", env=env)
    assert r.returncode == 0 and r.stdout.strip() == "0008_alert_notifications (head)", r.stdout
    r = run_cli("db", "backup", str(tmp_path / "x.bak"), env=env)
    assert r.returncode == 2 and "not available" in r.stderr
