"""Subscribe, renew, dunning, cancel, pause and plan changes: real Postgres, the sandbox over HTTP."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from django.core import mail

from billing.errors import NoPaymentMethodError, PaymentDeclinedError
from billing.models import Invoice, PaymentAttempt
from billing.services.webhooks import webhook_process, webhook_receive
from subscriptions.errors import AlreadySubscribedError, PlanChangeNotAllowedError
from subscriptions.models import Subscription, SubscriptionInvoice
from subscriptions.services.dunning import invoices_retry_due
from subscriptions.services.lifecycle import (
    subscription_cancel,
    subscription_create,
    subscription_pause,
    subscription_resume,
    subscriptions_due,
)
from subscriptions.services.plan_changes import subscription_change_plan, subscription_change_preview
from subscriptions.services.sweep import billing_run
from tests.factories import (
    GOOD_CARD,
    INSUFFICIENT_FUNDS_CARD,
    LOST_CARD,
    PlanFactory,
    make_customer,
    register_card,
)

pytestmark = pytest.mark.django_db
KST = ZoneInfo("Asia/Seoul")
S = Subscription.Status
T0 = dt.datetime(2027, 1, 31, 10, 0, tzinfo=KST)


@pytest.fixture
def plan():
    return PlanFactory(code="basic", amount=9_900)


@pytest.fixture
def pro():
    return PlanFactory(code="pro", amount=29_900)


@pytest.fixture(params=["again", "schedule"], autouse=True)
def strategy(request, settings):
    """Every test here runs under both billing strategies: our sweeps charging with `again`, and Iamport
    executing pre-registered schedules and telling us by webhook."""
    settings.BILLING_STRATEGY = request.param
    if request.param == "schedule":
        settings.SITE_URL = "http://127.0.0.1:9"  # a notice_url is sent; the tests deliver the webhooks
    return request.param


@pytest.fixture
def subscribe(django_capture_on_commit_callbacks):
    def subscribed(gateway, plan, *, card=GOOD_CARD, now=T0):
        customer = make_customer()
        with django_capture_on_commit_callbacks(execute=True):
            register_card(customer, gateway, now=now, card=card)
            return subscription_create(customer=customer, plan=plan, now=now, gateway=gateway)

    return subscribed


@pytest.fixture(autouse=True)
def _after_commit_runs(django_capture_on_commit_callbacks):
    """Subscriber actions commit in production, and their after-commit work (re-scheduling) runs then."""
    committed.capture = django_capture_on_commit_callbacks


def committed(service, **kwargs):
    with committed.capture(execute=True):
        return service(**kwargs)


def deliver_webhooks(sandbox, gateway, now, seen: set) -> None:
    """Deliver the sandbox's webhooks to our handler, as Iamport would POST them to notice_url."""
    for delivery in sandbox.webhooks():
        if delivery["seq"] in seen:
            continue
        seen.add(delivery["seq"])
        body = delivery["body"] if isinstance(delivery["body"], str) else json.dumps(delivery["body"])
        event = webhook_receive(raw_body=body, content_type="application/json", headers={}, source_ip=None, now=now)
        webhook_process(event_id=event.pk, now=now, gateway=gateway)


@pytest.fixture
def run(django_capture_on_commit_callbacks, strategy, sandbox):
    """One billing sweep, with after-commit work (emails, card retries, schedules) executed as in production."""
    seen: set = set()

    def sweep(gateway, now):
        with django_capture_on_commit_callbacks(execute=True):
            if strategy == "schedule":
                if int(now.timestamp()) > sandbox.now():  # its clock only moves forward (and runs on by itself)
                    sandbox.set_now(int(now.timestamp()))  # executes the schedules that fell due
                deliver_webhooks(sandbox, gateway, now, seen)
            return billing_run(now=now, gateway=gateway)

    return sweep


def paid_invoices(sub):
    return list(Invoice.objects.filter(subscription_link__subscription=sub, status="paid").order_by("period_start"))


