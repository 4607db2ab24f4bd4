"""PG throttling during a billing burst (A6 item 7): the PG behind Iamport caps charges per second and answers
HTTP 429 beyond it. A refused charge moved no money, so it is retried quietly, and our own global rate limit
(BILLING_CHARGE_RATE_LIMIT) keeps the next burst under the cap."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.models import Invoice, PaymentAttempt
from subscriptions.models import Subscription
from subscriptions.services.renewals import subscriptions_renew
from subscriptions.services.sweep import billing_run
from tests.reliability.helpers import again_requests, assert_books_balance, renewal_invoice

pytestmark = pytest.mark.django_db(transaction=True)
MINUTE = dt.timedelta(minutes=1)


def test_a_burst_over_the_pgs_cap_is_retried_quietly_and_charged_once_under_our_own_limit(
    sandbox, gateway, subscribed, now, settings, mailoutbox
):
    subs = [subscribed(now=now) for _ in range(8)]
    renew_at = max(sub.current_period_end for sub in subs) + MINUTE
    sandbox.set_rate_limit("again", 3)  # the PG's cap: three charges in any one second
    mailoutbox.clear()

    # No limit of our own: one batch sends all eight together and the PG refuses what exceeds its cap.
    subscriptions_renew(subscription_ids=[sub.pk for sub in subs], now=renew_at, gateway=gateway)
    refused = PaymentAttempt.objects.filter(failure_code="throttled")
    refused_count = refused.count()
    assert refused_count >= 5  # eight within a second, three allowed
    assert {r["status"] for r in again_requests(sandbox) if r.get("fault") == "rate_limit"} == {429}
    assert set(Subscription.objects.values_list("status", flat=True)) == {Subscription.Status.ACTIVE}
    assert not Invoice.objects.filter(first_failed_at__isnull=False).exists()  # no dunning started

    # The quiet retry a minute later, with our own limit under the PG's cap: nothing is refused any more.
    # (The PG counts real seconds: its window of the burst is emptied, as the minute in between would.)
    sandbox.forget_rate_window()
    settings.BILLING_CHARGE_RATE_LIMIT = 2
    result = billing_run(now=renew_at + MINUTE, gateway=gateway)

    assert result["retries"] == {"succeeded": refused_count}
    assert PaymentAttempt.objects.filter(failure_code="throttled").count() == refused_count
    for sub in subs:
        assert renewal_invoice(sub).status == Invoice.Status.PAID
    assert [m for m in mailoutbox if "결제 실패" in m.subject] == []  # receipts only: nothing failed
    assert_books_balance(sandbox)
