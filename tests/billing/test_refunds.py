"""Refunds (billing/services/refunds.py): each refund records its own Iamport cancellation, our refunded total
always equals Iamport's, and a refund whose outcome we do not know is settled by the janitor or an operator."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from billing.errors import (
    PaymentInProgressError,
    PaymentPendingError,
    RefundExceedsBalanceError,
    RefundNotAllowedError,
)
from billing.models import AuditLog, PaymentAttempt, Refund
from billing.services.payments import payment_attempt_create, payment_charge
from billing.services.refunds import refund_create, refund_totals, refunds_reconcile_unsettled
from subscriptions.services.sweep import billing_run
from tests.billing.test_payments import open_invoice
from tests.factories import make_customer, register_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


def paid_attempt(gateway, now, amount=10_000, tax_free=0) -> PaymentAttempt:
    customer = make_customer()
    register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now, amount=amount, tax_free=tax_free)
    attempt = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    return attempt


def remote_cancellations(gateway, attempt) -> list[tuple[str, int]]:
    return [(c.cancellation_id, c.amount) for c in gateway.get_payment(imp_uid=attempt.imp_uid).cancel_history]


def died_in_flight(gateway, attempt, *, amount: int, now, reached_iamport: bool) -> Refund:
    """The rows a refund_create leaves when its process dies after recording the refund (and, when
    `reached_iamport`, after Iamport refunded it) but before the answer was written."""
    checksum = attempt.amount - refund_totals(attempt)["refunded"]
    refund = Refund.objects.create(attempt=attempt, amount=amount, reason="process died", created_at=now)
    if reached_iamport:
        gateway.cancel_payment(imp_uid=attempt.imp_uid, amount=amount, checksum=checksum, reason="process died")
    return refund


def test_two_equal_partial_refunds_in_one_second_each_record_their_own_cancellation(sandbox, gateway, now):
    attempt = paid_attempt(gateway, now)
    sandbox.freeze()  # both cancellations carry the same cancelled_at, to the second

    first = refund_create(attempt_id=attempt.pk, amount=500, reason="a", now=now, gateway=gateway)
    second = refund_create(attempt_id=attempt.pk, amount=500, reason="b", now=now, gateway=gateway)
    third = refund_create(attempt_id=attempt.pk, amount=500, reason="c", now=now, gateway=gateway)

    assert [r.status for r in (first, second, third)] == ["succeeded"] * 3
    remote = remote_cancellations(gateway, attempt)
    assert sorted(r.cancellation_id for r in (first, second, third)) == sorted(cid for cid, _ in remote)
    assert refund_totals(attempt)["refunded"] == 1_500 == gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount
    assert refund_totals(attempt)["in_flight"] == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_equal_partial_refunds_keep_our_total_equal_to_iamports(sandbox, gateway):
    now = timezone.now()
    attempt = paid_attempt(gateway, now)
    sandbox.freeze()
    outcomes: list[str] = []
    start = threading.Barrier(12)

    def admin():
        try:
            start.wait()
            for _ in range(3):
                try:
                    refund = refund_create(attempt_id=attempt.pk, amount=100, reason="race", now=now, gateway=gateway)
                    outcomes.append(refund.status)
                except (PaymentInProgressError, RefundExceedsBalanceError) as exc:
                    outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=admin) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    succeeded = outcomes.count("succeeded")
    assert succeeded >= 1 and set(outcomes) <= {"succeeded", "payment_in_progress"}
    remote = gateway.get_payment(imp_uid=attempt.imp_uid)
    totals = refund_totals(attempt)
    assert totals["refunded"] == remote.cancel_amount == 100 * succeeded
    assert totals["in_flight"] == 0
    recorded = set(Refund.objects.filter(attempt=attempt).values_list("cancellation_id", flat=True))
    assert recorded == {c.cancellation_id for c in remote.cancel_history}


def test_a_refund_that_timed_out_after_iamport_refunded_is_recorded_at_once_with_its_cancellation(
    sandbox, gateway, now
):
    attempt = paid_attempt(gateway, now)
    refund_create(attempt_id=attempt.pk, amount=500, reason="first", now=now, gateway=gateway)
    sandbox.freeze()
    sandbox.add_fault("cancel", "timeout_after_commit", times=1)

    refund = refund_create(attempt_id=attempt.pk, amount=500, reason="second", now=now, gateway=gateway)

    assert refund.status == Refund.Status.SUCCEEDED
    assert refund.cancellation_id == remote_cancellations(gateway, attempt)[-1][0]
    assert refund_totals(attempt)["refunded"] == 1_000


def test_a_refund_that_timed_out_before_iamport_saw_it_stays_unknown_until_the_janitor_fails_it(
    sandbox, gateway, now, settings
):
    attempt = paid_attempt(gateway, now)
    sandbox.add_fault("cancel", "timeout_before_commit", times=1)

    with pytest.raises(PaymentPendingError):
        refund_create(attempt_id=attempt.pk, amount=2_000, reason="lost", now=now, gateway=gateway)
    refund = Refund.objects.get(attempt=attempt)
    assert refund.status == Refund.Status.UNKNOWN
    with pytest.raises(PaymentInProgressError):  # nobody refunds again while the outcome is unknown
        refund_create(attempt_id=attempt.pk, amount=2_000, reason="again", now=now, gateway=gateway)

    window = dt.timedelta(seconds=settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS)
    early = refunds_reconcile_unsettled(now=now + window - dt.timedelta(seconds=1), gateway=gateway)
    assert (early["checked"], early["still_unknown"]) == (1, 1)
    late = refunds_reconcile_unsettled(now=now + window, gateway=gateway)

    refund.refresh_from_db()
    assert (late["failed"], refund.status) == (1, Refund.Status.FAILED)
    assert gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount == 0
    retried = refund_create(attempt_id=attempt.pk, amount=2_000, reason="again", now=now + window, gateway=gateway)
    assert retried.status == Refund.Status.SUCCEEDED
    assert refund_totals(attempt)["refunded"] == 2_000 == gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount


def test_a_refund_left_pending_by_a_dead_process_is_settled_by_the_billing_run_when_iamport_refunded_it(
    sandbox, gateway, now, settings
):
    attempt = paid_attempt(gateway, now)
    refund_create(attempt_id=attempt.pk, amount=500, reason="earlier", now=now, gateway=gateway)
    sandbox.freeze()
    refund = died_in_flight(gateway, attempt, amount=500, now=now, reached_iamport=True)
    pending_after = dt.timedelta(seconds=settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS)

    # While the request could still be running the janitor leaves it alone.
    assert billing_run(now=now + pending_after - dt.timedelta(seconds=1), gateway=gateway)["refunds"]["checked"] == 0
    counts = billing_run(now=now + pending_after, gateway=gateway)["refunds"]

    refund.refresh_from_db()
    assert counts["succeeded"] == 1
    assert refund.status == Refund.Status.SUCCEEDED
    assert refund.cancellation_id == remote_cancellations(gateway, attempt)[-1][0]
    assert refund_totals(attempt)["refunded"] == 1_000 == gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount
    assert AuditLog.objects.filter(action="refund.succeeded", object_id=str(refund.pk), actor_label="janitor").exists()


def test_a_refund_left_pending_that_never_reached_iamport_is_failed_once_it_cannot_arrive(
    sandbox, gateway, now, settings
):
    attempt = paid_attempt(gateway, now)
    refund = died_in_flight(gateway, attempt, amount=700, now=now, reached_iamport=False)
    window = dt.timedelta(seconds=settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS)

    assert refunds_reconcile_unsettled(now=now + window - dt.timedelta(seconds=1), gateway=gateway)["failed"] == 0
    assert refunds_reconcile_unsettled(now=now + window, gateway=gateway)["failed"] == 1

    refund.refresh_from_db()
    assert refund.status == Refund.Status.FAILED
    assert refund_totals(attempt) == {"refunded": 0, "refunded_tax_free": 0, "in_flight": 0, "refundable": 10_000}


def test_a_console_refund_of_another_amount_is_never_taken_for_ours_and_is_recorded_as_its_own(
    sandbox, gateway, now, settings
):
    attempt = paid_attempt(gateway, now)
    refund = died_in_flight(gateway, attempt, amount=700, now=now, reached_iamport=False)
    gateway.cancel_payment(imp_uid=attempt.imp_uid, amount=300, reason="made in the Iamport console")
    window = dt.timedelta(seconds=settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS)

    assert refunds_reconcile_unsettled(now=now + window - dt.timedelta(seconds=1), gateway=gateway)["checked"] == 1
    refund.refresh_from_db()
    assert refund.status == Refund.Status.PENDING  # too early to tell: unchanged
    counts = refunds_reconcile_unsettled(now=now + window, gateway=gateway)

    refund.refresh_from_db()
    assert (counts["failed"], refund.status) == (1, Refund.Status.FAILED)
    [console] = Refund.objects.filter(attempt=attempt, status=Refund.Status.SUCCEEDED)
    assert (console.amount, console.cancellation_id) == (300, remote_cancellations(gateway, attempt)[0][0])
    assert refund_totals(attempt)["refunded"] == 300 == gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount


def test_an_operator_settles_a_stuck_refund_at_once_from_the_admin(admin_client, sandbox, gateway, now):
    attempt = paid_attempt(gateway, now)
    lost = died_in_flight(gateway, attempt, amount=700, now=now, reached_iamport=False)
    arrived = died_in_flight(gateway, paid_attempt(gateway, now), amount=400, now=now, reached_iamport=True)

    response = admin_client.post(
        "/admin/billing/refund/",
        {"action": "settle_now", "_selected_action": [lost.pk, arrived.pk]},
        follow=True,
    )

    lost.refresh_from_db()
    arrived.refresh_from_db()
    assert response.status_code == 200
    assert (lost.status, arrived.status) == (Refund.Status.FAILED, Refund.Status.SUCCEEDED)
    assert arrived.cancellation_id
    assert AuditLog.objects.filter(object_id=str(lost.pk), action="refund.failed", actor_label__startswith="admin:")
    # Once settled, the payment can be refunded again; the lost request's checksum no longer matches at Iamport.
    retried = refund_create(attempt_id=attempt.pk, amount=700, reason="again", now=now, gateway=gateway)
    assert retried.status == Refund.Status.SUCCEEDED


def test_partial_then_full_refund_matches_iamport_and_splits_vat_exactly(sandbox, gateway, now):
    attempt = paid_attempt(gateway, now, amount=22_000, tax_free=12_000)

    first = refund_create(attempt_id=attempt.pk, amount=5_000, reason="partial", now=now, gateway=gateway)
    rest = refund_create(attempt_id=attempt.pk, amount=None, reason="the rest", now=now, gateway=gateway)

    assert (first.status, rest.status) == ("succeeded", "succeeded")
    assert rest.amount == 17_000
    assert first.tax_free_amount + rest.tax_free_amount == 12_000
    assert first.vat_amount + rest.vat_amount == attempt.vat_amount
    remote = gateway.get_payment(imp_uid=attempt.imp_uid)
    assert (remote.status, remote.cancel_amount) == ("cancelled", 22_000)
    assert {c.cancellation_id for c in remote.cancel_history} == {first.cancellation_id, rest.cancellation_id}


def test_refund_above_the_refundable_balance_is_refused_and_changes_nothing(sandbox, gateway, now):
    attempt = paid_attempt(gateway, now)
    refund_create(attempt_id=attempt.pk, amount=6_000, reason="x", now=now, gateway=gateway)

    with pytest.raises(RefundExceedsBalanceError) as excinfo:
        refund_create(attempt_id=attempt.pk, amount=4_001, reason="too much", now=now, gateway=gateway)

    assert excinfo.value.extra["refundable"] == 4_000
    assert Refund.objects.filter(attempt=attempt).count() == 1
    assert gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount == 6_000


def test_checksum_makes_iamport_refuse_when_our_ledger_missed_a_refund(sandbox, gateway, now):
    attempt = paid_attempt(gateway, now)
    gateway.cancel_payment(imp_uid=attempt.imp_uid, amount=1_000, reason="made in the Iamport console")

    with pytest.raises(Exception) as excinfo:
        refund_create(attempt_id=attempt.pk, amount=9_500, reason="would over-refund", now=now, gateway=gateway)

    assert getattr(excinfo.value, "code", "") == "refund_failed"
    assert gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount == 1_000
    assert Refund.objects.get(attempt=attempt).status == "failed"


def test_only_succeeded_payments_can_be_refunded(sandbox, gateway, now):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    pending = payment_attempt_create(invoice_id=open_invoice(customer, now).pk, now=now)
    with pytest.raises(RefundNotAllowedError):
        refund_create(attempt_id=pending.pk, amount=100, reason="x", now=now, gateway=gateway)


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_never_exceed_the_paid_amount(sandbox, gateway):
    now = timezone.now()
    attempt = paid_attempt(gateway, now)
    sandbox.set_latency(200)  # both admins' requests overlap at Iamport
    outcomes = []

    def admin():
        try:
            outcomes.append(
                refund_create(attempt_id=attempt.pk, amount=7_000, reason="race", now=now, gateway=gateway).status
            )
        except (PaymentInProgressError, RefundExceedsBalanceError) as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=admin) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["payment_in_progress", "succeeded"]
    assert refund_totals(attempt)["refunded"] == 7_000
    assert gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount == 7_000
