"""One renewal billing run on real Celery workers against the Iamport sandbox; prints ONE JSON object.

    .venv/bin/python bench/billing_run.py --subscriptions 1000 --latency-ms 200 --concurrency 32 [--workers 2]
                                          [--tasks 2] [--batch-size 50] [--rate-limit 50]

1. Seeds N+S+P subscriptions whose period ended (bulk ORM inserts: users, customers, billing keys,
   subscriptions) and issues their billing keys in the sandbox's ledger; starts the sandbox (its own process)
   with L ms latency on every API call.
2. Baseline: a naive sequential loop of `again` calls through the app's gateway adapter (B of them).
3. Queries: in this process, one renewal alone (`subscription_renew`, a batch of one) and then one batch of S
   (`subscriptions_renew`, what a renewal task runs) under CaptureQueriesContext, with a stack probe naming the
   app line behind every statement; then P more under cProfile. They are not due any more when the sweep runs.
4. Starts W Celery workers (thread pool of T tasks each; bench/worker.py adds timing probes) with
   BILLING_GATEWAY_CONCURRENCY=C and BILLING_BATCH_SIZE=batch, sends ONE `subscriptions_renew_due_task`,
   and waits until every one of the N renewal attempts is settled.

Keys of the JSON: charges, seconds, charges_per_s, p50_ms, p95_ms (attempt row inserted -> attempt row settled,
wall clock, measured in the workers), queries_per_charge (statements of the in-process batch / its charges, paid
or declined; queries_per_successful_charge divides by the paid ones),
baseline_charges_per_s, speedup, and the details behind them (targets, gateway calls in flight, CPU per
component, time per statement shape, the statements of one batch).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import log, percentile, rnd

TARGETS = {
    "charges_per_s": 200,
    "speedup": 40,
    "queries_per_charge": 8,
    "per_charge_cost_flat_within": "20% from N=1,000 to N=20,000 (compare two runs)",
}
PLAN_AMOUNT = 9_900


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", "-n", type=int, default=1000, help="N renewals charged by the sweep")
    parser.add_argument("--latency-ms", type=int, default=200, help="L: latency the sandbox adds to every API call")
    parser.add_argument(
        "--concurrency", "-c", type=int, default=32, help="C: gateway calls in flight per worker process"
    )
    parser.add_argument("--workers", "-w", type=int, default=2, help="W: Celery worker processes (default 2 = cores)")
    parser.add_argument("--tasks", "-t", type=int, default=2, help="T: renewal tasks (batches) at once per worker")
    parser.add_argument(
        "--batch-size", type=int, default=50, help="subscriptions per renewal task (BILLING_BATCH_SIZE)"
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="R: charges per second the PG allows; passed as BILLING_CHARGE_RATE_LIMIT (0 = none)",
    )
    parser.add_argument(
        "--decline-ratio",
        type=float,
        default=0.0,
        help="share of the cards whose charges are declined (e.g. 0.9: a dunning day where most still fail)",
    )
    parser.add_argument("--baseline-sample", type=int, default=25, help="B: sequential `again` calls")
    parser.add_argument(
        "--query-sample",
        type=int,
        default=None,
        help="S: renewals of the in-process batch whose statements are counted (default: the batch size)",
    )
    parser.add_argument(
        "--profile", type=int, default=5, help="P more in-process renewals under cProfile (CPU time by library)"
    )
    parser.add_argument("--log-level", default="INFO", help="the workers' log level (production runs INFO)")
    parser.add_argument("--timeout", type=float, default=None, help="give up waiting after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, probe files)")
    return parser.parse_args(argv)


# --- seeding ---------------------------------------------------------------------------------------------


def customer_uid(i: int) -> str:
    return f"kbbench{i:07d}"


def seed(count: int, now: dt.datetime) -> list[int]:
    """`count` active monthly subscriptions whose period ended 4-7 days ago; returns their ids in order."""
    from django.contrib.auth import get_user_model

    from billing.models import BillingKey, Customer
    from subscriptions import periods
    from subscriptions.models import Plan, Subscription

    User = get_user_model()
    plan = Plan.objects.create(
        code="bench-monthly", name_ko="벤치 월간", name_en="Bench monthly", amount=PLAN_AMOUNT, interval="month"
    )
    anchor = now - dt.timedelta(days=35)  # period 0 ends 4-7 days ago whatever the month's length
    start, end = periods.period_bounds(anchor, interval="month", count=1, index=0)
    ids = []
    batch = 2000
    for lo in range(0, count, batch):
        rng = range(lo, min(lo + batch, count))
        users = User.objects.bulk_create(
            [User(username=f"bench{i}", email=f"bench{i}@example.com", password="!") for i in rng]  # noqa: S106
        )
        customers = Customer.objects.bulk_create([Customer(user=u, email=u.email, name=u.username) for u in users])
        keys = BillingKey.objects.bulk_create(
            [
                BillingKey(
                    customer=c,
                    customer_uid=customer_uid(i),
                    is_default=True,
                    card_name="신한카드",
                    card_number_masked="4242-42**-****-4242",
                    sandbox=True,
                    created_at=anchor,
                )
                for i, c in zip(rng, customers, strict=True)
            ]
        )
        subs = Subscription.objects.bulk_create(
            [
                Subscription(
                    customer=c,
                    plan=plan,
                    billing_key=k,
                    status="active",
                    billing_anchor=anchor,
                    current_period_index=0,
                    current_period_start=start,
                    current_period_end=end,
                    next_event_at=end,
                    created_at=anchor,
                )
                for c, k in zip(customers, keys, strict=True)
            ]
        )
        ids.extend(s.pk for s in subs)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return ids


# --- in-process measurements -------------------------------------------------------------------------------


def baseline(gateway, count: int) -> float:
    """Charges per second of a plain sequential loop of `again` calls (token fetched beforehand)."""
    gateway.get_token()
    run = os.urandom(3).hex()
    started = time.perf_counter()
    for i in range(count):
        gateway.charge_billing_key(
            customer_uid=customer_uid(i), merchant_uid=f"bl{run}_{i}", amount=PLAN_AMOUNT, name="baseline"
        )
    return count / (time.perf_counter() - started)


def _app_frame() -> str:
    """The innermost app lines (billing/, subscriptions/) on the stack, with their caller: where a statement
    comes from, e.g. `billing/services/audit.py:28 audit_record <- billing/services/invoices.py:110 ...`."""
    root = str(common.ROOT) + os.sep
    found = []
    for frame in reversed(traceback.extract_stack()[:-2]):
        relative = frame.filename[len(root) :] if frame.filename.startswith(root) else ""
        if relative.split(os.sep)[0] in ("billing", "subscriptions"):
            found.append(f"{relative}:{frame.lineno} {frame.name}")
            if len(found) == 2:
                break
    return " <- ".join(found) or "?"


def _captured(run) -> tuple[object, list[dict], float]:
    """Run `run()` under CaptureQueriesContext (which, since Django 4.2, also records each BEGIN and COMMIT
    round trip) and a probe naming the app line behind each statement; returns (result, statements, CPU s)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sources = []

    def probe(execute, sql, params, many, context):
        sources.append(_app_frame())
        return execute(sql, params, many, context)

    cpu = time.process_time()
    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(probe):
        result = run()
    cpu = time.process_time() - cpu
    pending = iter(sources)
    listing = []
    for i, query in enumerate(captured.captured_queries):
        sql = " ".join(query["sql"].split())
        source = "(transaction)" if sql in ("BEGIN", "COMMIT", "ROLLBACK") else next(pending, "?")
        listing.append({"n": i + 1, "sql": sql[:110], "source": source})
    return result, listing, cpu


