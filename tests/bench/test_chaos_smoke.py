"""bench/chaos.py runs end to end at a tiny size and finds the books balanced.

12 subscriptions over 2 simulated months on real Celery workers against the sandbox, with seeded faults,
killed workers and duplicated, reordered webhooks; its own database (kbilling_bench_chaos_smoke on the
PostgreSQL the suite uses, else the embedded one) and broker queue.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse

from tests.bench.test_bench_smoke import CHECKOUT, ROOT, bench_env  # noqa: F401 - the fixture

COUNTS = (
    "double_charges",
    "paid_not_recorded",
    "recorded_not_paid",
    "unsettled_left",
    "invoices_paid_twice",
    "refunds_above_paid",
)


def test_chaos_small_run_balances(bench_env):  # noqa: F811
    env = dict(bench_env)
    if env.get("BENCH_DATABASE_URL"):
        parts = urllib.parse.urlsplit(env["BENCH_DATABASE_URL"])
        env["BENCH_DATABASE_URL"] = urllib.parse.urlunsplit(
            (parts.scheme, parts.netloc, f"/kbilling_bench_chaos_smoke_{CHECKOUT}", "", "")
        )
    else:
        env["EMBEDDED_DB_NAME"] = f"kbilling_bench_chaos_smoke_{CHECKOUT}"
    completed = subprocess.run(
        [sys.executable, "bench/chaos.py", "--subscriptions", "12", "--months", "2", "--seed", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["ok"] is True
    assert {key: result["counts"][key] for key in COUNTS} == dict.fromkeys(COUNTS, 0)
    assert result["steps"] > 0
    assert result["chaos"]["webhooks_delivered"] > 0
