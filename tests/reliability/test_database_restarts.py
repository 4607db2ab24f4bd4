"""The database goes away under a real Celery worker (a failover, a restart, PgBouncer dropping sessions): the
worker's tasks are retried with backoff until it is back, nothing is charged twice, and a charge whose answer came
while the database was gone is settled by the janitor from Iamport's record.

The outage is real: the worker's sessions are terminated and new ones refused (tests/reliability/outage.py) at
the moment the sandbox holds the charges at a gate, so the worker gets Iamport's answers with no database to
write them to. The worker retries quickly here (TASK_INFRA_RETRY_MAX_SECONDS=1); the defaults are in
config/settings/base.py.
"""

from __future__ import annotations

import random
import re
import uuid

import pytest
from django.conf import settings as django_settings

from billing import clock
from billing.models import Invoice, PaymentAttempt
from billing.tasks import payments_reconcile_unsettled_task
from config.beat import JOBS
from config.celery import app as celery_app
from config.celery import infrastructure_retry_countdown
from subscriptions.models import Subscription
from subscriptions.tasks import subscriptions_renew_due_task, subscriptions_renew_task
from tests.reliability.helpers import (
    again_requests,
    assert_books_balance,
    charged_payments,
    start_worker,
    stop_worker,
    tasks_done,
    wait_until,
    worker_log,
)
from tests.reliability.outage import DatabaseOutage

Status = PaymentAttempt.Status
RETRY_LINE = re.compile(r"lost the database or broker \((\w+):")


@pytest.fixture
def queue():
    """A queue of this test's own on the real broker (tasks are published, never run in this process)."""
    name = f"rel-{uuid.uuid4().hex[:8]}"
    original = celery_app.conf.task_default_queue, celery_app.conf.task_always_eager
    celery_app.conf.task_default_queue, celery_app.conf.task_always_eager = name, False
    yield name
    celery_app.conf.task_default_queue, celery_app.conf.task_always_eager = original


@pytest.fixture
def outage():
    db_outage = DatabaseOutage()
    yield db_outage
    db_outage.close()


@pytest.fixture
def quick_retries(monkeypatch):
    """The worker started by the test retries after at most a second (the environment it inherits)."""
    monkeypatch.setenv("TASK_INFRA_RETRY_BASE_SECONDS", "0.2")
    monkeypatch.setenv("TASK_INFRA_RETRY_MAX_SECONDS", "1")


def retries_logged(log_path, task_name: str) -> list[str]:
    """The error class of each infrastructure retry the worker logged for `task_name`."""
    found = [RETRY_LINE.search(line) for line in worker_log(log_path).splitlines() if task_name in line]
    return [match.group(1) for match in found if match]


def unsettled_count() -> int:
    return PaymentAttempt.objects.filter(status__in=[Status.PENDING, Status.UNKNOWN]).count()


