"""The throwaway state stores the benchmarks run on: a SQLite file in a temporary folder and
a private PostgreSQL cluster (tests/servers.py), each removed afterwards."""
import os
import shutil
import tempfile
from typing import Callable

STORES = ("sqlite", "postgresql", "both")


def on_each_store(choice: str, prefix: str, run: Callable[[str, str], None]) -> None:
    """``run(url, label)`` on SQLite and/or PostgreSQL as ``choice`` (one of STORES) says."""
    if choice in ("sqlite", "both"):
        folder = tempfile.mkdtemp(prefix=prefix)
        try:
            run("sqlite:///" + os.path.join(folder, "state.db"), "SQLite")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if choice in ("postgresql", "both"):
        from tests.servers import Postgres

        pg = Postgres()
        try:
            run(pg.url, "PostgreSQL")
        finally:
            pg.stop()
