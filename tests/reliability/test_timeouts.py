"""Timeouts on `again` (A6 items 1, 2, 4): the answer lost after Iamport charged, the request dropped before it
did, and answers that arrive near or past our read timeout (IAMPORT_READ_TIMEOUT = 2 s in tests).

What an operator cares about: an ambiguous charge is UNKNOWN, nothing re-sends it while it is, the janitor
settles it from Iamport, and a retry (only after a settled failure) is a new attempt with a new merchant_uid.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings as django_settings

from billing.models import Invoice, PaymentAttempt
from billing.services.payments import payments_reconcile_unsettled
from subscriptions.models import Subscription
from subscriptions.services.dunning import invoice_retry
from subscriptions.services.renewals import subscription_renew
from subscriptions.services.sweep import billing_run
from tests.reliability.helpers import (
    again_requests,
    assert_books_balance,
    attempts_of,
    charged_payments,
    renewal_invoice,
    wait_for_sandbox_payment,
)

pytestmark = pytest.mark.django_db
Status = PaymentAttempt.Status
MINUTE = dt.timedelta(minutes=1)


def test_lost_answer_is_settled_paid_by_the_janitor_and_never_resent_when_iamport_charged_before_the_timeout(
    sandbox, gateway, subscribed, now
):
    sub = subscribed(now=now)
    renew_at = sub.current_period_end + MINUTE
    sandbox.add_fault("again", "timeout_after_commit", times=1, hold_ms=3_000)

    assert subscription_renew(subscription_id=sub.pk, now=renew_at, gateway=gateway) == "renewed:unknown"
    invoice = renewal_invoice(sub)
    [attempt] = attempts_of(invoice)
    assert attempt.status == Status.UNKNOWN
    assert wait_for_sandbox_payment(sandbox, attempt.merchant_uid)["status"] == "paid"  # the money moved

    # Iamport's lookups fail for a while: the janitor cannot settle it, and nothing else may charge again,
    # not the sweeps and not a forced retry (a new card, an operator's button).
    sandbox.add_fault("payments", "http_503", times=3)
    billing_run(now=renew_at + 3 * MINUTE, gateway=gateway)
    assert invoice_retry(invoice_id=invoice.pk, now=renew_at + 4 * MINUTE, gateway=gateway, force=True) is None
    attempt.refresh_from_db()
    assert attempt.status == Status.UNKNOWN
    assert len(again_requests(sandbox)) == 2  # the first period and this renewal: no re-send

    counts = billing_run(now=renew_at + 6 * MINUTE, gateway=gateway)["reconciled"]

    attempt.refresh_from_db()
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert counts["succeeded"] == 1
    assert attempt.status == Status.SUCCEEDED
    assert invoice.status == Invoice.Status.PAID
    assert sub.status == Subscription.Status.ACTIVE
    assert len(again_requests(sandbox, attempt.merchant_uid)) == 1
    assert len(again_requests(sandbox)) == 2
    assert_books_balance(sandbox)


def test_dropped_request_fails_only_after_the_not_found_grace_and_is_retried_once_with_a_new_merchant_uid_when_iamport_never_charged(  # noqa: E501
    sandbox, gateway, subscribed, now
):
    grace = dt.timedelta(seconds=django_settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS)
    sub = subscribed(now=now)
    renew_at = sub.current_period_end + MINUTE
    sandbox.add_fault("again", "timeout_before_commit", times=1, hold_ms=3_000)

    assert subscription_renew(subscription_id=sub.pk, now=renew_at, gateway=gateway) == "renewed:unknown"
    invoice = renewal_invoice(sub)
    [first] = attempts_of(invoice)

    billing_run(now=renew_at + MINUTE, gateway=gateway)  # too early to conclude "it never arrived"
    first.refresh_from_db()
    assert first.status == Status.UNKNOWN
    assert len(again_requests(sandbox)) == 2

    payments_reconcile_unsettled(now=renew_at + grace + MINUTE, gateway=gateway)

    first.refresh_from_db()
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert (first.status, first.failure_code, first.decline_class) == (Status.FAILED, "not_found", "gateway")
    assert sub.status == Subscription.Status.PAST_DUE
    quick_retry = dt.timedelta(minutes=django_settings.BILLING_DUNNING_GATEWAY_RETRY_MINUTES[0])
    assert invoice.next_attempt_at == renew_at + grace + MINUTE + quick_retry

    billing_run(now=invoice.next_attempt_at - dt.timedelta(seconds=1), gateway=gateway)
    assert len(attempts_of(invoice)) == 1  # not before its time
    billing_run(now=invoice.next_attempt_at, gateway=gateway)
    billing_run(now=invoice.next_attempt_at + MINUTE, gateway=gateway)  # a second sweep changes nothing

    first_again, retry = attempts_of(invoice)
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert first_again.pk == first.pk
    assert retry.status == Status.SUCCEEDED
    assert retry.merchant_uid != first.merchant_uid
    assert invoice.status == Invoice.Status.PAID
    assert sub.status == Subscription.Status.ACTIVE
    assert [r["merchant_uid"] for r in again_requests(sandbox)][1:] == [first.merchant_uid, retry.merchant_uid]
    assert [p["merchant_uid"] for p in charged_payments(sandbox)][1:] == [retry.merchant_uid]
    assert_books_balance(sandbox)


def test_slow_answer_is_charged_once_when_it_arrives_just_under_the_read_timeout(sandbox, gateway, subscribed, now):
    sub = subscribed(now=now)
    read_timeout_ms = int(django_settings.IAMPORT_READ_TIMEOUT * 1000)
    sandbox.add_fault("again", "delay", times=1, delay_ms=read_timeout_ms - 500)

    outcome = subscription_renew(subscription_id=sub.pk, now=sub.current_period_end + MINUTE, gateway=gateway)

    [attempt] = attempts_of(renewal_invoice(sub))
    assert outcome == "renewed:succeeded"
    assert attempt.status == Status.SUCCEEDED
    assert [r["fault"] for r in again_requests(sandbox, attempt.merchant_uid)] == ["delay"]
    assert_books_balance(sandbox)


def test_slow_answer_becomes_unknown_and_is_settled_paid_once_when_it_arrives_after_the_read_timeout(
    sandbox, gateway, subscribed, now
):
    sub = subscribed(now=now)
    invoice_now = sub.current_period_end + MINUTE
    read_timeout_ms = int(django_settings.IAMPORT_READ_TIMEOUT * 1000)
    sandbox.add_fault("again", "delay", times=1, delay_ms=read_timeout_ms + 600)

    assert subscription_renew(subscription_id=sub.pk, now=invoice_now, gateway=gateway) == "renewed:unknown"
    invoice = renewal_invoice(sub)
    [attempt] = attempts_of(invoice)
    wait_for_sandbox_payment(sandbox, attempt.merchant_uid)  # Iamport finished after we stopped listening

    counts = payments_reconcile_unsettled(now=invoice_now + MINUTE, gateway=gateway)

    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert counts["succeeded"] == 1
    assert attempt.status == Status.SUCCEEDED
    assert invoice.status == Invoice.Status.PAID
    assert len(again_requests(sandbox, attempt.merchant_uid)) == 1
    assert_books_balance(sandbox)
