"""Finding the due subscriptions among many: the app's own query, timed, with its plan; prints ONE JSON object.

    .venv/bin/python bench/due_sweep.py [--subscriptions 1000000] [--due-fraction 0.01] [--repeat 7]

Seeds the real tables with set-based SQL (INSERT ... SELECT generate_series: users, customers, subscriptions):
1% active and past their period end, ~9% canceled, ~5% trialing, the rest active with a period end spread over
the next 30 days. Then runs `subscriptions.services.renewals.subscriptions_due(now=)` (cold once, then
--repeat times), shows `EXPLAIN (ANALYZE, BUFFERS)` of the exact SQL it sent — before and after ANALYZE, since
a bulk load leaves no statistics and this server runs with autovacuum off — and times the rest of the sweep
task (`subscriptions_renew_due_task`: one publish per batch of BILLING_BATCH_SIZE due subscriptions)
into a queue nobody consumes, which is purged afterwards. Target: the query under one second.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import log, percentile, rnd

TARGET_SECONDS = 1.0

SEED_SQL = [
    # One user and one customer per subscription: a customer may have only one live subscription.
    """
    INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active,
                           date_joined)
    SELECT '!', false, 'sweep' || g, '', '', '', false, true, now() FROM generate_series(1, %(n)s) AS g
    """,
    """
    INSERT INTO billing_customer (user_id, email, name, credit_balance, preferred_language, created_at)
    SELECT id, '', username, 0, 'ko', now() FROM auth_user WHERE username LIKE 'sweep%%'
    """,
    # g % 100 == 0: due (1%); 1..9: canceled; 10..14: trialing; the rest active, period ends ahead.
    """
    INSERT INTO subscriptions_subscription (
        customer_id, plan_id, billing_key_id, status, billing_anchor, current_period_index, current_period_start,
        current_period_end, trial_end, cancel_at_period_end, canceled_at, ended_at, end_reason, pause_requested,
        next_event_at, created_at, updated_at)
    SELECT c.id, %(plan)s, NULL,
           CASE WHEN s.r BETWEEN 1 AND 9 THEN 'canceled' WHEN s.r BETWEEN 10 AND 14 THEN 'trialing' ELSE 'active' END,
           s.anchor, 0, s.anchor, s.period_end,
           CASE WHEN s.r BETWEEN 10 AND 14 THEN s.period_end END,
           false,
           CASE WHEN s.r BETWEEN 1 AND 9 THEN s.now END,
           CASE WHEN s.r BETWEEN 1 AND 9 THEN s.now END,
           CASE WHEN s.r BETWEEN 1 AND 9 THEN 'canceled_now' ELSE '' END,
           false,
           CASE WHEN s.r BETWEEN 1 AND 9 THEN NULL ELSE s.period_end END,
           s.anchor, s.now
    FROM billing_customer AS c
    CROSS JOIN LATERAL (
        SELECT c.id %% 100 AS r,
               %(now)s::timestamptz AS now,
               CASE WHEN c.id %% 100 = 0
                    THEN %(now)s::timestamptz - make_interval(secs => 1 + (c.id * 7919) %% 86400)
                    ELSE %(now)s::timestamptz + make_interval(secs => 1 + (c.id * 7919) %% (30 * 86400)) END
                    AS period_end,
               %(now)s::timestamptz - interval '30 days' AS anchor
    ) AS s
    """,
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", "-n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7, help="warm runs of the due query")
    parser.add_argument("--no-publish", action="store_true", help="skip timing the sweep's fan-out")
    return parser.parse_args(argv)


def explain(sql: str) -> tuple[list[str], bool]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        lines = [row[0] for row in cursor.fetchall()]
    return lines, any("subscription_due_idx" in line for line in lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    env = common.configure(queue_prefix="bench-sweep", db_suffix="_sweep", extra_env={"LOG_LEVEL": "WARNING"})
    queue = env["CELERY_TASK_DEFAULT_QUEUE"]

    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from subscriptions.models import Plan, Subscription
    from subscriptions.services.renewals import subscriptions_due
    from subscriptions.tasks import subscriptions_renew_due_task

    log(f"database {common.database_label()}: seeding {args.subscriptions:,} subscriptions")
    common.truncate_app_tables()
    now = timezone.now()
    plan = Plan.objects.create(code="sweep-monthly", name_ko="월간", name_en="Monthly", amount=9_900)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in SEED_SQL:
            cursor.execute(sql, {"n": args.subscriptions, "plan": plan.pk, "now": now})
    seed_s = time.perf_counter() - started
    total = Subscription.objects.count()
    log(f"seeded in {seed_s:.1f}s")

    # Before ANALYZE: what the planner does right after a bulk load with no statistics.
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        due = subscriptions_due(now=now)
        cold_s = time.perf_counter() - started
    sql = captured.captured_queries[-1]["sql"]
    plan_before, index_before = explain(sql)

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE auth_user, billing_customer, subscriptions_subscription")
    analyze_s = time.perf_counter() - started

    runs = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        due = subscriptions_due(now=now)
        runs.append(time.perf_counter() - started)
    plan_after, index_after = explain(sql)

    publish = None
    if not args.no_publish:
        # The rest of the sweep task: the same code path as beat's, publishing into a queue nobody consumes.
        log(f"timing the sweep task's fan-out of {len(due):,} due subscriptions")
        started = time.perf_counter()
        published = subscriptions_renew_due_task.run()
        elapsed = time.perf_counter() - started
        common.purge_queue(queue)
        from django.conf import settings

        tasks = -(-published // max(settings.BILLING_BATCH_SIZE, 1))
        publish = {
            "subscriptions": published,
            "batch_size": settings.BILLING_BATCH_SIZE,
            "tasks": tasks,
            "seconds": rnd(elapsed, 2),
            "ms_per_task": rnd(elapsed * 1000 / max(tasks, 1), 3),
        }

    warm = percentile(runs, 50)
    return {
        "subscriptions": total,
        "due": len(due),
        "due_query_seconds": {
            "cold_no_statistics": rnd(cold_s, 4),
            "warm_p50": rnd(warm, 4),
            "warm_max": rnd(max(runs), 4) if runs else None,
        },
        "target_seconds": TARGET_SECONDS,
        "met": warm is not None and warm < TARGET_SECONDS and index_after,
        "uses_subscription_due_idx": {"before_analyze": index_before, "after_analyze": index_after},
        "sql": " ".join(sql.split()),
        "explain_analyze": plan_after,
        "explain_analyze_before_analyze": plan_before,
        "sweep_fanout": publish,
        "timings": {"seed_s": rnd(seed_s, 1), "analyze_s": rnd(analyze_s, 2)},
        "database": common.database_label(),
    }


if __name__ == "__main__":
    common.emit(main())
