"""POST /portone/webhook (billing/views.py): a PortOne V2 webhook is verified with the Standard Webhooks
signature before anything is stored. A forged or stale one is refused with 400 and stores nothing; a good one is
stored, answered at once and processed like a V1 webhook (the payment re-fetched from PortOne)."""

from __future__ import annotations

import json
import time

import pytest
from django.utils import timezone

from billing.models import AuditLog, PaymentAttempt, WebhookEvent
from billing.services.payments import payment_charge
from config.celery import app as celery_app
from iamport_sandbox.v2 import signing
from tests.billing.test_payments import open_invoice
from tests.conftest import use_portone_v2
from tests.factories import make_customer, register_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def v2_gateway(sandbox, sandbox_server, settings):
    from billing.services.gateway import get_gateway, reset_gateway

    use_portone_v2(settings, sandbox_server)
    settings.PORTONE_READ_TIMEOUT = 0.5  # the lost answer below is waited for this long
    reset_gateway()
    yield get_gateway()
    reset_gateway()


@pytest.fixture
def eager_tasks(settings):
    previous = celery_app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def unknown_attempt(sandbox, v2_gateway, now):
    """A V2 charge PortOne made whose answer we lost: UNKNOWN until something tells us."""
    customer = make_customer()
    register_card(customer, v2_gateway, now=now)
    invoice = open_invoice(customer, now)
    sandbox.add_fault("again", "timeout_after_commit", times=1, hold_ms=1000)
    attempt = payment_charge(invoice_id=invoice.pk, now=now, gateway=v2_gateway)
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    return attempt


def paid_event(payment_id: str) -> str:
    body = {
        "type": "Transaction.Paid",
        "timestamp": "2026-01-01T00:00:00Z",
        "data": {"paymentId": payment_id, "storeId": "store-00000000-0000-0000-0000-000000000000"},
    }
    return json.dumps(body)


def post(client, raw: str, headers: dict):
    return client.post(
        "/portone/webhook", data=raw, content_type="application/json", headers={**headers, "User-Agent": "test"}
    )


def test_webhook_with_a_valid_signature_is_stored_answered_and_settles_the_payment(
    client, settings, unknown_attempt, eager_tasks, django_capture_on_commit_callbacks
):
    raw = paid_event(unknown_attempt.merchant_uid)
    headers = signing.headers(settings.PORTONE_WEBHOOK_SECRET, "msg_test_1", int(time.time()), raw)

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, raw, headers)

    assert response.status_code == 200
    [event] = WebhookEvent.objects.all()
    assert response.json()["id"] == event.pk
    assert (event.state, event.status, event.merchant_uid) == ("processed", "paid", unknown_attempt.merchant_uid)
    assert event.headers.get("Webhook-Id") == "msg_test_1"
    unknown_attempt.refresh_from_db()
    assert unknown_attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert unknown_attempt.invoice.status == "paid"
    assert list(
        AuditLog.objects.filter(action="payment.succeeded", object_id=str(unknown_attempt.pk)).values_list(
            "actor_label", flat=True
        )
    ) == ["webhook"]


@pytest.mark.parametrize(
    "forgery",
    ["signed_with_another_secret", "body_changed_after_signing", "no_signature", "stale_timestamp", "future_timestamp"],
)
def test_webhook_with_a_bad_or_stale_signature_is_refused_and_nothing_is_stored(
    client, settings, unknown_attempt, eager_tasks, django_capture_on_commit_callbacks, forgery
):
    raw = paid_event(unknown_attempt.merchant_uid)
    secret, stamp, sent = settings.PORTONE_WEBHOOK_SECRET, int(time.time()), raw
    if forgery == "signed_with_another_secret":
        secret = "whsec_" + "QW5vdGhlclNlY3JldEtleUZvclRlc3RpbmcxMjM0NQ=="
    elif forgery == "stale_timestamp":
        stamp -= 600  # Standard Webhooks allows five minutes either way
    elif forgery == "future_timestamp":
        stamp += 600
    headers = signing.headers(secret, "msg_test_2", stamp, raw)
    if forgery == "body_changed_after_signing":
        sent = raw.replace("Transaction.Paid", "Transaction.Cancelled")
    elif forgery == "no_signature":
        headers.pop("webhook-signature")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(client, sent, headers)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert WebhookEvent.objects.count() == 0 and callbacks == []
    unknown_attempt.refresh_from_db()
    assert unknown_attempt.status == PaymentAttempt.Status.UNKNOWN


def test_v2_webhook_is_refused_when_no_webhook_secret_is_configured(client, settings, unknown_attempt):
    raw = paid_event(unknown_attempt.merchant_uid)
    headers = signing.headers(settings.PORTONE_WEBHOOK_SECRET, "msg_test_3", int(time.time()), raw)
    settings.PORTONE_WEBHOOK_SECRET = ""

    response = post(client, raw, headers)

    assert response.status_code == 400 and WebhookEvent.objects.count() == 0
