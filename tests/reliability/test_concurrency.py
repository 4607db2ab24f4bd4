"""Concurrency (A6 items 4 and 8): renewals in parallel behind a slow gateway, the sweep fired twice at the same
moment, several workers claiming one subscription, the janitor running twice. Each thread has its own
database connection, so the row locks (SKIP LOCKED, FOR UPDATE) and the unique indexes are what decide."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from billing.models import AuditLog, Invoice, PaymentAttempt
from billing.services.payments import payments_reconcile_unsettled
from subscriptions.services.renewals import subscription_renew, subscriptions_renew
from subscriptions.services.sweep import billing_run
from tests.reliability.conftest import run_in_threads
from tests.reliability.helpers import (
    again_requests,
    assert_books_balance,
    attempts_of,
    renewal_invoice,
    wait_for_sandbox_payment,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)
Status = PaymentAttempt.Status
MINUTE = dt.timedelta(minutes=1)


def test_each_renewal_is_charged_once_and_none_waits_for_another_when_the_gateway_holds_every_call(
    sandbox, gateway, subscribed, now
):
    subs = [subscribed(now=now) for _ in range(5)]
    sandbox.add_fault("again", "gate", times=5)  # each call waits at the sandbox until released
    sandbox.reset_inflight()

    def release_when_all_five_wait():
        # Proof without a stopwatch: all five calls are at the sandbox at the same moment.
        try:
            return wait_until(lambda: sandbox.inflight()["current"].get("again", 0) == 5, timeout=20)
        finally:
            sandbox.release_held()

    *outcomes, all_waited_together = run_in_threads(
        *[
            lambda sid=sub.pk, at=sub.current_period_end + MINUTE: subscription_renew(
                subscription_id=sid, now=at, gateway=gateway
            )
            for sub in subs
        ],
        release_when_all_five_wait,
    )

    assert all_waited_together
    assert outcomes == ["renewed:succeeded"] * 5
    assert sandbox.inflight()["peak"]["again"] == 5
    assert len(again_requests(sandbox)) == 10  # 5 first periods + 5 renewals
    assert_books_balance(sandbox)


def test_a_batch_keeps_its_charges_in_flight_together_with_no_transaction_or_extra_connection_open(
    sandbox, gateway, subscribed, now
):
    subs = [subscribed(now=now) for _ in range(6)]
    renew_at = max(sub.current_period_end for sub in subs) + MINUTE
    sandbox.add_fault("again", "gate", times=6)
    sandbox.reset_inflight()
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        [(test_started,)] = cursor.fetchall()
    seen: dict = {}

    def look_while_they_wait():
        try:
            seen["together"] = wait_until(lambda: sandbox.inflight()["current"].get("again", 0) == 6, timeout=20)
            with connection.cursor() as cursor:  # every session opened since the test began: the batch's own
                cursor.execute(
                    "SELECT state FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_start >= %s",
                    [test_started],
                )
                seen["states"] = sorted(state for (state,) in cursor.fetchall())
        finally:
            sandbox.release_held()

    [outcomes, _] = run_in_threads(
        lambda: subscriptions_renew(subscription_ids=[s.pk for s in subs], now=renew_at, gateway=gateway),
        look_while_they_wait,
    )

    assert seen["together"]
    assert set(outcomes.values()) == {"renewed:succeeded"}
    # Six charges in flight at once, on gateway threads that opened no connection of their own, while the
    # batch's one connection sat outside any transaction.
    assert seen["states"] == ["idle"]
    assert_books_balance(sandbox)


def test_each_due_subscription_is_charged_once_per_period_when_the_sweep_fires_twice_at_the_same_moment(
    sandbox, gateway, subscribed, now
):
    subs = [subscribed(now=now) for _ in range(3)]
    sweep_at = max(sub.current_period_end for sub in subs) + MINUTE
    sandbox.set_latency(300)  # charges are in flight while the other sweep looks at the same rows

    first, second = run_in_threads(
        lambda: billing_run(now=sweep_at, gateway=gateway), lambda: billing_run(now=sweep_at, gateway=gateway)
    )

    renewals = sum(r["renewals"].get("renewed:succeeded", 0) for r in (first, second))
    assert renewals == 3, (first, second)
    for sub in subs:
        [attempt] = attempts_of(renewal_invoice(sub))
        assert attempt.status == Status.SUCCEEDED
    assert len(again_requests(sandbox)) == 6
    assert_books_balance(sandbox)


def test_one_subscription_is_charged_once_when_four_workers_claim_it_at_the_same_moment(
    sandbox, gateway, subscribed, now
):
    sub = subscribed(now=now)
    renew_at = sub.current_period_end + MINUTE
    sandbox.set_latency(300)

    outcomes = run_in_threads(
        *[lambda: subscription_renew(subscription_id=sub.pk, now=renew_at, gateway=gateway) for _ in range(4)]
    )

    assert sorted(outcomes).count("renewed:succeeded") == 1, outcomes
    assert set(outcomes) <= {"renewed:succeeded", "locked", "not_due"}, outcomes
    assert len(attempts_of(renewal_invoice(sub))) == 1
    assert len(again_requests(sandbox)) == 2
    assert_books_balance(sandbox)


def test_an_unknown_charge_is_settled_once_when_two_janitors_run_at_the_same_moment(sandbox, gateway, subscribed, now):
    sub = subscribed(now=now)
    renew_at = sub.current_period_end + MINUTE
    sandbox.add_fault("again", "timeout_after_commit", times=1, hold_ms=3_000)
    subscription_renew(subscription_id=sub.pk, now=renew_at, gateway=gateway)
    invoice = renewal_invoice(sub)
    [attempt] = attempts_of(invoice)
    wait_for_sandbox_payment(sandbox, attempt.merchant_uid)
    sandbox.set_latency(200)

    counts = run_in_threads(
        *[lambda: payments_reconcile_unsettled(now=renew_at + MINUTE, gateway=gateway) for _ in range(2)]
    )

    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert attempt.status == Status.SUCCEEDED
    assert invoice.status == Invoice.Status.PAID
    assert sum(c["checked"] for c in counts) >= 1
    assert AuditLog.objects.filter(action="payment.succeeded", object_id=str(attempt.pk)).count() == 1
    assert AuditLog.objects.filter(action="invoice.paid", object_id=str(invoice.pk)).count() == 1
    assert_books_balance(sandbox)
