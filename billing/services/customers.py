"""Customers: one per user, created on first need."""

from __future__ import annotations

from billing.models import Customer


def customer_get_or_create(*, user) -> Customer:
    customer, _created = Customer.objects.get_or_create(
        user=user,
        defaults={"email": user.email or "", "name": user.get_full_name() or user.get_username()},
    )
    return customer
