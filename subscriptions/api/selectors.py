"""Reads behind the subscriptions API, scoped to the requesting user.

They belong in subscriptions/selectors.py; they live here while the API is the only reader.
"""

from __future__ import annotations

from django.db.models import QuerySet

from billing.models import BillingKey
from subscriptions.models import Plan, Subscription


def plans_available() -> QuerySet[Plan]:
    return Plan.objects.filter(active=True).order_by("sort_order", "amount", "id")


def subscriptions_for_user(*, user) -> QuerySet[Subscription]:
    return Subscription.objects.filter(customer__user=user).select_related("plan", "pending_plan")


def billing_key_is_only_card_of_live_subscription(*, billing_key: BillingKey) -> bool:
    """True when a live (not canceled) subscription charges this card and the customer has no other card."""
    live = Subscription.objects.filter(customer_id=billing_key.customer_id).exclude(status=Subscription.Status.CANCELED)
    if not live.exists():
        return False
    in_use = billing_key.is_default or live.filter(billing_key=billing_key).exists()
    others = (
        BillingKey.objects.filter(customer_id=billing_key.customer_id, status=BillingKey.Status.ACTIVE)
        .exclude(pk=billing_key.pk)
        .exists()
    )
    return in_use and not others


def billing_key_for_user(*, user, pk: int) -> BillingKey | None:
    return BillingKey.objects.filter(customer__user=user, status=BillingKey.Status.ACTIVE, pk=pk).first()
