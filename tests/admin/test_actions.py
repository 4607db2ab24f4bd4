"""Admin actions that call services: reprocess a webhook, retry an open invoice now, reconcile an UNKNOWN
attempt now. Each tells the operator what happened with message_user."""

from __future__ import annotations

import pytest
from django.urls import reverse

from billing.models import Invoice, PaymentAttempt, WebhookEvent
from billing.services.payments import payment_charge
from tests.admin.conftest import open_invoice, receive_webhook, staff_user
from tests.factories import INSUFFICIENT_FUNDS_CARD, make_customer, register_card

pytestmark = pytest.mark.django_db


def run_action(client, model, action: str, ids: list[int]):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return client.post(url, {"action": action, "_selected_action": ids}, follow=True)


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def unknown_attempt(sandbox, gateway, now) -> PaymentAttempt:
    """Iamport charged the card but the answer never came back: an UNKNOWN attempt."""
    customer = make_customer()
    register_card(customer, gateway, now=now)
    sandbox.add_fault("again", "timeout_after_commit", times=1, hold_ms=2_500)
    attempt = payment_charge(invoice_id=open_invoice(customer, now).pk, now=now, gateway=gateway)
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    return attempt


def test_reconcile_action_settles_an_unknown_attempt_from_iamport_when_selected(admin_client, sandbox, gateway, now):
    attempt = unknown_attempt(sandbox, gateway, now)

    response = run_action(admin_client, PaymentAttempt, "reconcile_now", [attempt.pk])

    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED and attempt.imp_uid
    assert attempt.invoice.status == Invoice.Status.PAID
    [(level, text)] = messages_of(response)
    assert level == "success" and attempt.merchant_uid in text


def test_reconcile_action_leaves_a_settled_attempt_alone_with_a_warning_when_selected(
    admin_client, sandbox, gateway, now
):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    paid = payment_charge(invoice_id=open_invoice(customer, now).pk, now=now, gateway=gateway)
    sandbox.clear_requests_log()

    response = run_action(admin_client, PaymentAttempt, "reconcile_now", [paid.pk])

    [(level, _text)] = messages_of(response)
    assert level == "warning"
    assert sandbox.requests_log() == []  # not even a lookup


def test_reprocess_action_settles_the_attempt_a_webhook_names_when_selected(admin_client, sandbox, gateway, now):
    attempt = unknown_attempt(sandbox, gateway, now)
    [paid] = [p for p in sandbox.payments() if p["merchant_uid"] == attempt.merchant_uid]
    event = receive_webhook({"imp_uid": paid["imp_uid"], "merchant_uid": attempt.merchant_uid, "status": "paid"}, now)
    WebhookEvent.objects.filter(pk=event.pk).update(state=WebhookEvent.State.IGNORED)  # e.g. handled by old code

    response = run_action(admin_client, WebhookEvent, "reprocess", [event.pk])

    event.refresh_from_db()
    attempt.refresh_from_db()
    assert (event.state, event.process_count) == (WebhookEvent.State.PROCESSED, 1)
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    [(level, text)] = messages_of(response)
    assert level == "success" and f"#{event.pk}" in text


def test_reprocess_action_reports_an_error_when_iamport_is_unreachable(admin_client, sandbox, gateway, now):
    event = receive_webhook({"imp_uid": "imp_000000000001", "merchant_uid": "x", "status": "paid"}, now)
    sandbox.add_fault("payments", "http_503", times=10)

    response = run_action(admin_client, WebhookEvent, "reprocess", [event.pk])

    event.refresh_from_db()
    assert event.state == WebhookEvent.State.FAILED
    [(level, _text)] = messages_of(response)
    assert level == "error"


def test_retry_action_charges_an_open_invoice_now_when_the_card_works_again(admin_client, sandbox, gateway, now):
    customer = make_customer()
    key = register_card(customer, gateway, now=now, card=INSUFFICIENT_FUNDS_CARD)
    invoice = open_invoice(customer, now, amount=9_900)
    declined = payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)
    assert declined.status == PaymentAttempt.Status.FAILED
    sandbox.set_card_behaviour(key.customer_uid, "paid")

    response = run_action(admin_client, Invoice, "retry_now", [invoice.pk])

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.attempts.filter(status=PaymentAttempt.Status.SUCCEEDED).count() == 1
    [(level, text)] = messages_of(response)
    assert level == "success" and "9,900" in text


def test_retry_action_reports_the_decline_when_the_card_still_fails(admin_client, sandbox, gateway, now):
    customer = make_customer()
    register_card(customer, gateway, now=now, card=INSUFFICIENT_FUNDS_CARD)
    invoice = open_invoice(customer, now)

    response = run_action(admin_client, Invoice, "retry_now", [invoice.pk])

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN
    assert invoice.attempts.get().status == PaymentAttempt.Status.FAILED
    [(level, _text)] = messages_of(response)
    assert level == "error"


def test_retry_action_skips_a_paid_invoice_with_a_warning_when_selected(admin_client, sandbox, gateway, now):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    invoice = open_invoice(customer, now)
    payment_charge(invoice_id=invoice.pk, now=now, gateway=gateway)

    response = run_action(admin_client, Invoice, "retry_now", [invoice.pk])

    assert invoice.attempts.count() == 1
    [(level, _text)] = messages_of(response)
    assert level == "warning"


@pytest.mark.parametrize(
    ("model", "action"),
    [(PaymentAttempt, "reconcile_now"), (WebhookEvent, "reprocess"), (Invoice, "retry_now")],
)
def test_action_is_offered_only_when_staff_holds_the_change_permission(client, world, model, action):
    name = model._meta.model_name
    viewer, operator = staff_user(f"billing.view_{name}"), staff_user(f"billing.view_{name}", f"billing.change_{name}")
    url = reverse(f"admin:billing_{name}_changelist")

    client.force_login(viewer)
    as_viewer = client.get(url)
    client.force_login(operator)
    as_operator = client.get(url)

    assert (as_viewer.status_code, as_operator.status_code) == (200, 200)
    assert f'value="{action}"' not in as_viewer.content.decode()
    assert f'value="{action}"' in as_operator.content.decode()
    assert client.get(reverse(f"admin:billing_{name}_add")).status_code == 403  # still no editing
