"""The rules a generated client relies on (issue 21): JSON bodies only, the token as HTTP bearer (the older
`Token` prefix still works), and every listable resource readable by its id or code."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from billing.models import PaymentAttempt
from tests.api.conftest import RecordingAPIClient, error_of
from tests.factories import PlanFactory

pytestmark = pytest.mark.django_db


def test_a_form_body_answers_unsupported_media_type_415_and_changes_nothing_when_posted(client_for, subscriber):
    member = subscriber()

    response = client_for(member.user).post(
        f"/api/subscriptions/{member.subscription.pk}/pause", {"periods": "2"}, format="multipart"
    )

    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    member.subscription.refresh_from_db()
    assert member.subscription.pause_requested is False


def test_pause_with_null_periods_pauses_until_resumed_when_sent_as_json(client_for, subscriber):
    member = subscriber()

    response = client_for(member.user).post(f"/api/subscriptions/{member.subscription.pk}/pause", {"periods": None})

    assert response.status_code == 200
    assert (response.json()["pause_requested"], response.json()["pause_periods"]) == (True, None)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "Token"])
def test_the_api_token_authenticates_when_sent_with_a_bearer_or_token_prefix(subscriber, scheme):
    member = subscriber()
    api = RecordingAPIClient()
    api.credentials(HTTP_AUTHORIZATION=f"{scheme} {Token.objects.create(user=member.user).key}")

    response = api.get(f"/api/subscriptions/{member.subscription.pk}")

    assert response.status_code == 200
    assert response.json()["id"] == member.subscription.pk


@pytest.mark.parametrize("header", ["Bearer", "Bearer two parts", "Bearer not-a-real-token"])
def test_a_malformed_or_unknown_bearer_token_answers_not_authenticated_401_when_sent(db, header):
    api = RecordingAPIClient()
    api.credentials(HTTP_AUTHORIZATION=header)

    response = api.get("/api/subscriptions/")

    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_plan_is_read_by_its_code_when_on_sale_and_not_found_otherwise(anon, plans):
    PlanFactory(code="retired", active=False)

    on_sale = anon.get("/api/plans/pro")
    retired = anon.get("/api/plans/retired")
    unknown = anon.get("/api/plans/nope")

    assert on_sale.status_code == 200
    assert on_sale.json() == next(p for p in anon.get("/api/plans/").json()["results"] if p["code"] == "pro")
    assert (retired.status_code, error_of(retired)["code"]) == (404, "not_found")
    assert (unknown.status_code, error_of(unknown)["code"]) == (404, "not_found")


def test_a_card_is_read_by_its_id_as_listed_when_yours(client_for, subscriber):
    member = subscriber()
    api = client_for(member.user)

    response = api.get(f"/api/billing-keys/{member.billing_key.pk}")

    assert response.status_code == 200
    assert response.json() == api.get("/api/billing-keys/").json()["results"][0]


@pytest.fixture
def refunded(subscriber, client_for, staff_user):
    member = subscriber()
    payment = PaymentAttempt.objects.get(invoice__customer=member.customer)
    refunder = staff_user("add_refund", "view_refund")
    created = client_for(refunder).post(f"/api/payments/{payment.pk}/refunds", {"amount": 900, "reason": "goodwill"})
    assert created.status_code == 201
    return member, payment, refunder, created.json()


def test_a_refund_is_read_by_its_id_by_staff_with_the_view_permission(client_for, refunded):
    _member, payment, refunder, created = refunded

    response = client_for(refunder).get(f"/api/refunds/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created
    assert (response.json()["payment"], response.json()["amount"]) == (payment.pk, 900)


def test_a_refund_by_id_is_forbidden_to_its_subscriber_and_staff_without_the_permission(
    client_for, refunded, staff_user, subscriber
):
    member, _payment, _refunder, created = refunded
    path = f"/api/refunds/{created['id']}"

    own = client_for(member.user).get(path)
    stranger = client_for(subscriber(plan=None).user).get(path)
    unpermitted = client_for(staff_user("add_refund")).get(path)
    missing = client_for(staff_user("view_refund")).get("/api/refunds/424242")

    assert (own.status_code, error_of(own)["code"]) == (403, "permission_denied")
    assert (stranger.status_code, error_of(stranger)["code"]) == (404, "not_found")
    assert (unpermitted.status_code, error_of(unpermitted)["code"]) == (403, "permission_denied")
    assert (missing.status_code, error_of(missing)["code"]) == (404, "not_found")
    assert "amount" not in own.json()["error"] and "amount" not in stranger.json()["error"]
