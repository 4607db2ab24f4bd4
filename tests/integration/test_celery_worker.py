"""A real Celery worker and beat against a real broker (CELERY_BROKER_URL, e.g. this machine's Redis in CI;
otherwise the embedded broker on PostgreSQL): each renewal is charged once even when the sweep fires twice
at the same moment, and beat itself drives the sweeps."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from billing import clock
from billing.models import Invoice
from config.celery import app as celery_app
from subscriptions.models import Subscription
from subscriptions.services.lifecycle import subscription_create
from subscriptions.tasks import subscriptions_renew_due_task
from tests.factories import PlanFactory, make_customer, register_card

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue(settings):
    """A queue of this test's own, and tasks really sent to it: an earlier test may have left Celery eager
    (its config is read lazily, once), which would run them in this process and leave the worker idle."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    original = celery_app.conf.task_default_queue, celery_app.conf.task_always_eager
    celery_app.conf.task_default_queue, celery_app.conf.task_always_eager = name, False
    yield name
    celery_app.conf.task_default_queue, celery_app.conf.task_always_eager = original


def start(kind: str, queue: str, sandbox_url: str, log: Path) -> subprocess.Popen:
    """A worker or beat process whose log goes to `log`, a file the test can read while the process runs."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_NAME": connection.settings_dict["NAME"],
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "IAMPORT_API_URL": sandbox_url,
        "IAMPORT_SANDBOX_URL": sandbox_url,
        "SITE_URL": "",
    }
    if kind == "worker":
        args = [
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "8",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ]
    else:
        args = ["beat", "--loglevel", "INFO", "--max-interval", "1", "--schedule", "/dev/null"]
    with log.open("w") as output:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", *args],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )


def stop(process: subprocess.Popen, log: Path) -> str:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return log.read_text()


# Celery's own log lines for a task arriving at the worker (an ETA or countdown task too, when it arrives, not
# when it runs) and for a task ending (success, exception, or a retry, which arrives again as a new message).
RECEIVED = re.compile(r"Task (?P<name>[\w.]+)\[(?P<id>[\w-]+)\] received$")
FINISHED = re.compile(
    r"Task (?P<name>[\w.]+)\[(?P<id>[\w-]+)\] (?:succeeded in [\d.]+s: (?P<result>.*)|raised |retry: )"
)


def tasks_in(log: str) -> tuple[list[str], dict[str, list[str]]]:
    """(ids of the tasks received but not yet finished, {task name: [result of each succeeded one]})."""
    pending: dict[str, int] = {}
    results: dict[str, list[str]] = {}
    for line in log.splitlines():
        if match := RECEIVED.search(line):
            pending[match["id"]] = pending.get(match["id"], 0) + 1
        elif match := FINISHED.search(line):
            pending[match["id"]] = pending.get(match["id"], 0) - 1
            if match["result"] is not None:
                results.setdefault(match["name"], []).append(match["result"])
    return [task_id for task_id, count in pending.items() if count > 0], results


def wait_until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


SWEEP = subscriptions_renew_due_task.name
RENEW = "subscriptions.tasks.subscriptions_renew_task"


def quiet(log: str) -> bool:
    """Both sweeps ended, their batches (or more) arrived, and no task the worker received is still open."""
    pending, results = tasks_in(log)
    sweeps = results.get(SWEEP, [])
    if len(sweeps) < 2:
        return False
    batches = sum(math.ceil(int(found) / max(settings.BILLING_BATCH_SIZE, 1)) for found in sweeps)
    received = len({m["id"] for line in log.splitlines() if (m := RECEIVED.search(line)) and m["name"] == RENEW})
    return received >= batches and not pending


def test_sweep_fired_twice_charges_each_renewal_once_on_a_real_worker(sandbox, gateway, queue, tmp_path):
    now = timezone.now()
    plan = PlanFactory(code="weekly", amount=5_000, interval="week")
    subs = []
    for _ in range(6):
        customer = make_customer()
        register_card(customer, gateway, now=now)
        subs.append(subscription_create(customer=customer, plan=plan, now=now, gateway=gateway))
    clock.set_offset(8 * 86400)  # the app's clock (shared through the database) is now past every period end

    log_path = tmp_path / "worker.log"
    worker = start("worker", queue, sandbox.base_url, log_path)
    try:
        subscriptions_renew_due_task.delay()
        subscriptions_renew_due_task.delay()  # the sweep fired twice at the same moment
        # The gate: both sweeps have ended, the worker has received at least the renewal batches they
        # reported (each returns how many subscriptions it found due), and every task it received has ended.
        # Any charge the doubled sweep could cause is made inside one of those tasks, so from here on the
        # sandbox's ledger is final; no amount of waiting could add to it.
        settled = wait_until(lambda: quiet(log_path.read_text()))
    finally:
        log = stop(worker, log_path)

    pending, results = tasks_in(log)
    assert settled, (pending, results, list(Invoice.objects.values_list("kind", "status")))
    assert Invoice.objects.filter(kind="renewal", status="paid").count() == 6
    paid = [p for p in sandbox.payments() if p["status"] == "paid"]
    assert len(paid) == 12  # 6 first periods + 6 renewals, not one more
    assert len({p["merchant_uid"] for p in paid}) == 12
    for sub in subs:
        assert Invoice.objects.filter(subscription_link__subscription=sub, status="paid").count() == 2


def test_beat_drives_the_sweeps_from_the_database_schedule(sandbox, gateway, queue, tmp_path):
    from config import beat

    now = timezone.now()
    plan = PlanFactory(code="daily", amount=1_000, interval="day")
    customer = make_customer()
    register_card(customer, gateway, now=now)
    sub = subscription_create(customer=customer, plan=plan, now=now, gateway=gateway)
    beat.install(every_seconds=1)  # the real schedule, at one-second intervals
    clock.set_offset(2 * 86400)

    worker_path, beat_path = tmp_path / "worker.log", tmp_path / "beat.log"
    worker = start("worker", queue, sandbox.base_url, worker_path)
    beat = start("beat", queue, sandbox.base_url, beat_path)
    try:
        renewed = wait_until(
            lambda: Invoice.objects.filter(subscription_link__subscription=sub, status="paid").count() >= 2
        )
    finally:
        beat_log = stop(beat, beat_path)
        worker_log = stop(worker, worker_path)

    assert renewed, beat_log[-2000:] + worker_log[-2000:]
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE
    assert sub.current_period_end > now + dt.timedelta(days=2)
