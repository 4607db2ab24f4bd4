"""Fixtures of the admin tests: real rows made through real services, against the sandbox over HTTP."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from billing.models import Invoice, PaymentAttempt, Refund, WebhookEvent
from billing.services.invoices import LineSpec, invoice_create, invoice_finalize
from billing.services.payments import payment_charge
from billing.services.refunds import refund_create
from billing.services.webhooks import webhook_receive
from subscriptions.models import Subscription
from subscriptions.services.lifecycle import subscription_create
from tests.factories import PlanFactory, UserFactory, make_customer, register_card


@pytest.fixture
def now():
    return timezone.now()


def open_invoice(customer, now, *, amount: int = 10_000) -> Invoice:
    invoice = invoice_create(
        customer=customer,
        kind=Invoice.Kind.RENEWAL,
        description="베이직 월간",
        lines=[LineSpec(description="Basic", amount=amount)],
        now=now,
    )
    return invoice_finalize(invoice=invoice, now=now)


def paid_attempt(gateway, now, *, amount: int = 10_000) -> PaymentAttempt:
    customer = make_customer()
    register_card(customer, gateway, now=now)
    attempt = payment_charge(invoice_id=open_invoice(customer, now, amount=amount).pk, now=now, gateway=gateway)
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    return attempt


def receive_webhook(body: dict, now) -> WebhookEvent:
    return webhook_receive(
        raw_body=json.dumps(body), content_type="application/json", headers={}, source_ip="127.0.0.1", now=now
    )


def staff_user(*permissions: str):
    """A staff member (not a superuser) holding exactly `permissions` ("app_label.codename")."""
    user = UserFactory(is_staff=True)
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


@dataclass
class World:
    subscription: Subscription
    attempt: PaymentAttempt
    refund: Refund
    event: WebhookEvent


@pytest.fixture
def world(sandbox, gateway, now) -> World:
    """One row of every model the admin shows, made the way production makes them."""
    customer = make_customer(email="buyer@example.com")
    register_card(customer, gateway, now=now)
    subscription = subscription_create(customer=customer, plan=PlanFactory(code="basic"), now=now, gateway=gateway)
    attempt = PaymentAttempt.objects.get(invoice__subscription_link__subscription=subscription)
    refund = refund_create(attempt_id=attempt.pk, amount=1_000, reason="goodwill", now=now, gateway=gateway)
    event = receive_webhook({"imp_uid": attempt.imp_uid, "merchant_uid": attempt.merchant_uid, "status": "paid"}, now)
    return World(subscription=subscription, attempt=attempt, refund=refund, event=event)
