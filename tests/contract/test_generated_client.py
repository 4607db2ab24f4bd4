"""The API contract as a merchant's developer meets it (issue 21): download the live /api/schema/, check it with
openapi-spec-validator, generate a Python client with openapi-python-client (pinned in pyproject's dev extras),
install it into a temporary directory with pip, and integrate through the generated functions only.

Nothing but the card entry (what Iamport's browser SDK does, here the sandbox's REST call) and the accounts
(made in admin in real life) is done outside the generated client. Everything lives under pytest's tmp_path;
generating and installing takes about two seconds.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import Permission
from openapi_spec_validator import validate

from tests.factories import GOOD_CARD, PlanFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "kbilling_client"
GENERATOR_CONFIG = f"project_name_override: kbilling-client\npackage_name_override: {PACKAGE}\npost_hooks: []\n"


@pytest.fixture(scope="module")
def schema(live_server) -> dict:
    response = httpx.get(f"{live_server.url}/api/schema/", params={"format": "json"}, timeout=30)
    assert response.status_code == 200
    return response.json()


@pytest.fixture(scope="module")
def kb(schema, tmp_path_factory):
    """The generated package, installed with pip into a temporary directory and imported from there."""
    work = tmp_path_factory.mktemp("generated-client")
    (work / "schema.json").write_text(json.dumps(schema))
    (work / "config.yaml").write_text(GENERATOR_CONFIG)
    generate = [Path(sys.executable).parent / "openapi-python-client", "generate", "--path", "schema.json"]
    _run([*generate, "--config", "config.yaml", "--meta", "setup", "--output-path", "client"], cwd=work)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    _run([*pip, "--no-build-isolation", "--no-index", "--target", "site", "./client"], cwd=work)
    sys.path.insert(0, str(work / "site"))
    try:
        modules = {
            name: importlib.import_module(f"{PACKAGE}.{name}")
            for name in ("client", "models", "errors", "types", *_api_modules(work / "site" / PACKAGE / "api"))
        }
        assert Path(modules["client"].__file__).is_relative_to(work / "site")
        yield type("Generated", (), modules)
    finally:
        sys.path.remove(str(work / "site"))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _run(command, *, cwd):
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command[0]} failed:\n{done.stdout}\n{done.stderr}"


def _api_modules(api_dir: Path) -> list[str]:
    """api.<tag>.<operation> for every generated operation module."""
    return [f"api.{p.parent.name}.{p.stem}" for p in sorted(api_dir.glob("*/*.py")) if p.stem != "__init__"]


def op(kb, operation: str):
    """The generated module of an operation id, whatever tag directory it was put in."""
    [module] = [m for name, m in vars(kb).items() if name.startswith("api.") and name.endswith(f".{operation}")]
    return module


def test_the_live_schema_passes_openapi_spec_validator_and_declares_json_bodies_and_bearer_auth(schema):
    validate(schema)

    body_types = {
        media
        for item in schema["paths"].values()
        for operation in item.values()
        for media in operation.get("requestBody", {}).get("content", {})
    }
    assert body_types == {"application/json"}
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                name = body["$ref"].rsplit("/", 1)[1]
                closed = schema["components"]["schemas"][name].get("additionalProperties")
                assert closed is False, f"{method.upper()} {path}: {name} must declare additionalProperties: false"


@pytest.fixture
def merchant(live_server, sandbox, settings):
    """A subscriber account, a staff account that may refund, and two plans."""
    settings.SITE_URL = ""  # no webhooks: the sandbox would call back into a server the test does not watch
    PlanFactory(code="basic", name_ko="베이직", name_en="Basic", amount=9_900, sort_order=1)
    PlanFactory(code="pro", name_ko="프로", name_en="Pro", amount=29_900, sort_order=2)
    UserFactory(username="minji", password="pw-12345678")
    staff = UserFactory(username="ops", password="pw-staff-1234", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="billing", codename__in=["add_refund", "view_refund"])
    )
    return live_server.url


def _login(kb, base_url, username, password):
    anonymous = kb.client.Client(base_url=base_url, raise_on_unexpected_status=True)
    body = kb.models.AuthTokenCreateRequest(username=username, password=password)
    token = op(kb, "auth_token_create").sync(client=anonymous, body=body)
    assert isinstance(token, kb.models.AuthToken), token
    # The generated AuthenticatedClient sends "Authorization: Bearer <token>", as the schema declares.
    return kb.client.AuthenticatedClient(base_url=base_url, token=token.token, raise_on_unexpected_status=True)


def _error_code(kb, result) -> str:
    assert isinstance(result, kb.models.Error), result
    return result.error.code


def test_a_merchant_integrates_a_subscription_life_through_the_generated_client_only(kb, merchant, gateway):
    m = kb.models
    api = _login(kb, merchant, "minji", "pw-12345678")

    # the catalogue, listed and read by code
    plans = op(kb, "plans_list").sync(client=api)
    assert [(p.code, p.amount) for p in plans.results] == [("basic", 9_900), ("pro", 29_900)]
    assert op(kb, "plan_retrieve").sync(code="pro", client=api) == plans.results[1]

    # a card: the server prepares, the browser SDK enters the card at Iamport, the server confirms
    prepared = op(kb, "billing_key_prepare").sync(client=api)
    gateway.issue_billing_key(
        customer_uid=prepared.params.customer_uid,
        card_number=GOOD_CARD,
        expiry="2030-12",
        birth="900101",
        pwd_2digit="12",
    )
    card = op(kb, "billing_key_confirm").sync(
        client=api, body=m.CardRegistrationConfirmRequest(customer_uid=prepared.params.customer_uid)
    )
    assert card.is_default and card.card_number_masked.endswith("4242")
    assert op(kb, "billing_key_retrieve").sync(id=card.id, client=api) == card

    # subscribe
    subscription = op(kb, "subscription_create").sync(
        client=api, body=m.SubscriptionCreateRequest(plan="basic", agree_to_terms=True)
    )
    assert isinstance(subscription, m.Subscription), subscription
    assert (subscription.status, subscription.plan.code) == (m.SubscriptionStatusEnum.ACTIVE, "basic")
    assert op(kb, "subscription_retrieve").sync(id=subscription.id, client=api).id == subscription.id

    # an upgrade: the previewed amount is exactly what is charged when the preview's instant is sent back
    preview = op(kb, "subscription_change_plan_preview").sync(
        id=subscription.id, client=api, body=m.PlanChangeRequest(plan="pro")
    )
    assert isinstance(preview, m.PlanChangePreview), preview
    assert preview.kind == m.PlanChangePreviewKindEnum.UPGRADE and preview.amount_due > 0
    assert preview.explanation.ko and preview.explanation.en
    upgraded = op(kb, "subscription_change_plan").sync(
        id=subscription.id, client=api, body=m.PlanChangeRequest(plan="pro", proration_at=preview.priced_at)
    )
    assert upgraded.plan.code == "pro"
    invoices = op(kb, "invoices_list").sync(client=api).results
    upgrade_invoice = op(kb, "invoice_retrieve").sync(id=invoices[0].id, client=api)
    assert (upgrade_invoice.kind, upgrade_invoice.total) == (m.InvoiceKindEnum.PLAN_CHANGE, preview.amount_due)
    [line] = upgrade_invoice.lines
    assert line.details.kind == m.InvoiceLineDetailsKindEnum.UPGRADE  # a typed model, not Any
    assert line.details.explanation_en == preview.explanation.en
    payments = op(kb, "payments_list").sync(client=api).results
    assert [(p.status, p.amount) for p in payments] == [
        (m.PaymentStatusEnum.SUCCEEDED, preview.amount_due),
        (m.PaymentStatusEnum.SUCCEEDED, 9_900),
    ]

    # pause until resumed: None travels as JSON null (it was the text "None" in a form body), then resume
    paused = op(kb, "subscription_pause").sync(
        id=subscription.id, client=api, body=m.SubscriptionPauseRequest(periods=None)
    )
    assert (paused.pause_requested, paused.pause_periods) == (True, None)
    resumed = op(kb, "subscription_resume").sync(id=subscription.id, client=api)
    assert resumed.pause_requested is False

    # a staff refund of 1,000 won of the upgrade, read back by id and seen by the subscriber
    staff = _login(kb, merchant, "ops", "pw-staff-1234")
    refund = op(kb, "refund_create").sync(
        id=payments[0].id, client=staff, body=m.RefundCreateRequest(amount=1_000, reason="goodwill")
    )
    assert isinstance(refund, m.StaffRefund), refund
    assert (refund.amount, refund.payment, refund.actor) == (1_000, payments[0].id, "ops")
    assert op(kb, "refund_retrieve").sync(id=refund.id, client=staff) == refund
    assert [r.id for r in op(kb, "payment_refunds_list").sync(id=payments[0].id, client=staff).results] == [refund.id]
    paid = op(kb, "payment_retrieve").sync(id=payments[0].id, client=api)
    assert (paid.refunded_total, paid.refundable) == (1_000, preview.amount_due - 1_000)

    # cancel now
    canceled = op(kb, "subscription_cancel").sync(
        id=subscription.id, client=api, body=m.SubscriptionCancelRequest(at_period_end=False)
    )
    assert canceled.status == m.SubscriptionStatusEnum.CANCELED
    assert op(kb, "subscriptions_list").sync(client=api).results[0].status == m.SubscriptionStatusEnum.CANCELED


def test_errors_arrive_as_the_typed_error_model_through_the_generated_client(kb, merchant, gateway):
    m = kb.models
    api = _login(kb, merchant, "minji", "pw-12345678")
    prepared = op(kb, "billing_key_prepare").sync(client=api)
    gateway.issue_billing_key(
        customer_uid=prepared.params.customer_uid,
        card_number=GOOD_CARD,
        expiry="2030-12",
        birth="900101",
        pwd_2digit="12",
    )
    op(kb, "billing_key_confirm").sync(
        client=api, body=m.CardRegistrationConfirmRequest(customer_uid=prepared.params.customer_uid)
    )
    subscription = op(kb, "subscription_create").sync(
        client=api, body=m.SubscriptionCreateRequest(plan="basic", agree_to_terms=True)
    )
    payment = op(kb, "payments_list").sync(client=api).results[0]

    wrong_password = op(kb, "auth_token_create").sync_detailed(
        client=kb.client.Client(base_url=merchant, raise_on_unexpected_status=True),
        body=m.AuthTokenCreateRequest(username="minji", password="wrong"),
    )
    zero_periods = op(kb, "subscription_pause").sync_detailed(
        id=subscription.id, client=api, body=m.SubscriptionPauseRequest(periods=0)
    )
    forged = kb.client.AuthenticatedClient(base_url=merchant, token="forged", raise_on_unexpected_status=True)
    not_authenticated = op(kb, "subscriptions_list").sync_detailed(client=forged)
    not_staff = op(kb, "refund_create").sync_detailed(
        id=payment.id, client=api, body=m.RefundCreateRequest(reason="mine")
    )
    not_found = op(kb, "subscription_retrieve").sync_detailed(id=subscription.id + 1_000, client=api)
    no_plan = op(kb, "plan_retrieve").sync_detailed(code="no-such-plan", client=api)
    twice = op(kb, "subscription_create").sync_detailed(
        client=api, body=m.SubscriptionCreateRequest(plan="pro", agree_to_terms=True)
    )

    answers = [wrong_password, zero_periods, not_authenticated, not_staff, not_found, no_plan, twice]
    assert [(int(r.status_code), _error_code(kb, r.parsed)) for r in answers] == [
        (400, "invalid_credentials"),
        (400, "validation_error"),
        (401, "not_authenticated"),
        (403, "permission_denied"),
        (404, "not_found"),
        (404, "not_found"),
        (409, "already_subscribed"),
    ]
    field_errors = zero_periods.parsed.error.fields.additional_properties["periods"]
    assert [(e.code, isinstance(e, m.FieldError)) for e in field_errors] == [("min_value", True)]
    assert op(kb, "subscription_retrieve").sync(id=subscription.id, client=api).pause_requested is False
