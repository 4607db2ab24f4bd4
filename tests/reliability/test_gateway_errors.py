"""Error answers on `again` (A6 item 3): a 5xx may have charged (UNKNOWN, never re-sent blindly); `code != 0`
charged nothing (FAILED, gateway class, quick retries); `code == 0` with `status: failed` is a card decline
(soft: the dunning schedule, hard: no retry on the same card)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings as django_settings

from billing.models import Invoice, PaymentAttempt
from subscriptions.models import Subscription
from subscriptions.services.renewals import subscription_renew
from subscriptions.services.sweep import billing_run
from tests.reliability.helpers import again_requests, assert_books_balance, attempts_of, renewal_invoice

pytestmark = pytest.mark.django_db
Status = PaymentAttempt.Status
MINUTE = dt.timedelta(minutes=1)
DAY = dt.timedelta(days=1)


@pytest.mark.parametrize("mode", ["http_500", "http_503"])
def test_server_error_is_unknown_never_resent_and_retried_only_after_settling_failed_when_again_answers_5xx(
    sandbox, gateway, subscribed, now, mode
):
    grace = dt.timedelta(seconds=django_settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS)
    sub = subscribed(now=now)
    renew_at = sub.current_period_end + MINUTE
    sandbox.add_fault("again", mode, times=1)

    assert subscription_renew(subscription_id=sub.pk, now=renew_at, gateway=gateway) == "renewed:unknown"
    invoice = renewal_invoice(sub)
    [first] = attempts_of(invoice)
    assert "outcome unknown" in first.failure_reason

    for minutes in (1, 5, 9):  # sweeps inside the grace: the janitor looks, nobody re-sends
        billing_run(now=renew_at + minutes * MINUTE, gateway=gateway)
    first.refresh_from_db()
    assert first.status == Status.UNKNOWN
    assert [r["fault"] for r in again_requests(sandbox)] == [None, mode]

    settle_at = renew_at + grace + MINUTE
    billing_run(now=settle_at, gateway=gateway)
    first.refresh_from_db()
    invoice.refresh_from_db()
    assert (first.status, first.decline_class, first.failure_code) == (Status.FAILED, "gateway", "not_found")
    billing_run(now=invoice.next_attempt_at, gateway=gateway)

    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert sub.status == Subscription.Status.ACTIVE
    assert len(again_requests(sandbox)) == 3
    assert_books_balance(sandbox)


def test_code_error_fails_as_a_gateway_error_with_quick_retries_when_iamport_refuses_the_request(
    sandbox, gateway, subscribed, now
):
    quick = [dt.timedelta(minutes=m) for m in django_settings.BILLING_DUNNING_GATEWAY_RETRY_MINUTES]
    sub = subscribed(now=now)
    renew_at = sub.current_period_end + MINUTE
    sandbox.add_fault("again", "code_error", times=2)

    assert subscription_renew(subscription_id=sub.pk, now=renew_at, gateway=gateway) == "renewed:failed"
    invoice = renewal_invoice(sub)
    [first] = attempts_of(invoice)
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert (first.decline_class, first.failure_code) == ("gateway", "iamport_-1")
    assert invoice.next_attempt_at == renew_at + quick[0]
    assert sub.status == Subscription.Status.PAST_DUE  # access is kept while dunning runs

    second_at = invoice.next_attempt_at
    billing_run(now=second_at, gateway=gateway)  # fails again: the next quick retry
    invoice.refresh_from_db()
    assert invoice.next_attempt_at == second_at + quick[1]
    billing_run(now=invoice.next_attempt_at, gateway=gateway)

    statuses = [a.status for a in attempts_of(invoice)]
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert statuses == [Status.FAILED, Status.FAILED, Status.SUCCEEDED]
    assert len({a.merchant_uid for a in attempts_of(invoice)}) == 3
    assert invoice.status == Invoice.Status.PAID
    assert sub.status == Subscription.Status.ACTIVE
    assert_books_balance(sandbox)


def test_soft_decline_follows_the_day_schedule_and_recovers_when_the_card_has_funds_again(
    sandbox, gateway, subscribed, now
):
    soft_days = [dt.timedelta(days=d) for d in django_settings.BILLING_DUNNING_SOFT_RETRY_DAYS]
    sub = subscribed(now=now)
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "insufficient_funds")
    renew_at = sub.current_period_end + MINUTE

    assert subscription_renew(subscription_id=sub.pk, now=renew_at, gateway=gateway) == "renewed:failed"
    invoice = renewal_invoice(sub)
    [first] = attempts_of(invoice)
    invoice.refresh_from_db()
    assert (first.decline_class, first.failure_code) == ("soft", "declined")
    assert first.imp_uid  # a decline is a payment record at Iamport, not an error
    assert invoice.next_attempt_at == renew_at + soft_days[0]

    billing_run(now=renew_at + soft_days[0] - MINUTE, gateway=gateway)
    assert len(again_requests(sandbox)) == 2  # not before its day
    billing_run(now=renew_at + soft_days[0], gateway=gateway)  # still no funds
    invoice.refresh_from_db()
    assert invoice.next_attempt_at == renew_at + soft_days[1]

    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "paid")
    billing_run(now=renew_at + soft_days[1], gateway=gateway)

    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert [a.status for a in attempts_of(invoice)] == [Status.FAILED, Status.FAILED, Status.SUCCEEDED]
    assert invoice.status == Invoice.Status.PAID
    assert sub.status == Subscription.Status.ACTIVE
    assert_books_balance(sandbox)


def test_hard_decline_is_never_retried_on_the_same_card_and_ends_the_subscription_when_the_schedule_runs_out(
    sandbox, gateway, subscribed, now
):
    deadline = dt.timedelta(days=max(django_settings.BILLING_DUNNING_SOFT_RETRY_DAYS))
    sub = subscribed(now=now)
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "lost_card")
    renew_at = sub.current_period_end + MINUTE

    assert subscription_renew(subscription_id=sub.pk, now=renew_at, gateway=gateway) == "renewed:failed"
    invoice = renewal_invoice(sub)
    [first] = attempts_of(invoice)
    invoice.refresh_from_db()
    assert first.decline_class == "hard"
    assert invoice.next_attempt_at == renew_at + deadline

    for days in (1, 3, 5, 10):
        billing_run(now=renew_at + days * DAY, gateway=gateway)
    assert len(again_requests(sandbox)) == 2  # the first period and the one declined renewal

    billing_run(now=renew_at + deadline, gateway=gateway)

    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert len(again_requests(sandbox)) == 2
    assert sub.status == Subscription.Status.CANCELED
    assert invoice.status == Invoice.Status.UNCOLLECTIBLE
    assert_books_balance(sandbox)