def test_subscribe_charges_first_period_and_activates_when_card_is_good(subscribe, sandbox, gateway, plan):
    sub = subscribe(gateway, plan)

    assert sub.status == S.ACTIVE
    assert (sub.current_period_start, sub.current_period_end) == (
        T0,
        dt.datetime(2027, 2, 28, 10, 0, tzinfo=KST),
    )
    [invoice] = paid_invoices(sub)
    assert invoice.total == 9_900 and invoice.number.startswith("2027-")


def test_subscribe_stays_incomplete_and_expires_after_23_hours_when_card_declines(
    subscribe, run, sandbox, gateway, plan
):
    sub = subscribe(gateway, plan, card=INSUFFICIENT_FUNDS_CARD)
    assert sub.status == S.INCOMPLETE
    assert not sub.has_access

    run(gateway, T0 + dt.timedelta(hours=22))
    sub.refresh_from_db()
    assert sub.status == S.INCOMPLETE

    run(gateway, T0 + dt.timedelta(hours=23, seconds=1))
    sub.refresh_from_db()
    assert sub.status == S.CANCELED
    assert sub.end_reason == "incomplete_expired"
    assert Invoice.objects.get(subscription_link__subscription=sub).status == "void"


def test_subscribe_is_refused_without_a_card_or_twice(sandbox, gateway, plan):
    customer = make_customer()
    with pytest.raises(NoPaymentMethodError):
        subscription_create(customer=customer, plan=plan, now=T0, gateway=gateway)
    register_card(customer, gateway, now=T0)
    subscription_create(customer=customer, plan=plan, now=T0, gateway=gateway)
    with pytest.raises(AlreadySubscribedError):
        subscription_create(customer=customer, plan=plan, now=T0, gateway=gateway)
    assert Subscription.objects.filter(customer=customer).count() == 1


def test_renewals_follow_the_anchor_through_month_ends_and_charge_once_per_period(
    subscribe, run, sandbox, gateway, plan
):
    sub = subscribe(gateway, plan)  # anchored Jan 31, 10:00 KST

    for moment in [
        dt.datetime(2027, 2, 28, 10, 0, tzinfo=KST),
        dt.datetime(2027, 3, 31, 10, 0, tzinfo=KST),
        dt.datetime(2027, 4, 30, 10, 0, tzinfo=KST),
    ]:
        run(gateway, moment)
        run(gateway, moment)  # the sweep fired twice: nothing more happens

    starts = [inv.period_start.astimezone(KST).date().isoformat() for inv in paid_invoices(sub)]
    assert starts == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"]
    assert len([p for p in sandbox.payments() if p["status"] == "paid"]) == 4
    sub.refresh_from_db()
    assert sub.status == S.ACTIVE


def test_trial_charges_nothing_until_it_ends_and_sends_a_notice_three_days_before(subscribe, run, sandbox, gateway):
    trial_plan = PlanFactory(code="trial", amount=29_900, trial_days=14)
    sub = subscribe(gateway, trial_plan)
    assert sub.status == S.TRIALING and sandbox.payments() == []

    run(gateway, T0 + dt.timedelta(days=11, minutes=1))
    assert [m.subject for m in mail.outbox if "체험" in m.subject]
    assert sandbox.payments() == []

    run(gateway, T0 + dt.timedelta(days=14, minutes=1))
    sub.refresh_from_db()
    assert sub.status == S.ACTIVE
    assert sub.billing_anchor == T0 + dt.timedelta(days=14)
    assert [(p["status"], p["amount"]) for p in sandbox.payments()] == [("paid", 29_900)]


def test_soft_decline_retries_on_the_dunning_schedule_then_cancels(subscribe, run, sandbox, gateway, plan, settings):
    settings.BILLING_DUNNING_SOFT_RETRY_DAYS = [1, 3, 5, 10, 14]
    sub = subscribe(gateway, plan)
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "insufficient_funds")
    renewal_at = sub.current_period_end

    run(gateway, renewal_at)
    sub.refresh_from_db()
    assert sub.status == S.PAST_DUE and sub.has_access
    invoice = Invoice.objects.get(subscription_link__subscription=sub, status="open")
    assert invoice.next_attempt_at == renewal_at + dt.timedelta(days=1)
    assert any("결제 실패" in m.subject for m in mail.outbox)

    for days in (1, 3, 5, 10):
        run(gateway, renewal_at + dt.timedelta(days=days))
        invoice.refresh_from_db()
        assert invoice.status == "open"
    run(gateway, renewal_at + dt.timedelta(days=14))

    sub.refresh_from_db()
    invoice.refresh_from_db()
    assert invoice.attempts.count() == 6  # the renewal + 5 retries
    assert sub.status == S.CANCELED and sub.end_reason == "dunning_exhausted"
    assert invoice.status == "uncollectible"


