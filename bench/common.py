"""What every benchmark shares: its own database and broker, a sandbox subprocess, CPU accounting, percentiles.

Database (documented in bench/README.md):
- default: the machine's PostgreSQL over TCP, `postgres://postgres@127.0.0.1:5432/kbilling_bench` (billing_run;
  due_sweep and web use kbilling_bench_sweep and kbilling_bench_web), created on first use, migrated on every
  run, emptied before every seed;
- `BENCH_DATABASE_URL=postgres://...`: another server or database name (the smoke test uses kbilling_bench_smoke);
- `BENCH_EMBEDDED=1`: the embedded PostgreSQL under var/pgdata with `EMBEDDED_DB_NAME` (default kbilling_bench).
Broker: `BENCH_BROKER_URL` (default redis://127.0.0.1:6379/14); an empty value falls back to the app's own
default (kombu's SQLAlchemy transport on the same PostgreSQL). Every run uses a fresh queue name.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/kbilling_bench"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/14"
SANDBOX_CHANNEL_KEY = "channel-key-sandbox-billing"
DECLINING_CARD = "4000-0000-0000-9995"  # issued fine, every charge declined: insufficient funds
GOOD_CARD = "4242-4242-4242-4242"


def log(message: str) -> None:
    """Progress goes to stderr: stdout carries only the one JSON object."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def emit(result: dict) -> None:
    sys.stdout.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def percentile(values, p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100)."""
    data = sorted(values)
    if not data:
        return None
    rank = max(1, min(len(data), round(p / 100 * len(data) + 0.5)))
    return data[rank - 1]


def rnd(value, digits: int = 1):
    return None if value is None else round(value, digits)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- environment ---------------------------------------------------------------------------------------


def _ensure_database(url: str) -> None:
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def configure(*, queue_prefix: str = "bench", db_suffix: str = "", extra_env: dict | None = None) -> dict:
    """Set the environment for this process and return it for subprocesses; then start Django and migrate.

    Each script has its own database by default (kbilling_bench, kbilling_bench_sweep, kbilling_bench_web) so
    they can run side by side; BENCH_DATABASE_URL / EMBEDDED_DB_NAME name one explicitly."""
    env = {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "CELERY_TASK_DEFAULT_QUEUE": f"{queue_prefix}-{uuid.uuid4().hex[:8]}",
        "SITE_URL": "",  # no notice_url: the charge answer settles the attempt; webhooks are web.py's subject
        "PYTHONPATH": str(ROOT),
    }
    if os.environ.get("BENCH_EMBEDDED"):
        os.environ.pop("DATABASE_URL", None)
        env["EMBEDDED_DB_NAME"] = os.environ.get("EMBEDDED_DB_NAME", "kbilling_bench" + db_suffix)
    else:
        url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL + db_suffix
        _ensure_database(url)
        env["DATABASE_URL"] = url
    broker = os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER_URL)
    if broker:
        env["CELERY_BROKER_URL"] = broker
    else:
        os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.pop("DATABASE_NAME", None)  # a leftover from a test run would point us at its database
    env.update(extra_env or {})
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return {**os.environ}


def database_label() -> str:
    from django.db import connection

    settings = connection.settings_dict
    host = settings.get("HOST") or "local socket"
    return f"postgresql://{settings.get('USER')}@{host}:{settings.get('PORT') or ''}/{settings['NAME']}"


def truncate_app_tables() -> None:
    """Empty every table the app writes (users, billing, subscriptions, sessions, tokens); keep migrations."""
    from django.db import connection

    keep = {"django_migrations", "django_content_type", "auth_permission", "auth_group", "auth_group_permissions"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        tables = [
            name
            for (name,) in cursor.fetchall()
            if name not in keep and not name.startswith("django_celery_beat") and not name.startswith("kombu_")
        ]
        if tables:
            cursor.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


def connections_available() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
            " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
        )
        return cursor.fetchone()[0]


def purge_queue(queue: str) -> None:
    """Drop what this run left in Redis (its queue and kombu's binding key)."""
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith("redis://"):
        return
    try:
        import redis

        client = redis.Redis.from_url(broker)
        keys = [queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]
        keys += [f"{queue}\x06\x16{i}" for i in range(10)]  # priority sub-queues
        client.delete(*keys)
        client.close()
    except Exception as exc:  # cleanup only
        log(f"could not purge {queue}: {exc}")


# --- the sandbox ---------------------------------------------------------------------------------------


class SandboxProcess:
    """`python -m iamport_sandbox` in its own process (its CPU is not ours), with billing keys pre-issued.

    Keys are issued in bulk through the sandbox's own Ledger.issue_key into its SQLite file before it starts
    (the same code the REST `POST /subscribe/customers/{uid}` runs, minus HTTP): the sandbox has no bulk
    control, and 20,000 REST calls would take longer than the benchmark.
    """

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.data = workdir / "sandbox.sqlite3"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def issue_keys(self, customer_uids: list[str], *, declining: frozenset[str] = frozenset()) -> float:
        """Issue the keys in the sandbox's ledger; those in `declining` are cards whose charges are declined
        (insufficient funds), for runs where most renewals fail."""
        from iamport_sandbox.ledger import Ledger
        from iamport_sandbox.server import DEFAULT_IMP_KEY, DEFAULT_IMP_SECRET, DEFAULT_MERCHANT_CODE
        from iamport_sandbox.store import Store

        started = time.perf_counter()
        store = Store(self.data)
        ledger = Ledger(
            store, imp_key=DEFAULT_IMP_KEY, imp_secret=DEFAULT_IMP_SECRET, merchant_code=DEFAULT_MERCHANT_CODE
        )
        now = int(time.time())
        params = {"card_number": GOOD_CARD, "expiry": "2030-12", "channel_key": SANDBOX_CHANNEL_KEY}
        declined = {**params, "card_number": DECLINING_CARD}
        for customer_uid in customer_uids:
            ledger.issue_key(customer_uid, declined if customer_uid in declining else params, now)
        store.close()
        return time.perf_counter() - started

    def start(self) -> SandboxProcess:
        self.log_file = open(self.workdir / "sandbox.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "iamport_sandbox", "--port", str(self.port), "--data", str(self.data), "--quiet"],
            cwd=ROOT,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        from iamport_sandbox.control import SandboxControl

        self.control = SandboxControl(self.url, timeout=30)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.control.health()
                return self
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    log_text = (self.workdir / "sandbox.log").read_text()
                    raise RuntimeError(f"the sandbox did not start: {log_text}") from None
                time.sleep(0.05)

    def payments(self, *, columns: str = "merchant_uid, status, started_at") -> list[tuple]:
        """Read the sandbox's own ledger file (WAL, safe while it runs): cheaper than GET /__sandbox__/payments
        for tens of thousands of payments."""
        import sqlite3

        conn = sqlite3.connect(f"file:{self.data}?mode=ro", uri=True)
        try:
            return conn.execute(f"SELECT {columns} FROM payments").fetchall()  # noqa: S608 - our own columns
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "log_file", None):
            self.log_file.close()


# --- CPU accounting -------------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def box_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) / _TICK, total / _TICK


def pid_cpu_seconds(pid: int) -> float:
    """CPU seconds of one process, all threads (0 when it is gone).

    /proc/<pid>/stat sums every thread, living or exited, but in 10 ms ticks: too coarse for dozens of mostly
    idle database backends. /proc/<pid>/task/*/schedstat counts nanoseconds but forgets exited threads. Take
    the larger of the two."""
    ticks = 0.0
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
        fields = stat[stat.rfind(")") + 2 :].split()
        ticks = (int(fields[11]) + int(fields[12])) / _TICK
    except OSError:
        return 0.0
    precise = 0.0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                precise += int(fh.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return ticks
    return max(ticks, precise)


def pids_named(comm: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as fh:
                    if fh.read().strip() == comm:
                        found.append(int(entry))
            except OSError:
                pass
    return found


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2 :].split()[1])


def database_server_pids() -> list[int]:
    """Every process of the PostgreSQL server we use (postmaster children: backends, WAL writer, checkpointer),
    found from our own backend's parent; the server runs on this machine."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        postmaster = _ppid(cursor.fetchone()[0])
    if postmaster is None:
        return []
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _ppid(int(entry)) == postmaster:
            children.append(int(entry))
    return children


class CpuMeter:
    """CPU seconds spent by each part of the system between start() and stop()."""

    def __init__(self, groups: dict[str, callable]):
        self.groups = groups  # name -> function returning the pids to account to it
        self.before: dict[int, float] = {}

    def _sample(self) -> dict[str, dict[int, float]]:
        return {name: {pid: pid_cpu_seconds(pid) for pid in pids()} for name, pids in self.groups.items()}

    def start(self) -> None:
        self.box0 = box_cpu_seconds()
        self.t0 = time.perf_counter()
        self.s0 = self._sample()

    def stop(self) -> dict:
        s1 = self._sample()
        box1 = box_cpu_seconds()
        wall = time.perf_counter() - self.t0
        result = {name: sum(v - self.s0[name].get(pid, 0.0) for pid, v in s1[name].items()) for name in s1}
        busy = box1[0] - self.box0[0]
        result["other"] = max(busy - sum(result.values()), 0.0)
        result["box_busy"] = busy
        result["box_capacity"] = box1[1] - self.box0[1]
        result["wall"] = wall
        return result


# --- riding out a database or broker restart -------------------------------------------------------------


def retrying(call, *, what: str = "", timeout: float = 180.0):
    """Run `call()`; while the database or the broker is away (restarted by the benchmark, or failing over),
    close the dead connections and try again every half second, for at most `timeout` seconds. For the
    benchmark's own reads and idempotent writes (a clock move, a webhook stored again is a duplicate)."""
    from django import db
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import ConnectionError as RedisConnectionError

    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except (db.OperationalError, db.InterfaceError, BrokerError, RedisConnectionError) as exc:
            if time.monotonic() > deadline:
                raise
            log(f"{what or 'driver'}: {type(exc).__name__}, retrying")
            for conn in db.connections.all():
                try:
                    conn.close()  # the next query opens a new connection
                except Exception:  # closing a dead socket may raise: it is closed either way
                    conn.connection = None
            time.sleep(0.5)
