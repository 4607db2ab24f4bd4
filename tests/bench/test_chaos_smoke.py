"""bench/chaos.py runs end to end at a tiny size, through one PostgreSQL restart, and finds the books balanced.

12 subscriptions over 2 simulated months on real Celery workers against the sandbox, with seeded faults,
killed workers, duplicated and reordered webhooks and one seeded database restart (a fast stop or a crash, while
a step's work runs). chaos.py starts its own PostgreSQL cluster and redis-server (bench/servers.py), so the
restart touches nothing else on the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.bench.test_bench_smoke import ROOT, bench_env  # noqa: F401 - the fixture

COUNTS = (
    "renewals_unattempted",
    "double_charges",
    "paid_not_recorded",
    "recorded_not_paid",
    "unsettled_left",
    "invoices_paid_twice",
    "refunds_above_paid",
    "reconciliation_unresolved",
    "reconciliation_incomplete",
)


@pytest.mark.celery_worker
def test_chaos_small_run_balances_when_the_database_restarts_mid_run(bench_env):  # noqa: F811
    completed = subprocess.run(
        [
            sys.executable,
            "bench/chaos.py",
            *("--subscriptions", "12", "--months", "2"),
            *("--seed", "1", "--db-restarts", "1"),
        ],
        cwd=ROOT,
        env=bench_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["ok"] is True
    assert {key: result["counts"][key] for key in COUNTS} == dict.fromkeys(COUNTS, 0)
    assert result["steps"] > 0
    assert result["chaos"]["webhooks_delivered"] > 0
    [restart] = result["restarts"]
    assert restart["server"] == "database" and restart["mode"] in ("fast", "immediate")
    assert restart["to_backlog_drained_s"] is not None  # the work due at the restart was all attempted after it
