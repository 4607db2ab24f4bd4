"""The server decides every amount: amounts, prices and plans posted by a browser are ignored or refused, and the
API refuses every key it does not take (400 validation_error, nothing charged). What reaches Iamport (the
sandbox's own record of the charge) is the plan's amount."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from billing import clock
from billing.models import PaymentAttempt, Refund
from subscriptions.models import Subscription
from subscriptions.services.plan_changes import subscription_change_preview
from tests.factories import make_customer, register_card
from tests.security.conftest import client_as

pytestmark = pytest.mark.django_db

TAMPERED = {"amount": 100, "price": 100, "total": 100, "plan": "legacy", "plan_id": 1, "currency": "USD"}


def charged_at_iamport(sandbox, attempt: PaymentAttempt) -> int:
    [payment] = [p for p in sandbox.payments() if p["merchant_uid"] == attempt.merchant_uid]
    return payment["amount"]


@pytest.fixture
def card_holder(gateway, plans):
    """A signed-in customer with a card and no subscription yet."""
    customer = make_customer()
    register_card(customer, gateway, now=clock.now())
    client = Client()
    client.force_login(customer.user)
    return client, customer


def test_web_subscribe_charges_the_plan_amount_when_the_browser_posts_its_own_amount(sandbox, card_holder):
    client, customer = card_holder

    response = client.post("/subscribe/basic/", {**TAMPERED, "agree": "yes"})

    assert response.status_code == 302 and response["Location"] == "/account/"
    subscription = Subscription.objects.get(customer=customer)
    [attempt] = PaymentAttempt.objects.filter(invoice__customer=customer)
    assert (subscription.plan.code, subscription.status) == ("basic", "active")
    assert attempt.amount == charged_at_iamport(sandbox, attempt) == 9_900


TAMPERED_KEYS = sorted(set(TAMPERED) - {"plan"})


def test_api_subscribe_is_refused_and_charges_nothing_when_the_client_posts_its_own_amount(sandbox, card_holder):
    client, customer = card_holder

    response = client.post(
        "/api/subscriptions/",
        json.dumps({**TAMPERED, "plan": "basic", "agree_to_terms": True}),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert sorted(response.json()["error"]["unknown_fields"]) == TAMPERED_KEYS
    assert not Subscription.objects.filter(customer=customer).exists()
    assert not PaymentAttempt.objects.filter(invoice__customer=customer).exists()
    assert sandbox.payments() == []

    plain = client.post(
        "/api/subscriptions/", json.dumps({"plan": "basic", "agree_to_terms": True}), content_type="application/json"
    )

    assert plain.status_code == 201 and plain.json()["plan"]["amount"] == 9_900
    [attempt] = PaymentAttempt.objects.filter(invoice__customer=customer)
    assert attempt.amount == charged_at_iamport(sandbox, attempt) == 9_900


def test_api_plan_change_is_refused_and_charges_nothing_when_the_client_posts_its_own_amount(sandbox, world):
    before = Subscription.objects.select_related("plan").get(pk=world.owner.subscription.pk)
    charged_before = sandbox.payments()

    response = client_as(world.owner.user).post(
        f"/api/subscriptions/{before.pk}/change-plan",
        json.dumps({**TAMPERED, "plan": "pro"}),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert sorted(response.json()["error"]["unknown_fields"]) == TAMPERED_KEYS
    assert PaymentAttempt.objects.filter(invoice__customer=before.customer).latest("pk").pk == world.owner.payment.pk
    assert sandbox.payments() == charged_before
    assert Subscription.objects.get(pk=before.pk).plan.code == before.plan.code


@pytest.mark.parametrize("via", ["web", "api"])
def test_plan_change_charges_the_server_proration_when_the_browser_posts_its_own_amount(sandbox, world, via):
    before = Subscription.objects.select_related("plan").get(pk=world.owner.subscription.pk)
    client = client_as(world.owner.user)

    if via == "web":
        response = client.post("/account/change/pro/", {**TAMPERED, "plan": "basic"})
        assert response.status_code == 302 and response["Location"] == "/account/"
    else:  # the plan only: any other key is refused (above)
        response = client.post(
            f"/api/subscriptions/{before.pk}/change-plan", json.dumps({"plan": "pro"}), content_type="application/json"
        )
        assert response.status_code == 200

    attempt = PaymentAttempt.objects.filter(invoice__customer=before.customer).latest("pk")
    assert attempt.pk != world.owner.payment.pk
    expected = subscription_change_preview(subscription=before, new_plan=world.plans["pro"], now=attempt.created_at)
    assert attempt.amount == charged_at_iamport(sandbox, attempt) == expected.amount_due
    assert expected.amount_due > 10_000  # most of the 20,000 won difference: not the posted 100
    assert Subscription.objects.get(pk=before.pk).plan.code == "pro"


def test_card_prepare_asks_for_zero_won_when_the_browser_posts_an_amount(world):
    client = client_as(world.owner.user)

    as_form = client.post("/account/card/prepare", {"amount": 50_000})
    as_json = client.post("/account/card/prepare", json.dumps({"amount": 50_000}), content_type="application/json")
    api = client.post("/api/billing-keys/prepare", json.dumps({"amount": 50_000}), content_type="application/json")
    plain = client.post("/api/billing-keys/prepare", json.dumps({}), content_type="application/json")

    assert [r.status_code for r in (as_form, as_json, api, plain)] == [200, 200, 400, 201]
    assert api.json()["error"]["unknown_fields"] == ["amount"]
    assert [r.json()["params"]["amount"] for r in (as_form, as_json, plain)] == [0, 0, 0]


def test_subscribing_to_an_inactive_plan_is_refused_when_posted_directly(card_holder):
    client, customer = card_holder

    checkout = client.get("/checkout/legacy/")
    web = client.post("/subscribe/legacy/")
    missing = client.post("/subscribe/no-such-plan/")
    api = client.post(
        "/api/subscriptions/", json.dumps({"plan": "legacy", "agree_to_terms": True}), content_type="application/json"
    )

    assert (checkout.status_code, web.status_code, missing.status_code) == (404, 404, 404)
    assert api.status_code == 400 and api.json()["error"]["code"] == "plan_not_available"
    assert not Subscription.objects.filter(customer=customer).exists()
    assert not PaymentAttempt.objects.filter(invoice__customer=customer).exists()


def test_changing_to_an_inactive_plan_is_refused_when_posted_directly(world):
    client = client_as(world.owner.user)
    sub = world.owner.subscription

    web = client.post("/account/change/legacy/")
    api = client.post(
        f"/api/subscriptions/{sub.pk}/change-plan", json.dumps({"plan": "legacy"}), content_type="application/json"
    )

    assert web.status_code == 404
    assert api.status_code == 400 and api.json()["error"]["code"] == "plan_not_available"
    assert Subscription.objects.get(pk=sub.pk).plan.code == "basic"
    assert PaymentAttempt.objects.filter(invoice__customer=sub.customer).count() == 1


def test_refund_above_the_paid_amount_is_refused_when_staff_post_it(world):
    client = client_as(world.refunder)
    payment = world.owner.payment

    response = client.post(
        f"/api/payments/{payment.pk}/refunds",
        json.dumps({"amount": payment.amount + 1, "reason": "too much"}),
        content_type="application/json",
    )

    assert response.status_code == 400 and response.json()["error"]["code"] == "refund_exceeds_balance"
    assert not Refund.objects.filter(attempt=payment).exists()
