"""payment_charge and the janitor, against the real sandbox over HTTP: every outcome, and never twice."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from billing.errors import InvoiceNotPayableError, PaymentInProgressError
from billing.gateway.base import GatewayPayment
from billing.models import AuditLog, Invoice, PaymentAttempt
from billing.services.invoices import LineSpec, invoice_create, invoice_finalize
from billing.services.payments import (
    payment_apply_gateway_payment,
    payment_attempt_create,
    payment_attempts_create,
    payment_charge,
    payments_charge,
    payments_reconcile_unsettled,
)
from tests.factories import INSUFFICIENT_FUNDS_CARD, LOST_CARD, make_customer, register_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


def open_invoice(customer, now, amount=9_900, tax_free=0) -> Invoice:
    invoice = invoice_create(
        customer=customer,
        kind=Invoice.Kind.RENEWAL,
        description="베이직 월간",
        lines=[LineSpec(description="Basic", amount=amount, tax_free_amount=tax_free)],
        now=now,
    )
    return invoice_finalize(invoice=invoice, now=now)


def charges_sent(sandbox, merchant_uid: str) -> int:
    return sum(
        1 for r in sandbox.requests_log() if r.get("endpoint") == "again" and r.get("merchant_uid") == merchant_uid
    )


def test_charge_marks_attempt_succeeded_and_invoice_paid_when_card_is_good(sandbox, gateway, now):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now, amount=9_900)

    attempt = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)

    invoice.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert attempt.imp_uid
    assert invoice.status == Invoice.Status.PAID
    assert (invoice.supply_amount, invoice.vat_amount, invoice.tax_free_amount) == (9_000, 900, 0)
    ledger = [p for p in sandbox.payments() if p["merchant_uid"] == attempt.merchant_uid]
    assert [(p["status"], p["amount"]) for p in ledger] == [("paid", 9_900)]
    assert AuditLog.objects.filter(action="invoice.paid", object_id=str(invoice.pk)).count() == 1


@pytest.mark.parametrize(
    ("card", "decline_class", "reason_part"),
    [(INSUFFICIENT_FUNDS_CARD, "soft", "잔액부족"), (LOST_CARD, "hard", "분실")],
    ids=["insufficient-funds-soft", "lost-card-hard"],
)
def test_charge_records_a_classified_decline_when_card_is_declined(
    sandbox, gateway, now, card, decline_class, reason_part
):
    customer = make_customer()
    register_card(customer, gateway, now=now, card=card)
    invoice = open_invoice(customer, now)

    attempt = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)

    invoice.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.FAILED
    assert attempt.decline_class == decline_class
    assert reason_part in attempt.failure_reason
    assert attempt.imp_uid  # a decline is a real payment record at Iamport
    assert invoice.status == Invoice.Status.OPEN


def test_timeout_after_commit_leaves_attempt_unknown_and_janitor_settles_it_paid_without_resending(
    sandbox, gateway, now
):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now)
    sandbox.add_fault("again", "timeout_after_commit", times=1)

    attempt = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)

    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    with pytest.raises(PaymentInProgressError):  # nothing is retried before the outcome is known
        payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)

    counts = payments_reconcile_unsettled(now=now, gateway=gateway)

    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert counts["succeeded"] == 1
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert invoice.status == Invoice.Status.PAID
    assert charges_sent(sandbox, attempt.merchant_uid) == 1
    assert len([p for p in sandbox.payments() if p["status"] == "paid"]) == 1


def test_timeout_before_commit_is_settled_failed_only_after_the_not_found_grace(sandbox, gateway, now, settings):
    settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS = 600
    customer = make_customer()
    register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now)
    sandbox.add_fault("again", "timeout_before_commit", times=1)
    attempt = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)
    assert attempt.status == PaymentAttempt.Status.UNKNOWN

    payments_reconcile_unsettled(now=now + dt.timedelta(seconds=60), gateway=gateway)
    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.UNKNOWN  # too early to conclude "never arrived"

    payments_reconcile_unsettled(now=now + dt.timedelta(seconds=601), gateway=gateway)
    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.FAILED
    assert attempt.failure_code == "not_found"
    assert sandbox.payments() == []


@pytest.mark.parametrize("mode", ["http_500", "http_503"])
def test_a_5xx_on_a_charge_is_unknown_not_failed_when_iamport_may_have_processed_it(sandbox, gateway, now, mode):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now)
    sandbox.add_fault("again", mode, times=1)

    attempt = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)

    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    assert charges_sent(sandbox, attempt.merchant_uid) == 1


def test_code_error_is_a_gateway_failure_that_charged_nothing(sandbox, gateway, now):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now)
    sandbox.add_fault("again", "code_error", times=1)

    attempt = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)

    assert attempt.status == PaymentAttempt.Status.FAILED
    assert attempt.decline_class == "gateway"
    assert sandbox.payments() == []


def test_a_retry_is_a_new_attempt_with_a_new_merchant_uid_when_the_first_failed(sandbox, gateway, now):
    customer = make_customer()
    key = register_card(customer, gateway, now=now, card=INSUFFICIENT_FUNDS_CARD)
    invoice = open_invoice(customer, now)
    first = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)
    sandbox.set_card_behaviour(key.customer_uid, "paid")

    second = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)

    assert first.status == PaymentAttempt.Status.FAILED
    assert second.status == PaymentAttempt.Status.SUCCEEDED
    assert first.merchant_uid != second.merchant_uid
    with pytest.raises(InvoiceNotPayableError):
        payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)


def test_a_paid_amount_that_differs_from_ours_is_flagged_and_never_booked_paid(sandbox, gateway, now):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now, amount=9_900)
    attempt = payment_attempt_create(invoice_id=invoice.pk, now=now)

    tampered = GatewayPayment(imp_uid="imp_999999999999", merchant_uid=attempt.merchant_uid, status="paid", amount=100)
    result = payment_apply_gateway_payment(attempt_id=attempt.pk, payment=tampered, now=now, source="webhook")

    invoice.refresh_from_db()
    assert result.status == PaymentAttempt.Status.UNKNOWN
    assert "100" in result.flagged_reason
    assert invoice.status == Invoice.Status.OPEN
    assert AuditLog.objects.filter(action="payment.flagged").count() == 1
    with pytest.raises(PaymentInProgressError):  # parked for an operator: nothing charges the invoice again
        payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)


def test_settlement_is_forward_only_when_the_same_outcome_arrives_twice(sandbox, gateway, now):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now)
    attempt = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)
    payment = gateway.get_payment(imp_uid=attempt.imp_uid)

    again = payment_apply_gateway_payment(attempt_id=attempt.pk, payment=payment, now=now, source="webhook")
    failed_copy = GatewayPayment(
        imp_uid="imp_000000000001",
        merchant_uid=attempt.merchant_uid,
        status="failed",
        amount=attempt.amount,
        fail_reason="late decline",
    )
    still = payment_apply_gateway_payment(attempt_id=attempt.pk, payment=failed_copy, now=now, source="webhook")

    assert again.status == still.status == PaymentAttempt.Status.SUCCEEDED
    assert AuditLog.objects.filter(action="payment.succeeded").count() == 1


def test_stale_pending_attempt_from_a_dead_worker_is_reconciled_from_iamport(sandbox, gateway, now, settings):
    """A worker recorded PENDING, sent the charge, and died before recording the answer."""
    settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS = 180
    customer = make_customer()
    key = register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now)
    attempt = payment_attempt_create(invoice_id=invoice.pk, now=now)
    gateway.charge_billing_key(
        customer_uid=key.customer_uid, merchant_uid=attempt.merchant_uid, amount=attempt.amount, name="x"
    )

    assert payments_reconcile_unsettled(now=now + dt.timedelta(seconds=10), gateway=gateway)["checked"] == 0
    counts = payments_reconcile_unsettled(now=now + dt.timedelta(seconds=181), gateway=gateway)

    attempt.refresh_from_db()
    assert counts["succeeded"] == 1
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED


def test_a_charge_refused_for_the_gateways_rate_fails_as_throttled_and_a_retry_charges_once(sandbox, gateway, now):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now)
    sandbox.add_fault("again", "throttle", retry_after=2)

    refused = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)
    retried = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)

    assert (refused.status, refused.decline_class, refused.failure_code) == ("failed", "gateway", "throttled")
    assert charges_sent(sandbox, refused.merchant_uid) == 1
    assert [p for p in sandbox.payments() if p["merchant_uid"] == refused.merchant_uid] == []
    assert retried.status == PaymentAttempt.Status.SUCCEEDED and retried.merchant_uid != refused.merchant_uid
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID


def test_a_paid_charge_of_an_invoice_voided_meanwhile_is_flagged_for_an_operator_not_booked(sandbox, gateway, now):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now)
    attempts, refused = payment_attempts_create(invoice_ids=[invoice.pk], now=now)
    assert not refused
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.VOID)  # an operator, racing the charge

    [attempt] = payments_charge(attempts=attempts, now=now, gateway=gateway)

    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED  # money moved: never hidden
    assert "void" in attempt.flagged_reason
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.VOID
    assert AuditLog.objects.filter(action="payment.flagged", object_id=str(attempt.pk)).exists()


def test_a_second_success_for_a_paid_invoice_is_flagged_when_the_batch_update_is_refused(sandbox, gateway, now):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now)
    first = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)
    assert first.status == PaymentAttempt.Status.SUCCEEDED
    # A second attempt for the same invoice, as if created behind the invoice lock's back.
    second = PaymentAttempt.objects.create(
        invoice=invoice,
        merchant_uid=f"kb{invoice.pk}_x_second",
        customer_uid=first.customer_uid,
        amount=first.amount,
        vat_amount=first.vat_amount,
        created_at=now,
    )
    second = PaymentAttempt.objects.select_related("invoice__customer").get(pk=second.pk)

    [settled] = payments_charge(attempts=[second], now=now, gateway=gateway)

    assert settled.status == PaymentAttempt.Status.UNKNOWN
    assert "second successful charge" in settled.flagged_reason
    successes = PaymentAttempt.objects.filter(invoice=invoice, status=PaymentAttempt.Status.SUCCEEDED)
    assert list(successes.values_list("pk", flat=True)) == [first.pk]