def renewals_in_process(subscription_ids: list[int]) -> dict:
    """One renewal alone (after a warm-up one), then one batch of the rest, as a renewal task runs it."""
    from django.utils import timezone

    from bench.worker import shape
    from billing.services.gateway import get_gateway
    from subscriptions.services.renewals import subscription_renew, subscriptions_renew

    gateway = get_gateway()
    gateway.get_token()
    warm, single_id, batch_ids = subscription_ids[0], subscription_ids[1], subscription_ids[2:]
    subscription_renew(subscription_id=warm, now=timezone.now(), gateway=gateway)  # invoice number row, caches
    single, single_listing, _ = _captured(
        lambda: subscription_renew(subscription_id=single_id, now=timezone.now(), gateway=gateway)
    )
    outcomes, listing, cpu = _captured(
        lambda: subscriptions_renew(subscription_ids=batch_ids, now=timezone.now(), gateway=gateway)
    )
    counted = Counter(str(outcome) for outcome in outcomes.values())
    succeeded = counted.get("renewed:succeeded", 0)
    charged = succeeded + counted.get("renewed:failed", 0)  # paid or declined: a charge either way
    kinds = Counter()
    for item in listing:
        key = shape(item["sql"])
        kinds[
            "begin_commit" if item["sql"] in ("BEGIN", "COMMIT") else
            "savepoints" if "SAVEPOINT" in key else
            "selects" if key.startswith("SELECT") else "writes"
        ] += 1  # fmt: skip
    return {
        "queries_per_charge": len(listing) / charged if charged else None,
        "queries_per_successful_charge": len(listing) / succeeded if succeeded else None,
        "batch_size": len(batch_ids),
        "batch_statements": len(listing),
        "batch_outcomes": dict(counted),
        "batch_by_kind": dict(kinds),
        "cpu_ms_per_renewal_single_thread": rnd(cpu * 1000 / max(len(batch_ids), 1), 2),
        "one_renewal_alone": {"outcome": single, "statements": len(single_listing)},
        "one_batch": listing,
        "one_renewal_alone_statements": single_listing,
    }


