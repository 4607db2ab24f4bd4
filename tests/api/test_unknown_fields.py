"""Every write endpoint refuses a key it does not take (issue 9 item 2): 400 validation_error naming the key, and
nothing changes, in our database or at Iamport. The endpoints come from the URL conf, so a new write endpoint fails
here until it has a case (and a body serializer built on billing.api.inputs.InputSerializer)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.apps import apps
from django.core import serializers as django_serializers
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.views import APIView

from billing import clock
from billing.models import AuditLog, MerchantApiKey, PaymentAttempt
from billing.services.api_keys import api_key_create
from subscriptions.models import ConsentRequest
from subscriptions.services.lifecycle import subscription_cancel
from tests.api.conftest import RecordingAPIClient, error_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch", "delete")
UNKNOWN = "unexpected_key"


def _api_write_routes() -> list[tuple[str, str]]:
    """(METHOD, url name) of every write method of every DRF view the URL conf serves."""
    routes: list[tuple[str, str]] = []

    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                view = getattr(pattern.callback, "cls", None)
                if view is not None and issubclass(view, APIView):
                    routes.extend((m.upper(), pattern.name) for m in WRITE_METHODS if hasattr(view, m))

    walk(get_resolver().url_patterns)
    return sorted(set(routes))


@dataclass
class Case:
    """A request that succeeds (or answers a domain error, never validation_error) as is, from `who`."""

    who: str  # anon | member | newcomer (a card, no subscription) | staff | key (a server key, every scope)
    body: dict = field(default_factory=dict)
    status: int = 200
    kwargs: Callable = lambda world: {}
    before: Callable = lambda world: None


def _sub(world):
    return {"pk": world.member.subscription.pk}


def _ask_consent(world):
    now = clock.now()
    ConsentRequest.objects.create(
        kind="price_increase",
        subscription=world.member.subscription,
        change_at=now + dt.timedelta(days=10),
        opens_at=now - dt.timedelta(hours=1),
        amount_before=9_900,
        amount_after=11_000,
        terms_ko="요금이 오릅니다.",
        terms_en="The price goes up.",
        created_at=now,
    )


def _consent(world):
    request = ConsentRequest.objects.get(subscription=world.member.subscription)
    return {"pk": world.member.subscription.pk, "consent_id": request.pk}


def _schedule_cancel(world):
    subscription_cancel(subscription=world.member.subscription, now=clock.now(), at_period_end=True)


CASES: dict[tuple[str, str], Case] = {
    ("POST", "auth-token"): Case("anon", {"username": "minji", "password": "pw-12345678"}),
    ("POST", "billing-key-prepare"): Case("member", status=201),
    # A card the sandbox never issued: the domain answers 404, past validation.
    ("POST", "billing-key-confirm"): Case("member", {"customer_uid": "never-issued"}, status=404),
    ("DELETE", "billing-key-detail"): Case(
        "newcomer", status=204, kwargs=lambda world: {"pk": world.newcomer.billing_key.pk}
    ),
    ("POST", "subscription-list"): Case("newcomer", {"plan": "basic", "agree_to_terms": True}, status=201),
    ("POST", "subscription-change-plan-preview"): Case("member", {"plan": "pro"}, kwargs=_sub),
    ("POST", "subscription-change-plan"): Case("member", {"plan": "pro"}, kwargs=_sub),
    ("POST", "subscription-cancel"): Case("member", {"at_period_end": False}, kwargs=_sub),
    ("POST", "subscription-resume"): Case("member", kwargs=_sub, before=_schedule_cancel),
    ("POST", "subscription-pause"): Case("member", {"periods": 3}, kwargs=_sub),
    ("POST", "subscription-consent-decide"): Case(
        "member", {"decision": "granted"}, kwargs=_consent, before=_ask_consent
    ),
    ("POST", "customer-list"): Case("key", {"external_id": "user-1", "email": "a@example.com"}, status=201),
    ("POST", "customer-detail"): Case(
        "key", {"name": "민지"}, kwargs=lambda world: {"ref": str(world.member.customer.pk)}
    ),
    ("POST", "payment-refunds"): Case(
        "staff", {"amount": 1_000, "reason": "goodwill"}, status=201, kwargs=lambda world: {"pk": world.payment.pk}
    ),
}


def _state(sandbox) -> tuple:
    """Every row of ours, and what Iamport holds: the before/after picture of "nothing changed"."""
    models = [
        m
        for m in apps.get_models()
        if m._meta.app_label in {"billing", "subscriptions", "authtoken"} and m is not MerchantApiKey
    ]
    # A server key's request is audited and its last use noted whatever it answered: that is not the request's effect.
    rows = tuple(
        django_serializers.serialize(
            "json",
            m._default_manager.exclude(action="api_key.request")
            if m is AuditLog
            else m._default_manager.order_by("pk"),
        )
        for m in models
    )
    return rows, repr(sandbox.payments()), repr(sandbox.customers())


@pytest.fixture
def world(subscriber, staff_user, sandbox):
    member = subscriber()
    UserFactory(username="minji", password="pw-12345678")
    return type(
        "World",
        (),
        {
            "member": member,
            "newcomer": subscriber(plan=None),
            "staff": staff_user("add_refund", "view_refund"),
            "payment": PaymentAttempt.objects.get(invoice__customer=member.customer),
            "sandbox": sandbox,
        },
    )


def _client(world, who, anon, client_for):
    if who == "anon":
        return anon
    if who == "key":
        _key, secret = api_key_create(name="unknown-fields", scopes=["read", "write", "refunds"])
        client = RecordingAPIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client
    return client_for(world.staff if who == "staff" else getattr(world, who).user)


@pytest.mark.parametrize(("method", "name"), _api_write_routes(), ids=lambda v: str(v))
def test_write_endpoint_refuses_a_key_it_does_not_take_and_changes_nothing(method, name, world, anon, client_for):
    case = CASES.get((method, name))
    assert case is not None, f"{method} {name} is a new write endpoint: add a Case for it above"
    case.before(world)
    client = _client(world, case.who, anon, client_for)
    path = reverse(name, kwargs=case.kwargs(world))
    before = _state(world.sandbox)

    send = getattr(client, method.lower())

    refused = send(path, {**case.body, UNKNOWN: 1})

    assert refused.status_code == 400, refused.content
    error = error_of(refused)
    assert error["code"] == "validation_error"
    assert error["unknown_fields"] == [UNKNOWN]
    assert error["fields"][UNKNOWN][0]["code"] == "unknown_field"
    assert set(error["fields"]) == {UNKNOWN}  # the rest of the body was valid
    assert _state(world.sandbox) == before
    # The same body without the unknown key goes through: it was the key, and only the key, that was refused.
    assert send(path, case.body).status_code == case.status


def test_misspelled_pause_periods_is_refused_with_the_intended_name_when_sent(client_for, subscriber):
    member = subscriber()

    response = client_for(member.user).post(f"/api/subscriptions/{member.subscription.pk}/pause", {"period": 3})

    assert response.status_code == 400
    error = error_of(response)
    assert error["unknown_fields"] == ["period"]
    assert "periods" in error["fields"]["period"][0]["message"]
    member.subscription.refresh_from_db()
    assert member.subscription.pause_requested is False


def test_unknown_keys_are_reported_with_the_invalid_ones_when_both_are_sent(client_for, subscriber):
    member = subscriber()

    response = client_for(member.user).post(
        f"/api/subscriptions/{member.subscription.pk}/change-plan/preview", {"plan": "no-such-plan", "amount_due": 1}
    )

    assert response.status_code == 400
    error = error_of(response)
    assert error["unknown_fields"] == ["amount_due"]
    assert error["fields"]["plan"][0]["code"] == "does_not_exist"
    assert error["fields"]["amount_due"][0]["code"] == "unknown_field"


def test_read_only_fields_are_unknown_to_a_write_when_sent_back(client_for, subscriber):
    """A body is not an object to echo: `status` is part of a Subscription, never of a cancel."""
    member = subscriber()

    response = client_for(member.user).post(
        f"/api/subscriptions/{member.subscription.pk}/cancel", {"at_period_end": True, "status": "canceled"}
    )

    assert response.status_code == 400
    assert error_of(response)["unknown_fields"] == ["status"]
    member.subscription.refresh_from_db()
    assert member.subscription.cancel_at_period_end is False
