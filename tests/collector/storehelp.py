"""Helpers for the state-store tests: engines on SQLite and PostgreSQL, real-wire messages."""
import uuid
from typing import Any, Iterator, Optional

import psycopg
from schoolmon.collector.state import Received
from schoolmon.collector.store import schema as db
from schoolmon.protocol import decode, encode, envelope, topic
from sqlalchemy import Engine

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a multiple of 3600


def engine_for(kind: str, tmp_path: Any, postgres: Any) -> Iterator[Engine]:
    """A fresh, empty database: a SQLite file or a new PostgreSQL database."""
    if kind == "sqlite":
        engine = db.make_engine("sqlite:///%s" % (tmp_path / "state.db"))
        yield engine
        engine.dispose()
        return
    name = "t_" + uuid.uuid4().hex[:12]
    admin = postgres.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute("CREATE DATABASE %s" % name)
    engine = db.make_engine(postgres.url.rsplit("/", 1)[0] + "/" + name)
    yield engine
    engine.dispose()
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute("DROP DATABASE %s WITH (FORCE)" % name)


def received(school: str, device: str, kind: str, seq: int, ts: float,
             received_at: Optional[float] = None, **fields: Any) -> Received:
    """A Received built through the real wire format (envelope → encode → decode)."""
    if kind == "health":
        base = {"cpu_pct": 10.0, "cpu_n": 4, "mem_pct": 50.0, "up": 1000}
        base.update(fields)
        fields = base
    elif kind == "inventory":
        base = {"hostname": device, "role": "lab", "os_name": "Windows", "agent": "0.1.0"}
        base.update(fields)
        fields = base
    elif kind == "status":
        fields.setdefault("state", "online")
    m = decode(topic(school, device, kind), encode(envelope(kind, fields, seq, ts)))
    return Received(m, ts + 1 if received_at is None else received_at, ts)


def health(school: str, device: str, seq: int, ts: float, **fields: Any) -> Received:
    return received(school, device, "health", seq, ts, **fields)


def status(school: str, device: str, seq: int, ts: float, state: str = "online",
           received_at: Optional[float] = None, **fields: Any) -> Received:
    return received(school, device, "status", seq, ts, received_at, state=state, **fields)
