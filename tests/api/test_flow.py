"""The whole subscriber journey over the API, as a mobile or web client would drive it: token login, card
registration through Iamport (the sandbox over HTTP), subscribe, preview and upgrade, the bills, a staff
refund, and the cancel."""

from __future__ import annotations

import pytest

from tests.api.conftest import RecordingAPIClient
from tests.factories import GOOD_CARD, UserFactory

pytestmark = pytest.mark.django_db


def test_subscriber_journey_from_login_to_cancel_when_everything_succeeds(gateway, plans, staff_user):
    # given a subscriber account and a staff member who may refund
    UserFactory(username="minji", password="pw-12345678")
    api = RecordingAPIClient()

    # when the subscriber logs in with a password and uses the token
    login = api.post("/api/auth/token", {"username": "minji", "password": "pw-12345678"}, format="json")
    assert login.status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Token {login.json()['token']}")

    listed_plans = api.get("/api/plans/").json()["results"]
    assert [(p["code"], p["amount"]) for p in listed_plans] == [("basic", 9_900), ("pro", 29_900)]

    # the browser SDK registers the card under the customer_uid the server handed out
    prepared = api.post("/api/billing-keys/prepare")
    assert prepared.status_code == 201
    params = prepared.json()["params"]
    assert params["amount"] == 0 and params["pay_method"] == "card"
    gateway.issue_billing_key(
        customer_uid=params["customer_uid"], card_number=GOOD_CARD, expiry="2030-12", birth="900101", pwd_2digit="12"
    )
    confirmed = api.post("/api/billing-keys/confirm", {"customer_uid": params["customer_uid"]}, format="json")
    assert confirmed.status_code == 201
    assert confirmed.json()["is_default"] is True
    assert confirmed.json()["card_number_masked"].endswith("4242")
    assert [k["id"] for k in api.get("/api/billing-keys/").json()["results"]] == [confirmed.json()["id"]]

    subscribed = api.post("/api/subscriptions/", {"plan": "basic", "agree_to_terms": True}, format="json")
    assert subscribed.status_code == 201
    subscription = subscribed.json()
    assert (subscription["status"], subscription["plan"]["code"]) == ("active", "basic")
    sub_url = f"/api/subscriptions/{subscription['id']}"

    preview = api.post(f"{sub_url}/change-plan/preview", {"plan": "pro"}, format="json")
    assert preview.status_code == 200
    quote = preview.json()
    assert quote["kind"] == "upgrade"
    assert 0 < quote["amount_due"] <= 20_000  # the price difference for (almost) the whole period
    assert quote["explanation"]["ko"] and quote["explanation"]["en"]

    upgraded = api.post(f"{sub_url}/change-plan", {"plan": "pro"}, format="json")
    assert upgraded.status_code == 200
    assert upgraded.json()["plan"]["code"] == "pro"
    assert api.get(sub_url).json()["plan"]["code"] == "pro"

    # then both bills are paid, the upgrade at the previewed price (a second later, at most 1 won apart)
    invoices = api.get("/api/invoices/").json()
    assert invoices["count"] == 2
    upgrade_invoice, first_invoice = invoices["results"]
    assert (first_invoice["kind"], first_invoice["status"], first_invoice["total"]) == (
        "subscription_create",
        "paid",
        9_900,
    )
    assert (upgrade_invoice["kind"], upgrade_invoice["status"]) == ("plan_change", "paid")
    assert abs(upgrade_invoice["total"] - quote["amount_due"]) <= 1
    payments = api.get("/api/payments/").json()["results"]
    assert [(p["status"], p["amount"]) for p in payments] == [
        ("succeeded", upgrade_invoice["total"]),
        ("succeeded", 9_900),
    ]
    upgrade_payment = payments[0]

    # when staff refund 1,000 won of the upgrade
    staff = RecordingAPIClient()
    staff.force_authenticate(user=staff_user("add_refund", "view_refund"))
    refund = staff.post(
        f"/api/payments/{upgrade_payment['id']}/refunds", {"amount": 1_000, "reason": "goodwill"}, format="json"
    )
    assert refund.status_code == 201
    assert (refund.json()["status"], refund.json()["amount"]) == ("succeeded", 1_000)
    assert staff.get(f"/api/payments/{upgrade_payment['id']}/refunds").json()["count"] == 1

    # then the subscriber sees the refund on the payment and on the invoice
    payment = api.get(f"/api/payments/{upgrade_payment['id']}").json()
    assert payment["refunded_total"] == 1_000
    assert payment["refundable"] == upgrade_payment["amount"] - 1_000
    assert api.get(f"/api/invoices/{upgrade_invoice['id']}").json()["refunded_total"] == 1_000

    # and the subscriber cancels at the period end
    canceled = api.post(f"{sub_url}/cancel", {"at_period_end": True, "reason": "too expensive"}, format="json")
    assert canceled.status_code == 200
    assert (canceled.json()["status"], canceled.json()["cancel_at_period_end"]) == ("active", True)
