"""Webhooks racing the API answer (A6 item 6): the sandbox posts its webhooks over HTTP to a live Django server
(notice_url = SITE_URL + /iamport/webhook), which processes them inside the request (eager Celery).

Whichever of the API answer, the webhook and the janitor lands first settles the attempt; the others change
nothing. Duplicates, a cancel delivered before the payment, and forged bodies change nothing wrong."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request

import pytest

from billing.models import AuditLog, Invoice, PaymentAttempt, Refund, WebhookEvent
from billing.services.payments import payments_reconcile_unsettled
from subscriptions.services.renewals import subscription_renew
from subscriptions.services.sweep import billing_run
from tests.reliability.conftest import run_in_threads
from tests.reliability.helpers import (
    again_requests,
    assert_books_balance,
    attempts_of,
    charged_payments,
    renewal_invoice,
    wait_for_sandbox_payment,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)
Status = PaymentAttempt.Status
State = WebhookEvent.State
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _deliveries_finish(sandbox):
    yield
    # The database is flushed after each test: let the sandbox's in-flight deliveries land first.
    wait_until(lambda: all(w["state"] != "pending" for w in sandbox.webhooks()), timeout=10)


def post_webhook(base_url: str, body: dict) -> WebhookEvent:
    request = urllib.request.Request(f"{base_url}/iamport/webhook", data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.loads(response.read())["id"]
    return WebhookEvent.objects.get(pk=event_id)


def events_for(merchant_uid: str) -> list[WebhookEvent]:
    return list(WebhookEvent.objects.filter(merchant_uid=merchant_uid).order_by("id"))


def ids_of(attempt: PaymentAttempt) -> dict:
    return {"imp_uid": attempt.imp_uid, "merchant_uid": attempt.merchant_uid}


def settled_by(attempt: PaymentAttempt) -> list[str]:
    """Who recorded the success, once per success."""
    return list(
        AuditLog.objects.filter(action="payment.succeeded", object_id=str(attempt.pk)).values_list(
            "actor_label", flat=True
        )
    )


class AnswerAfterWebhook:
    """The real gateway, except that a charge's answer reaches us only once Iamport's paid webhook for it
    has been processed: the network delivered the webhook first."""

    def __init__(self, gateway):
        self._gateway = gateway
        self.webhook_was_first = None

    def __getattr__(self, name):
        return getattr(self._gateway, name)

    def charge_billing_key(self, **kwargs):
        payment = self._gateway.charge_billing_key(**kwargs)
        self.webhook_was_first = wait_until(
            lambda: (
                WebhookEvent.objects.filter(merchant_uid=kwargs["merchant_uid"]).exclude(state=State.RECEIVED).exists()
            )
        )
        return payment


def test_attempt_succeeds_once_when_the_paid_webhook_is_processed_before_the_api_answer(
    sandbox, gateway, subscribed, now, webhooks_live
):
    sub = subscribed(now=now)
    sandbox.add_fault("again", "delay", times=1, delay_ms=500)
    late_answer = AnswerAfterWebhook(gateway)

    outcome = subscription_renew(subscription_id=sub.pk, now=sub.current_period_end + MINUTE, gateway=late_answer)

    [attempt] = attempts_of(renewal_invoice(sub))
    [event] = events_for(attempt.merchant_uid)
    assert late_answer.webhook_was_first
    assert outcome == "renewed:succeeded"
    assert (event.state, event.status) == (State.PROCESSED, "paid")
    assert settled_by(attempt) == ["webhook"]  # the API answer arrived second and changed nothing
    assert AuditLog.objects.filter(action="invoice.paid", object_id=str(attempt.invoice_id)).count() == 1
    assert_books_balance(sandbox)


def test_attempt_never_goes_unknown_when_the_webhook_settles_it_and_the_api_answer_is_then_lost(
    sandbox, gateway, subscribed, now, webhooks_live
):
    sub = subscribed(now=now)
    sandbox.add_fault("again", "timeout_after_commit", times=1, hold_ms=1_500)  # then the connection drops

    outcome = subscription_renew(subscription_id=sub.pk, now=sub.current_period_end + MINUTE, gateway=gateway)

    [attempt] = attempts_of(renewal_invoice(sub))
    assert outcome == "renewed:succeeded"
    assert settled_by(attempt) == ["webhook"]
    assert not AuditLog.objects.filter(action="payment.unknown", object_id=str(attempt.pk)).exists()
    assert payments_reconcile_unsettled(now=sub.current_period_end + 5 * MINUTE, gateway=gateway)["checked"] == 0
    assert_books_balance(sandbox)


def test_duplicated_webhooks_change_nothing_when_they_arrive_after_the_api_answer(
    sandbox, gateway, subscribed, now, webhooks_live
):
    sub = subscribed(now=now)
    sandbox.add_fault("again", "delay", times=1, delay_ms=300)
    subscription_renew(subscription_id=sub.pk, now=sub.current_period_end + MINUTE, gateway=gateway)
    [attempt] = attempts_of(renewal_invoice(sub))
    assert wait_until(lambda: len(events_for(attempt.merchant_uid)) == 1)

    body = {"imp_uid": attempt.imp_uid, "merchant_uid": attempt.merchant_uid, "status": "paid"}
    replays = [post_webhook(webhooks_live.url, body) for _ in range(3)]

    assert [e.state for e in replays] == [State.PROCESSED] * 3
    assert len(settled_by(attempt)) == 1
    assert AuditLog.objects.filter(action="invoice.paid", object_id=str(attempt.invoice_id)).count() == 1
    assert len(again_requests(sandbox, attempt.merchant_uid)) == 1
    assert_books_balance(sandbox)


def test_a_console_refund_is_recorded_once_when_its_cancelled_webhook_arrives_before_the_paid_one(
    sandbox, gateway, subscribed, now, webhook_gate
):
    sub = subscribed(now=now)
    webhook_gate.hold("paid")
    sandbox.add_fault("again", "timeout_after_commit", times=1, hold_ms=2_500)
    assert subscription_renew(subscription_id=sub.pk, now=sub.current_period_end + MINUTE, gateway=gateway) == (
        "renewed:unknown"
    )
    [attempt] = attempts_of(renewal_invoice(sub))
    paid = wait_for_sandbox_payment(sandbox, attempt.merchant_uid)

    # An operator refunds it in the Iamport console; its webhook overtakes the (held) paid one.
    gateway.cancel_payment(imp_uid=paid["imp_uid"], reason="console refund", enable_webhook=True)
    assert wait_until(lambda: webhook_gate.statuses(attempt.merchant_uid) == ["cancelled"])
    webhook_gate.release()
    assert wait_until(lambda: webhook_gate.statuses(attempt.merchant_uid) == ["cancelled", "paid"])

    attempt.refresh_from_db()
    events = events_for(attempt.merchant_uid)
    assert [(e.status, e.state) for e in events] == [("cancelled", State.PROCESSED), ("paid", State.PROCESSED)]
    assert attempt.status == Status.SUCCEEDED
    assert settled_by(attempt) == ["webhook"]
    assert list(Refund.objects.filter(attempt=attempt).values_list("amount", flat=True)) == [attempt.amount]
    assert payments_reconcile_unsettled(now=sub.current_period_end + 5 * MINUTE, gateway=gateway)["checked"] == 0
    assert_books_balance(sandbox)


def test_forged_webhooks_change_nothing_when_the_imp_uid_is_unknown_or_the_merchant_uid_is_someone_elses(
    sandbox, gateway, subscribed, now, webhooks_live
):
    victim = subscribed(now=now)
    other = subscribed(now=now)
    sandbox.add_fault("again", "timeout_before_commit", times=1, hold_ms=2_500)
    subscription_renew(subscription_id=victim.pk, now=victim.current_period_end + MINUTE, gateway=gateway)
    invoice = renewal_invoice(victim)
    [attempt] = attempts_of(invoice)
    assert attempt.status == Status.UNKNOWN  # nothing was charged: a forger would like us to believe otherwise
    others_payment = PaymentAttempt.objects.get(invoice__subscription_link__subscription=other)

    unknown_imp_uid = post_webhook(
        webhooks_live.url, {"imp_uid": "imp_999999999999", "merchant_uid": attempt.merchant_uid, "status": "paid"}
    )
    borrowed = post_webhook(
        webhooks_live.url,
        {"imp_uid": others_payment.imp_uid, "merchant_uid": attempt.merchant_uid, "status": "paid"},
    )
    garbage = post_webhook(webhooks_live.url, {"merchant_uid": attempt.merchant_uid, "status": "paid"})

    attempt.refresh_from_db()
    invoice.refresh_from_db()
    others_payment.refresh_from_db()
    assert unknown_imp_uid.state == State.IGNORED
    assert borrowed.state == State.FLAGGED
    assert garbage.state == State.IGNORED
    assert (attempt.status, attempt.flagged_reason) == (Status.UNKNOWN, "")
    assert invoice.status == Invoice.Status.OPEN
    assert others_payment.status == Status.SUCCEEDED
    assert not Refund.objects.exists()
    assert len(again_requests(sandbox)) == 3


def test_invoice_is_parked_for_an_operator_and_never_retried_when_iamport_charged_a_different_amount(
    sandbox, gateway, subscribed, now, webhooks_live, settings
):
    grace = dt.timedelta(seconds=settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS)
    sub = subscribed(now=now)
    renew_at = sub.current_period_end + MINUTE
    sandbox.add_fault("again", "timeout_before_commit", times=1, hold_ms=2_500)
    subscription_renew(subscription_id=sub.pk, now=renew_at, gateway=gateway)
    invoice = renewal_invoice(sub)
    [attempt] = attempts_of(invoice)

    # Someone holding our key charges 100 won under our merchant_uid; Iamport's webhook is genuine.
    gateway.charge_billing_key(
        customer_uid=attempt.customer_uid,
        merchant_uid=attempt.merchant_uid,
        amount=100,
        name="tampered",
        notice_url=f"{webhooks_live.url}/iamport/webhook",
    )
    assert wait_until(lambda: [e.state for e in events_for(attempt.merchant_uid)] == [State.FLAGGED])

    for at in (renew_at + 5 * MINUTE, renew_at + grace + MINUTE, renew_at + dt.timedelta(days=1)):
        billing_run(now=at, gateway=gateway)

    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert attempt.status == Status.UNKNOWN
    assert "100" in attempt.flagged_reason
    assert invoice.status == Invoice.Status.OPEN
    assert len(again_requests(sandbox)) == 3  # first period, the dropped renewal, the tampered charge: no retry


def test_a_partial_console_refund_is_recorded_once_when_its_webhook_is_delivered_several_times_at_once(
    sandbox, gateway, subscribed, now, webhooks_live
):
    sub = subscribed(now=now)
    [attempt] = PaymentAttempt.objects.filter(invoice__subscription_link__subscription=sub)
    assert wait_until(lambda: [e.state for e in events_for(attempt.merchant_uid)] == [State.PROCESSED])
    sandbox.set_latency(300)  # each burst's lookups return together, as a burst of redeliveries would

    cancellations = []
    for _ in range(3):  # three console refunds, each webhook delivered 6 times at once
        refunded = gateway.cancel_payment(imp_uid=attempt.imp_uid, amount=1_000, reason="console refund")
        cancellation_id = refunded.cancel_history[-1].cancellation_id
        cancellations.append((cancellation_id, 1_000))
        body = {**ids_of(attempt), "status": "cancelled", "cancellation_id": cancellation_id}
        events = run_in_threads(*[lambda body=body: post_webhook(webhooks_live.url, body) for _ in range(6)])
        assert {e.state for e in events} == {State.PROCESSED}

    refunds = sorted(Refund.objects.filter(attempt=attempt).values_list("cancellation_id", "amount"))
    assert refunds == sorted(cancellations), "Iamport refunded 1,000 won three times"


def test_dunning_does_not_charge_again_when_a_webhook_shows_iamport_charged_an_attempt_we_had_settled_failed(
    sandbox, gateway, subscribed, now, webhooks_live, settings
):
    """Iamport applies a charge after our not-found grace: the janitor had concluded "never arrived" (FAILED,
    quick retry scheduled). The paid webhook then proves the money moved: that payment pays the invoice, and
    the retry must not charge again."""
    grace = dt.timedelta(seconds=settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS)
    sub = subscribed(now=now)
    renew_at = sub.current_period_end + MINUTE
    sandbox.add_fault("again", "delay", times=1, delay_ms=int(settings.IAMPORT_READ_TIMEOUT * 1000) + 1_500)
    assert subscription_renew(subscription_id=sub.pk, now=renew_at, gateway=gateway) == "renewed:unknown"
    invoice = renewal_invoice(sub)
    [attempt] = attempts_of(invoice)
    payments_reconcile_unsettled(now=renew_at + grace + MINUTE, gateway=gateway)  # Iamport has nothing yet
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == (Status.FAILED, "not_found")

    wait_for_sandbox_payment(sandbox, attempt.merchant_uid)  # ...and then it charged
    assert wait_until(lambda: [e.state for e in events_for(attempt.merchant_uid)] == [State.PROCESSED])
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    # The late payment is the invoice's payment: recorded, so dunning has nothing left to charge.
    assert attempt.status == Status.SUCCEEDED and invoice.status == "paid" and invoice.next_attempt_at is None

    billing_run(now=invoice.next_attempt_at or renew_at + grace + dt.timedelta(minutes=10), gateway=gateway)

    ours = set(invoice.attempts.values_list("merchant_uid", flat=True))
    invoice_charges = [p for p in charged_payments(sandbox) if p["merchant_uid"] in ours]
    assert len(invoice_charges) == 1, f"the renewal was charged {len(invoice_charges)} times"
    assert len(again_requests(sandbox)) == 2
