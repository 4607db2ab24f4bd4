"""A real Celery worker and beat against a real broker (CELERY_BROKER_URL, e.g. this machine's Redis in CI;
otherwise the embedded broker on PostgreSQL): each renewal is charged once even when the sweep fires twice
at the same moment, and beat itself drives the sweeps."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
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
    name = f"test-{uuid.uuid4().hex[:8]}"
    original = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = name
    yield name
    celery_app.conf.task_default_queue = original


def start(kind: str, queue: str, sandbox_url: str) -> subprocess.Popen:
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
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen) -> str:
    process.terminate()
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output or ""


def wait_until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_sweep_fired_twice_charges_each_renewal_once_on_a_real_worker(sandbox, gateway, queue):
    now = timezone.now()
    plan = PlanFactory(code="weekly", amount=5_000, interval="week")
    subs = []
    for _ in range(6):
        customer = make_customer()
        register_card(customer, gateway, now=now)
        subs.append(subscription_create(customer=customer, plan=plan, now=now, gateway=gateway))
    clock.set_offset(8 * 86400)  # the app's clock (shared through the database) is now past every period end

    worker = start("worker", queue, sandbox.base_url)
    try:
        subscriptions_renew_due_task.delay()
        subscriptions_renew_due_task.delay()  # the sweep fired twice at the same moment
        renewed = wait_until(lambda: Invoice.objects.filter(kind="renewal", status="paid").count() == 6)
        time.sleep(1.5)  # let any duplicate task finish, so a double charge would show
    finally:
        log = stop(worker)

    outcomes = [line.rsplit(": ", 1)[-1] for line in log.splitlines() if "succeeded in" in line]
    assert renewed, (outcomes, list(Invoice.objects.values_list("kind", "status")))
    paid = [p for p in sandbox.payments() if p["status"] == "paid"]
    assert len(paid) == 12  # 6 first periods + 6 renewals, not one more
    assert len({p["merchant_uid"] for p in paid}) == 12
    for sub in subs:
        assert Invoice.objects.filter(subscription_link__subscription=sub, status="paid").count() == 2


def test_beat_drives_the_sweeps_from_the_database_schedule(sandbox, gateway, queue):
    from config import beat

    now = timezone.now()
    plan = PlanFactory(code="daily", amount=1_000, interval="day")
    customer = make_customer()
    register_card(customer, gateway, now=now)
    sub = subscription_create(customer=customer, plan=plan, now=now, gateway=gateway)
    beat.install(every_seconds=1)  # the real schedule, at one-second intervals
    clock.set_offset(2 * 86400)

    worker = start("worker", queue, sandbox.base_url)
    beat = start("beat", queue, sandbox.base_url)
    try:
        renewed = wait_until(
            lambda: Invoice.objects.filter(subscription_link__subscription=sub, status="paid").count() >= 2
        )
    finally:
        beat_log = stop(beat)
        worker_log = stop(worker)

    assert renewed, beat_log[-2000:] + worker_log[-2000:]
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE
    assert sub.current_period_end > now + dt.timedelta(days=2)
