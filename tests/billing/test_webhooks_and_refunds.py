"""Webhooks (verified by re-fetching; duplicates, reordering and forgeries change nothing) and refunds
(checksum-guarded, never above the paid amount), against the sandbox over HTTP."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection
from django.utils import timezone

from billing.errors import PaymentInProgressError, RefundExceedsBalanceError, RefundNotAllowedError
from billing.models import AuditLog, PaymentAttempt, Refund, WebhookEvent
from billing.services.payments import payment_attempt_create, payment_charge
from billing.services.refunds import refund_create, refund_totals
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


def test_partial_then_full_refund_matches_iamport_and_splits_vat_exactly(sandbox, gateway, now):
    attempt = paid_attempt(gateway, now, amount=22_000, tax_free=12_000)

    first = refund_create(attempt_id=attempt.pk, amount=5_000, reason="partial", now=now, gateway=gateway)
    rest = refund_create(attempt_id=attempt.pk, amount=None, reason="the rest", now=now, gateway=gateway)

    assert (first.status, rest.status) == ("succeeded", "succeeded")
    assert rest.amount == 17_000
    assert first.tax_free_amount + rest.tax_free_amount == 12_000
    assert first.vat_amount + rest.vat_amount == attempt.vat_amount
    remote = gateway.get_payment(imp_uid=attempt.imp_uid)
    assert (remote.status, remote.cancel_amount) == ("cancelled", 22_000)
    assert {c.cancellation_id for c in remote.cancel_history} == {first.cancellation_id, rest.cancellation_id}


def test_refund_above_the_refundable_balance_is_refused_and_changes_nothing(sandbox, gateway, now):
    attempt = paid_attempt(gateway, now)
    refund_create(attempt_id=attempt.pk, amount=6_000, reason="x", now=now, gateway=gateway)

    with pytest.raises(RefundExceedsBalanceError) as excinfo:
        refund_create(attempt_id=attempt.pk, amount=4_001, reason="too much", now=now, gateway=gateway)

    assert excinfo.value.extra["refundable"] == 4_000
    assert Refund.objects.filter(attempt=attempt).count() == 1
    assert gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount == 6_000


def test_checksum_makes_iamport_refuse_when_our_ledger_missed_a_refund(sandbox, gateway, now):
    attempt = paid_attempt(gateway, now)
    gateway.cancel_payment(imp_uid=attempt.imp_uid, amount=1_000, reason="made in the Iamport console")

    with pytest.raises(Exception) as excinfo:
        refund_create(attempt_id=attempt.pk, amount=9_500, reason="would over-refund", now=now, gateway=gateway)

    assert getattr(excinfo.value, "code", "") == "refund_failed"
    assert gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount == 1_000
    assert Refund.objects.get(attempt=attempt).status == "failed"


def test_only_succeeded_payments_can_be_refunded(sandbox, gateway, now):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    pending = payment_attempt_create(invoice_id=open_invoice(customer, now).pk, now=now)
    with pytest.raises(RefundNotAllowedError):
        refund_create(attempt_id=pending.pk, amount=100, reason="x", now=now, gateway=gateway)


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_never_exceed_the_paid_amount(sandbox, gateway):
    now = timezone.now()
    attempt = paid_attempt(gateway, now)
    sandbox.set_latency(200)  # both admins' requests overlap at Iamport
    outcomes = []

    def admin():
        try:
            outcomes.append(
                refund_create(attempt_id=attempt.pk, amount=7_000, reason="race", now=now, gateway=gateway).status
            )
        except (PaymentInProgressError, RefundExceedsBalanceError) as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=admin) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["payment_in_progress", "succeeded"]
    assert refund_totals(attempt)["refunded"] == 7_000
    assert gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount == 7_000


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


def test_deleting_the_default_card_promotes_the_newest_other_card_and_moves_the_subscription(sandbox, gateway, now):
    from billing.services.billing_keys import billing_key_delete
    from subscriptions.services.lifecycle import subscription_create
    from tests.factories import PlanFactory

    customer = make_customer()
    older = register_card(customer, gateway, now=now)
    newer = register_card(customer, gateway, now=now)
    sub = subscription_create(customer=customer, plan=PlanFactory(code="m"), now=now, gateway=gateway)
    assert sub.billing_key_id == newer.pk

    billing_key_delete(billing_key=newer, now=now, gateway=gateway)

    older.refresh_from_db()
    sub.refresh_from_db()
    assert older.is_default and sub.billing_key_id == older.pk
    assert [c["customer_uid"] for c in sandbox.customers()] == [older.customer_uid]
