"""Invoices, payment attempts and staff refunds over the API."""

from __future__ import annotations

import pytest

from billing.models import PaymentAttempt, Refund
from tests.api.conftest import error_of
from tests.factories import INSUFFICIENT_FUNDS_CARD, PlanFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(subscriber):
    """A subscriber whose first invoice (books plan: 22,000 won of which 12,000 tax-free) is paid."""
    PlanFactory(code="books", amount=22_000, tax_free_amount=12_000)
    member = subscriber(plan="books")
    member.payment = PaymentAttempt.objects.get(invoice__customer=member.customer)
    return member


def test_invoice_shows_the_vat_split_period_and_lines_when_paid(client_for, paid):
    api = client_for(paid.user)

    listed = api.get("/api/invoices/").json()
    detail = api.get(f"/api/invoices/{listed['results'][0]['id']}").json()

    assert listed["count"] == 1
    assert detail == listed["results"][0]
    assert detail["number"]
    assert (detail["status"], detail["total"], detail["tax_free_amount"]) == ("paid", 22_000, 12_000)
    assert (detail["supply_amount"], detail["vat_amount"]) == (9_091, 909)
    assert detail["period_start"] < detail["period_end"]
    assert detail["refunded_total"] == 0
    assert [(line["amount"], line["tax_free_amount"]) for line in detail["lines"]] == [(22_000, 12_000)]


def test_payment_shows_ids_amount_card_and_receipt_when_succeeded(client_for, paid):
    response = client_for(paid.user).get(f"/api/payments/{paid.payment.id}")

    assert response.status_code == 200
    body = response.json()
    assert body["merchant_uid"] == paid.payment.merchant_uid
    assert body["imp_uid"].startswith("imp_")
    assert (body["status"], body["amount"], body["tax_free_amount"]) == ("succeeded", 22_000, 12_000)
    assert body["card"]["number_masked"].endswith("4242")
    assert body["receipt_url"]
    assert (body["refunded_total"], body["refundable"], body["refunds"]) == (0, 22_000, [])


def test_payments_list_shows_the_decline_reason_when_the_card_was_declined(client_for, subscriber):
    member = subscriber(card=INSUFFICIENT_FUNDS_CARD)

    response = client_for(member.user).get("/api/payments/")

    assert response.status_code == 200
    [payment] = response.json()["results"]
    assert (payment["status"], payment["decline_class"], payment["refundable"]) == ("failed", "soft", 0)
    assert "잔액부족" in payment["failure_reason"]
    assert payment["imp_uid"]


def test_staff_refund_defaults_to_everything_refundable_when_no_amount_is_given(client_for, paid, staff_user):
    refunder = staff_user("add_refund")

    response = client_for(refunder).post(
        f"/api/payments/{paid.payment.id}/refunds", {"reason": "customer request"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["amount"], body["status"], body["actor"]) == (22_000, "succeeded", refunder.username)
    assert body["tax_free_amount"] == 12_000
    payment = client_for(paid.user).get(f"/api/payments/{paid.payment.id}").json()
    assert (payment["refunded_total"], payment["refundable"]) == (22_000, 0)


def test_two_equal_partial_refunds_in_one_second_both_answer_201_and_are_both_recorded(
    client_for, paid, staff_user, sandbox
):
    sandbox.freeze()  # Iamport stamps both cancellations with the same second
    staff = client_for(staff_user("add_refund"))
    url = f"/api/payments/{paid.payment.id}/refunds"

    first = staff.post(url, {"amount": 500, "reason": "a"}, format="json")
    second = staff.post(url, {"amount": 500, "reason": "b"}, format="json")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["status"] == second.json()["status"] == "succeeded"
    payment = client_for(paid.user).get(f"/api/payments/{paid.payment.id}").json()
    assert (payment["refunded_total"], payment["refundable"]) == (1_000, 21_000)
    assert staff.post(url, {"amount": 500, "reason": "c"}, format="json").status_code == 201


def test_staff_refund_answers_refund_exceeds_balance_400_when_above_what_is_left(client_for, paid, staff_user):
    staff = client_for(staff_user("add_refund"))
    staff.post(f"/api/payments/{paid.payment.id}/refunds", {"amount": 20_000, "reason": "partial"}, format="json")

    response = staff.post(
        f"/api/payments/{paid.payment.id}/refunds", {"amount": 2_001, "reason": "more"}, format="json"
    )

    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["refundable"]) == ("refund_exceeds_balance", 2_000)
    assert Refund.objects.filter(attempt=paid.payment).count() == 1


def test_staff_refund_answers_refund_not_allowed_when_the_payment_failed(client_for, subscriber, staff_user):
    member = subscriber(card=INSUFFICIENT_FUNDS_CARD)
    payment = PaymentAttempt.objects.get(invoice__customer=member.customer)

    response = client_for(staff_user("add_refund")).post(
        f"/api/payments/{payment.id}/refunds", {"reason": "x"}, format="json"
    )

    assert response.status_code == 400
    assert error_of(response)["code"] == "refund_not_allowed"


def test_staff_refund_answers_validation_error_when_reason_is_missing_or_amount_not_positive(
    client_for, paid, staff_user
):
    response = client_for(staff_user("add_refund")).post(
        f"/api/payments/{paid.payment.id}/refunds", {"amount": 0}, format="json"
    )

    assert response.status_code == 400
    fields = error_of(response)["fields"]
    assert (fields["amount"][0]["code"], fields["reason"][0]["code"]) == ("min_value", "required")


@pytest.mark.parametrize(("method", "permission"), [("post", "view_refund"), ("get", "add_refund")])
def test_refunds_answer_permission_denied_403_when_staff_lack_the_permission(
    client_for, paid, staff_user, method, permission
):
    staff = client_for(staff_user(permission))  # holds the other permission only

    response = getattr(staff, method)(f"/api/payments/{paid.payment.id}/refunds", {"reason": "x"}, format="json")

    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"
    assert not Refund.objects.exists()


@pytest.mark.parametrize("method", ["post", "get"])
def test_refunds_answer_permission_denied_when_a_subscriber_asks_about_their_own_payment(client_for, paid, method):
    response = getattr(client_for(paid.user), method)(
        f"/api/payments/{paid.payment.id}/refunds", {"reason": "x"}, format="json"
    )

    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"


def test_refunds_list_shows_every_refund_with_its_actor_when_staff_may_view(client_for, paid, staff_user):
    refunder = staff_user("add_refund")
    client_for(refunder).post(f"/api/payments/{paid.payment.id}/refunds", {"amount": 500, "reason": "a"}, format="json")
    client_for(refunder).post(f"/api/payments/{paid.payment.id}/refunds", {"amount": 700, "reason": "b"}, format="json")

    response = client_for(staff_user("view_refund")).get(f"/api/payments/{paid.payment.id}/refunds")

    assert response.status_code == 200
    assert [(r["amount"], r["reason"], r["actor"]) for r in response.json()["results"]] == [
        (700, "b", refunder.username),
        (500, "a", refunder.username),
    ]


def test_refunds_answer_not_found_when_staff_name_a_payment_that_does_not_exist(client_for, staff_user, db):
    response = client_for(staff_user("add_refund", "view_refund")).get("/api/payments/987654/refunds")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
