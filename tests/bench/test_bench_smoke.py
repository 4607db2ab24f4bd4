"""The benchmark scripts keep working: each runs at a tiny size in a subprocess and prints its JSON.

Not a performance test (nothing here is timed): it only checks that the scripts run end to end against their
own database (kbilling_bench_smoke on the PostgreSQL the suite uses, else the embedded one) and the broker
(this machine's Redis when it answers, else the app's default broker on PostgreSQL).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# One database per checkout: two checkouts on one machine (a developer's and CI's) never truncate each other's.
CHECKOUT = hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]  # noqa: S324 - a name, not a secret
SMOKE_DB = f"kbilling_bench_smoke_{CHECKOUT}"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def bench_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_NAME")}
    base = (
        os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/"
    )
    parts = urllib.parse.urlsplit(base)
    if _reachable(parts.hostname or "127.0.0.1", parts.port or 5432):
        env["BENCH_DATABASE_URL"] = urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"/{SMOKE_DB}", "", ""))
        env.pop("BENCH_EMBEDDED", None)
    else:
        env.pop("BENCH_DATABASE_URL", None)
        env["BENCH_EMBEDDED"] = "1"
        env["EMBEDDED_DB_NAME"] = SMOKE_DB
    if "BENCH_BROKER_URL" not in os.environ:
        env["BENCH_BROKER_URL"] = "redis://127.0.0.1:6379/14" if _reachable("127.0.0.1", 6379) else ""
    return env


def run(script: str, *args: str, env: dict, timeout: float = 120) -> dict:
    completed = subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, completed.stdout[-2000:]
    return json.loads(lines[0])


@pytest.mark.celery_worker
def test_billing_run_charges_every_due_subscription_once_when_run_small(bench_env):
    result = run(
        "billing_run.py",
        *("--subscriptions", "20", "--latency-ms", "10", "--concurrency", "4", "--workers", "1"),
        *("--tasks", "2", "--batch-size", "8"),
        *("--baseline-sample", "3", "--query-sample", "6", "--rate-limit", "0"),
        env=bench_env,
    )

    for key in ("charges", "seconds", "charges_per_s", "p50_ms", "p95_ms", "queries_per_charge",
                "baseline_charges_per_s", "speedup"):  # fmt: skip
        assert result[key] is not None, key
    assert result["charges"] == 20
    assert result["attempt_status"] == {"succeeded": 20}
    assert result["double_charges"] == 0
    assert result["renewal_tasks"] == 3  # 20 due subscriptions in batches of 8
    assert result["in_process"]["batch_outcomes"] == {"renewed:succeeded": 6}
    assert result["in_process"]["one_batch"], "the statements of one batch are listed"
    assert result["in_process"]["one_renewal_alone"]["outcome"] == "renewed:succeeded"


def test_due_sweep_finds_the_due_percent_through_the_partial_index_when_run_small(bench_env):
    result = run("due_sweep.py", "--subscriptions", "5000", "--repeat", "2", env=bench_env)

    assert result["subscriptions"] == 5000
    assert result["due"] == 50
    assert result["uses_subscription_due_idx"]["after_analyze"] is True
    assert result["sweep_fanout"]["subscriptions"] == 50
    assert result["sweep_fanout"]["tasks"] == 1  # one renewal task per batch of 50
    assert result["due_query_seconds"]["warm_p50"] is not None


def test_web_reports_latency_for_each_endpoint_when_run_small(bench_env):
    result = run(
        "web.py",
        *("--clients", "4", "--duration", "1", "--users", "5", "--history", "2", "--threads", "4"),
        env=bench_env,
    )

    for name in ("account", "api_subscriptions", "webhook"):
        assert result[name]["requests"] > 0, name
        assert result[name]["p95_ms"] is not None, name
        assert result[name]["unexpected_status"] == 0, name
    assert result["webhook"]["events_stored"] >= result["webhook"]["requests"]
