"""Subscribe, trial, cancel, resume and pause (subscriptions/services/lifecycle.py), under both strategies."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from billing.errors import NoPaymentMethodError
from billing.models import Invoice, PaymentAttempt
from subscriptions.errors import AlreadySubscribedError
from subscriptions.models import Subscription
from subscriptions.services.lifecycle import (
    subscription_cancel,
    subscription_create,
    subscription_pause,
    subscription_resume,
)
from subscriptions.services.renewals import subscriptions_due
from tests.factories import (
    INSUFFICIENT_FUNDS_CARD,
    LOST_CARD,
    PlanFactory,
    make_customer,
    register_card,
)
from tests.subscriptions.lifecycle_helpers import KST, T0, S, committed, grant_consent, paid_invoices

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("strategy", "_after_commit_runs")]


def test_subscribe_charges_first_period_and_activates_when_card_is_good(subscribe, sandbox, gateway, plan):
    sub = subscribe(gateway, plan)

    assert sub.status == S.ACTIVE
    assert (sub.current_period_start, sub.current_period_end) == (
        T0,
        dt.datetime(2027, 2, 28, 10, 0, tzinfo=KST),
    )
    [invoice] = paid_invoices(sub)
    assert invoice.total == 9_900 and invoice.number.startswith("2027-")


def test_subscribe_stays_incomplete_and_expires_after_23_hours_when_card_declines(
    subscribe, run, sandbox, gateway, plan
):
    sub = subscribe(gateway, plan, card=INSUFFICIENT_FUNDS_CARD)
    assert sub.status == S.INCOMPLETE
    assert not sub.has_access

    run(gateway, T0 + dt.timedelta(hours=22))
    sub.refresh_from_db()
    assert sub.status == S.INCOMPLETE

    run(gateway, T0 + dt.timedelta(hours=23, seconds=1))
    sub.refresh_from_db()
    assert sub.status == S.CANCELED
    assert sub.end_reason == "incomplete_expired"
    assert Invoice.objects.get(subscription_link__subscription=sub).status == "void"


def test_subscribe_is_refused_without_a_card_or_twice(sandbox, gateway, plan):
    customer = make_customer()
    with pytest.raises(NoPaymentMethodError):
        subscription_create(customer=customer, plan=plan, now=T0, gateway=gateway)
    register_card(customer, gateway, now=T0)
    subscription_create(customer=customer, plan=plan, now=T0, gateway=gateway)
    with pytest.raises(AlreadySubscribedError):
        subscription_create(customer=customer, plan=plan, now=T0, gateway=gateway)
    assert Subscription.objects.filter(customer=customer).count() == 1


def test_consented_trial_charges_nothing_until_it_ends_and_sends_a_notice_seven_days_before(
    subscribe, run, sandbox, gateway
):
    trial_plan = PlanFactory(code="trial", amount=29_900, trial_days=14)
    sub = subscribe(gateway, trial_plan)
    assert sub.status == S.TRIALING and sandbox.payments() == []

    def trial_notices():
        return [m.subject for m in mail.outbox if "체험" in m.subject and "동의" not in m.subject]

    run(gateway, T0 + dt.timedelta(days=6, hours=23))
    assert not trial_notices()
    run(gateway, T0 + dt.timedelta(days=7, minutes=1))
    assert trial_notices()
    assert sandbox.payments() == []
    grant_consent(sub, T0 + dt.timedelta(days=12))

    run(gateway, T0 + dt.timedelta(days=14, minutes=1))
    sub.refresh_from_db()
    assert sub.status == S.ACTIVE
    assert sub.billing_anchor == T0 + dt.timedelta(days=14)
    assert [(p["status"], p["amount"]) for p in sandbox.payments()] == [("paid", 29_900)]


def test_lost_card_at_signup_is_declined_with_its_reason(subscribe, sandbox, gateway, plan):
    sub = subscribe(gateway, plan, card=LOST_CARD)
    attempt = PaymentAttempt.objects.get(invoice__subscription_link__subscription=sub)
    assert sub.status == S.INCOMPLETE
    assert "분실" in attempt.failure_reason


def test_cancel_at_period_end_keeps_access_until_then_and_charges_nothing_more(subscribe, run, sandbox, gateway, plan):
    sub = subscribe(gateway, plan)
    committed(subscription_cancel, subscription=sub, now=T0 + dt.timedelta(days=3))
    sub.refresh_from_db()
    assert sub.status == S.ACTIVE and sub.cancel_at_period_end

    run(gateway, sub.current_period_end)
    sub.refresh_from_db()
    assert sub.status == S.CANCELED and sub.ended_at == sub.current_period_end
    assert len(sandbox.payments()) == 1


def test_resume_before_period_end_undoes_the_cancel(subscribe, run, sandbox, gateway, plan):
    sub = subscribe(gateway, plan)
    committed(subscription_cancel, subscription=sub, now=T0 + dt.timedelta(days=3))
    committed(subscription_resume, subscription=sub, now=T0 + dt.timedelta(days=4), gateway=gateway)
    run(gateway, sub.current_period_end)
    sub.refresh_from_db()
    assert sub.status == S.ACTIVE
    assert len(paid_invoices(sub)) == 2


def test_cancel_now_ends_access_immediately(subscribe, sandbox, gateway, plan):
    sub = subscribe(gateway, plan)
    committed(subscription_cancel, subscription=sub, now=T0 + dt.timedelta(days=3), at_period_end=False)
    sub.refresh_from_db()
    assert sub.status == S.CANCELED and not sub.has_access
    assert subscriptions_due(now=T0 + dt.timedelta(days=400)) == []


def test_pause_for_two_periods_skips_their_charges_then_resumes_billing(subscribe, run, sandbox, gateway, plan):
    sub = subscribe(gateway, plan)
    committed(subscription_pause, subscription=sub, now=T0 + dt.timedelta(days=1), periods=2)

    run(gateway, dt.datetime(2027, 2, 28, 10, 0, tzinfo=KST))
    sub.refresh_from_db()
    assert sub.status == S.PAUSED
    assert sub.resume_at == dt.datetime(2027, 4, 30, 10, 0, tzinfo=KST)

    run(gateway, dt.datetime(2027, 3, 31, 10, 0, tzinfo=KST))
    assert len(sandbox.payments()) == 1
    run(gateway, dt.datetime(2027, 4, 30, 10, 0, tzinfo=KST))
    sub.refresh_from_db()
    assert sub.status == S.ACTIVE
    assert [i.period_start.astimezone(KST).date().isoformat() for i in paid_invoices(sub)] == [
        "2027-01-31",
        "2027-04-30",
    ]
