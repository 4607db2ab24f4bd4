"""A worker dying between the gateway's answer and our commit (A6 items 5 and 8): the charge is PENDING here and
(maybe) paid at Iamport. The janitor must settle it from Iamport once it is old enough, and nothing may charge
the invoice again meanwhile. Simulated in-process (the worker "dies" with a BaseException that no
`except Exception` catches; the database drops our connection right after Iamport answered), then with a real
Celery worker process killed with SIGKILL mid-flight."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from django import db
from django.conf import settings as django_settings
from django.db import connection

from billing import clock
from billing.models import Invoice, PaymentAttempt
from billing.tasks import payments_reconcile_unsettled_task
from config.celery import app as celery_app
from subscriptions.models import Subscription
from subscriptions.services.renewals import subscription_renew
from subscriptions.services.sweep import billing_run
from subscriptions.tasks import invoices_retry_due_task, subscriptions_renew_due_task, subscriptions_renew_task
from tests.reliability.conftest import run_in_threads
from tests.reliability.helpers import (
    again_requests,
    assert_books_balance,
    attempts_of,
    charged_payments,
    renewal_invoice,
    start_worker,
    stop_worker,
    tasks_done,
    wait_until,
    worker_log,
)

Status = PaymentAttempt.Status
MINUTE = dt.timedelta(minutes=1)


class WorkerKilled(BaseException):
    """What SIGKILL looks like from inside: no handler runs, nothing is recorded."""


class DiesAround:
    """The real gateway, but the worker dies just before sending the charge or just after its answer."""

    def __init__(self, gateway, *, after_answer: bool):
        self._gateway = gateway
        self._after_answer = after_answer

    def __getattr__(self, name):
        return getattr(self._gateway, name)

    def charge_billing_key(self, **kwargs):
        if not self._after_answer:
            raise WorkerKilled()
        self._gateway.charge_billing_key(**kwargs)
        raise WorkerKilled()


@pytest.mark.django_db
def test_janitor_settles_the_charge_paid_without_resending_when_the_worker_died_after_iamport_answered(
    sandbox, gateway, subscribed, now
):
    pending_after = dt.timedelta(seconds=django_settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS)
    sub = subscribed(now=now)
    renew_at = sub.current_period_end + MINUTE
    with pytest.raises(WorkerKilled):
        subscription_renew(subscription_id=sub.pk, now=renew_at, gateway=DiesAround(gateway, after_answer=True))
    invoice = renewal_invoice(sub)
    [attempt] = attempts_of(invoice)
    assert attempt.status == Status.PENDING
    assert [p["merchant_uid"] for p in charged_payments(sandbox)][1:] == [attempt.merchant_uid]  # paid, unrecorded

    # Sweeps while the request could still be running: the janitor leaves it alone, nobody re-sends.
    assert billing_run(now=renew_at + pending_after - MINUTE, gateway=gateway)["reconciled"]["checked"] == 0
    counts = billing_run(now=renew_at + pending_after + MINUTE, gateway=gateway)["reconciled"]

    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert counts["succeeded"] == 1
    assert attempt.status == Status.SUCCEEDED
    assert invoice.status == Invoice.Status.PAID
    assert len(again_requests(sandbox)) == 2
    assert_books_balance(sandbox)


@pytest.mark.django_db
def test_a_pending_charge_that_never_left_fails_after_the_grace_and_is_retried_once_when_the_worker_died_before_sending(
    sandbox, gateway, subscribed, now
):
    pending_after = dt.timedelta(seconds=django_settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS)
    grace = dt.timedelta(seconds=django_settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS)
    sub = subscribed(now=now)
    renew_at = sub.current_period_end + MINUTE
    with pytest.raises(WorkerKilled):
        subscription_renew(subscription_id=sub.pk, now=renew_at, gateway=DiesAround(gateway, after_answer=False))
    invoice = renewal_invoice(sub)
    [first] = attempts_of(invoice)

    billing_run(now=renew_at + pending_after + MINUTE, gateway=gateway)  # looked up, not found, too early
    first.refresh_from_db()
    assert first.status == Status.PENDING
    billing_run(now=renew_at + grace + MINUTE, gateway=gateway)
    first.refresh_from_db()
    invoice.refresh_from_db()
    assert (first.status, first.failure_code) == (Status.FAILED, "not_found")
    billing_run(now=invoice.next_attempt_at, gateway=gateway)

    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert [a.status for a in attempts_of(invoice)] == [Status.FAILED, Status.SUCCEEDED]
    assert invoice.status == Invoice.Status.PAID
    assert sub.status == Subscription.Status.ACTIVE
    assert len(again_requests(sandbox)) == 2  # the first period and the one retry
    assert_books_balance(sandbox)


class DatabaseDropsAfterAnswer:
    """The real gateway; once Iamport has answered, the worker's database connection is terminated (a
    failover, a restart, pg_terminate_backend), so recording the outcome fails."""

    def __init__(self, gateway):
        self._gateway = gateway

    def __getattr__(self, name):
        return getattr(self._gateway, name)

    def charge_billing_key(self, **kwargs):
        payment = self._gateway.charge_billing_key(**kwargs)
        victim = connection.connection.info.backend_pid
        run_in_threads(lambda: _terminate(victim))
        return payment


def _terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.django_db(transaction=True)
def test_janitor_settles_the_charge_paid_when_the_database_dropped_the_connection_right_after_iamport_answered(
    sandbox, gateway, subscribed, now
):
    pending_after = dt.timedelta(seconds=django_settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS)
    sub = subscribed(now=now)
    renew_at = sub.current_period_end + MINUTE

    with pytest.raises(db.Error):
        subscription_renew(subscription_id=sub.pk, now=renew_at, gateway=DatabaseDropsAfterAnswer(gateway))
    connection.close()  # the worker's next task gets a new connection

    invoice = renewal_invoice(sub)
    [attempt] = attempts_of(invoice)
    assert attempt.status == Status.PENDING  # paid at Iamport, unrecorded here
    billing_run(now=renew_at + MINUTE, gateway=gateway)  # the sweep meanwhile: nothing re-sent
    billing_run(now=renew_at + pending_after + MINUTE, gateway=gateway)

    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert attempt.status == Status.SUCCEEDED
    assert invoice.status == Invoice.Status.PAID
    assert len(again_requests(sandbox)) == 2
    assert_books_balance(sandbox)


# --- a real worker process, killed with SIGKILL while its charges are in flight --------------------------


@pytest.fixture
def queue():
    """A queue of this test's own on the real broker (tasks are published, never run in this process)."""
    name = f"rel-{uuid.uuid4().hex[:8]}"
    original = celery_app.conf.task_default_queue, celery_app.conf.task_always_eager
    celery_app.conf.task_default_queue, celery_app.conf.task_always_eager = name, False
    yield name
    celery_app.conf.task_default_queue, celery_app.conf.task_always_eager = original