_LIBRARIES = (
    ("django/db/models/sql", "django ORM: SQL compiler"),
    ("django/db/models", "django ORM: models, querysets, fields"),
    ("django/db/backends", "django DB backend (cursor wrappers, savepoints)"),
    ("django/db/transaction", "django transactions"),
    ("django/dispatch", "django signals"),
    ("django/", "django (other)"),
    ("psycopg", "psycopg"),
    ("requests/", "HTTP client (requests, urllib3, http.client)"),
    ("urllib3/", "HTTP client (requests, urllib3, http.client)"),
    ("http/client", "HTTP client (requests, urllib3, http.client)"),
    ("logging/", "logging"),
    ("json/", "json"),
    ("/billing/gateway/", "app: gateway adapter"),
    ("/billing/", "app: billing services"),
    ("/subscriptions/", "app: subscriptions services"),
)


def profile_renewals(subscription_ids: list[int]) -> dict:
    """CPU time (not wall: waits excluded) of one batch of renewals in this process, by library: where Python
    time goes. The gateway calls run on the app's gateway threads, which cProfile does not see."""
    import cProfile
    import pstats

    from django.utils import timezone

    from billing.services.gateway import get_gateway
    from subscriptions.services.renewals import subscriptions_renew

    gateway = get_gateway()
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    subscriptions_renew(subscription_ids=subscription_ids, now=timezone.now(), gateway=gateway)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    by_library: Counter = Counter()
    functions: Counter = Counter()
    for (filename, lineno, name), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        label = next((lbl for key, lbl in _LIBRARIES if key in filename), "python builtins / other")
        by_library[label] += tottime
        functions[
            f"{filename.rsplit('site-packages/', 1)[-1].replace(str(common.ROOT) + '/', '')}:{lineno} {name}"
        ] += tottime
    total = sum(by_library.values()) or 1.0
    count = max(len(subscription_ids), 1)
    return {
        "renewals": len(subscription_ids),
        "cpu_ms_per_renewal_profiled": rnd(total * 1000 / count, 2),
        "share_by_library": {k: rnd(v / total, 3) for k, v in by_library.most_common()},
        "top_functions_ms_per_renewal": {k: rnd(v * 1000 / count, 2) for k, v in functions.most_common(12)},
    }


# --- workers ---------------------------------------------------------------------------------------------