def test_dunning_final_action_can_be_unpaid(subscribe, run, sandbox, gateway, plan, settings):
    settings.BILLING_DUNNING_FINAL_ACTION = "unpaid"
    settings.BILLING_DUNNING_SOFT_RETRY_DAYS = [1]
    sub = subscribe(gateway, plan)
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "limit_exceeded")
    run(gateway, sub.current_period_end)
    run(gateway, sub.current_period_end + dt.timedelta(days=1))

    sub.refresh_from_db()
    assert sub.status == S.UNPAID and not sub.has_access


def test_hard_decline_is_not_retried_on_the_same_card_and_a_new_card_pays_the_open_invoice_at_once(
    subscribe, run, sandbox, gateway, plan, django_capture_on_commit_callbacks
):
    sub = subscribe(gateway, plan)
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "lost_card")
    renewal_at = sub.current_period_end
    run(gateway, renewal_at)
    invoice = Invoice.objects.get(subscription_link__subscription=sub, status="open")
    assert invoice.last_decline_class == "hard"

    run(gateway, renewal_at + dt.timedelta(days=3))
    assert invoice.attempts.count() == 1  # waiting for a new card, not hammering a lost one

    with django_capture_on_commit_callbacks(execute=True):
        new_key = register_card(sub.customer, gateway, now=renewal_at + dt.timedelta(days=4))

    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert invoice.status == "paid"
    assert sub.status == S.ACTIVE and sub.billing_key_id == new_key.pk
    assert Subscription.objects.filter(customer=sub.customer).count() == 1


def test_hard_decline_without_a_new_card_ends_at_the_dunning_deadline(subscribe, run, sandbox, gateway, settings):
    settings.BILLING_DUNNING_SOFT_RETRY_DAYS = [1, 3]
    sub = subscribe(gateway, PlanFactory(code="p1"), card=GOOD_CARD)
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "lost_card")
    run(gateway, sub.current_period_end)
    run(gateway, sub.current_period_end + dt.timedelta(days=3))
    sub.refresh_from_db()
    assert sub.status == S.CANCELED


def test_lost_card_at_signup_is_declined_with_its_reason(subscribe, sandbox, gateway, plan):
    sub = subscribe(gateway, plan, card=LOST_CARD)
    attempt = PaymentAttempt.objects.get(invoice__subscription_link__subscription=sub)
    assert sub.status == S.INCOMPLETE
    assert "분실" in attempt.failure_reason


def test_cancel_at_period_end_keeps_access_until_then_and_charges_nothing_more(subscribe, run, sandbox, gateway, plan):
    sub = subscribe(gateway, plan)
    committed(subscription_cancel, subscription=sub, now=T0 + dt.timedelta(days=3))
    sub.refresh_from_db()
    assert sub.status == S.ACTIVE and sub.cancel_at_period_end

    run(gateway, sub.current_period_end)
    sub.refresh_from_db()
    assert sub.status == S.CANCELED and sub.ended_at == sub.current_period_end
    assert len(sandbox.payments()) == 1


def test_resume_before_period_end_undoes_the_cancel(subscribe, run, sandbox, gateway, plan):
    sub = subscribe(gateway, plan)
    committed(subscription_cancel, subscription=sub, now=T0 + dt.timedelta(days=3))
    committed(subscription_resume, subscription=sub, now=T0 + dt.timedelta(days=4), gateway=gateway)
    run(gateway, sub.current_period_end)
    sub.refresh_from_db()
    assert sub.status == S.ACTIVE
    assert len(paid_invoices(sub)) == 2


