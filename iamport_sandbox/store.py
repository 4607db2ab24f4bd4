"""SQLite persistence: one connection guarded by one lock, short explicit transactions.

Objects are stored as JSON next to the few columns the queries filter or sort on. A file path makes the
state survive restarts; without one the database lives in memory.
"""

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, issued_at INTEGER NOT NULL, expired_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS customers (customer_uid TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS payments (
    seq INTEGER PRIMARY KEY, imp_uid TEXT NOT NULL UNIQUE, merchant_uid TEXT NOT NULL, customer_uid TEXT,
    status TEXT NOT NULL, started_at INTEGER NOT NULL, paid_at INTEGER NOT NULL, failed_at INTEGER NOT NULL,
    cancelled_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS payments_merchant_uid ON payments (merchant_uid);
CREATE INDEX IF NOT EXISTS payments_customer_uid ON payments (customer_uid);
CREATE INDEX IF NOT EXISTS payments_status ON payments (status);
CREATE TABLE IF NOT EXISTS schedules (
    seq INTEGER PRIMARY KEY, merchant_uid TEXT NOT NULL UNIQUE, customer_uid TEXT NOT NULL,
    schedule_at INTEGER NOT NULL, schedule_status TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS schedules_due ON schedules (schedule_status, schedule_at);
CREATE INDEX IF NOT EXISTS schedules_customer_uid ON schedules (customer_uid);
CREATE TABLE IF NOT EXISTS prepares (merchant_uid TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhooks (seq INTEGER PRIMARY KEY, data TEXT NOT NULL);
"""

_TABLES = ("meta", "tokens", "customers", "payments", "schedules", "prepares", "webhooks")


class Store:
    def __init__(self, path: str | None = None):
        self.path = str(path) if path else ":memory:"
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction. Keep the body short: everything else in the server waits for this lock."""
        with self.lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            yield self._conn

    @staticmethod
    def next_seq(db: sqlite3.Connection, name: str) -> int:
        key = f"seq:{name}"
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        value = int(row["value"]) + 1 if row else 1
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value)))
        return value

    def meta_get(self, key: str) -> str | None:
        with self.read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def meta_set(self, key: str, value: str | None) -> None:
        with self.tx() as db:
            if value is None:
                db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def wipe(self) -> None:
        with self.tx() as db:
            for table in _TABLES:
                db.execute(f"DELETE FROM {table}")

    def close(self) -> None:
        with self.lock:
            self._conn.close()