def start_workers(count: int, concurrency: int, queue: str, env: dict, workdir: Path, log_level: str):
    processes = []
    for index in range(count):
        log_file = open(workdir / f"worker{index}.log", "w")
        args = [
            sys.executable, "-m", "bench.worker", "worker",
            "--pool", "threads", "--concurrency", str(concurrency),
            "-Q", queue, "-n", f"bench{index}-{queue}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", log_level,
        ]  # fmt: skip
        process = subprocess.Popen(args, cwd=common.ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        processes.append((process, log_file))
    deadline = time.monotonic() + 60
    while len(list(workdir.glob("ready-*"))) < count:
        if time.monotonic() > deadline or any(p.poll() is not None for p, _ in processes):
            stop_workers(processes)
            tail = "\n".join((workdir / f"worker{i}.log").read_text()[-1500:] for i in range(count))
            raise RuntimeError(f"workers did not start:\n{tail}")
        time.sleep(0.1)
    return processes


def stop_workers(processes) -> None:
    for process, _ in processes:
        if process.poll() is None:
            process.terminate()
    for process, log_file in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()


def read_probes(workdir: Path) -> tuple[list[dict], dict[str, list], list[tuple[float, float]]]:
    import json

    tasks = []
    for path in workdir.glob("tasks-*.jsonl"):
        tasks.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    totals: dict[str, list] = {}
    for path in workdir.glob("sql-*.json"):
        for key, (count, seconds) in json.loads(path.read_text()).items():
            entry = totals.setdefault(key, [0, 0.0])
            entry[0] += count
            entry[1] += seconds
    calls = []
    for path in workdir.glob("gateway-*.json"):
        calls.extend(tuple(call) for call in json.loads(path.read_text()))
    return tasks, totals, calls


def peak_in_flight(calls: list[tuple[float, float]]) -> int:
    """The most gateway calls that were open at the same moment (all workers together)."""
    events = sorted([(start, 1) for start, _ in calls] + [(start + seconds, -1) for start, seconds in calls])
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def charges_of(task: dict) -> int:
    """Charges a renewal task made: its outcomes that end in an attempt status."""
    result = task.get("result") or {}
    if not isinstance(result, dict):
        return 0
    return sum(n for outcome, n in result.items() if outcome.endswith((":succeeded", ":failed", ":unknown")))


def app_reads_rate_limit() -> bool:
    """Does any app module (not settings, not the bench) read BILLING_CHARGE_RATE_LIMIT?"""
    for package in ("billing", "subscriptions"):
        for path in (common.ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts and "BILLING_CHARGE_RATE_LIMIT" in path.read_text():
                return True
    return False


# --- the run ---------------------------------------------------------------------------------------------


def main(argv=None) -> dict:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="kbilling-bench-"))
    sandbox = common.SandboxProcess(workdir)
    app_env = {
        "IAMPORT_API_URL": sandbox.url,
        "IAMPORT_SANDBOX_URL": sandbox.url,
        "BILLING_CHARGE_RATE_LIMIT": str(args.rate_limit),
        "BILLING_GATEWAY_CONCURRENCY": str(args.concurrency),
        "BILLING_BATCH_SIZE": str(args.batch_size),
        "BENCH_STATS_DIR": str(workdir),
        "LOG_LEVEL": "WARNING",  # this process; the workers get --log-level
    }
    env = common.configure(queue_prefix="bench-run", extra_env=app_env)
    env["LOG_LEVEL"] = args.log_level
    queue = env["CELERY_TASK_DEFAULT_QUEUE"]

    from django.db import connection
    from django.utils import timezone

    from billing.models import Invoice, PaymentAttempt
    from billing.services.gateway import build_gateway
    from subscriptions.tasks import subscriptions_renew_due_task

    # One database connection per task thread; the gateway threads hold none.
    needed = args.workers * args.tasks + 3
    available = common.connections_available()
    if needed > available:
        raise SystemExit(
            f"{args.workers} workers x {args.tasks} task threads need ~{needed} database connections, "
            f"only {available} are free: lower --tasks or --workers"
        )

    # S = the in-process batch, plus one warm-up renewal and one renewal alone
    n, s, p = args.subscriptions, (args.query_sample or args.batch_size) + 2, args.profile
    processes = []
    try:
        log(
            f"database {common.database_label()}, broker {os.environ.get('CELERY_BROKER_URL', 'app default')}, "
            f"queue {queue}"
        )
        common.truncate_app_tables()
        t = time.perf_counter()
        ids = seed(n + s + p, timezone.now())
        seed_s = time.perf_counter() - t
        declining = frozenset(
            customer_uid(i) for i in range(n + s + p) if (i * 7919) % 1000 < round(args.decline_ratio * 1000)
        )  # spread evenly over the sweep's batches and the in-process sample
        keys_s = sandbox.issue_keys([customer_uid(i) for i in range(n + s + p)], declining=declining)
        log(f"seeded {n + s + p} subscriptions in {seed_s:.1f}s, sandbox keys in {keys_s:.1f}s")
        sandbox.start()
        sandbox.control.set_latency(args.latency_ms)

        log(f"baseline: {args.baseline_sample} sequential `again` calls")
        baseline_rate = baseline(build_gateway(), args.baseline_sample)
        log(f"in-process renewals: one alone, then a batch of {s - 2}")
        in_process = renewals_in_process(ids[n : n + s])
        profile = profile_renewals(ids[n + s :]) if p else None

        log(f"starting {args.workers} worker(s) x {args.tasks} task threads, {args.concurrency} gateway threads each")
        processes = start_workers(args.workers, args.tasks, queue, env, workdir, args.log_level)
        meter = common.CpuMeter(
            {
                "workers": lambda: [p.pid for p, _ in processes],
                "sandbox": lambda: [sandbox.process.pid],
                "postgres": common.database_server_pids,
                "redis": lambda: common.pids_named("redis-server"),
            }
        )
        attempts = PaymentAttempt.objects.filter(invoice__kind=Invoice.Kind.RENEWAL).exclude(
            invoice__subscription_link__subscription_id__in=ids[n:]
        )
        timeout = args.timeout or max(120.0, n / 10)
        load_before = os.getloadavg()[0]  # other work on the box skews every figure: report it
        meter.start()
        started = time.time()
        subscriptions_renew_due_task.delay()
        settled, peak_connections, timed_out = 0, 0, False

        def progress() -> tuple[int, int]:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                sessions = cursor.fetchone()[0]
            return attempts.exclude(status=PaymentAttempt.Status.PENDING).count(), sessions

        while True:
            time.sleep(0.25)
            # A database restart during the run (an operator's experiment) is waited out, not fatal.
            settled, sessions = common.retrying(progress, what="wait loop", timeout=max(timeout, 60.0))
            peak_connections = max(peak_connections, sessions)
            if settled >= n:
                break
            if time.time() - started > timeout:
                timed_out = True
                log(f"timed out with {settled}/{n} settled")
                break
        cpu = meter.stop()
        time.sleep(1.3)  # let the last postrun lines and probe dumps reach their files
    finally:
        stop_workers(processes)

    tasks, sql_totals, calls = read_probes(workdir)
    status_counts = Counter(attempts.values_list("status", flat=True))
    renew = [r for r in tasks if r["task"] == "subscriptions_renew_task" and charges_of(r)]
    sweep = [r for r in tasks if r["task"] == "subscriptions_renew_due_task"]
    ends = sorted(r["end"] for r in renew)
    seconds = (ends[-1] - started) if ends else None
    charges = status_counts.get("succeeded", 0) + status_counts.get("failed", 0)
    rate = charges / seconds if seconds else None
    latencies = []  # each charge: from its batch's attempt INSERT to the UPDATE that recorded its outcome
    for r in renew:
        for settled_at, rows in r.get("settles", []) if r.get("attempt_created") else []:
            latencies += [(settled_at - r["attempt_created"]) * 1000] * max(rows, 0)
    batch_ms = [(r["end"] - r["start"]) * 1000 for r in renew]
    charged = max(sum(charges_of(r) for r in renew), 1)
    run_calls = [c for c in calls if c[0] >= started]
    gateway_ms = [seconds_ * 1000 for _, seconds_ in run_calls]
    db_equal = attempts.filter(settled_at=models_f("created_at")).count()

    app_uids = [row for row in sandbox.payments() if row[0].startswith("kb")]
    per_second = Counter(started_at for _, status, started_at in app_uids if started_at >= int(started))
    paid = sum(1 for _, status, _ in app_uids if status == "paid")
    sandbox.stop()
    common.purge_queue(queue)

    sql_top = sorted(sql_totals.items(), key=lambda kv: kv[1][1], reverse=True)
    queries = in_process["queries_per_charge"]
    result = {
        "charges": charges,
        "seconds": rnd(seconds, 2),
        "charges_per_s": rnd(rate),
        "p50_ms": rnd(percentile(latencies, 50)),
        "p95_ms": rnd(percentile(latencies, 95)),
        "queries_per_charge": rnd(queries, 2),
        "baseline_charges_per_s": rnd(baseline_rate, 2),
        "speedup": rnd(rate / baseline_rate) if rate else None,
        "params": {
            "subscriptions": n,
            "latency_ms": args.latency_ms,
            "workers": args.workers,
            "task_threads_per_worker": args.tasks,
            "gateway_concurrency_per_worker": args.concurrency,
            "batch_size": args.batch_size,
            "rate_limit": args.rate_limit or None,
            "baseline_sample": args.baseline_sample,
            "decline_ratio": args.decline_ratio,
            "query_sample": s - 2,
            "worker_log_level": args.log_level,
            "database": common.database_label(),
            "broker": os.environ.get("CELERY_BROKER_URL", "app default (kombu SQLAlchemy on PostgreSQL)"),
        },
        "targets": TARGETS,
        "met": {
            "charges_per_s": bool(rate and rate >= TARGETS["charges_per_s"]),
            "speedup": bool(rate and rate / baseline_rate >= TARGETS["speedup"]),
            "queries_per_charge": bool(queries and queries <= TARGETS["queries_per_charge"]),
        },
        "timed_out": timed_out,
        "attempt_status": dict(status_counts),
        "sandbox_paid_app_payments": paid,
        "double_charges": max(paid - (status_counts.get("succeeded", 0) + s + p), 0),
        "renewal_tasks": len(renew),
        "little_law_ceiling_per_s": rnd(args.workers * args.concurrency / (args.latency_ms / 1000 + 0.001)),
        "gateway_calls": {
            "count": len(run_calls),
            "peak_in_flight": peak_in_flight(run_calls),
            "p50_ms": rnd(percentile(gateway_ms, 50)),
            "p95_ms": rnd(percentile(gateway_ms, 95)),
        },
        "fanout_seconds": rnd(sweep[0]["end"] - sweep[0]["start"], 2) if sweep else None,
        "batch_task_ms": {"p50": rnd(percentile(batch_ms, 50)), "p95": rnd(percentile(batch_ms, 95))},
        "per_charge_ms_mean": {
            "sql_wall_in_tasks": rnd(sum(r["db_s"] for r in renew) * 1000 / charged, 2),
            "gateway_call": rnd(sum(gateway_ms) / max(len(gateway_ms), 1)),
        },
        "statements_per_charge_in_workers_excl_begin_commit": rnd(sum(r["queries"] for r in renew) / charged, 2),
        "db_created_at_equals_settled_at": db_equal,
        "cpu_ms_per_charge": {k: rnd(v * 1000 / max(charges, 1), 2) for k, v in cpu.items() if k not in ("wall",)}
        | {"box_utilisation": rnd(cpu["box_busy"] / cpu["box_capacity"], 2) if cpu["box_capacity"] else None},
        "db_connections_peak": peak_connections,
        "rate_limit": {
            "requested_per_s": args.rate_limit or None,
            "setting": "BILLING_CHARGE_RATE_LIMIT",
            "app_reads_setting": app_reads_rate_limit(),
            "max_charges_in_one_second": max(per_second.values()) if per_second else 0,
            "respected": (max(per_second.values(), default=0) <= args.rate_limit) if args.rate_limit else None,
        },
        "sql_by_shape_per_charge": [
            {
                "shape": k,
                "per_charge": rnd(c / charged, 3),
                "avg_ms": rnd(sec * 1000 / c, 2),
                "ms_per_charge": rnd(sec * 1000 / charged, 3),
            }
            for k, (c, sec) in sql_top[:25]
        ],
        "in_process": {k: v for k, v in in_process.items() if k != "queries_per_charge"},
        "profile": profile,
        "timings": {"seed_s": rnd(seed_s, 1), "sandbox_keys_s": rnd(keys_s, 1)},
        "loadavg_before_after": [load_before, os.getloadavg()[0]],
    }
    if args.keep:
        result["workdir"] = str(workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def models_f(name: str):
    from django.db.models import F

    return F(name)


if __name__ == "__main__":
    common.emit(main())