def test_retry_backoff_is_jittered_and_capped_below_the_sweep_interval_when_computed():
    random.seed(7)
    waits = [[infrastructure_retry_countdown(retries) for _ in range(200)] for retries in range(12)]
    cap = django_settings.TASK_INFRA_RETRY_MAX_SECONDS

    assert cap < min(seconds for _, _, seconds in JOBS)  # a due row is tried again within one sweep interval
    assert all(cap / 2 <= w <= cap for w in waits[-1])  # bounded, and never a tight loop
    assert len({round(w, 3) for w in waits[-1]}) > 100  # jittered: a failed batch run does not return in step
    assert max(waits[0]) <= django_settings.TASK_INFRA_RETRY_BASE_SECONDS
    assert django_settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_janitor_settles_the_charges_iamport_made_when_the_database_died_between_its_answer_and_our_write(
    sandbox, gateway, subscribed, now, queue, outage, quick_retries, tmp_path
):
    log_path = tmp_path / "worker.log"
    subs = [subscribed(now=now) for _ in range(3)]
    clock.set_offset(8 * 86_400)  # every weekly subscription is due
    sandbox.add_fault("again", "gate", times=3)  # the charges wait at Iamport until released

    worker = start_worker(queue, sandbox.base_url, log_path)
    try:
        subscriptions_renew_task.delay([sub.pk for sub in subs])
        held = sandbox.wait_for_inflight("again", 3, timeout=60)
        assert held["current"].get("again") == 3, worker_log(log_path)[-3000:]
        assert outage.begin() >= 1  # the worker's session is among those dropped
        sandbox.release_held()  # Iamport charges and answers; the worker has no database to write it to
        assert wait_until(lambda: len(charged_payments(sandbox)) == 6, timeout=30)
        # The task failed on its write, and its retries fail to connect while the database refuses sessions.
        assert wait_until(lambda: len(retries_logged(log_path, "subscriptions_renew_task")) >= 3, timeout=60), (
            worker_log(log_path)[-3000:]
        )
        outage.end()
        assert wait_until(lambda: tasks_done(log_path, "subscriptions_renew_task") == 1, timeout=60), worker_log(
            log_path
        )[-3000:]
        # The retry ran on a database that is back: it re-checked the rows and sent nothing again.
        assert len(again_requests(sandbox)) == 6
        renewals = Invoice.objects.filter(kind=Invoice.Kind.RENEWAL)
        assert renewals.count() == 3
        assert unsettled_count() == 3  # paid at Iamport, unknown here: the janitor's work

        clock.set_offset(clock.offset_seconds() + django_settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS + 60)
        payments_reconcile_unsettled_task.delay()
        assert wait_until(lambda: unsettled_count() == 0, timeout=60), worker_log(log_path)[-3000:]
    finally:
        outage.close()
        stop_worker(worker, kill=True)

    assert set(retries_logged(log_path, "subscriptions_renew_task")) == {"OperationalError"}
    assert not renewals.exclude(status=Invoice.Status.PAID).exists()
    assert PaymentAttempt.objects.filter(invoice__in=renewals, status=Status.SUCCEEDED).count() == 3
    assert len(again_requests(sandbox)) == 6  # 3 first periods + 3 renewals: nothing re-sent
    assert "Traceback" not in worker_log(log_path)
    assert_books_balance(sandbox)


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_due_subscriptions_are_charged_once_the_database_is_back_when_the_sweep_ran_while_it_was_down(
    sandbox, gateway, subscribed, now, queue, outage, quick_retries, tmp_path
):
    log_path = tmp_path / "worker.log"
    subs = [subscribed(now=now) for _ in range(3)]
    clock.set_offset(8 * 86_400)
    worker = start_worker(queue, sandbox.base_url, log_path)
    try:
        assert wait_until(lambda: " ready." in worker_log(log_path), timeout=60), worker_log(log_path)[-3000:]
        outage.begin()
        subscriptions_renew_due_task.delay()  # the beat's sweep lands while the database is gone
        assert wait_until(lambda: len(retries_logged(log_path, "subscriptions_renew_due_task")) >= 2, timeout=60), (
            worker_log(log_path)[-3000:]
        )
        outage.end()
        # No further sweep is sent: the retried one finds the due rows and fans out.
        paid = wait_until(
            lambda: Invoice.objects.filter(kind=Invoice.Kind.RENEWAL, status=Invoice.Status.PAID).count() == 3,
            timeout=60,
        )
        assert wait_until(lambda: tasks_done(log_path, "subscriptions_renew_task") == 1, timeout=30)
    finally:
        outage.close()
        stop_worker(worker, kill=True)

    assert paid, worker_log(log_path)[-3000:]
    assert tasks_done(log_path, "subscriptions_renew_due_task") == 1
    assert len(again_requests(sandbox)) == 6
    for sub in subs:
        sub.refresh_from_db()
        assert sub.status == Subscription.Status.ACTIVE
    assert_books_balance(sandbox)
