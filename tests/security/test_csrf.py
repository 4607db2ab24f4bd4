"""CSRF: every state-changing POST of the web UI, the admin refund form and the session-authenticated API
refuse a POST without the token (or with a wrong one) and succeed with it. The Iamport webhook is the one
deliberate exemption (Iamport cannot send a token; the payment is re-fetched instead).

Checked with Django's own behaviour in mind:
- set_language (django.views.i18n) is NOT exempt: it is CSRF-protected like any POST view, so it is listed.
- logout is POST-only since Django 5.0 and protected, so a cross-site form cannot log a user out.
- DRF views are csrf_exempt at the Django level; SessionAuthentication enforces CSRF itself for session
  callers, while token callers need none (a browser never attaches the token on its own).
- /api/auth/token has no authentication at all: it creates no session, so forging it gains nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.authtoken.models import Token

from billing import clock
from billing.api.keys import ServerKeyAuthentication
from billing.models import BillingKey, CardRegistration, Refund, WebhookEvent
from billing.services.billing_keys import card_registration_prepare
from billing.views import iamport_webhook, portone_webhook
from subscriptions.models import Subscription
from subscriptions.services.lifecycle import subscription_cancel
from tests.factories import GOOD_CARD, make_customer, register_card
from tests.security.conftest import World, client_as, resolver_routes

pytestmark = pytest.mark.django_db

PASSWORD = "pw-12345678"


@dataclass
class Form:
    user: object  # None: anonymous
    token_page: str  # a page that renders {% csrf_token %}
    path: str
    data: dict
    success: int
    done: Callable[[Client], bool]  # did the POST change anything?
    as_json: bool = False


def _sub(world: World) -> Subscription:
    return Subscription.objects.get(pk=world.owner.subscription.pk)


def login(world, gateway):
    return Form(
        None,
        "/accounts/login/",
        "/accounts/login/",
        {"username": world.owner.user.username, "password": PASSWORD},
        302,
        lambda client: "_auth_user_id" in client.session,
    )


def signup(world, gateway):
    return Form(
        None,
        "/signup/",
        "/signup/",
        {"username": "newbie", "password1": "a-long-password-1", "password2": "a-long-password-1"},
        302,
        lambda client: get_user_model().objects.filter(username="newbie").exists(),
    )


def logout(world, gateway):
    return Form(
        world.owner.user,
        "/account/",
        "/accounts/logout/",
        {},
        302,
        lambda client: "_auth_user_id" not in client.session,
    )


def set_language(world, gateway):
    return Form(
        world.owner.user,
        "/account/",
        "/i18n/setlang/",
        {"language": "en"},
        302,
        lambda client: settings.LANGUAGE_COOKIE_NAME in client.cookies,
    )


def password_reset(world, gateway):
    return Form(
        None,
        "/accounts/password_reset/",
        "/accounts/password_reset/",
        {"email": world.owner.user.email},
        302,
        lambda client: len(mail.outbox) > 0,
    )


def password_change(world, gateway):
    user = world.owner.user
    return Form(
        user,
        "/accounts/password_change/",
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": "brand-new-pass-9", "new_password2": "brand-new-pass-9"},
        302,
        lambda client: get_user_model().objects.get(pk=user.pk).check_password("brand-new-pass-9"),
    )


def subscribe(world, gateway):
    customer = make_customer()
    register_card(customer, gateway, now=clock.now())
    return Form(
        customer.user,
        "/checkout/basic/",
        "/subscribe/basic/",
        {"agree": "yes"},
        302,
        lambda client: Subscription.objects.filter(customer=customer).exists(),
    )


def card_prepare(world, gateway):
    before = CardRegistration.objects.count()
    return Form(
        world.owner.user,
        "/account/card/",
        "/account/card/prepare",
        {},
        200,
        lambda client: CardRegistration.objects.count() > before,
        as_json=True,
    )


def card_confirm(world, gateway):
    customer_uid = card_registration_prepare(customer=world.owner.subscription.customer, now=clock.now())["params"][
        "customer_uid"
    ]
    gateway.issue_billing_key(
        customer_uid=customer_uid, card_number=GOOD_CARD, expiry="2030-12", birth="900101", pwd_2digit="12"
    )
    return Form(
        world.owner.user,
        "/account/card/",
        "/account/card/confirm",
        {"customer_uid": customer_uid},
        200,
        lambda client: BillingKey.objects.filter(customer_uid=customer_uid).exists(),
        as_json=True,
    )


def change_plan(world, gateway):
    return Form(
        world.owner.user,
        "/account/change/pro/",
        "/account/change/pro/",
        {},
        302,
        lambda client: _sub(world).plan.code == "pro",
    )


def cancel(world, gateway):
    return Form(
        world.owner.user,
        "/account/cancel/",
        "/account/cancel/",
        {"when": "period_end", "reason": ""},
        302,
        lambda client: _sub(world).cancel_at_period_end,
    )


def resume(world, gateway):
    subscription_cancel(subscription=world.owner.subscription, now=clock.now(), at_period_end=True)
    return Form(
        world.owner.user, "/account/", "/account/resume/", {}, 302, lambda client: not _sub(world).cancel_at_period_end
    )


def pause(world, gateway):
    return Form(
        world.owner.user,
        "/account/pause/",
        "/account/pause/",
        {"periods": "1"},
        302,
        lambda client: _sub(world).pause_requested,
    )


def admin_refund(world, gateway):
    url = f"/admin/billing/paymentattempt/{world.owner.payment.pk}/refund/"
    return Form(
        world.refunder,
        url,
        url,
        {"amount": 1_000, "reason": "csrf"},
        302,
        lambda client: Refund.objects.filter(attempt=world.owner.payment).exists(),
    )


def session_api(world, gateway):
    return Form(
        world.owner.user,
        "/account/",
        f"/api/subscriptions/{world.owner.subscription.pk}/cancel",
        {"at_period_end": True},
        200,
        lambda client: _sub(world).cancel_at_period_end,
        as_json=True,
    )


FORMS = [
    login,
    signup,
    logout,
    set_language,
    password_reset,
    password_change,
    subscribe,
    card_prepare,
    card_confirm,
    change_plan,
    cancel,
    resume,
    pause,
    admin_refund,
    session_api,
]


def _post(client: Client, form: Form, token: str | None):
    if form.as_json:
        headers = {"HTTP_X_CSRFTOKEN": token} if token else {}
        return client.post(form.path, json.dumps(form.data), content_type="application/json", **headers)
    data = {**form.data, "csrfmiddlewaretoken": token} if token else form.data
    return client.post(form.path, data)


@pytest.mark.parametrize("build", FORMS, ids=lambda f: f.__name__)
def test_post_is_refused_without_the_csrf_token_and_accepted_with_it_when_csrf_checks_are_enforced(
    world, gateway, build
):
    form = build(world, gateway)
    client = client_as(form.user, enforce_csrf_checks=True)
    assert client.get(form.token_page).status_code == 200
    token = client.cookies[settings.CSRF_COOKIE_NAME].value

    missing = _post(client, form, None)
    wrong = _post(client, form, "x" * len(token))
    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert not form.done(client)

    accepted = _post(client, form, token)
    assert accepted.status_code == form.success
    assert form.done(client)


def test_webhook_is_accepted_without_a_csrf_token_when_iamport_posts_it():
    client = Client(enforce_csrf_checks=True)

    response = client.post("/iamport/webhook", json.dumps({"imp_uid": "imp_1"}), content_type="application/json")

    assert response.status_code == 200
    assert WebhookEvent.objects.filter(imp_uid="imp_1").exists()


def test_token_api_needs_no_csrf_token_when_called_with_an_authorization_header(world):
    token = Token.objects.create(user=world.owner.user)
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {token.key}")

    response = client.post(
        f"/api/subscriptions/{world.owner.subscription.pk}/cancel",
        json.dumps({"at_period_end": True}),
        content_type="application/json",
    )

    assert response.status_code == 200
    assert _sub(world).cancel_at_period_end


def test_only_the_webhook_is_csrf_exempt_when_every_view_in_the_resolver_is_inspected():
    exempt, session_without_csrf, drf_routes = [], [], []
    for route, pattern in resolver_routes().items():
        view = pattern.callback
        drf_view = getattr(view, "cls", None)
        if drf_view is not None and hasattr(drf_view, "authentication_classes"):
            drf_routes.append(route)
            # DRF: exempt at the Django level by design; only these authenticators may let a caller in.
            for auth in drf_view.authentication_classes:
                # A server key is a header the browser never sends by itself: no cookie, so no CSRF to check.
                if not issubclass(auth, SessionAuthentication | TokenAuthentication | ServerKeyAuthentication):
                    session_without_csrf.append((route, auth.__name__))
                elif (
                    issubclass(auth, SessionAuthentication)
                    and auth.enforce_csrf is not SessionAuthentication.enforce_csrf
                ):
                    session_without_csrf.append((route, auth.__name__))
        elif getattr(view, "csrf_exempt", False):
            exempt.append(route)

    assert len(drf_routes) > 15  # the API was inspected, not skipped
    assert exempt == ["iamport/webhook", "portone/webhook"]
    assert iamport_webhook.csrf_exempt is True
    assert portone_webhook.csrf_exempt is True
    assert session_without_csrf == []
