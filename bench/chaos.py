"""Chaos billing run: N subscriptions billed over M simulated months by real Celery workers against the sandbox,
with workers SIGKILLed, sandbox faults and latency, beat firing twice, and webhooks duplicated and reordered.
Then the books are checked against the sandbox's ledger; exits non-zero when any count is not zero.

    .venv/bin/python bench/chaos.py --subscriptions 200 --months 3 --seed 1 [--workers 2 --concurrency 8]

    .venv/bin/python bench/chaos.py -n 200 -m 3 --seed 1 --db-restarts 3 --broker-restarts 2

Database and broker are servers of its own (bench/servers.py), so it can restart them: a PostgreSQL cluster in a
temp dir served by pg_ctl on a free port (database kbilling_bench_chaos), and a redis-server on a free port with
appendonly yes. Never the machine's services. Settings: bench.chaos_settings (bench.settings with the DB-backed
test clock on, so workers see the simulated time).

`--db-restarts N`: N steps (seeded) get a PostgreSQL restart a random moment after their sweeps were sent
(while the renewal batches run): a fast stop (`pg_ctl -m fast`) or a crash (`-m immediate`, WAL replay on
start), down for 0.5-3 s. `--broker-restarts N` likewise restarts Redis (SIGTERM: the append-only file is
flushed). For each restart the run reports how long after the server came back the first charge was settled
and the due backlog drained. The driver's own database and broker calls wait restarts out (common.retrying).

Per simulated day with due work (renewals, dunning retries, unsettled attempts): the app clock
(billing.clock) and the sandbox clock move to that day; a seeded random.Random(S) decides the chaos of the step
(latency, timeout_after_commit / http_500 / delay faults on `again` and `payments`, 429s from a throttle fault or
a per-second cap on `again`, cards going bad or recovering,
beat firing a sweep twice, a worker SIGKILLed and replaced); the sweeps are sent; the webhooks the sandbox
recorded since the last step (it posts them to a dead URL) are stored with webhook_receive and processed by
webhook_process_task, shuffled, some twice, some held back a step. Between months some subscriptions change
plan or are canceled through the services. Settling: faults off, the clock moves past
BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS, the janitor runs and every webhook is delivered once more.
Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import log

BAD_CARD = "4000-0000-0000-9995"  # insufficient funds on every charge
READ_TIMEOUT_S = 1.0  # the app's IAMPORT_READ_TIMEOUT in this run: a held request times out quickly
HOLD_MS = 1300  # timeout_after_commit hold: longer than the read timeout
IN_FLIGHT_WAIT_S = 15.0  # after a restart, how long past the drained backlog to wait for a charge to settle
COUNT_KEYS = (
    "renewals_unattempted",
    "double_charges",
    "paid_not_recorded",
    "recorded_not_paid",
    "unsettled_left",
    "invoices_paid_twice",
    "refunds_above_paid",
    "reconciliation_unresolved",  # differences the daily 대사 of every simulated day could not settle
    "reconciliation_incomplete",  # days whose 대사 did not finish
    "charged_without_consent",  # a trial's first charge or a raised price paid with no "yes" on record
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", "-n", type=int, default=100)
    parser.add_argument("--months", "-m", type=int, default=2)
    parser.add_argument("--seed", "-s", type=int, default=1)
    parser.add_argument("--workers", "-w", type=int, default=2)
    parser.add_argument("--concurrency", "-c", type=int, default=8)
    parser.add_argument("--latency-ms", type=int, default=20, help="baseline sandbox latency")
    parser.add_argument("--chaos", type=float, default=1.0, help="scale of every fault probability (0 = none)")
    parser.add_argument("--step-timeout", type=float, default=300.0, help="most seconds to wait for one step")
    parser.add_argument("--db-restarts", type=int, default=0, help="PostgreSQL restarts during the run (seeded)")
    parser.add_argument("--broker-restarts", type=int, default=0, help="Redis restarts during the run (seeded)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (worker and sandbox logs)")
    return parser.parse_args(argv)


# --- workers ---------------------------------------------------------------------------------------------


class Workers:
    """Real `celery worker --pool threads` processes (bench.worker: the app's worker plus its probe files)."""

    def __init__(self, env: dict, queue: str, workdir: Path, concurrency: int):
        self.env, self.queue, self.workdir, self.concurrency = env, queue, workdir, concurrency
        self.processes: list[subprocess.Popen] = []
        self.started = 0
        self.killed = 0

    def alive(self) -> list[subprocess.Popen]:
        return [p for p in self.processes if p.poll() is None]

    def start(self, wait: bool = True) -> subprocess.Popen:
        index = self.started
        self.started += 1
        log_file = open(self.workdir / f"worker{index}.log", "w")
        args = [
            sys.executable, "-m", "bench.worker", "worker",
            "--pool", "threads", "--concurrency", str(self.concurrency),
            "-Q", self.queue, "-n", f"chaos{index}-{self.queue}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
        ]  # fmt: skip
        process = subprocess.Popen(args, cwd=common.ROOT, env=self.env, stdout=log_file, stderr=subprocess.STDOUT)
        log_file.close()
        self.processes.append(process)
        if wait:
            deadline = time.monotonic() + 60
            while not (self.workdir / f"ready-{process.pid}").exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = (self.workdir / f"worker{index}.log").read_text()[-2000:]
                    raise RuntimeError(f"worker {index} did not start:\n{tail}")
                time.sleep(0.1)
        return process

    def kill_one(self, rng: random.Random) -> None:
        alive = self.alive()
        if alive:
            victim = rng.choice(alive)
            victim.kill()  # SIGKILL: tasks in flight are lost mid-way (acks_late: they stay unacked)
            victim.wait()
            self.killed += 1
        self.start(wait=not self.alive())

    def ensure(self, count: int) -> None:
        while len(self.alive()) < count:
            self.start()

    def stop(self) -> None:
        for process in self.alive():
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Quiet:
    """Waits until the broker queue is empty and no task has finished for a while (the workers' probe files
    stop growing): the step's work is done or stuck in a killed worker."""

    def __init__(self, workdir: Path, queue: str):
        self.workdir, self.queue = workdir, queue
        self.redis = None
        broker = os.environ.get("CELERY_BROKER_URL", "")
        if broker.startswith("redis://"):
            import redis

            self.redis = redis.Redis.from_url(broker)

    def _state(self) -> tuple[int, int]:
        size = sum(p.stat().st_size for p in self.workdir.glob("tasks-*.jsonl"))
        try:
            backlog = self.redis.llen(self.queue) if self.redis is not None else 0
        except Exception:  # the broker is restarting: count it as busy
            backlog = 1
        return size, backlog

    def wait(self, quiet_s: float, timeout: float, *, supervise=None) -> bool:
        """`supervise` runs at every poll: the process supervisor production has (systemd, Kubernetes), which
        starts a worker again when one dies (killed by the run, or by its broker connection after a restart)."""
        started = last_change = time.monotonic()
        last = None
        while time.monotonic() - started < timeout:
            if supervise is not None:
                supervise()
            size, backlog = self._state()
            if backlog or size != last:
                last, last_change = size, time.monotonic()
            elif time.monotonic() - last_change >= quiet_s:
                return True
            time.sleep(0.2)
        log(f"step still busy after {timeout:.0f}s")
        return False


# --- seeding ---------------------------------------------------------------------------------------------


def issue_keys(sandbox: common.SandboxProcess, cards: dict[str, str]) -> None:
    """Billing keys straight into the sandbox's ledger file before it starts (as SandboxProcess.issue_keys),
    each with its own test card."""
    from iamport_sandbox.ledger import Ledger
    from iamport_sandbox.server import DEFAULT_IMP_KEY, DEFAULT_IMP_SECRET, DEFAULT_MERCHANT_CODE
    from iamport_sandbox.store import Store

    store = Store(sandbox.data)
    ledger = Ledger(store, imp_key=DEFAULT_IMP_KEY, imp_secret=DEFAULT_IMP_SECRET, merchant_code=DEFAULT_MERCHANT_CODE)
    now = int(time.time())
    for uid, card in cards.items():
        ledger.issue_key(
            uid, {"card_number": card, "expiry": "2030-12", "channel_key": common.SANDBOX_CHANNEL_KEY}, now
        )
    store.close()


# --- webhooks --------------------------------------------------------------------------------------------


class Webhooks:
    """Delivers what the sandbox recorded: stored by webhook_receive here, processed by the workers."""

    def __init__(self, sandbox: common.SandboxProcess):
        self.sandbox = sandbox
        self.seen = 0
        self.held: list[dict] = []
        self.all: list[dict] = []
        self.delivered = 0
        self.duplicated = 0

    def new(self) -> list[dict]:
        conn = sqlite3.connect(f"file:{self.sandbox.data}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT seq, data FROM webhooks WHERE seq > ? ORDER BY seq", [self.seen]).fetchall()
        finally:
            conn.close()
        if rows:
            self.seen = rows[-1][0]
        bodies = [json.loads(data)["body"] for _, data in rows]
        self.all.extend(bodies)
        return bodies

    def deliver(self, rng: random.Random, chaos: float, *, everything: bool = False) -> int:
        from billing import clock
        from billing.services.webhooks import webhook_receive
        from billing.tasks import webhook_process_task

        batch = self.held + self.new()
        self.held = []
        if everything:
            batch = batch + list(self.all)  # the final pass: every webhook once more
        rng.shuffle(batch)
        out = []
        for body in batch:
            if not everything and rng.random() < 0.15 * chaos:
                self.held.append(body)  # arrives after later ones
                continue
            out.append(body)
            if rng.random() < 0.2 * chaos:
                out.insert(rng.randrange(len(out) + 1), body)
                self.duplicated += 1
        now = common.retrying(clock.now, what="clock")
        for body in out:
            # Stored again after a lost answer it is one more duplicate, which processing ignores.
            event = common.retrying(
                lambda body=body: webhook_receive(
                    raw_body=json.dumps(body),
                    content_type="application/json",
                    headers={"content-type": "application/json", "user-agent": "chaos"},
                    source_ip="127.0.0.1",
                    now=now,
                ),
                what="webhook store",
            )
            common.retrying(lambda event=event: webhook_process_task.delay(event.pk), what="webhook publish")
        self.delivered += len(out)
        return len(out)


# --- the simulation --------------------------------------------------------------------------------------


def due_work(now: dt.datetime) -> bool:
    from billing.services.payments import payments_unsettled_due
    from subscriptions.services.dunning import invoices_retry_due
    from subscriptions.services.renewals import subscriptions_due

    return bool(subscriptions_due(now=now, limit=1) or invoices_retry_due(now=now) or payments_unsettled_due(now=now))


def move_clocks(sandbox: common.SandboxProcess, moment: dt.datetime) -> dt.datetime:
    from billing import clock

    now = common.retrying(lambda: clock.advance_to(moment), what="clock")
    try:
        sandbox.control.set_now(int(now.timestamp()))
    except Exception as exc:  # the sandbox clock ran ahead in real time: fine
        log(f"sandbox clock: {exc}")
    time.sleep(1.1)  # billing.clock caches the offset for 1 s in every worker
    return now


def customer_actions(rng: random.Random, chaos: float, plans: dict, stats: Counter) -> None:
    """Between months: a few plan changes and cancels, issued through the services (charges run here)."""
    from billing import clock
    from subscriptions.models import Subscription
    from subscriptions.services.lifecycle import subscription_cancel
    from subscriptions.services.plan_changes import subscription_change_plan

    ids = list(Subscription.objects.filter(status__in=["active", "past_due"]).values_list("pk", flat=True))
    count = max(1, int(len(ids) * 0.05 * chaos)) if ids else 0
    for sid in rng.sample(ids, min(count, len(ids))):
        sub = Subscription.objects.get(pk=sid)
        action = rng.choice(["upgrade", "upgrade", "downgrade", "cancel_end", "cancel_now"])
        try:
            if action in ("upgrade", "downgrade"):
                target = plans["premium"] if action == "upgrade" else plans["lite"]
                if sub.plan_id == target.pk:
                    target = plans["base"]
                subscription_change_plan(subscription=sub, new_plan=target, now=clock.now())
            else:
                subscription_cancel(subscription=sub, now=clock.now(), at_period_end=action == "cancel_end")
            stats[f"{action}_ok"] += 1
        except Exception as exc:  # declined, pending, not allowed: the services' answers
            stats[f"{action}_{type(exc).__name__}"] += 1


def chaos_step(rng: random.Random, chaos: float, sandbox, workers: Workers, flaky: list[str], bad_now: set, stats):
    """Faults for this step; returns the longest stall a single task may see (s)."""
    control = sandbox.control
    control.clear_faults()
    stall = 0.0
    control.set_latency(rng.choice([0, 10, 50, 200]) if rng.random() < 0.5 * chaos else 10)
    for endpoint in ("again", "payments"):
        if rng.random() < 0.4 * chaos:
            times = rng.randint(1, 4)
            control.add_fault(endpoint, "timeout_after_commit", times=times, hold_ms=HOLD_MS)
            stats[f"fault_{endpoint}_timeout_after_commit"] += times
            stall = max(stall, HOLD_MS / 1000)
        if rng.random() < 0.4 * chaos:
            times = rng.randint(1, 4)
            control.add_fault(endpoint, "http_500", times=times)
            stats[f"fault_{endpoint}_http_500"] += times
        if rng.random() < 0.3 * chaos:
            delay = rng.choice([200, 600, 1500])
            control.add_fault(endpoint, "delay", times=rng.randint(1, 3), delay_ms=delay)
            stats[f"fault_{endpoint}_delay"] += 1
            stall = max(stall, delay / 1000)
    # A busy PG: charges refused with 429 (a fault), or a cap on charges per second for this step.
    if rng.random() < 0.3 * chaos:
        times = rng.randint(1, 6)
        control.add_fault("again", "throttle", times=times)
        stats["fault_again_throttle"] += times
    cap = rng.choice([5, 20]) if rng.random() < 0.15 * chaos else None
    control.set_rate_limit("again", cap)
    if cap:
        stats["steps_with_pg_rate_cap"] += 1
    for uid in flaky:  # cards that go bad mid-run and recover
        if uid in bad_now and rng.random() < 0.5:
            control.set_card_behaviour(uid, "paid")
            bad_now.discard(uid)
            stats["cards_recovered"] += 1
        elif uid not in bad_now and rng.random() < 0.15 * chaos:
            control.set_card_behaviour(uid, rng.choice(["insufficient_funds", "limit_exceeded"]))
            bad_now.add(uid)
            stats["cards_gone_bad"] += 1
    return stall


def fire_sweeps(rng: random.Random, chaos: float, stats: Counter) -> None:
    from billing.tasks import payments_reconcile_unsettled_task
    from subscriptions.tasks import invoices_retry_due_task, subscriptions_renew_due_task

    for task in (subscriptions_renew_due_task, invoices_retry_due_task, payments_reconcile_unsettled_task):
        common.retrying(task.delay, what="sweep publish")
        if rng.random() < 0.3 * chaos:  # beat fired twice
            common.retrying(task.delay, what="sweep publish")
            stats["beat_fired_twice"] += 1


# --- database and broker restarts ----------------------------------------------------------------------


class Restarts:
    """Seeded PostgreSQL and Redis restarts while a step's work runs, and how long the system took to recover
    after the server came back: to the first charge settled then, and to no due renewal or dunning retry left
    unattempted (the backlog drained). A random.Random of its own, so a seed's other chaos stays as it was."""

    def __init__(self, seed: int, db_restarts: int, broker_restarts: int, pg, redis_server, timeout: float):
        self.rng = random.Random(f"restarts-{seed}")
        self.left = {"database": db_restarts, "broker": broker_restarts}
        self.pg, self.redis_server, self.timeout = pg, redis_server, timeout
        self.records: list[dict] = []

    def during_step(self, step: int, renewals_due: bool) -> None:
        for kind in ("database", "broker"):
            if self.left[kind] and self.rng.random() < (0.6 if renewals_due else 0.2):
                self.restart(kind, step)

    def remaining(self) -> None:
        """Restarts the steps did not use happen during settling (janitor and webhooks running)."""
        for kind in ("database", "broker"):
            while self.left[kind]:
                self.restart(kind, "settling")

    def restart(self, kind: str, step) -> None:
        from billing import clock
        from billing.models import PaymentAttempt
        from subscriptions.services.dunning import invoices_retry_due
        from subscriptions.services.renewals import subscriptions_due

        def settled() -> int:
            return PaymentAttempt.objects.filter(status__in=["succeeded", "failed"]).count()

        def in_flight() -> bool:
            return PaymentAttempt.objects.filter(status__in=["pending", "unknown"], flagged_reason="").exists()

        def backlog() -> bool:
            now = clock.now()
            return bool(subscriptions_due(now=now, limit=1) or invoices_retry_due(now=now))

        self.left[kind] -= 1
        time.sleep(self.rng.uniform(0.05, 0.8))  # mid-batch: renewals are claimed, charged, recorded meanwhile
        before = common.retrying(settled, what="restart")
        down_s = self.rng.uniform(0.5, 3.0)
        if kind == "database":
            mode = self.rng.choice(["fast", "immediate"])
            self.pg.stop(mode)
        else:
            mode = "sigterm"
            self.redis_server.stop()
        time.sleep(down_s)
        (self.pg.start if kind == "database" else self.redis_server.start)()
        back = time.monotonic()
        first = drained = None
        # Watch until the backlog is drained AND the charges in flight at the restart have settled (or there
        # were none): a backlog claimed before the stop is "drained" at once, but its charges still settle later.
        while time.monotonic() - back < self.timeout:
            count = common.retrying(settled, what="recovery")
            if first is None and count > before:
                first = time.monotonic() - back
            if drained is None and not common.retrying(backlog, what="recovery"):
                drained = time.monotonic() - back
            if drained is not None and (
                first is not None
                or not common.retrying(in_flight, what="recovery")
                or time.monotonic() - back - drained > IN_FLIGHT_WAIT_S  # held by a killed worker: the janitor's
            ):
                break
            time.sleep(0.1)
        record = {"server": kind, "step": step, "mode": mode, "down_s": round(down_s, 2)}
        record["to_first_settled_s"] = common.rnd(first, 2)
        record["to_backlog_drained_s"] = common.rnd(drained, 2)
        self.records.append(record)
        log(f"{kind} restart ({mode}, {down_s:.1f}s down) at step {step}: {record}")

    def summary(self) -> dict:
        out: dict = {"restarts": self.records}
        for kind in ("database", "broker"):
            mine = [r for r in self.records if r["server"] == kind]
            for key in ("to_first_settled_s", "to_backlog_drained_s"):
                values = [r[key] for r in mine if r[key] is not None]
                out[f"{kind}_{key}_max"] = max(values) if values else None
        return out


# --- the books -------------------------------------------------------------------------------------------


def check_books(sandbox: common.SandboxProcess) -> tuple[dict, dict]:
    from django.db.models import Sum

    from billing.models import Invoice, PaymentAttempt, Refund

    S = PaymentAttempt.Status
    rows = sandbox.payments(columns="merchant_uid, status, data")
    charged: dict[str, list[dict]] = defaultdict(list)  # merchant_uid -> money-moving sandbox payments
    for merchant_uid, status, data in rows:
        payment = json.loads(data).get("payment") or {}
        if status in ("paid", "cancelled") and payment.get("customer_uid_usage") != "issue":
            charged[merchant_uid].append(payment)
    attempts = {a.merchant_uid: a for a in PaymentAttempt.objects.all()}
    examples: dict[str, list] = defaultdict(list)
    counts = Counter({k: 0 for k in COUNT_KEYS})

    def bad(key: str, what) -> None:
        counts[key] += 1
        if len(examples[key]) < 5:
            examples[key].append(what)

    per_invoice = Counter()
    for merchant_uid, payments in charged.items():
        attempt = attempts.get(merchant_uid)
        if len(payments) > 1:
            bad("double_charges", f"{merchant_uid} paid {len(payments)} times")
        if attempt is None or attempt.status != S.SUCCEEDED:
            bad("paid_not_recorded", f"{merchant_uid}: {attempt.status if attempt else 'no attempt'}")
        if attempt is not None:
            per_invoice[attempt.invoice_id] += len(payments)
        for payment in payments:
            if payment.get("cancel_amount", 0) > payment.get("amount", 0):
                bad("refunds_above_paid", f"sandbox {merchant_uid} cancelled {payment['cancel_amount']}")
    for invoice_id, n in per_invoice.items():
        if n > 1:
            bad("double_charges", f"invoice {invoice_id} charged {n} times")
    for attempt in attempts.values():
        if attempt.status in (S.PENDING, S.UNKNOWN):
            bad("unsettled_left", f"{attempt.merchant_uid} {attempt.status} {attempt.flagged_reason}")
        if attempt.status == S.SUCCEEDED and not any(
            p.get("amount") == attempt.amount for p in charged.get(attempt.merchant_uid, [])
        ):
            bad("recorded_not_paid", f"{attempt.merchant_uid} {attempt.amount}")
    twice = Counter(PaymentAttempt.objects.filter(status=S.SUCCEEDED).values_list("invoice_id", flat=True))
    for invoice_id, n in twice.items():
        if n > 1:
            bad("invoices_paid_twice", f"invoice {invoice_id}: {n} succeeded attempts")
    refunded = Refund.objects.exclude(status=Refund.Status.FAILED).values("attempt_id").annotate(total=Sum("amount"))
    for row in refunded:
        attempt = PaymentAttempt.objects.get(pk=row["attempt_id"])
        if row["total"] > attempt.amount:
            bad("refunds_above_paid", f"{attempt.merchant_uid} refunded {row['total']} of {attempt.amount}")
    for what in charged_without_consent():
        bad("charged_without_consent", what)
    info = {
        "consents": consent_outcomes(),
        "attempts": dict(Counter(a.status for a in attempts.values())),
        "invoices": dict(Counter(Invoice.objects.values_list("status", flat=True))),
        "sandbox_payments": dict(Counter(status for _, status, _ in rows)),
        "flagged_attempts": sum(1 for a in attempts.values() if a.flagged_reason),
    }
    return dict(counts), {"examples": dict(examples), **info}


def charged_without_consent() -> list[str]:
    """Paid period invoices that needed a "yes" the books do not hold (전자상거래법 §13 ⑥): the first charge after
    a trial, or a period at a raised price, on or after the change, without a granted decision as newest."""
    from subscriptions.models import ConsentRequest, SubscriptionInvoice
    from subscriptions.services.consent import consent_outcome

    found = []
    for request in ConsentRequest.objects.select_related("subscription"):
        if consent_outcome(request) == "granted":
            continue
        paid = SubscriptionInvoice.objects.filter(
            subscription=request.subscription,
            kind__in=["first", "renewal"],
            superseded=False,
            period_start__gte=request.change_at,
            invoice__status="paid",
        )
        if request.kind == "price_increase":
            paid = paid.filter(invoice__total__gt=request.amount_before)
        for link in paid:
            found.append(f"subscription {request.subscription_id}: invoice {link.invoice_id} ({request.kind})")
    return found


def consent_outcomes() -> dict[str, int]:
    from subscriptions.models import ConsentRequest
    from subscriptions.services.consent import consent_outcome

    return dict(Counter(consent_outcome(request) for request in ConsentRequest.objects.all()))


# --- the run ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    wall0 = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="kbilling-chaos-"))
    from bench.servers import PostgresCluster, RedisServer

    pg, redis_server = PostgresCluster(), RedisServer()  # its own servers: they are restarted
    atexit.register(pg.destroy)  # also when the run fails
    atexit.register(redis_server.destroy)
    os.environ.pop("BENCH_EMBEDDED", None)
    os.environ["BENCH_DATABASE_URL"] = pg.url("kbilling_bench_chaos")
    os.environ["BENCH_BROKER_URL"] = redis_server.url
    sandbox = common.SandboxProcess(workdir)
    dead = common.free_port()  # nothing listens: the sandbox records each webhook and fails to post it
    app_env = {
        # notice_url = SITE_URL + /iamport/webhook. An empty SITE_URL does not switch it off (config's env()
        # reads "" as unset: http://127.0.0.1:8000), so point it at a port where nothing listens.
        "SITE_URL": f"http://127.0.0.1:{dead}",
        "DJANGO_SETTINGS_MODULE": "bench.chaos_settings",
        "IAMPORT_API_URL": sandbox.url,
        "IAMPORT_SANDBOX_URL": sandbox.url,
        "IAMPORT_READ_TIMEOUT": str(READ_TIMEOUT_S),
        "BENCH_STATS_DIR": str(workdir),
        "LOG_LEVEL": "WARNING",
    }
    env = common.configure(queue_prefix="chaos", db_suffix="_chaos", extra_env=app_env)
    queue = env["CELERY_TASK_DEFAULT_QUEUE"]

    from django.conf import settings
    from django.utils import timezone

    from bench.billing_run import customer_uid, seed
    from billing import clock
    from billing.models import ClockOffset, PaymentAttempt
    from billing.services.payments import payments_reconcile_unsettled
    from subscriptions.models import Plan
    from subscriptions.services.renewals import subscriptions_due

    needed = args.workers * args.concurrency + 5
    if needed > common.connections_available():
        raise SystemExit(f"{args.workers} x {args.concurrency} threads need ~{needed} database connections")

    n = args.subscriptions
    workers = Workers(env, queue, workdir, args.concurrency)
    stats: Counter = Counter()
    steps = 0
    restarts = Restarts(args.seed, args.db_restarts, args.broker_restarts, pg, redis_server, args.step_timeout)
    last_moment = None
    try:
        log(f"database {common.database_label()}, queue {queue}, seed {args.seed}")
        common.truncate_app_tables()
        ClockOffset.objects.all().delete()
        start = timezone.now()
        seed(n, start)
        plans = {
            "base": Plan.objects.get(code="bench-monthly"),
            "premium": Plan.objects.create(
                code="chaos-premium", name_ko="프리미엄", name_en="Premium", amount=19_900, interval="month"
            ),
            "lite": Plan.objects.create(
                code="chaos-lite", name_ko="라이트", name_en="Lite", amount=4_900, interval="month"
            ),
        }
        uids = [customer_uid(i) for i in range(n)]
        roles = {uid: rng.choices(["good", "bad", "flaky"], weights=[80, 8, 12])[0] for uid in uids}
        issue_keys(sandbox, {uid: BAD_CARD if role == "bad" else common.GOOD_CARD for uid, role in roles.items()})
        flaky = [uid for uid, role in roles.items() if role == "flaky"]
        bad_now: set[str] = set()
        sandbox.start()
        sandbox.control.set_default_notice_url(f"http://127.0.0.1:{dead}/webhooks/iamport/")
        sandbox.control.set_latency(args.latency_ms)
        for _ in range(args.workers):
            workers.start()
        quiet = Quiet(workdir, queue)

        def supervise() -> None:
            workers.ensure(args.workers)

        hooks = Webhooks(sandbox)
        log(f"seeded {n} subscriptions ({Counter(roles.values())}), {args.workers} workers up")

        days = 31 * args.months + 1
        last_month = 0
        for day in range(days):
            moment = start + dt.timedelta(days=day, minutes=rng.randint(0, 30))
            month = day // 31
            if month != last_month:
                last_month = month
                move_clocks(sandbox, moment)
                customer_actions(rng, args.chaos, plans, stats)
            if not common.retrying(lambda moment=moment: due_work(moment), what="due work"):
                continue
            steps += 1
            last_moment = moment
            renewals_due = bool(common.retrying(lambda moment=moment: subscriptions_due(now=moment, limit=1)))
            move_clocks(sandbox, moment)
            stall = chaos_step(rng, args.chaos, sandbox, workers, flaky, bad_now, stats)
            fire_sweeps(rng, args.chaos, stats)
            restarts.during_step(steps, renewals_due)
            if rng.random() < 0.35 * args.chaos:
                time.sleep(rng.uniform(0.2, 1.0))  # mid-flight
                workers.kill_one(rng)
            hooks.deliver(rng, args.chaos)
            quiet.wait(0.8 + stall, args.step_timeout, supervise=supervise)
            hooks.deliver(rng, args.chaos)
            log(f"day {day}: step {steps}, workers killed {workers.killed}, webhooks delivered {hooks.delivered}")

        log("settling: faults off, clock past the not-found window, janitor, every webhook again")
        sandbox.control.clear_faults()
        sandbox.control.set_latency(0)
        sandbox.control.set_rate_limit("again", None)
        workers.ensure(args.workers)
        restarts.remaining()
        settle_now = common.retrying(clock.now, what="clock")
        for round_ in range(6):
            settle_now += dt.timedelta(seconds=settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS + 60)
            move_clocks(sandbox, settle_now)
            from billing.tasks import payments_reconcile_unsettled_task

            common.retrying(payments_reconcile_unsettled_task.delay, what="janitor publish")
            hooks.deliver(rng, 0.0, everything=round_ == 0)
            quiet.wait(2.0 + READ_TIMEOUT_S, args.step_timeout, supervise=supervise)
            hooks.deliver(rng, 0.0)
            quiet.wait(1.0, args.step_timeout, supervise=supervise)
            left = common.retrying(
                lambda: PaymentAttempt.objects.filter(status__in=["pending", "unknown"]).count(), what="settle"
            )
            log(f"settle round {round_}: {left} attempts pending/unknown")
            if not left:
                break
        common.retrying(lambda: payments_reconcile_unsettled(now=clock.now()), what="janitor")  # once more, here
    finally:
        workers.stop()

    # The daily 대사 of every simulated day, as an operator's beat would run it once the day is over: every
    # difference must be settled or explained (billing/services/reconciliation.py).
    from billing.services.reconciliation import KST, reconcile_every_day

    last_day = common.retrying(clock.now, what="clock").astimezone(KST).date() - dt.timedelta(days=1)
    reconciliation = common.retrying(
        lambda: reconcile_every_day(start.astimezone(KST).date(), last_day, now=clock.now()), what="reconcile"
    )
    counts, info = common.retrying(lambda: check_books(sandbox), what="books")
    counts["reconciliation_unresolved"] = reconciliation.get("unresolved", 0)
    counts["reconciliation_incomplete"] = reconciliation.get("incomplete", 0)
    info["reconciliation"] = reconciliation
    # Every subscription due as of the last step was attempted: none dropped by a restart (its sweep would only
    # come with the next beat).
    unattempted = subscriptions_due(now=last_moment) if last_moment else []
    counts["renewals_unattempted"] = len(unattempted)
    if unattempted:
        info["examples"]["renewals_unattempted"] = list(unattempted[:5])
    sandbox.stop()
    common.purge_queue(queue)
    pg.destroy()
    redis_server.destroy()
    seconds = time.perf_counter() - wall0
    result = {
        "counts": counts,
        "ok": not any(counts.values()),
        "params": {
            "subscriptions": n,
            "months": args.months,
            "seed": args.seed,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "db_restarts": args.db_restarts,
            "broker_restarts": args.broker_restarts,
        },
        "servers": {"database": "own cluster (pg_ctl)", "broker": "own redis-server, appendonly yes"},
        **restarts.summary(),
        "steps": steps,
        "seconds": round(seconds, 1),
        "chaos": {
            **dict(sorted(stats.items())),
            "workers_killed": workers.killed,
            "webhooks_recorded": len(hooks.all),
            "webhooks_delivered": hooks.delivered,
            "webhooks_duplicated": hooks.duplicated,
        },
        **info,
    }
    for record in restarts.records:
        print(
            f"{record['server']} restart ({record['mode']}, {record['down_s']}s down) at step {record['step']}: "
            f"first settled charge {record['to_first_settled_s']}s, backlog drained {record['to_backlog_drained_s']}s"
            " after it came back"
        )
    print(f"{'check':<26} {'count':>7}")
    for key in COUNT_KEYS:
        print(f"{key:<26} {counts[key]:>7}")
    print(
        f"steps {steps}, {seconds:.0f}s, workers killed {workers.killed}, webhooks {hooks.delivered} delivered "
        f"({hooks.duplicated} duplicated), attempts {info['attempts']}"
    )
    common.emit(result)
    if args.keep or not result["ok"]:
        log(f"work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
