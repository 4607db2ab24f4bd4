"""Dunning after a declined renewal (subscriptions/services/dunning.py), under both strategies."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from billing.models import Invoice
from subscriptions.models import Subscription
from tests.factories import (
    GOOD_CARD,
    PlanFactory,
    register_card,
)
from tests.subscriptions.lifecycle_helpers import S

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("strategy", "_after_commit_runs")]


def test_soft_decline_retries_on_the_dunning_schedule_then_cancels(subscribe, run, sandbox, gateway, plan, settings):
    settings.BILLING_DUNNING_SOFT_RETRY_DAYS = [1, 3, 5, 10, 14]
    sub = subscribe(gateway, plan)
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "insufficient_funds")
    renewal_at = sub.current_period_end

    run(gateway, renewal_at)
    sub.refresh_from_db()
    assert sub.status == S.PAST_DUE and sub.has_access
    invoice = Invoice.objects.get(subscription_link__subscription=sub, status="open")
    assert invoice.next_attempt_at == renewal_at + dt.timedelta(days=1)
    assert any("결제 실패" in m.subject for m in mail.outbox)

    for days in (1, 3, 5, 10):
        run(gateway, renewal_at + dt.timedelta(days=days))
        invoice.refresh_from_db()
        assert invoice.status == "open"
    run(gateway, renewal_at + dt.timedelta(days=14))

    sub.refresh_from_db()
    invoice.refresh_from_db()
    assert invoice.attempts.count() == 6  # the renewal + 5 retries
    assert sub.status == S.CANCELED and sub.end_reason == "dunning_exhausted"
    assert invoice.status == "uncollectible"


def test_dunning_final_action_can_be_unpaid(subscribe, run, sandbox, gateway, plan, settings):
    settings.BILLING_DUNNING_FINAL_ACTION = "unpaid"
    settings.BILLING_DUNNING_SOFT_RETRY_DAYS = [1]
    sub = subscribe(gateway, plan)
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "limit_exceeded")
    run(gateway, sub.current_period_end)
    run(gateway, sub.current_period_end + dt.timedelta(days=1))

    sub.refresh_from_db()
    assert sub.status == S.UNPAID and not sub.has_access


def test_hard_decline_is_not_retried_on_the_same_card_and_a_new_card_pays_the_open_invoice_at_once(
    subscribe, run, sandbox, gateway, plan, django_capture_on_commit_callbacks
):
    sub = subscribe(gateway, plan)
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "lost_card")
    renewal_at = sub.current_period_end
    run(gateway, renewal_at)
    invoice = Invoice.objects.get(subscription_link__subscription=sub, status="open")
    assert invoice.last_decline_class == "hard"

    run(gateway, renewal_at + dt.timedelta(days=3))
    assert invoice.attempts.count() == 1  # waiting for a new card, not hammering a lost one

    with django_capture_on_commit_callbacks(execute=True):
        new_key = register_card(sub.customer, gateway, now=renewal_at + dt.timedelta(days=4))

    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert invoice.status == "paid"
    assert sub.status == S.ACTIVE and sub.billing_key_id == new_key.pk
    assert Subscription.objects.filter(customer=sub.customer).count() == 1


def test_hard_decline_without_a_new_card_ends_at_the_dunning_deadline(subscribe, run, sandbox, gateway, settings):
    settings.BILLING_DUNNING_SOFT_RETRY_DAYS = [1, 3]
    sub = subscribe(gateway, PlanFactory(code="p1"), card=GOOD_CARD)
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "lost_card")
    run(gateway, sub.current_period_end)
    run(gateway, sub.current_period_end + dt.timedelta(days=3))
    sub.refresh_from_db()
    assert sub.status == S.CANCELED
