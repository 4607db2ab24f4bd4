"""factory_boy factories and small helpers that build real rows through real services."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model

from billing.models import BillingKey, Customer
from billing.services.billing_keys import card_registration_confirm, card_registration_prepare
from billing.services.customers import customer_get_or_create
from subscriptions.models import Plan

GOOD_CARD = "4242-4242-4242-4242"
INSUFFICIENT_FUNDS_CARD = "4000-0000-0000-9995"
LIMIT_CARD = "4000-0000-0000-9235"
LOST_CARD = "4000-0000-0000-0341"
REFUSED_CARD = "4000-0000-0000-0002"
EXPIRED_CARD = "4000-0000-0000-0069"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw-12345678")


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"plan-{n}")
    name_ko = factory.LazyAttribute(lambda p: f"플랜 {p.code}")
    name_en = factory.LazyAttribute(lambda p: f"Plan {p.code}")
    amount = 9_900
    interval = "month"
    interval_count = 1
    trial_days = 0


def make_customer(**user_kwargs) -> Customer:
    return customer_get_or_create(user=UserFactory(**user_kwargs))


def register_card(customer: Customer, gateway, *, now: dt.datetime, card: str = GOOD_CARD) -> BillingKey:
    """What the browser does with the SDK, done over REST: prepare, issue the key at Iamport, confirm."""
    prepared = card_registration_prepare(customer=customer, now=now)
    if prepared.get("gateway") == "portone_v2":  # PortOne names the key; our registration id is its customer id
        registration = prepared["registration"]
        issued = gateway.issue_billing_key(
            customer_id=registration, card_number=card, expiry="2030-12", birth="900101", pwd_2digit="12"
        )
        return card_registration_confirm(
            customer=customer, customer_uid=registration, billing_key=issued.customer_uid, now=now, gateway=gateway
        )
    customer_uid = prepared["params"]["customer_uid"]
    gateway.issue_billing_key(
        customer_uid=customer_uid, card_number=card, expiry="2030-12", birth="900101", pwd_2digit="12"
    )
    return card_registration_confirm(customer=customer, customer_uid=customer_uid, now=now, gateway=gateway)
