"""Who reaches what: every page and API endpoint × {anonymous, owner, another subscriber, staff without the
refund permission, staff with it}. The routes come from the URL resolver and the OpenAPI schema, so a new
endpoint fails `test_every_route_is_classified_when_the_resolver_lists_it` until it is added here.

Targets always name the OWNER's objects: everyone else must get a login redirect, 401, 403 or 404, and no
response to them may contain the owner's invoice number, merchant_uid or customer_uid.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from drf_spectacular.generators import SchemaGenerator

from billing import clock
from billing.services.refunds import refund_create
from tests.security.conftest import ROLES, client_as, outcome, resolver_routes

pytestmark = pytest.mark.django_db

LOGIN = "login"
ADMIN_LOGIN = "admin-login"


def expect(anonymous, owner, other, staff, refunder) -> dict:
    return dict(zip(ROLES, (anonymous, owner, other, staff, refunder), strict=True))


def public(status) -> dict:
    return expect(status, status, status, status, status)


def signed_in(status) -> dict:
    return expect(LOGIN, status, status, status, status)


def owner_only(owner_status, *, anonymous=LOGIN, stranger=404) -> dict:
    return expect(anonymous, owner_status, stranger, stranger, stranger)


@dataclass(frozen=True)
class Case:
    route: str  # the resolver's pattern, e.g. "api/invoices/<int:pk>"
    method: str
    path: str  # with {sub} {key} {invoice} {payment} {customer_uid}: the owner's objects
    expected: dict
    body: dict | None = field(default=None, hash=False)
    json_body: bool = False


WEB = [
    Case("", "GET", "/", public(200)),
    Case("healthz", "GET", "/healthz", public(200)),
    # Iamport cannot log in: public, CSRF-exempt, verified by re-fetching (see test_webhook_forgery.py).
    Case("iamport/webhook", "POST", "/iamport/webhook", public(200), {"imp_uid": "imp_forged"}, json_body=True),
    # PortOne V2 cannot log in either: public, CSRF-exempt, refused (400) unless Standard-Webhooks-signed.
    Case("portone/webhook", "POST", "/portone/webhook", public(400), {"type": "Transaction.Paid"}, json_body=True),
    Case("api/schema/", "GET", "/api/schema/", public(200)),
    Case("api/docs/", "GET", "/api/docs/", public(200)),
    Case("accounts/login/", "GET", "/accounts/login/", public(200)),
    Case("accounts/logout/", "POST", "/accounts/logout/", public(302)),
    Case("accounts/password_change/", "GET", "/accounts/password_change/", signed_in(200)),
    Case("accounts/password_change/done/", "GET", "/accounts/password_change/done/", signed_in(200)),
    Case("accounts/password_reset/", "GET", "/accounts/password_reset/", public(200)),
    Case("accounts/password_reset/done/", "GET", "/accounts/password_reset/done/", public(200)),
    Case("accounts/reset/<uidb64>/<token>/", "GET", "/accounts/reset/MQ/forged-token/", public(200)),
    Case("accounts/reset/done/", "GET", "/accounts/reset/done/", public(200)),
    Case("i18n/setlang/", "POST", "/i18n/setlang/", public(302), {"language": "en"}),
    Case("signup/", "GET", "/signup/", public(200)),
    Case("checkout/<slug:code>/", "GET", "/checkout/pro/", signed_in(200)),
    # Agreeing without ticking the box is a 400 for everyone signed in (nothing is remembered or registered).
    Case("checkout/<slug:code>/", "POST", "/checkout/pro/", signed_in(400)),
    Case("policies/<slug:kind>/", "GET", "/policies/terms/", public(200)),
    Case("policies/<slug:kind>/<str:version>/", "GET", "/policies/terms/no-such-version/", public(404)),
    # Subscribing is always to one's own account: the owner and the other subscriber are already subscribed,
    # staff have no card; each is sent back to the checkout page with a message.
    Case("subscribe/<slug:code>/", "POST", "/subscribe/pro/", signed_in(302), {"agree": "yes"}),
    Case("account/", "GET", "/account/", signed_in(200)),
    # Answering a consent question: only the owner's own questions (none here: 404 for everyone signed in).
    Case(
        "account/consent/<int:request_id>/",
        "POST",
        "/account/consent/999999/",
        expect(LOGIN, 404, 404, 404, 404),
        {"answer": "yes"},
    ),
    # An email link needs no log-in; without a valid signed token it is a 400 page for everyone.
    Case("consent/", "GET", "/consent/?t=forged", public(400)),
    Case("account/card/", "GET", "/account/card/", signed_in(200)),
    Case("account/card/prepare", "POST", "/account/card/prepare", signed_in(200)),
    # Confirming the owner's customer_uid: only the owner (idempotent re-confirm); nobody else learns it exists.
    Case(
        "account/card/confirm",
        "POST",
        "/account/card/confirm",
        owner_only(200),
        {"customer_uid": "{customer_uid}"},
        json_body=True,
    ),
    Case("account/change/", "GET", "/account/change/", expect(LOGIN, 200, 200, 404, 404)),
    Case("account/change/<slug:code>/", "GET", "/account/change/pro/", expect(LOGIN, 200, 200, 404, 404)),
    Case("account/cancel/", "GET", "/account/cancel/", expect(LOGIN, 200, 200, 404, 404)),
    Case("account/resume/", "POST", "/account/resume/", expect(LOGIN, 302, 302, 404, 404)),
    Case("account/pause/", "GET", "/account/pause/", expect(LOGIN, 200, 200, 404, 404)),
    Case("account/invoices/", "GET", "/account/invoices/", signed_in(200)),
    Case("account/invoices/<int:invoice_id>/", "GET", "/account/invoices/{invoice}/", owner_only(200)),
]

API_AUTH = 401


def api_owner_only(owner_status) -> dict:
    return owner_only(owner_status, anonymous=API_AUTH)


def api_signed_in(status) -> dict:
    return expect(API_AUTH, status, status, status, status)


SERVER_KEY_ONLY = expect(401, 401, 401, 401, 401)

API = [
    Case("api/plans/", "GET", "/api/plans/", public(200)),
    Case("api/plans/<slug:code>", "GET", "/api/plans/pro", public(200)),
    Case("api/auth/token", "POST", "/api/auth/token", public(400), {"username": "nobody", "password": "x"}),
    Case("api/billing-keys/", "GET", "/api/billing-keys/", api_signed_in(200)),
    Case("api/billing-keys/prepare", "POST", "/api/billing-keys/prepare", api_signed_in(201)),
    Case(
        "api/billing-keys/confirm",
        "POST",
        "/api/billing-keys/confirm",
        api_owner_only(201),
        {"customer_uid": "{customer_uid}"},
    ),
    Case("api/billing-keys/<int:pk>", "GET", "/api/billing-keys/{key}", api_owner_only(200)),
    # The owner's only card of a live subscription cannot go (409); nobody else even sees it.
    Case("api/billing-keys/<int:pk>", "DELETE", "/api/billing-keys/{key}", api_owner_only(409)),
    Case("api/invoices/", "GET", "/api/invoices/", api_signed_in(200)),
    Case("api/invoices/<int:pk>", "GET", "/api/invoices/{invoice}", api_owner_only(200)),
    Case("api/payments/", "GET", "/api/payments/", api_signed_in(200)),
    Case("api/payments/<int:pk>", "GET", "/api/payments/{payment}", api_owner_only(200)),
    # Refunds are staff-only: the owner learns it is not theirs to do (403), another subscriber learns nothing
    # (404), staff without the permission get 403, the refunder gets through.
    Case("api/payments/<int:pk>/refunds", "GET", "/api/payments/{payment}/refunds", expect(401, 403, 404, 403, 200)),
    Case(
        "api/payments/<int:pk>/refunds",
        "POST",
        "/api/payments/{payment}/refunds",
        expect(401, 403, 404, 403, 201),
        {"amount": 1_000, "reason": "matrix"},
    ),
    # A refund of the owner's payment, by its id: the same answers as the refunds of that payment.
    Case("api/refunds/<int:pk>", "GET", "/api/refunds/{refund}", expect(401, 403, 404, 403, 200)),
    Case("api/subscriptions/", "GET", "/api/subscriptions/", api_signed_in(200)),
    # Already subscribed (409) or no card (400): always about the caller's own account.
    Case(
        "api/subscriptions/",
        "POST",
        "/api/subscriptions/",
        expect(401, 409, 409, 400, 400),
        {"plan": "pro", "agree_to_terms": True},
    ),
    Case("api/subscriptions/<int:pk>", "GET", "/api/subscriptions/{sub}", api_owner_only(200)),
    Case(
        "api/subscriptions/<int:pk>/change-plan/preview",
        "POST",
        "/api/subscriptions/{sub}/change-plan/preview",
        api_owner_only(200),
        {"plan": "pro"},
    ),
    Case(
        "api/subscriptions/<int:pk>/change-plan",
        "POST",
        "/api/subscriptions/{sub}/change-plan",
        api_owner_only(200),
        {"plan": "pro"},
    ),
    Case(
        "api/subscriptions/<int:pk>/cancel",
        "POST",
        "/api/subscriptions/{sub}/cancel",
        api_owner_only(200),
        {"at_period_end": True},
    ),
    Case("api/subscriptions/<int:pk>/consents", "GET", "/api/subscriptions/{sub}/consents", api_owner_only(200)),
    Case(
        "api/subscriptions/<int:pk>/consents/<int:consent_id>",
        "POST",
        "/api/subscriptions/{sub}/consents/999999",
        api_owner_only(404),
        {"decision": "granted"},
    ),
    # The merchant's API takes a server key only (tests/api/test_merchant.py): a session, even staff's, is refused.
    Case("api/customers", "GET", "/api/customers", SERVER_KEY_ONLY),
    Case("api/customers", "POST", "/api/customers", SERVER_KEY_ONLY, {"external_id": "matrix"}),
    Case("api/customers/<str:ref>", "GET", "/api/customers/{customer}", SERVER_KEY_ONLY),
    Case("api/customers/<str:ref>", "POST", "/api/customers/{customer}", SERVER_KEY_ONLY, {"name": "x"}),
    Case("api/customers/<str:ref>/billing-keys", "GET", "/api/customers/{customer}/billing-keys", SERVER_KEY_ONLY),
    Case("api/customers/<str:ref>/invoices", "GET", "/api/customers/{customer}/invoices", SERVER_KEY_ONLY),
    Case("api/customers/<str:ref>/payments", "GET", "/api/customers/{customer}/payments", SERVER_KEY_ONLY),
    Case("api/events", "GET", "/api/events", SERVER_KEY_ONLY),
    # The finance report (no subscriber data in it, only sums): staff only.
    Case("api/finance/reports", "GET", "/api/finance/reports", expect(401, 403, 403, 200, 200)),
    Case("api/subscriptions/<int:pk>/resume", "POST", "/api/subscriptions/{sub}/resume", api_owner_only(409)),
    Case(
        "api/subscriptions/<int:pk>/pause",
        "POST",
        "/api/subscriptions/{sub}/pause",
        api_owner_only(200),
        {"periods": 1},
    ),
]

MATRIX = WEB + API


# --- the routes that exist -------------------------------------------------------------------------------


def _schema_path(route: str) -> str:
    path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
    return path.replace("{pk}", "{id}")


def schema_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {(method.upper(), path) for path, item in schema["paths"].items() for method in item}


def test_every_route_is_classified_when_the_resolver_lists_it():
    routes = {route for route in resolver_routes() if not route.startswith("admin/")}

    assert routes - {case.route for case in MATRIX} == set(), "routes nobody classified: add them to MATRIX"
    assert {case.route for case in MATRIX} - routes == set(), "MATRIX names routes that no longer exist"


def test_every_api_operation_is_classified_when_the_schema_lists_it():
    classified = {(case.method, _schema_path(case.route)) for case in API}

    assert schema_operations() - classified == set(), "API operations nobody classified: add them to API"
    assert classified - schema_operations() == set(), "API names operations the schema does not have"


# --- the matrix -------------------------------------------------------------------------------------------


def _leaks(world) -> list[str]:
    return [world.owner.invoice.number, world.owner.payment.merchant_uid, world.owner.billing_key.customer_uid]


def _request(client, case: Case, ids: dict):
    path = case.path.format(**ids)
    if case.body is None and case.route.startswith("api/"):
        return client.generic(case.method, path)  # no body at all, as an API client sends it
    if case.body is None:
        return getattr(client, case.method.lower())(path)
    body = json.loads(json.dumps(case.body or {}).replace("{customer_uid}", ids["customer_uid"]))
    if case.route.startswith("api/") or case.json_body:
        return getattr(client, case.method.lower())(path, json.dumps(body), content_type="application/json")
    return getattr(client, case.method.lower())(path, body)


@pytest.mark.parametrize("case", MATRIX, ids=lambda c: f"{c.method} /{c.route}")
def test_each_role_reaches_only_its_own_objects_when_requesting_the_route(world, case):
    got, leaked = {}, []
    ids = world.ids
    if "{refund}" in case.path:
        refund = refund_create(
            attempt_id=world.owner.payment.pk, amount=500, reason="matrix", now=clock.now(), actor=world.refunder
        )
        ids = {**ids, "refund": refund.pk}
    for role in ROLES:
        with transaction.atomic():  # each role starts from the same world
            response = _request(client_as(world.user(role)), case, ids)
            transaction.set_rollback(True)
        got[role] = outcome(response)
        if role in ("anonymous", "other", "staff"):
            body = response.content.decode(errors="replace")
            leaked += [f"{role}: {secret}" for secret in _leaks(world) if secret in body]

    assert got == case.expected
    assert leaked == []


# --- the admin: every route under admin/ ----------------------------------------------------------------

# Reachable without being staff: the login page itself, and logout, which sends a non-staff caller to the
# admin index (and from there to the login page) without doing anything.
ADMIN_PUBLIC = {"admin/login/": 200, "admin/logout/": 302}
ADMIN_SAMPLES = {
    "admin/^(?P<app_label>auth|authtoken|django_celery_beat|billing|notices|subscriptions)/$": "/admin/billing/",
    "admin/(?P<url>.*)$": "/admin/no-such-page/",
}


def _admin_path(route: str, world) -> str:
    if route in ADMIN_SAMPLES:
        return ADMIN_SAMPLES[route]
    match = re.match(r"admin/(\w+)/(\w+)/", route)
    models = {(m._meta.app_label, m._meta.model_name): m for m in apps.get_models()}
    model = models.get(match.groups()) if match else None
    values = {
        "object_id": str(model.objects.order_by("pk").values_list("pk", flat=True).first() or 1) if model else "1",
        "attempt_id": str(world.owner.payment.pk),
        "row_id": "1",
        "action": "investigated",
        "id": str(world.owner.user.pk),
        "content_type_id": str(ContentType.objects.get_for_model(apps.get_model("billing", "Invoice")).pk),
    }
    if route.startswith("admin/r/"):
        values["object_id"] = str(world.owner.invoice.pk)
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route)


def admin_routes():
    return sorted(route for route in resolver_routes() if route.startswith("admin/"))


@pytest.mark.parametrize("role", ["anonymous", "owner", "other"])
def test_admin_sends_non_staff_to_the_admin_login_when_any_admin_page_is_requested(world, role):
    client = client_as(world.user(role))
    got = {route: outcome(client.get(_admin_path(route, world))) for route in admin_routes()}

    assert {route: result for route, result in got.items() if result != ADMIN_LOGIN} == ADMIN_PUBLIC


@pytest.mark.parametrize("role", ["staff", "refunder"])
def test_admin_never_fails_and_refuses_what_staff_may_not_do_when_every_page_is_requested(world, role):
    client = client_as(world.user(role))
    got = {route: outcome(client.get(_admin_path(route, world))) for route in admin_routes()}

    assert {route: result for route, result in got.items() if isinstance(result, int) and result >= 500} == {}
    refund = "admin/billing/paymentattempt/<int:attempt_id>/refund/"
    assert got[refund] == (200 if role == "refunder" else 403)
    # No privilege escalation: neither may see users or tokens, nor change billing rows.
    assert got["admin/auth/user/"] == 403
    assert got["admin/auth/user/<id>/password/"] == 403
    assert got["admin/authtoken/tokenproxy/"] == 403
    assert got["admin/billing/paymentattempt/"] == 200
    assert got["admin/billing/paymentattempt/<path:object_id>/delete/"] == 403
    assert got["admin/billing/customer/<path:object_id>/delete/"] == 403


def test_staff_without_the_refund_permission_cannot_refund_when_posting_the_admin_form(world):
    client = client_as(world.staff)

    response = client.post(
        f"/admin/billing/paymentattempt/{world.owner.payment.pk}/refund/", {"amount": 1_000, "reason": "x"}
    )

    assert response.status_code == 403
    assert not world.owner.payment.refunds.exists()
