"""A database outage as a worker or a web process sees it during a failover or a restart: every session on the
test database is dropped (pg_terminate_backend) and new ones are refused (ALLOW_CONNECTIONS false) until `end()`.

It runs on a connection of its own (autocommit, outside the test's transaction), so only the test database of
this run goes away: not the embedded server, not the broker's database, not anyone else's. The test's own Django
connection is kept unless `keep_ours=False`; a test that drops it must use transaction=True.
"""

from __future__ import annotations

import psycopg
from django.db import connection


class DatabaseOutage:
    def __init__(self):
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        params.pop("prepare_threshold", None)
        self.dbname = connection.settings_dict["NAME"]
        # The control connection goes to the maintenance database: it survives the outage it causes.
        self._control = psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True)
        self.active = False
        self.terminated = 0

    def begin(self, *, keep_ours: bool = True) -> int:
        """Refuse new sessions, then drop the open ones; returns how many were dropped."""
        keep = connection.connection.info.backend_pid if keep_ours and connection.connection else 0
        self._control.execute(f'ALTER DATABASE "{self.dbname}" WITH ALLOW_CONNECTIONS false')
        self.active = True
        rows = self._control.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
            [self.dbname, keep],
        ).fetchall()
        self.terminated += len(rows)
        return len(rows)

    def end(self) -> None:
        self._control.execute(f'ALTER DATABASE "{self.dbname}" WITH ALLOW_CONNECTIONS true')
        self.active = False

    def close(self) -> None:
        if self.active:
            self.end()
        self._control.close()
