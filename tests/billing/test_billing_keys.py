"""Billing keys (billing/services/billing_keys.py): a deleted default card hands over to the newest other card,
and the subscription follows it."""

from __future__ import annotations

import pytest
from django.utils import timezone

from billing.services.billing_keys import billing_key_delete
from subscriptions.services.lifecycle import subscription_create
from tests.factories import PlanFactory, make_customer, register_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


def test_deleting_the_default_card_promotes_the_newest_other_card_and_moves_the_subscription(sandbox, gateway, now):
    customer = make_customer()
    older = register_card(customer, gateway, now=now)
    newer = register_card(customer, gateway, now=now)
    sub = subscription_create(customer=customer, plan=PlanFactory(code="m"), now=now, gateway=gateway)
    assert sub.billing_key_id == newer.pk

    billing_key_delete(billing_key=newer, now=now, gateway=gateway)

    older.refresh_from_db()
    sub.refresh_from_db()
    assert older.is_default and sub.billing_key_id == older.pk
    assert [c["customer_uid"] for c in sandbox.customers()] == [older.customer_uid]
