"""Batches: subscriptions_renew (due subscriptions renewed together) and invoices_retry (due dunning retries
charged together), against the real sandbox over HTTP.

A batch must give every row exactly what handling it alone gives, whatever mix of states the batch holds, and
its cost in statements must not grow with its size.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.models import AuditLog, Customer, Invoice, PaymentAttempt
from billing.services.payments import charging
from subscriptions.models import Subscription, SubscriptionInvoice
from subscriptions.services.dunning import invoice_retry, invoices_retry
from subscriptions.services.lifecycle import subscription_create
from subscriptions.services.renewals import subscription_renew, subscriptions_renew
from tests.factories import GOOD_CARD, PlanFactory, make_customer, register_card
from tests.reliability.conftest import run_in_threads
from tests.subscriptions.lifecycle_helpers import grant_consent

pytestmark = pytest.mark.django_db
KST = ZoneInfo("Asia/Seoul")
S = Subscription.Status
T0 = dt.datetime(2027, 3, 10, 9, 0, tzinfo=KST)
RENEW_AT = dt.datetime(2027, 4, 10, 9, 5, tzinfo=KST)  # five minutes after the first period ends


@pytest.fixture
def plan():
    return PlanFactory(code="basic", amount=9_900)


@pytest.fixture
def subscribe(gateway, plan, django_capture_on_commit_callbacks):
    def make(*, card: str = GOOD_CARD, on_plan=None) -> Subscription:
        customer = make_customer()
        with django_capture_on_commit_callbacks(execute=True):
            register_card(customer, gateway, now=T0, card=card)
            return subscription_create(customer=customer, plan=on_plan or plan, now=T0, gateway=gateway)

    return make


def failure_emails(outbox) -> list:
    """The "your payment failed" emails (receipts of the charges that went through are not about failure)."""
    return [message for message in outbox if "결제 실패" in message.subject]


def renewal_of(sub: Subscription) -> Invoice | None:
    return Invoice.objects.filter(subscription_link__subscription=sub, kind=Invoice.Kind.RENEWAL).first()


def charges_at_iamport(sandbox, sub: Subscription) -> int:
    uids = set(PaymentAttempt.objects.filter(invoice__customer=sub.customer).values_list("merchant_uid", flat=True))
    return sum(1 for p in sandbox.payments() if p["merchant_uid"] in uids and p["status"] == "paid")


def statements_of_a_batch(subs, gateway) -> tuple[dict, int]:
    with CaptureQueriesContext(connection) as captured:
        outcomes = subscriptions_renew(subscription_ids=[s.pk for s in subs], now=RENEW_AT, gateway=gateway)
    return outcomes, len(captured.captured_queries)


def test_a_batch_costs_the_same_statements_whether_it_renews_two_subscriptions_or_ten(
    sandbox, gateway, subscribe, monkeypatch
):
    # One settling round per batch (outcomes are otherwise also recorded every half second, which depends on
    # how fast the box is): the count then depends only on the code.
    monkeypatch.setattr(charging, "SETTLE_EVERY_SECONDS", 60.0)
    small = [subscribe() for _ in range(2)]
    large = [subscribe() for _ in range(10)]
    subscriptions_renew(subscription_ids=[subscribe().pk], now=RENEW_AT, gateway=gateway)  # warm-up

    small_outcomes, small_statements = statements_of_a_batch(small, gateway)
    large_outcomes, large_statements = statements_of_a_batch(large, gateway)

    assert set(small_outcomes.values()) == set(large_outcomes.values()) == {"renewed:succeeded"}
    assert small_statements == large_statements <= 30
    for sub in small + large:
        assert renewal_of(sub).status == Invoice.Status.PAID
        assert charges_at_iamport(sandbox, sub) == 2  # the first period and this renewal


def test_each_subscription_of_a_mixed_batch_ends_as_it_would_alone(
    sandbox, gateway, subscribe, plan, django_capture_on_commit_callbacks
):
    pro = PlanFactory(code="pro", amount=29_900)
    trial_plan = PlanFactory(code="trial", amount=4_900, trial_days=7)
    renewing = subscribe()
    declined = subscribe()
    sandbox.set_card_behaviour(declined.billing_key.customer_uid, "insufficient_funds")
    canceling = subscribe()
    Subscription.objects.filter(pk=canceling.pk).update(cancel_at_period_end=True)
    pausing = subscribe()
    Subscription.objects.filter(pk=pausing.pk).update(pause_requested=True, pause_periods=1)
    downgrading = subscribe(on_plan=pro)
    Subscription.objects.filter(pk=downgrading.pk).update(pending_plan=plan)
    with_credit = subscribe()
    Customer.objects.filter(pk=with_credit.customer_id).update(credit_balance=3_000)
    trialing = subscribe(on_plan=trial_plan)
    with django_capture_on_commit_callbacks(execute=True):  # its 7-day notice, by email (no phone): sent at once
        assert subscription_renew(subscription_id=trialing.pk, now=T0, gateway=gateway) == "trial_notice"
    grant_consent(trialing, T0 + dt.timedelta(days=1))
    unanswered = subscribe(on_plan=trial_plan)
    with django_capture_on_commit_callbacks(execute=True):
        assert subscription_renew(subscription_id=unanswered.pk, now=T0, gateway=gateway) == "trial_notice"
    not_due = subscribe()
    Subscription.objects.filter(pk=not_due.pk).update(next_event_at=RENEW_AT + dt.timedelta(days=1))
    batch = [renewing, declined, canceling, pausing, downgrading, with_credit, trialing, unanswered, not_due]

    outcomes = subscriptions_renew(subscription_ids=[s.pk for s in batch], now=RENEW_AT, gateway=gateway)

    assert outcomes == {
        renewing.pk: "renewed:succeeded",
        declined.pk: "renewed:failed",
        canceling.pk: "ended",
        pausing.pk: "paused",
        downgrading.pk: "renewed:succeeded",
        with_credit.pk: "renewed:succeeded",
        trialing.pk: "renewed:succeeded",
        unanswered.pk: "ended",
        not_due.pk: "not_due",
    }
    for sub in batch:
        sub.refresh_from_db()
    assert renewing.status == S.ACTIVE and renewing.current_period_index == 1
    assert declined.status == S.PAST_DUE and renewal_of(declined).next_attempt_at is not None
    assert canceling.status == S.CANCELED and renewal_of(canceling) is None
    assert pausing.status == S.PAUSED and renewal_of(pausing) is None
    assert (downgrading.plan_id, downgrading.pending_plan_id) == (plan.pk, None)
    assert renewal_of(downgrading).total == 9_900
    assert renewal_of(with_credit).total == 9_900 - 3_000
    assert Customer.objects.get(pk=with_credit.customer_id).credit_balance == 0
    assert trialing.status == S.ACTIVE and trialing.current_period_index == 0
    first = Invoice.objects.get(subscription_link__subscription=trialing, kind=Invoice.Kind.SUBSCRIPTION_CREATE)
    assert (first.status, first.total) == (Invoice.Status.PAID, 4_900)
    assert (unanswered.status, unanswered.end_reason) == (S.CANCELED, "trial_consent_missing")
    assert not Invoice.objects.filter(subscription_link__subscription=unanswered).exists()
    assert not_due.current_period_index == 0
    paid_once = [renewing, downgrading, with_credit]
    assert [charges_at_iamport(sandbox, sub) for sub in paid_once] == [2, 2, 2]


@pytest.mark.django_db(transaction=True)
def test_a_subscription_another_worker_holds_is_skipped_and_renewed_by_the_next_batch(sandbox, gateway, subscribe):
    held, free = subscribe(), subscribe()

    with transaction.atomic():  # another worker holds this row, in this thread's own connection
        Subscription.objects.select_for_update().get(pk=held.pk)
        [outcomes] = run_in_threads(
            lambda: subscriptions_renew(subscription_ids=[held.pk, free.pk], now=RENEW_AT, gateway=gateway)
        )

    assert outcomes == {held.pk: "locked", free.pk: "renewed:succeeded"}
    assert subscription_renew(subscription_id=held.pk, now=RENEW_AT, gateway=gateway) == "renewed:succeeded"
    assert subscription_renew(subscription_id=held.pk, now=RENEW_AT, gateway=gateway) == "not_due"
    assert charges_at_iamport(sandbox, held) == charges_at_iamport(sandbox, free) == 2


def test_a_batch_without_due_work_sends_nothing_to_the_gateway(sandbox, gateway, subscribe):
    subs = [subscribe() for _ in range(3)]
    sandbox.clear_requests_log()

    outcomes = subscriptions_renew(subscription_ids=[s.pk for s in subs], now=T0, gateway=gateway)

    assert set(outcomes.values()) == {"not_due"}
    assert [r for r in sandbox.requests_log() if r.get("endpoint") == "again"] == []
    assert SubscriptionInvoice.objects.filter(kind="renewal").count() == 0


def test_a_renewal_refused_for_the_gateways_rate_is_retried_quietly_until_it_is_charged_once(
    sandbox, gateway, subscribe, django_capture_on_commit_callbacks, mailoutbox
):
    sub = subscribe()
    mailoutbox.clear()
    sandbox.add_fault("again", "throttle", times=2, retry_after=30)

    with django_capture_on_commit_callbacks(execute=True):
        outcomes = subscriptions_renew(subscription_ids=[sub.pk], now=RENEW_AT, gateway=gateway)
    invoice = renewal_of(sub)
    assert outcomes == {sub.pk: "renewed:failed"}
    assert invoice.attempts.get().failure_code == "throttled"
    assert invoice.next_attempt_at == RENEW_AT + dt.timedelta(minutes=1)
    assert invoice.first_failed_at is None  # dunning has not started

    with django_capture_on_commit_callbacks(execute=True):
        assert invoice_retry(invoice_id=invoice.pk, now=RENEW_AT + dt.timedelta(minutes=1)).status == "failed"
    invoice.refresh_from_db()
    assert invoice.next_attempt_at == RENEW_AT + dt.timedelta(minutes=3)  # 1, then 2 minutes later
    with django_capture_on_commit_callbacks(execute=True):
        assert invoice_retry(invoice_id=invoice.pk, now=RENEW_AT + dt.timedelta(minutes=3)).status == "succeeded"

    sub.refresh_from_db()
    assert sub.status == S.ACTIVE
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID
    assert charges_at_iamport(sandbox, sub) == 2
    assert failure_emails(mailoutbox) == []  # nothing failed as far as the subscriber is concerned


def test_a_renewal_refused_for_the_gateways_rate_too_often_enters_dunning_as_a_gateway_error(
    sandbox, gateway, subscribe, settings, django_capture_on_commit_callbacks, mailoutbox
):
    settings.BILLING_THROTTLED_RETRIES = 1
    sub = subscribe()
    mailoutbox.clear()
    sandbox.add_fault("again", "throttle", times=2)
    subscriptions_renew(subscription_ids=[sub.pk], now=RENEW_AT, gateway=gateway)
    invoice = renewal_of(sub)

    with django_capture_on_commit_callbacks(execute=True):
        invoice_retry(invoice_id=invoice.pk, now=RENEW_AT + dt.timedelta(minutes=1))

    sub.refresh_from_db()
    invoice.refresh_from_db()
    assert sub.status == S.PAST_DUE
    assert invoice.last_decline_class == "gateway" and invoice.first_failed_at is not None
    assert len(failure_emails(mailoutbox)) == 1


def declined_renewal(subscribe, gateway, sandbox, behaviour: str) -> Invoice:
    """A renewal whose charge was declined: the card paid for the first period, then went bad."""
    sub = subscribe()
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, behaviour)
    assert subscription_renew(subscription_id=sub.pk, now=RENEW_AT, gateway=gateway) == "renewed:failed"
    return renewal_of(sub)


def test_a_retry_batch_costs_the_same_statements_whether_it_charges_two_invoices_or_eight(
    sandbox, gateway, subscribe, monkeypatch
):
    # Every card has recovered: the batch shares the claim, the attempts and the booking of the successes.
    monkeypatch.setattr(charging, "SETTLE_EVERY_SECONDS", 60.0)  # one settling round per batch
    small = [declined_renewal(subscribe, gateway, sandbox, "insufficient_funds") for _ in range(2)]
    large = [declined_renewal(subscribe, gateway, sandbox, "insufficient_funds") for _ in range(8)]
    for invoice in small + large:
        sandbox.set_card_behaviour(invoice.attempts.get().customer_uid, "paid")
    retry_at = RENEW_AT + dt.timedelta(days=1)

    counts = []
    for invoices in (small, large):
        with CaptureQueriesContext(connection) as captured:
            attempts = invoices_retry(invoice_ids=[i.pk for i in invoices], now=retry_at, gateway=gateway)
        counts.append(len(captured.captured_queries))
        assert {a.status for a in attempts.values()} == {"succeeded"}

    assert counts[0] == counts[1], counts
    assert set(Subscription.objects.values_list("status", flat=True)) == {S.ACTIVE}  # back from past due


def test_each_invoice_of_a_mixed_retry_batch_ends_as_it_would_alone(sandbox, gateway, subscribe):
    recovered = declined_renewal(subscribe, gateway, sandbox, "insufficient_funds")
    sandbox.set_card_behaviour(recovered.attempts.get().customer_uid, "paid")
    lost = declined_renewal(subscribe, gateway, sandbox, "lost_card")
    deadline = lost.next_attempt_at
    Invoice.objects.filter(pk=lost.pk).update(next_attempt_at=RENEW_AT)  # due, but the same lost card
    later = declined_renewal(subscribe, gateway, sandbox, "insufficient_funds")
    Invoice.objects.filter(pk=later.pk).update(next_attempt_at=RENEW_AT + dt.timedelta(days=3))
    retry_at = RENEW_AT + dt.timedelta(days=1)

    attempts = invoices_retry(invoice_ids=[recovered.pk, lost.pk, later.pk], now=retry_at, gateway=gateway)

    assert attempts[recovered.pk].status == PaymentAttempt.Status.SUCCEEDED
    assert attempts[lost.pk] is None and attempts[later.pk] is None
    assert Invoice.objects.get(pk=recovered.pk).status == Invoice.Status.PAID
    assert Subscription.objects.get(subscription_invoices__invoice=recovered).status == S.ACTIVE
    assert Invoice.objects.get(pk=lost.pk).next_attempt_at == deadline  # waits for a new card
    assert lost.attempts.count() == 1 and later.attempts.count() == 1


def test_a_charge_still_queued_when_the_janitor_would_look_at_it_is_never_sent_and_is_retried_quietly(
    sandbox, gateway, subscribe, settings, django_capture_on_commit_callbacks, mailoutbox
):
    subs = [subscribe() for _ in range(6)]
    mailoutbox.clear()
    sandbox.clear_requests_log()
    settings.BILLING_CHARGE_RATE_LIMIT = 2  # the batch's six charges start 0.5 s apart: the last after 2.5 s
    settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS = 1  # ... but the janitor looks at attempts after 1 s

    with django_capture_on_commit_callbacks(execute=True):
        subscriptions_renew(subscription_ids=[s.pk for s in subs], now=RENEW_AT, gateway=gateway)

    held_back = PaymentAttempt.objects.filter(failure_code="not_sent")
    sent = {r["merchant_uid"] for r in sandbox.requests_log() if r.get("endpoint") == "again"}
    assert held_back.count() >= 3  # the slots at 1.5, 2 and 2.5 s come after the janitor's threshold
    assert len(sent) + held_back.count() == 6
    assert not sent & set(held_back.values_list("merchant_uid", flat=True))  # never sent, so never charged
    assert set(Subscription.objects.values_list("status", flat=True)) == {S.ACTIVE}
    assert failure_emails(mailoutbox) == []

    settings.BILLING_CHARGE_RATE_LIMIT = 0
    retried = invoices_retry(
        invoice_ids=list(held_back.values_list("invoice_id", flat=True)),
        now=RENEW_AT + dt.timedelta(minutes=1),
        gateway=gateway,
    )
    assert {a.status for a in retried.values()} == {"succeeded"}
    assert [charges_at_iamport(sandbox, sub) for sub in subs] == [2] * 6


def test_a_batch_of_declines_costs_the_same_statements_whether_it_declines_two_renewals_or_ten(
    sandbox, gateway, subscribe, monkeypatch, django_capture_on_commit_callbacks
):
    # Declines and their dunning are decided for the whole batch, like payments: a day when most cards fail is
    # no slower per charge than a day when they pay.
    monkeypatch.setattr(charging, "SETTLE_EVERY_SECONDS", 60.0)  # one settling round per batch
    small = [subscribe() for _ in range(2)]
    large = [subscribe() for _ in range(10)]
    warm_up = subscribe()
    for sub in [*small, *large, warm_up]:
        sandbox.set_card_behaviour(sub.billing_key.customer_uid, "insufficient_funds")
    subscriptions_renew(subscription_ids=[warm_up.pk], now=RENEW_AT, gateway=gateway)

    with django_capture_on_commit_callbacks(execute=True):
        small_outcomes, small_statements = statements_of_a_batch(small, gateway)
        large_outcomes, large_statements = statements_of_a_batch(large, gateway)

    assert set(small_outcomes.values()) == set(large_outcomes.values()) == {"renewed:failed"}
    assert small_statements == large_statements <= 30
    for sub in small + large:
        sub.refresh_from_db()
        invoice = renewal_of(sub)
        assert (sub.status, sub.next_event_at) == (S.PAST_DUE, None)
        assert invoice.status == Invoice.Status.OPEN
        assert invoice.next_attempt_at == RENEW_AT + dt.timedelta(days=1)  # the first soft retry
        assert (invoice.last_decline_class, invoice.first_failed_at) == ("soft", RENEW_AT)
    assert AuditLog.objects.filter(action="dunning.scheduled").count() == 13
    assert len(failure_emails(mail.outbox)) == 12  # each of the batches' subscribers told once, after commit


def test_a_retry_batch_of_cards_that_still_fail_costs_the_same_statements_for_two_invoices_or_eight(
    sandbox, gateway, subscribe, monkeypatch
):
    monkeypatch.setattr(charging, "SETTLE_EVERY_SECONDS", 60.0)
    small = [declined_renewal(subscribe, gateway, sandbox, "insufficient_funds") for _ in range(2)]
    large = [declined_renewal(subscribe, gateway, sandbox, "insufficient_funds") for _ in range(8)]
    retry_at = RENEW_AT + dt.timedelta(days=1)

    counts = []
    for invoices in (small, large):
        with CaptureQueriesContext(connection) as captured:
            attempts = invoices_retry(invoice_ids=[i.pk for i in invoices], now=retry_at, gateway=gateway)
        counts.append(len(captured.captured_queries))
        assert {a.status for a in attempts.values()} == {"failed"}

    assert counts[0] == counts[1], counts
    for invoice in small + large:
        invoice.refresh_from_db()
        assert invoice.next_attempt_at == RENEW_AT + dt.timedelta(days=3)  # the second soft retry
        assert invoice.first_failed_at == RENEW_AT
