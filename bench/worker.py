"""A real Celery worker (`celery -A config worker ...`) with measuring probes, for bench/billing_run.py.

    python -m bench.worker worker --pool threads --concurrency 32 -Q <queue> ...

Nothing in the app changes: the probes hang off public hooks.
- Celery's task_prerun/task_postrun signals time every task;
- a Django execute wrapper (installed on each new DB connection) counts and times every SQL statement a task
  runs, notes when the payment attempt row is inserted and last updated (wall clock), and sums time per
  statement shape;
- IamportGateway.charge_billing_key is wrapped to time every gateway call, on whichever thread makes it (the
  app's gateway threads, not the task's).
One JSON line per task goes to $BENCH_STATS_DIR/tasks-<pid>.jsonl; statement totals to sql-<pid>.json; the
gateway calls' (start, seconds) to gateway-<pid>.json.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from pathlib import Path

STATS = Path(os.environ.get("BENCH_STATS_DIR", "."))
PID = os.getpid()
_local = threading.local()
_lock = threading.Lock()
_sql_totals: dict[str, list] = {}  # shape -> [count, seconds]
_gateway_calls: list[tuple[float, float]] = []  # (start, seconds)
_tasks_file = None

_SHAPE = re.compile(r"\s+(WHERE|VALUES|SET|RETURNING|ORDER BY|LIMIT|FOR UPDATE)\b.*", re.S)


def shape(sql: str) -> str:
    """A statement without its parameters: 'SELECT ... FROM "billing_invoice"' and the like."""
    head = sql.strip()
    if head.startswith("SELECT"):
        match = re.search(r'\bFROM\s+("[^"]+")', head)
        table = match.group(1) if match else "?"
        return f"SELECT {table}" + (" FOR UPDATE" if "FOR UPDATE" in head else "")
    if head.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")):
        return head.rsplit(" ", 1)[0]
    return _SHAPE.sub("", head)[:90]


def _execute(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        elapsed = time.perf_counter() - started
        record = getattr(_local, "record", None)
        if record is not None:
            record["queries"] += 1
            record["db_s"] += elapsed
            if sql.startswith('INSERT INTO "billing_paymentattempt"'):
                record.setdefault("attempt_created", time.time())
            elif sql.startswith('UPDATE "billing_paymentattempt"'):
                record["attempt_settled"] = time.time()
                # when, and how many attempts one settling statement recorded (a batch settles in chunks)
                record.setdefault("settles", []).append((record["attempt_settled"], context["cursor"].rowcount))
        key = shape(sql)
        with _lock:
            entry = _sql_totals.setdefault(key, [0, 0.0])
            entry[0] += 1
            entry[1] += elapsed


def _on_connection(sender, connection, **kwargs):
    if _execute not in connection.execute_wrappers:
        connection.execute_wrappers.append(_execute)


def _prerun(task_id=None, task=None, args=None, **kwargs):
    _local.record = {
        "task": task.name.rsplit(".", 1)[-1],
        "arg": args[0] if args else None,
        "start": time.time(),
        "queries": 0,
        "db_s": 0.0,
        "gateway_s": 0.0,
    }


def _postrun(task_id=None, task=None, retval=None, state=None, **kwargs):
    record = getattr(_local, "record", None)
    _local.record = None
    if record is None:
        return
    record["end"] = time.time()
    record["result"] = retval if isinstance(retval, str | int | dict) else None
    record["state"] = state
    line = json.dumps(record) + "\n"
    with _lock:
        _tasks_file.write(line)
        _tasks_file.flush()


def _dump_sql_totals() -> None:
    with _lock:
        files = {"sql": json.dumps(_sql_totals), "gateway": json.dumps(_gateway_calls)}
    for name, data in files.items():
        tmp = STATS / f"{name}-{PID}.json.tmp"
        tmp.write_text(data)
        tmp.replace(STATS / f"{name}-{PID}.json")


def _dumper() -> None:
    while True:
        time.sleep(1.0)
        _dump_sql_totals()


def _timed_charge(original):
    def charge_billing_key(self, *args, **kwargs):
        wall, started = time.time(), time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            record = getattr(_local, "record", None)
            if record is not None:  # a charge made on the task's own thread (a batch of one)
                record["gateway_s"] += elapsed
            with _lock:
                _gateway_calls.append((wall, elapsed))

    return charge_billing_key


def main() -> None:
    global _tasks_file
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    _tasks_file = open(STATS / f"tasks-{PID}.jsonl", "a")

    from celery.signals import task_postrun, task_prerun, worker_ready, worker_shutdown
    from django.db.backends.signals import connection_created

    from billing.gateway import iamport

    iamport.IamportGateway.charge_billing_key = _timed_charge(iamport.IamportGateway.charge_billing_key)
    connection_created.connect(_on_connection, weak=False)
    task_prerun.connect(_prerun, weak=False)
    task_postrun.connect(_postrun, weak=False)
    worker_ready.connect(lambda **kw: (STATS / f"ready-{PID}").write_text("ready"), weak=False)
    worker_shutdown.connect(lambda **kw: _dump_sql_totals(), weak=False)
    threading.Thread(target=_dumper, daemon=True).start()

    from config.celery import app

    app.worker_main(sys.argv[1:])


if __name__ == "__main__":
    main()
