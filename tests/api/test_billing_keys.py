"""Card registration (prepare -> the browser SDK -> confirm), listing and removing cards over the API."""

from __future__ import annotations

import pytest

from billing import clock
from billing.gateway.errors import GatewayNotFound
from billing.models import BillingKey, CardRegistration
from tests.api.conftest import error_of
from tests.factories import GOOD_CARD, LIMIT_CARD, make_customer, register_card

pytestmark = pytest.mark.django_db


def test_prepare_returns_request_pay_params_for_a_fresh_customer_uid_when_authenticated(client_for, settings):
    settings.IAMPORT_MERCHANT_CODE = "imp12345678"
    customer = make_customer()

    response = client_for(customer.user).post("/api/billing-keys/prepare")

    assert response.status_code == 201
    body = response.json()
    assert body["merchant_code"] == "imp12345678"
    assert body["params"]["channelKey"] == settings.IAMPORT_CHANNEL_KEY
    assert CardRegistration.objects.get(customer=customer).customer_uid == body["params"]["customer_uid"]


def test_confirm_answers_card_not_issued_when_iamport_has_no_card_for_the_customer_uid(client_for, gateway):
    customer = make_customer()
    api = client_for(customer.user)
    customer_uid = api.post("/api/billing-keys/prepare").json()["params"]["customer_uid"]

    response = api.post("/api/billing-keys/confirm", {"customer_uid": customer_uid}, format="json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "card_not_issued"
    assert not BillingKey.objects.exists()


def test_confirm_answers_card_registration_not_found_when_the_customer_uid_was_issued_to_someone_else(
    client_for, gateway
):
    owner, intruder = make_customer(), make_customer()
    customer_uid = client_for(owner.user).post("/api/billing-keys/prepare").json()["params"]["customer_uid"]
    gateway.issue_billing_key(customer_uid=customer_uid, card_number=GOOD_CARD, expiry="2030-12", birth="900101")

    response = client_for(intruder.user).post(
        "/api/billing-keys/confirm", {"customer_uid": customer_uid}, format="json"
    )

    assert response.status_code == 404
    assert error_of(response)["code"] == "card_registration_not_found"
    assert not BillingKey.objects.exists()


def test_card_registration_is_throttled_with_429_when_a_user_exceeds_ten_a_minute(client_for):
    api = client_for(make_customer().user)
    for _ in range(10):
        assert api.post("/api/billing-keys/prepare").status_code == 201

    response = api.post("/api/billing-keys/confirm", {"customer_uid": "anything"}, format="json")

    assert response.status_code == 429
    error = error_of(response)
    assert error["code"] == "throttled"
    assert 0 < error["retry_after"] <= 60
    assert int(response.headers["Retry-After"]) == error["retry_after"]
    assert CardRegistration.objects.count() == 10


def test_card_registration_throttle_counts_each_user_separately_when_another_user_is_throttled(client_for):
    noisy = client_for(make_customer().user)
    for _ in range(11):
        noisy.post("/api/billing-keys/prepare")

    assert client_for(make_customer().user).post("/api/billing-keys/prepare").status_code == 201


def test_billing_keys_lists_only_active_cards_default_first_when_one_was_deleted(client_for, gateway):
    customer = make_customer()
    old = register_card(customer, gateway, now=clock.now())
    removed = register_card(customer, gateway, now=clock.now(), card=LIMIT_CARD)
    current = register_card(customer, gateway, now=clock.now())
    api = client_for(customer.user)
    assert api.delete(f"/api/billing-keys/{removed.id}").status_code == 204

    response = api.get("/api/billing-keys/")

    assert response.status_code == 200
    assert [(k["id"], k["is_default"]) for k in response.json()["results"]] == [(current.id, True), (old.id, False)]


def test_delete_removes_the_card_at_iamport_when_no_subscription_depends_on_it(client_for, gateway):
    customer = make_customer()
    key = register_card(customer, gateway, now=clock.now())

    response = client_for(customer.user).delete(f"/api/billing-keys/{key.id}")

    assert response.status_code == 204
    key.refresh_from_db()
    assert key.status == "deleted"
    assert gateway_has_no_key(gateway, key.customer_uid)


def test_delete_answers_billing_key_in_use_409_when_it_is_the_only_card_of_a_live_subscription(client_for, subscriber):
    member = subscriber()

    response = client_for(member.user).delete(f"/api/billing-keys/{member.billing_key.id}")

    assert response.status_code == 409
    assert error_of(response)["code"] == "billing_key_in_use"
    member.billing_key.refresh_from_db()
    assert member.billing_key.status == "active"


def test_delete_removes_the_subscriptions_old_card_when_another_card_is_registered(client_for, subscriber, gateway):
    member = subscriber()
    register_card(member.customer, gateway, now=clock.now())

    response = client_for(member.user).delete(f"/api/billing-keys/{member.billing_key.id}")

    assert response.status_code == 204


def test_delete_answers_not_found_when_the_card_is_already_deleted(client_for, gateway):
    customer = make_customer()
    key = register_card(customer, gateway, now=clock.now())
    api = client_for(customer.user)
    api.delete(f"/api/billing-keys/{key.id}")

    response = api.delete(f"/api/billing-keys/{key.id}")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def gateway_has_no_key(gateway, customer_uid: str) -> bool:
    try:
        gateway.get_billing_key(customer_uid=customer_uid)
    except GatewayNotFound:
        return True
    return False