def token_requests(sandbox) -> int:
    return sum(1 for r in sandbox.requests_log() if r["endpoint"] == "getToken")


def unsettled_count() -> int:
    return PaymentAttempt.objects.filter(status__in=[Status.PENDING, Status.UNKNOWN]).count()


def sandbox_quiet(sandbox, seconds: float) -> bool:
    """True once no request has reached the sandbox for `seconds` (held requests finished server-side)."""
    before = len(sandbox.requests_log())
    time.sleep(seconds)
    return len(sandbox.requests_log()) == before


def move_app_clock(seconds: int) -> None:
    clock.set_offset(clock.offset_seconds() + seconds)
    time.sleep(1.1)  # workers cache the offset for a second


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_every_iamport_charge_maps_to_one_recorded_success_when_a_worker_is_sigkilled_mid_flight(
    sandbox, gateway, subscribed, now, queue, tmp_path
):
    first_log, second_log = tmp_path / "killed.log", tmp_path / "recovery.log"
    subs = [subscribed(now=now) for _ in range(6)]
    renewals = Invoice.objects.filter(kind=Invoice.Kind.RENEWAL)
    clock.set_offset(8 * 86_400)  # every weekly subscription is due
    # Iamport applies each charge and then its answer never comes back (held far past the kill): the worker
    # is SIGKILLed with the money moved and nothing recorded. Waiting for the sandbox's ledger (not a sleep)
    # makes the kill land in that window whatever the machine's load.
    sandbox.add_fault("again", "timeout_after_commit", times=6, hold_ms=60_000)

    worker = start_worker(queue, sandbox.base_url, first_log)
    try:
        subscriptions_renew_task.delay([sub.pk for sub in subs])  # one batch, as the sweep sends it
        charged = wait_until(lambda: len(charged_payments(sandbox)) >= 6 + 3, timeout=60)  # 3+ renewals applied
    finally:
        stop_worker(worker, kill=True)
    assert charged, worker_log(first_log)[-3000:]
    in_flight = unsettled_count()
    sandbox.clear_faults()
    worker = start_worker(queue, sandbox.base_url, second_log)  # starts while Iamport finishes the charges
    try:
        assert wait_until(lambda: sandbox_quiet(sandbox, 1.0), timeout=20)
        attempts = {a.merchant_uid: a for a in PaymentAttempt.objects.all()}
        paid_unrecorded = [
            p["merchant_uid"] for p in charged_payments(sandbox) if attempts[p["merchant_uid"]].status == Status.PENDING
        ]
        assert in_flight >= 1, worker_log(first_log)[-3000:]
        assert paid_unrecorded, "the kill did not land between Iamport's answer and our commit"

        # The clock moves past the janitor's thresholds; the sweeps run as beat would run them.
        move_app_clock(django_settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS + 60)
        payments_reconcile_unsettled_task.delay()
        assert wait_until(lambda: unsettled_count() == 0, timeout=60)
        move_app_clock(max(django_settings.BILLING_DUNNING_GATEWAY_RETRY_MINUTES) * 60 + 60)
        subscriptions_renew_due_task.delay()
        invoices_retry_due_task.delay()
        settled = wait_until(
            lambda: renewals.count() == 6 and not renewals.exclude(status=Invoice.Status.PAID).exists(), timeout=60
        )
        subscriptions_renew_due_task.delay()  # a duplicate sweep afterwards changes nothing
        invoices_retry_due_task.delay()
        assert wait_until(lambda: tasks_done(second_log, "invoices_retry_due_task") == 2, timeout=40)
        assert wait_until(lambda: tasks_done(second_log, "subscriptions_renew_due_task") == 2, timeout=40)
        assert wait_until(lambda: sandbox_quiet(sandbox, 0.5), timeout=15)
    finally:
        stop_worker(worker, kill=True)  # idle by now; a warm shutdown only costs time

    assert settled, (list(renewals.values_list("status", flat=True)), worker_log(second_log)[-3000:])
    assert unsettled_count() == 0
    assert set(paid_unrecorded) <= set(
        PaymentAttempt.objects.filter(status=Status.SUCCEEDED).values_list("merchant_uid", flat=True)
    )
    assert len(charged_payments(sandbox)) == 12  # 6 first periods + 6 renewals, not one more
    for sub in subs:
        sub.refresh_from_db()
        assert sub.status == Subscription.Status.ACTIVE
    assert_books_balance(sandbox)
