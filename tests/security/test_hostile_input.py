"""Hostile input never becomes a 500: NUL characters (which PostgreSQL refuses in text), wrong JSON types and
unparseable bodies are answered with a 4xx, and nothing changes. Found by the Schemathesis run
(tests/security/test_api_fuzz.py), pinned here so they stay fixed without fuzzing luck."""

from __future__ import annotations

import json

import pytest

from billing.models import PaymentAttempt
from subscriptions.models import Subscription
from tests.security.conftest import client_as

pytestmark = pytest.mark.django_db

NUL = "basic\x00"


def post_json(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    "path",
    ["/api/subscriptions/", "/api/subscriptions/{sub}/change-plan", "/api/subscriptions/{sub}/change-plan/preview"],
)
def test_api_refuses_a_plan_code_with_a_nul_character_with_400_when_posted(world, path):
    client = client_as(world.owner.user)

    response = post_json(client, path.format(sub=world.owner.subscription.pk), {"plan": NUL})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "plan" in response.json()["error"]["fields"]
    assert Subscription.objects.get(pk=world.owner.subscription.pk).plan.code == "basic"
    assert PaymentAttempt.objects.count() == 2  # the two subscribers' first charges, nothing more


@pytest.mark.parametrize(
    ("path", "expected"), [("/api/billing-keys/confirm", 400), ("/account/card/confirm", 404)], ids=["api", "web"]
)
def test_card_confirm_refuses_a_customer_uid_with_a_nul_character_when_posted(world, path, expected):
    response = post_json(client_as(world.owner.user), path, {"customer_uid": "kbc1_\x00"})

    assert response.status_code == expected


@pytest.mark.parametrize(
    "body", ["{not json", '["a list"]', '{"customer_uid": {"nested": 1}}', '{"customer_uid": 12}'], ids=str
)
def test_web_card_confirm_answers_not_found_when_the_body_is_not_what_the_page_sends(world, body):
    response = client_as(world.owner.user).post("/account/card/confirm", body, content_type="application/json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "card_registration_not_found"


def test_login_answers_with_the_form_when_the_username_has_a_nul_character(client):
    response = client.post("/accounts/login/", {"username": "kim\x00", "password": "x"})

    assert response.status_code == 200
