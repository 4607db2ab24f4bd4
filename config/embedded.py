"""The embedded PostgreSQL used when DATABASE_URL is unset.

A laptop with no database server still runs on real PostgreSQL: the pip-installed `pgserver` package
starts a private PostgreSQL 16 under `var/` (unix socket only, no TCP port). Every process of a
`make run` (web, worker, beat) calls `ensure_running()`; the first starts the server, the others
attach to it. The server is left running on exit so restarts are fast; `make stop-db` stops it.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PGDATA = BASE_DIR / "var" / "pgdata"
DEFAULT_DB_NAME = "kbilling"


@dataclass(frozen=True)
class EmbeddedPostgres:
    socket_dir: str
    user: str
    name: str

    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg://{self.user}@/{self.name}?host={self.socket_dir}"


_cached: EmbeddedPostgres | None = None


def ensure_running(pgdata: Path | None = None, name: str = DEFAULT_DB_NAME) -> EmbeddedPostgres:
    """Start (or attach to) the embedded server and make sure database `name` exists."""
    global _cached
    if _cached is not None:
        return _cached
    # pgserver's dependencies chatter on every start (a platformdirs warning, INFO lines on exit).
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    import pgserver  # imported lazily: production never needs it

    pgdata = Path(os.environ.get("EMBEDDED_PGDATA", pgdata or DEFAULT_PGDATA))
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(pgdata), cleanup_mode=None)
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"Invalid embedded database name {name!r}")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")  # noqa: S608 - validated
    if "1 row" not in exists:
        try:
            server.psql(f'CREATE DATABASE "{name}";')
        except subprocess.CalledProcessError:
            # Another process created it between our check and our create.
            pass
    _cached = EmbeddedPostgres(socket_dir=socket_dir, user="postgres", name=name)
    return _cached


def stop(pgdata: Path | None = None) -> None:
    import pgserver

    pgdata = Path(os.environ.get("EMBEDDED_PGDATA", pgdata or DEFAULT_PGDATA))
    if (pgdata / "postmaster.pid").exists():
        server = pgserver.get_server(str(pgdata), cleanup_mode="stop")
        server.cleanup()
