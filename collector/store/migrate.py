"""Schema migrations (Alembic): the collector upgrades its database at start.

Revisions live in ``store/migrations/versions/``; every schema change is a new revision
(``0001_baseline`` is the schema as it was before migrations). A database made by the
code before migrations (tables present, no ``alembic_version``) is stamped at the baseline
first, then upgraded. ``schoolmon-collector db upgrade`` / ``db current`` run the same.
"""
import os
from typing import Optional

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
BASELINE = "0001_baseline"
#: PostgreSQL advisory lock key held while migrating ("schoolmo" in ASCII).
_LOCK_ID = 0x7363686F6F6C6D6F


def _config(conn: Optional[Connection]) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    """The newest revision this code knows."""
    script = ScriptDirectory.from_config(_config(None))
    rev = script.get_current_head()
    assert rev is not None
    return rev


def current(engine: Engine) -> Optional[str]:
    """The database's revision; None when it has none (empty, or made before migrations)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> Optional[str]:
    """Bring the database to the newest revision; returns it. Idempotent."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two collectors starting together: one migrates, the other then finds it done.
            conn.execute(text("SELECT pg_advisory_xact_lock(%d)" % _LOCK_ID))
        ctx = MigrationContext.configure(conn)
        rev = ctx.get_current_revision()
        if rev == head():
            return rev
        cfg = _config(conn)
        if rev is None and inspect(conn).has_table("devices"):
            # Made by the code before migrations: it has exactly the baseline's tables.
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, "head")
    return current(engine)


__all__ = ["upgrade", "current", "head", "BASELINE", "MIGRATIONS"]
