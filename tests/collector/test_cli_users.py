"""``schoolmon-collector user|device|unit`` as a user runs them (subprocesses on a real
SQLite store): passwords never from the command line, tokens shown once and stored
hashed, every change in the audit log."""
import time

from schoolmon.collector.store import registry
from schoolmon.collector.store import schema as db
from schoolmon.collector.store import users as user_store
from schoolmon.collector.store.schema import api_tokens, audit_log, devices, org_units
from sqlalchemy import select

from tests.collector.storehelp import received
from tests.collector.test_cli import run_cli

PASSWORD = "a long enough password"


def _store(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "state.db")
    engine = db.make_engine(url)
    db.create_all(engine)
    registry.add_school(engine, "S01", "Trường 1", "TH", "Bát Xát", "Lào Cai")
    return engine, {"SCHOOLMON_STORE_URL": url}


def test_user_add_list_token_disable(tmp_path):
    engine, env = _store(tmp_path)
    # no password on the command line: there is no option for it
    r = run_cli("user", "add", "an", "--role", "so_admin", "--password", PASSWORD, env=env)
    assert r.returncode == 2
    r = run_cli("user", "add", "an", "--role", "so_admin", env=env)  # no terminal, no source
    assert r.returncode == 2 and "SCHOOLMON_USER_PASSWORD" in r.stderr
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    assert run_cli("user", "add", "an", "--role", "so_admin", "--password-file", str(pw),
                   env=env).returncode == 0
    r = run_cli("user", "add", "tech", "--role", "school_tech", "--unit", "S01",
                env=dict(env, SCHOOLMON_USER_PASSWORD=PASSWORD))
    assert r.returncode == 0, r.stderr
    r = run_cli("user", "add", "x", "--role", "school_tech", "--unit", "NOPE",
                env=dict(env, SCHOOLMON_USER_PASSWORD=PASSWORD))
    assert r.returncode == 1 and "NOPE" in r.stderr
    r = run_cli("user", "add", "y", "--role", "school_tech",
                env=dict(env, SCHOOLMON_USER_PASSWORD=PASSWORD))
    assert r.returncode == 1 and "unit" in r.stderr
    with engine.connect() as conn:
        assert user_store.check_password(conn, "an", PASSWORD) is not None
        assert user_store.check_password(conn, "tech", PASSWORD).units == (("school", "S01"),)
    out = run_cli("user", "list", env=env).stdout
    assert "an " in out and "school_tech" in out and "S01" in out
    r = run_cli("user", "token", "tech", env=env)
    token = r.stdout.strip()
    assert r.returncode == 0 and token.startswith("smu_") and "shown once" in r.stderr
    with engine.connect() as conn:
        stored = conn.execute(select(api_tokens.c.token_hash)).scalars().all()
        assert stored == [user_store.hash_secret(token)]  # the hash only
        assert user_store.find_token(conn, token).name == "tech"
    assert run_cli("user", "disable", "tech", env=env).returncode == 0
    with engine.connect() as conn:
        assert user_store.find_token(conn, token) is None
        assert user_store.check_password(conn, "tech", PASSWORD) is None
        log = [(r.action, r.target) for r in conn.execute(select(audit_log)
                                                           .order_by(audit_log.c.id))]
    assert log == [("user_add", "an"), ("user_add", "tech"), ("token_create", "tech"),
                   ("user_disable", "tech")]
    assert run_cli("user", "disable", "ghost", env=env).returncode == 1


def test_device_approve_retire_and_unit_rename(tmp_path):
    engine, env = _store(tmp_path)
    from schoolmon.collector.store import StateStore
    store = StateStore(engine)
    store.commit(store.prepare([received("S01", "d1", "inventory", 1, time.time())]))
    assert run_cli("device", "approve", "d1", env=env).returncode == 0
    assert run_cli("device", "retire", "d1", env=env).returncode == 0
    r = run_cli("device", "approve", "d1", env=env)
    assert r.returncode == 1 and "retired" in r.stderr
    assert run_cli("device", "approve", "nope", env=env).returncode == 1
    r = run_cli("device", "revoke", "d1", env=env)
    assert r.returncode == 2 and "not available" in r.stderr
    assert run_cli("unit", "rename", "lao-cai/bat-xat", "Xã Bát Xát", env=env).returncode == 0
    assert run_cli("unit", "former", "lao-cai/bat-xat", env=env).returncode == 0
    assert run_cli("unit", "rename", "nope", "X", env=env).returncode == 1
    with engine.connect() as conn:
        assert conn.execute(select(devices.c.state)).scalar() == "retired"
        unit = conn.execute(select(org_units).where(org_units.c.code == "lao-cai/bat-xat")).one()
        assert unit.name == "Xã Bát Xát" and unit.former
        assert [p["name"] for p in unit.previous_names] == ["Bát Xát"]
        actions = [r.action for r in conn.execute(select(audit_log).order_by(audit_log.c.id))]
    assert actions == ["device_approve", "device_retire", "unit_rename", "unit_former"]


def test_schools_import_is_audited(tmp_path):
    engine, env = _store(tmp_path)
    f = tmp_path / "s.csv"
    f.write_text("code,name,level,area,province\nS02,Trường 2,TH,Sa Pa,Lào Cai\n",
                 encoding="utf-8")
    assert run_cli("schools", "import", str(f), "--dry-run", env=env).returncode == 0
    assert run_cli("schools", "import", str(f), env=env).returncode == 0
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.action, audit_log.c.target,
                                   audit_log.c.actor)).all()
    assert [(a, t) for a, t, _ in rows] == [("schools_import", "s.csv")]  # not the dry run
    assert rows[0][2].startswith("cli")
