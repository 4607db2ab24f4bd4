"""Who may see what: another subscriber's objects answer 404 (never 403, never the data), anonymous callers
get 401 everywhere but the public plan list, and every error has the one shape."""

from __future__ import annotations

import pytest

from billing.models import BillingKey, PaymentAttempt, Refund
from subscriptions.models import Subscription
from tests.api.conftest import RecordingAPIClient, error_of
from tests.factories import UserFactory, make_customer

pytestmark = pytest.mark.django_db

# (method, path template, body): every endpoint that names one object. {sub}, {key}, {invoice}, {payment}.
OBJECT_ENDPOINTS = [
    ("get", "/api/billing-keys/{key}", None),
    ("delete", "/api/billing-keys/{key}", None),
    ("get", "/api/subscriptions/{sub}", None),
    ("post", "/api/subscriptions/{sub}/change-plan/preview", {"plan": "pro"}),
    ("post", "/api/subscriptions/{sub}/change-plan", {"plan": "pro"}),
    ("post", "/api/subscriptions/{sub}/cancel", {"at_period_end": False}),
    ("post", "/api/subscriptions/{sub}/resume", None),
    ("post", "/api/subscriptions/{sub}/pause", {"periods": 1}),
    ("get", "/api/invoices/{invoice}", None),
    ("get", "/api/payments/{payment}", None),
    ("get", "/api/payments/{payment}/refunds", None),
    ("post", "/api/payments/{payment}/refunds", {"reason": "mine now"}),
]

PROTECTED_ENDPOINTS = [
    ("post", "/api/billing-keys/prepare", None),
    ("post", "/api/billing-keys/confirm", {"customer_uid": "x"}),
    ("get", "/api/billing-keys/", None),
    ("get", "/api/subscriptions/", None),
    ("post", "/api/subscriptions/", {"plan": "basic", "agree_to_terms": True}),
    ("get", "/api/invoices/", None),
    ("get", "/api/payments/", None),
    ("get", "/api/refunds/{refund}", None),
    *OBJECT_ENDPOINTS,
]


@pytest.fixture
def victim(subscriber):
    member = subscriber()
    payment = PaymentAttempt.objects.get(invoice__customer=member.customer)
    member.ids = {
        "sub": member.subscription.id,
        "key": member.billing_key.id,
        "invoice": payment.invoice_id,
        "payment": payment.id,
    }
    return member


@pytest.mark.parametrize(("method", "template", "body"), OBJECT_ENDPOINTS, ids=lambda v: str(v))
def test_another_subscribers_object_answers_not_found_when_named_by_id(
    client_for, victim, subscriber, method, template, body
):
    intruder = subscriber()  # a subscriber with objects of their own, so ids are real ones

    response = getattr(client_for(intruder.user), method)(template.format(**victim.ids), body, format="json")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert Subscription.objects.get(pk=victim.subscription.id).status == "active"
    assert Subscription.objects.get(pk=victim.subscription.id).cancel_at_period_end is False
    assert BillingKey.objects.get(pk=victim.billing_key.id).status == "active"
    assert not Refund.objects.exists()


@pytest.mark.parametrize("path", ["/api/billing-keys/", "/api/subscriptions/", "/api/invoices/", "/api/payments/"])
def test_lists_show_nothing_of_another_subscriber_when_the_caller_has_nothing(client_for, victim, path):
    stranger = make_customer()

    response = client_for(stranger.user).get(path)

    assert response.status_code == 200
    assert (response.json()["count"], response.json()["results"]) == (0, [])


@pytest.mark.parametrize(("method", "template", "body"), PROTECTED_ENDPOINTS, ids=lambda v: str(v))
def test_endpoint_answers_not_authenticated_401_when_anonymous(anon, method, template, body):
    path = template.format(sub=1, key=1, invoice=1, payment=1, refund=1)

    response = getattr(anon, method)(path, body, format="json")

    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_token_login_answers_invalid_credentials_when_the_password_is_wrong(anon):
    UserFactory(username="minji", password="pw-12345678")

    response = anon.post("/api/auth/token", {"username": "minji", "password": "wrong"}, format="json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_credentials"
    assert "token" not in response.json()


def test_token_login_answers_validation_error_when_fields_are_missing(anon, db):
    response = anon.post("/api/auth/token", {"username": "minji"}, format="json")

    assert response.status_code == 400
    assert error_of(response)["fields"]["password"][0]["code"] == "required"


def test_token_login_returns_the_same_token_when_asked_twice(anon, db):
    UserFactory(username="minji", password="pw-12345678")
    credentials = {"username": "minji", "password": "pw-12345678"}

    first = anon.post("/api/auth/token", credentials, format="json").json()["token"]
    second = anon.post("/api/auth/token", credentials, format="json").json()["token"]

    assert first == second


def test_token_login_is_throttled_when_one_address_guesses_too_often(anon, db):
    for _ in range(20):
        anon.post("/api/auth/token", {"username": "minji", "password": "guess"}, format="json")

    response = anon.post("/api/auth/token", {"username": "minji", "password": "guess"}, format="json")

    assert response.status_code == 429
    assert error_of(response)["code"] == "throttled"


def test_an_unknown_token_answers_not_authenticated_401_when_presented(db):
    api = RecordingAPIClient()
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = api.get("/api/subscriptions/")

    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"


def test_session_login_authenticates_the_api_when_logged_in_through_the_site(db):
    UserFactory(username="minji", password="pw-12345678")
    api = RecordingAPIClient()
    assert api.login(username="minji", password="pw-12345678")

    response = api.post("/api/billing-keys/prepare")

    assert response.status_code == 201
    assert response.json()["params"]["customer_uid"]


def test_session_requests_that_write_need_the_csrf_token_when_logged_in_through_the_site(db):
    UserFactory(username="minji", password="pw-12345678")
    api = RecordingAPIClient(enforce_csrf_checks=True)
    api.login(username="minji", password="pw-12345678")

    response = api.post("/api/billing-keys/prepare")

    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"


def test_unknown_ids_answer_not_found_in_the_error_shape_when_authenticated(client_for, db):
    response = client_for(UserFactory()).get("/api/invoices/424242")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_an_unsupported_method_answers_method_not_allowed_405_in_the_error_shape(client_for, db):
    response = client_for(UserFactory()).delete("/api/plans/")

    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_a_malformed_json_body_answers_parse_error_400_in_the_error_shape(client_for, db):
    response = client_for(UserFactory()).post("/api/subscriptions/", data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"
