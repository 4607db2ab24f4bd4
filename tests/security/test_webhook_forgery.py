"""Forged and replayed webhooks POSTed to /iamport/webhook never change money state.

V1 webhooks are unsigned: the body is a hint, the payment is re-fetched from Iamport (the sandbox here) and
matched by the merchant_uid Iamport reports. Processing runs eagerly (CELERY_TASK_ALWAYS_EAGER) after the
request's commit, as a worker would run it. A genuine webhook settling an attempt is the control that proves
processing really ran; every other test asserts attempts, invoices, refunds and subscriptions are unchanged.
"""

from __future__ import annotations

import json

import pytest

from billing import clock
from billing.models import AuditLog, Invoice, PaymentAttempt, Refund, WebhookEvent
from billing.services.payments import payment_attempt_create, payment_charge
from billing.services.refunds import refund_create
from config.celery import app as celery_app
from subscriptions.models import Subscription
from tests.billing.test_payments import open_invoice
from tests.factories import INSUFFICIENT_FUNDS_CARD, make_customer, register_card

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def eager_processing(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # Celery copied its configuration from settings when the app was first used: tell it too.
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """POST a body to the webhook endpoint; its after-commit processing runs before this returns."""

    def post(body: dict | str, content_type: str = "application/json") -> WebhookEvent:
        data = body if isinstance(body, str) else json.dumps(body)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/iamport/webhook", data, content_type=content_type)
        assert response.status_code == 200  # always: Iamport must not retry a forgery forever
        return WebhookEvent.objects.get(pk=response.json()["id"])

    return post


# Audit actions that record money moving (flagging an attempt for an operator is not one of them).
MONEY_ACTIONS = ("payment.succeeded", "payment.failed", "invoice.paid", "refund.requested", "refund.synced")


def money_state(*, except_attempt: PaymentAttempt | None = None) -> dict:
    """Everything a forged event could try to move: attempts, invoices, refunds, subscriptions, audit rows."""
    attempts = PaymentAttempt.objects.exclude(pk=getattr(except_attempt, "pk", None)).order_by("pk")
    return {
        "attempts": list(attempts.values_list("pk", "status", "amount", "imp_uid")),
        "invoices": list(Invoice.objects.order_by("pk").values_list("pk", "status", "total")),
        "refunds": list(Refund.objects.order_by("pk").values_list("pk", "status", "amount")),
        "subscriptions": list(Subscription.objects.order_by("pk").values_list("pk", "status", "current_period_end")),
        "money_audit": AuditLog.objects.filter(action__in=MONEY_ACTIONS).count(),
    }


@pytest.fixture
def pending(gateway):
    """An open invoice of ours with a PENDING attempt: what a forger would like to see marked paid."""
    customer = make_customer()
    register_card(customer, gateway, now=clock.now())
    invoice = open_invoice(customer, clock.now())
    return payment_attempt_create(invoice_id=invoice.pk, now=clock.now())


def test_genuine_webhook_settles_an_unknown_attempt_when_posted_to_the_endpoint(sandbox, gateway, deliver):
    # The control: processing really runs behind the endpoint, so "nothing changed" below means something.
    customer = make_customer()
    register_card(customer, gateway, now=clock.now())
    sandbox.add_fault("again", "timeout_after_commit", times=1)
    attempt = payment_charge(invoice_id=open_invoice(customer, clock.now()).pk, now=clock.now(), gateway=gateway)
    assert attempt.status == PaymentAttempt.Status.UNKNOWN
    [paid] = [p for p in sandbox.payments() if p["merchant_uid"] == attempt.merchant_uid]

    event = deliver({"imp_uid": paid["imp_uid"], "merchant_uid": attempt.merchant_uid, "status": "paid"})

    attempt.refresh_from_db()
    assert event.state == WebhookEvent.State.PROCESSED
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED and attempt.invoice.status == Invoice.Status.PAID


def test_webhook_with_an_unknown_imp_uid_changes_no_money_state_when_it_claims_our_invoice_is_paid(pending, deliver):
    before = money_state()

    event = deliver({"imp_uid": "imp_000000000001", "merchant_uid": pending.merchant_uid, "status": "paid"})

    assert event.state == WebhookEvent.State.IGNORED
    assert money_state() == before


def test_webhook_with_someone_elses_payment_changes_no_money_state_when_it_names_our_merchant_uid(
    world, pending, deliver
):
    before = money_state()
    theirs = world.other.payment  # a real, paid Iamport payment of another subscriber

    event = deliver({"imp_uid": theirs.imp_uid, "merchant_uid": pending.merchant_uid, "status": "paid"})

    assert event.state == WebhookEvent.State.FLAGGED
    assert money_state() == before


def test_webhook_for_a_payment_of_a_tampered_amount_changes_no_money_state_when_iamport_reports_less(
    gateway, pending, deliver
):
    # Someone got Iamport to charge our merchant_uid for less than the invoice (e.g. a browser-side amount).
    cheap = gateway.charge_billing_key(
        customer_uid=pending.customer_uid, merchant_uid=pending.merchant_uid, amount=pending.amount - 9_000, name="x"
    )
    assert cheap.status == "paid"
    before = money_state(except_attempt=pending)

    event = deliver(
        {"imp_uid": cheap.imp_uid, "merchant_uid": pending.merchant_uid, "status": "paid", "amount": pending.amount}
    )

    pending.refresh_from_db()
    assert event.state == WebhookEvent.State.FLAGGED
    # Parked for an operator (UNKNOWN stops any retry charging the customer again), never SUCCEEDED.
    assert (pending.status, pending.imp_uid) == (PaymentAttempt.Status.UNKNOWN, None)
    assert "we asked for" in pending.flagged_reason
    assert money_state(except_attempt=pending) == before


def test_webhook_claiming_paid_changes_no_money_state_when_iamport_says_the_charge_failed(gateway, deliver):
    customer = make_customer()
    register_card(customer, gateway, now=clock.now(), card=INSUFFICIENT_FUNDS_CARD)
    failed = payment_charge(invoice_id=open_invoice(customer, clock.now()).pk, now=clock.now(), gateway=gateway)
    assert failed.status == PaymentAttempt.Status.FAILED and failed.imp_uid
    before = money_state()

    deliver({"imp_uid": failed.imp_uid, "merchant_uid": failed.merchant_uid, "status": "paid"})

    assert money_state() == before


def test_replayed_webhooks_change_no_money_state_when_the_payment_was_since_refunded(world, gateway, deliver):
    payment = world.owner.payment
    genuine = {"imp_uid": payment.imp_uid, "merchant_uid": payment.merchant_uid, "status": "paid"}
    assert deliver(genuine).state == WebhookEvent.State.PROCESSED  # the original delivery: a no-op already
    refund_create(attempt_id=payment.pk, amount=payment.amount, reason="full refund", now=clock.now())
    before = money_state()

    events = [deliver(genuine) for _ in range(3)]  # an attacker (or Iamport) replays the old "paid" event
    events.append(deliver({**genuine, "status": "cancelled"}))

    assert {event.state for event in events} == {WebhookEvent.State.PROCESSED}
    assert money_state() == before
    assert Refund.objects.filter(attempt=payment).count() == 1


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("not json at all", "application/json"),
        ("[1, 2, 3]", "application/json"),
        ('{"merchant_uid": "kb1_1_abc", "status": "paid"}', "application/json"),
        ("imp_uid=&status=paid", "application/x-www-form-urlencoded"),
        ("\xff\xfe<>" * 100, "text/plain"),
        ('{"imp_uid": "imp_\x00"}', "application/json"),  # a NUL byte (PostgreSQL text cannot hold it)
    ],
    ids=["garbage", "json-array", "no-imp_uid", "empty-form", "binary", "nul-byte"],
)
def test_malformed_webhook_is_stored_and_ignored_when_the_body_cannot_name_a_payment(
    world, deliver, body, content_type
):
    before = money_state()

    event = deliver(body, content_type)

    assert event.state == WebhookEvent.State.IGNORED
    assert money_state() == before
