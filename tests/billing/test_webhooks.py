"""Webhooks (billing/services/webhooks.py): verified by re-fetching; duplicates, reordering and forgeries change
nothing; a refund made in the Iamport console is recorded from its webhook. Against the sandbox over HTTP."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from billing.models import AuditLog, PaymentAttempt, Refund, WebhookEvent
from billing.services.payments import payment_attempt_create, payment_charge
from billing.services.webhooks import webhook_process, webhook_receive
from tests.billing.test_payments import open_invoice
from tests.factories import make_customer, register_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


def post_webhook(client, body, content_type="application/json"):
    data = json.dumps(body) if content_type == "application/json" else "&".join(f"{k}={v}" for k, v in body.items())
    return client.post("/iamport/webhook", data=data, content_type=content_type)


def test_webhook_endpoint_stores_json_and_form_bodies_and_answers_200(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    first = post_webhook(client, {"imp_uid": "imp_1", "merchant_uid": "m1", "status": "paid"})
    second = post_webhook(
        client,
        {"imp_uid": "imp_2", "merchant_uid": "m2", "status": "failed"},
        content_type="application/x-www-form-urlencoded",
    )

    assert first.status_code == second.status_code == 200
    events = WebhookEvent.objects.order_by("id")
    assert [(e.imp_uid, e.merchant_uid, e.status) for e in events] == [
        ("imp_1", "m1", "paid"),
        ("imp_2", "m2", "failed"),
    ]
    assert events[1].raw_body == "imp_uid=imp_2&merchant_uid=m2&status=failed"


def test_webhook_endpoint_refuses_sources_outside_the_allow_list_when_enabled(client, settings):
    settings.IAMPORT_WEBHOOK_IP_ALLOWLIST_ENABLED = True
    response = post_webhook(client, {"imp_uid": "imp_1", "merchant_uid": "m1", "status": "paid"})
    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0

    allowed = client.post("/iamport/webhook", data="{}", content_type="application/json", REMOTE_ADDR="52.78.100.19")
    assert allowed.status_code == 200


def receive(body: dict, now) -> WebhookEvent:
    return webhook_receive(
        raw_body=json.dumps(body), content_type="application/json", headers={}, source_ip="127.0.0.1", now=now
    )


def test_webhook_settles_an_unknown_attempt_and_duplicates_change_nothing(sandbox, gateway, now):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now)
    sandbox.add_fault("again", "timeout_after_commit", times=1)
    attempt = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    [paid] = [p for p in sandbox.payments() if p["merchant_uid"] == attempt.merchant_uid]

    body = {"imp_uid": paid["imp_uid"], "merchant_uid": attempt.merchant_uid, "status": "paid"}
    events = [receive(body, now) for _ in range(3)]
    results = [webhook_process(event_id=e.pk, now=now, gateway=gateway) for e in events]

    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED and invoice.status == "paid"
    assert [r.state for r in results] == ["processed"] * 3
    assert AuditLog.objects.filter(action="payment.succeeded").count() == 1


def test_webhook_with_an_unknown_imp_uid_or_someone_elses_merchant_uid_changes_no_money_state(sandbox, gateway, now):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    mine = open_invoice(customer, now)
    pending = payment_attempt_create(invoice_id=mine.pk, now=now)

    other = make_customer()
    register_card(other, gateway, now=now)
    theirs = payment_charge(invoice_id=open_invoice(other, now).pk, now=now, gateway=gateway)

    forged = receive({"imp_uid": "imp_000000000000", "merchant_uid": pending.merchant_uid, "status": "paid"}, now)
    crossed = receive({"imp_uid": theirs.imp_uid, "merchant_uid": pending.merchant_uid, "status": "paid"}, now)
    assert webhook_process(event_id=forged.pk, now=now, gateway=gateway).state == "ignored"
    assert webhook_process(event_id=crossed.pk, now=now, gateway=gateway).state == "flagged"

    pending.refresh_from_db()
    mine.refresh_from_db()
    assert pending.status == PaymentAttempt.Status.PENDING
    assert mine.status == "open"


def test_a_failed_scheduled_style_webhook_after_a_paid_one_does_not_undo_the_payment(sandbox, gateway, now):
    """Reordered deliveries: the state only moves forward."""
    customer = make_customer()
    register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now)
    attempt = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)

    late = receive({"imp_uid": attempt.imp_uid, "merchant_uid": attempt.merchant_uid, "status": "failed"}, now)
    webhook_process(event_id=late.pk, now=now, gateway=gateway)

    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED


def test_events_can_be_reprocessed(sandbox, gateway, now):
    event = receive({"imp_uid": "imp_000000000000", "merchant_uid": "x", "status": "paid"}, now)
    webhook_process(event_id=event.pk, now=now, gateway=gateway)
    again = webhook_process(event_id=event.pk, now=now, gateway=gateway, reprocess=True)
    assert again.process_count == 2


def paid_attempt(gateway, now, amount=10_000, tax_free=0):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    return payment_charge(
        invoice_id=open_invoice(customer, now, amount=amount, tax_free=tax_free).pk, now=now, gateway=gateway
    )


def test_refund_made_in_the_iamport_console_is_recorded_from_the_webhook(sandbox, gateway, now):
    attempt = paid_attempt(gateway, now)
    gateway.cancel_payment(imp_uid=attempt.imp_uid, amount=2_500, reason="console refund")

    event = receive({"imp_uid": attempt.imp_uid, "merchant_uid": attempt.merchant_uid, "status": "cancelled"}, now)
    webhook_process(event_id=event.pk, now=now, gateway=gateway)
    webhook_process(
        event_id=receive({"imp_uid": attempt.imp_uid, "status": "cancelled"}, now).pk,
        now=now,
        gateway=gateway,
    )

    assert [(r.amount, r.status) for r in Refund.objects.filter(attempt=attempt)] == [(2_500, "succeeded")]
