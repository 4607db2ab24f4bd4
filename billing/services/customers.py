"""Customers: one per user, created on first need (a subscriber signing up) or by the merchant's backend with its
own `external_id` (POST /api/customers), which makes the user too."""

from __future__ import annotations

import datetime as dt
import secrets

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from billing.errors import ExternalIdTakenError
from billing.models import Customer
from billing.services.audit import audit_record

LANGUAGES = ("ko", "en")


def customer_get_or_create(*, user) -> Customer:
    customer, created = Customer.objects.get_or_create(
        user=user,
        defaults={"email": user.email or "", "name": user.get_full_name() or user.get_username()},
    )
    if created:
        _audit_created(customer, at=customer.created_at)
    return customer


def customer_create(
    *,
    external_id: str | None,
    email: str = "",
    name: str = "",
    preferred_language: str = "ko",
    now: dt.datetime,
    actor=None,
) -> Customer:
    """A customer for the merchant's user, with a kbilling user that has no password (it signs in through a hosted
    page link only). Raises ExternalIdTakenError (nothing is written) when the external_id is taken."""
    try:
        with transaction.atomic():
            user = get_user_model().objects.create_user(
                username=f"cus_{secrets.token_hex(10)}", email=email or "", password=None, first_name=name[:150]
            )
            customer = Customer.objects.create(
                user=user, external_id=external_id, email=email, name=name, preferred_language=preferred_language
            )
            _audit_created(customer, at=now, actor=actor)
    except IntegrityError as exc:
        if external_id and Customer.objects.filter(external_id=external_id).exists():
            raise ExternalIdTakenError(param="external_id") from exc
        raise
    return customer


def customer_update(*, customer: Customer, now: dt.datetime, actor=None, **changes) -> Customer:
    """Change the contact details or language (email, name, preferred_language)."""
    changed = {k: v for k, v in changes.items() if getattr(customer, k) != v}
    if not changed:
        return customer
    for field, value in changed.items():
        setattr(customer, field, value)
    with transaction.atomic():
        customer.save(update_fields=list(changed))
        if "email" in changed:
            type(customer.user).objects.filter(pk=customer.user_id).update(email=customer.email)
        audit_record(
            at=now,
            action="customer.updated",
            obj=customer,
            actor=actor,
            customer=customer,
            data={"fields": sorted(changed)},
        )
    return customer


def _audit_created(customer: Customer, *, at: dt.datetime, actor=None) -> None:
    audit_record(
        at=at,
        action="customer.created",
        obj=customer,
        actor=actor,
        customer=customer,
        data={"external_id": customer.external_id} if customer.external_id else None,
    )
