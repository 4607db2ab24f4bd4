"""Fixtures of the security suite: one small world of real rows (two subscribers, two staff members) made
through the real services against the sandbox, clients for every role, and rate-limit counters reset per test."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from billing import clock
from billing.models import BillingKey, Invoice, PaymentAttempt
from subscriptions.models import Plan, Subscription
from subscriptions.services.lifecycle import subscription_create
from tests.factories import PlanFactory, UserFactory, make_customer, register_card

ROLES = ("anonymous", "owner", "other", "staff", "refunder")
# Staff read the billing admin; only the refunder may refund (and see refunds through the API).
STAFF_PERMISSIONS = ("view_paymentattempt", "view_invoice", "view_customer")
REFUNDER_PERMISSIONS = (*STAFF_PERMISSIONS, "add_refund", "view_refund")


@dataclass
class Member:
    user: object
    subscription: Subscription
    billing_key: BillingKey
    invoice: Invoice
    payment: PaymentAttempt


@dataclass
class World:
    owner: Member
    other: Member
    staff: object
    refunder: object
    plans: dict[str, Plan]

    def user(self, role: str):
        return {
            "anonymous": None,
            "owner": self.owner.user,
            "other": self.other.user,
            "staff": self.staff,
            "refunder": self.refunder,
        }[role]

    @property
    def ids(self) -> dict:
        """The owner's objects: what every other role must not reach."""
        return {
            "sub": self.owner.subscription.pk,
            "key": self.owner.billing_key.pk,
            "customer_uid": self.owner.billing_key.customer_uid,
            "invoice": self.owner.invoice.pk,
            "payment": self.owner.payment.pk,
            "customer": self.owner.subscription.customer_id,
        }


@pytest.fixture(autouse=True)
def _fresh_rate_limit_counters():
    cache.clear()
    yield
    cache.clear()


def staff_with(*codenames: str):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="billing", codename__in=codenames))
    return user


def subscribed_member(gateway, plan: Plan) -> Member:
    customer = make_customer()
    now = clock.now()
    billing_key = register_card(customer, gateway, now=now)
    subscription = subscription_create(customer=customer, plan=plan, now=now, gateway=gateway)
    payment = PaymentAttempt.objects.get(invoice__customer=customer)
    assert subscription.status == Subscription.Status.ACTIVE and payment.status == PaymentAttempt.Status.SUCCEEDED
    return Member(
        user=customer.user,
        subscription=subscription,
        billing_key=billing_key,
        invoice=payment.invoice,
        payment=payment,
    )


@pytest.fixture
def plans(db):
    return {
        "basic": PlanFactory(code="basic", name_ko="베이직", name_en="Basic", amount=9_900, sort_order=1),
        "pro": PlanFactory(code="pro", name_ko="프로", name_en="Pro", amount=29_900, sort_order=2),
        "legacy": PlanFactory(code="legacy", name_ko="구 요금제", name_en="Legacy", amount=1_000, active=False),
    }


@pytest.fixture
def world(gateway, plans) -> World:
    return World(
        owner=subscribed_member(gateway, plans["basic"]),
        other=subscribed_member(gateway, plans["basic"]),
        staff=staff_with(*STAFF_PERMISSIONS),
        refunder=staff_with(*REFUNDER_PERMISSIONS),
        plans=plans,
    )


def client_as(user, *, enforce_csrf_checks: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf_checks)
    if user is not None:
        client.force_login(user)
    return client


def outcome(response) -> str | int:
    """What a caller got, in the words of the matrix: a status code, or where a redirect sends them."""
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith("/accounts/login/"):
            return "login"
        if location.startswith("/admin/login/"):
            return "admin-login"
    return response.status_code


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def resolver_routes() -> dict[str, URLPattern]:
    """Every route the project serves, as "api/invoices/<int:pk>" -> its pattern. Where two patterns share a
    route (accounts/login/), the first is kept: it is the one Django serves."""
    routes: dict[str, URLPattern] = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        routes.setdefault(route, pattern)
    return routes