def test_cancel_now_ends_access_immediately(subscribe, sandbox, gateway, plan):
    sub = subscribe(gateway, plan)
    committed(subscription_cancel, subscription=sub, now=T0 + dt.timedelta(days=3), at_period_end=False)
    sub.refresh_from_db()
    assert sub.status == S.CANCELED and not sub.has_access
    assert subscriptions_due(now=T0 + dt.timedelta(days=400)) == []


def test_pause_for_two_periods_skips_their_charges_then_resumes_billing(subscribe, run, sandbox, gateway, plan):
    sub = subscribe(gateway, plan)
    committed(subscription_pause, subscription=sub, now=T0 + dt.timedelta(days=1), periods=2)

    run(gateway, dt.datetime(2027, 2, 28, 10, 0, tzinfo=KST))
    sub.refresh_from_db()
    assert sub.status == S.PAUSED
    assert sub.resume_at == dt.datetime(2027, 4, 30, 10, 0, tzinfo=KST)

    run(gateway, dt.datetime(2027, 3, 31, 10, 0, tzinfo=KST))
    assert len(sandbox.payments()) == 1
    run(gateway, dt.datetime(2027, 4, 30, 10, 0, tzinfo=KST))
    sub.refresh_from_db()
    assert sub.status == S.ACTIVE
    assert [i.period_start.astimezone(KST).date().isoformat() for i in paid_invoices(sub)] == [
        "2027-01-31",
        "2027-04-30",
    ]


def test_upgrade_charges_the_previewed_prorated_amount_and_switches_now(subscribe, sandbox, gateway, plan, pro):
    sub = subscribe(gateway, plan)  # Jan 31 -> Feb 28: 28 days
    halfway = T0 + dt.timedelta(days=14)
    preview = subscription_change_preview(subscription=sub, new_plan=pro, now=halfway)
    assert preview.kind == "upgrade"
    assert preview.amount_due == 10_000  # (29,900 - 9,900) x 14/28
    assert any("10,000" in line for line in preview.explanation("ko"))

    committed(subscription_change_plan, subscription=sub, new_plan=pro, now=halfway, gateway=gateway)

    sub.refresh_from_db()
    assert sub.plan == pro
    assert sorted(p["amount"] for p in sandbox.payments()) == [9_900, 10_000]
    link = SubscriptionInvoice.objects.get(subscription=sub, kind="upgrade")
    assert link.invoice.status == "paid" and link.invoice.total == preview.amount_due


def test_upgrade_changes_nothing_when_its_charge_is_declined(subscribe, sandbox, gateway, plan, pro):
    sub = subscribe(gateway, plan)
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "insufficient_funds")

    with pytest.raises(PaymentDeclinedError) as excinfo:
        committed(
            subscription_change_plan, subscription=sub, new_plan=pro, now=T0 + dt.timedelta(days=5), gateway=gateway
        )

    sub.refresh_from_db()
    assert excinfo.value.code == "payment_declined"
    assert sub.plan == plan and sub.status == S.ACTIVE
    assert SubscriptionInvoice.objects.get(subscription=sub, kind="upgrade").invoice.status == "void"
    assert invoices_retry_due(now=T0 + dt.timedelta(days=30)) == []


def test_downgrade_waits_for_the_period_end(subscribe, run, sandbox, gateway, plan, pro):
    sub = subscribe(gateway, pro)
    committed(subscription_change_plan, subscription=sub, new_plan=plan, now=T0 + dt.timedelta(days=5), gateway=gateway)
    sub.refresh_from_db()
    assert sub.plan == pro and sub.pending_plan == plan

    run(gateway, sub.current_period_end)
    sub.refresh_from_db()
    assert sub.plan == plan and sub.pending_plan is None
    assert sorted(p["amount"] for p in sandbox.payments()) == [9_900, 29_900]


def test_interval_change_starts_a_new_period_with_credit_for_unused_time(subscribe, sandbox, gateway, plan):
    yearly = PlanFactory(code="yearly", amount=99_000, interval="year")
    sub = subscribe(gateway, plan)
    halfway = T0 + dt.timedelta(days=14)
    preview = subscription_change_preview(subscription=sub, new_plan=yearly, now=halfway)
    assert preview.kind == "interval_change"
    assert preview.amount_due == 99_000 - 4_950

    committed(subscription_change_plan, subscription=sub, new_plan=yearly, now=halfway, gateway=gateway)

    sub.refresh_from_db()
    assert sub.plan == yearly
    assert sub.billing_anchor == halfway
    assert sub.current_period_end == dt.datetime(2028, 2, 14, 10, 0, tzinfo=KST)


def test_plan_change_is_refused_while_past_due(subscribe, run, sandbox, gateway, plan, pro):
    sub = subscribe(gateway, plan)
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "insufficient_funds")
    run(gateway, sub.current_period_end)
    sub.refresh_from_db()
    with pytest.raises(PlanChangeNotAllowedError):
        committed(subscription_change_plan, subscription=sub, new_plan=pro, now=sub.current_period_end, gateway=gateway)


@pytest.mark.parametrize("strategy", ["schedule"])  # overrides the two-strategy fixture: schedule only
def test_schedule_strategy_lets_iamport_execute_renewals_and_reschedules_on_changes(
    subscribe, run, sandbox, gateway, plan, pro, strategy, settings
):
    settings.BILLING_STRATEGY = "schedule"
    settings.SITE_URL = "http://127.0.0.1:9"
    sub = subscribe(gateway, pro)
    [scheduled] = [s for s in sandbox.schedules() if s["schedule_status"] == "scheduled"]
    assert (scheduled["amount"], scheduled["schedule_at"]) == (29_900, int(sub.current_period_end.timestamp()))

    committed(subscription_change_plan, subscription=sub, new_plan=plan, now=T0 + dt.timedelta(days=2), gateway=gateway)
    statuses = sorted((s["schedule_status"], s["amount"]) for s in sandbox.schedules())
    assert statuses == [("revoked", 29_900), ("scheduled", 9_900)]  # the downgrade re-scheduled the right price

    with committed.capture(execute=True):
        new_key = register_card(sub.customer, gateway, now=T0 + dt.timedelta(days=3))
    [live] = [s for s in sandbox.schedules() if s["schedule_status"] == "scheduled"]
    assert live["customer_uid"] == new_key.customer_uid  # a new card moves the schedule onto it

    run(gateway, sub.current_period_end)
    renewal = [p for p in sandbox.payments() if p["merchant_uid"] == live["merchant_uid"]]
    assert [(p["status"], p["customer_uid_usage"]) for p in renewal] == [("paid", "payment.scheduled")]
    again_calls = [r for r in sandbox.requests_log() if r.get("endpoint") == "again"]
    assert len(again_calls) == 1  # only the first period was charged by us
    sub.refresh_from_db()
    assert sub.status == S.ACTIVE and sub.plan == plan
    [next_one] = [s for s in sandbox.schedules() if s["schedule_status"] == "scheduled"]
    assert next_one["schedule_at"] == int(sub.current_period_end.timestamp())


def test_confirming_a_preview_charges_exactly_the_previewed_amount_even_minutes_later(
    subscribe, sandbox, gateway, plan, pro
):
    from subscriptions.errors import PlanChangePreviewExpiredError

    sub = subscribe(gateway, plan)
    shown_at = T0 + dt.timedelta(days=3, seconds=7)
    preview = subscription_change_preview(subscription=sub, new_plan=pro, now=shown_at)
    later = shown_at + dt.timedelta(minutes=9)  # the price at `later` differs by a few won
    assert subscription_change_preview(subscription=sub, new_plan=pro, now=later).amount_due != preview.amount_due

    with pytest.raises(PlanChangePreviewExpiredError):
        committed(
            subscription_change_plan,
            subscription=sub,
            new_plan=pro,
            now=shown_at + dt.timedelta(minutes=16),
            proration_at=preview.priced_at,
            gateway=gateway,
        )
    committed(
        subscription_change_plan,
        subscription=sub,
        new_plan=pro,
        now=later,
        proration_at=preview.priced_at,
        gateway=gateway,
    )

    assert SubscriptionInvoice.objects.get(subscription=sub, kind="upgrade").invoice.total == preview.amount_due
