"""The schedule strategy: Iamport executes pre-registered charges (subscriptions/services/schedules.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.models import Invoice
from subscriptions.services.plan_changes import subscription_change_plan
from subscriptions.services.sweep import billing_run
from tests.factories import (
    register_card,
)
from tests.subscriptions.lifecycle_helpers import T0, S, committed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("strategy", "_after_commit_runs")]


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


@pytest.mark.parametrize("strategy", ["schedule"])
def test_declined_schedule_whose_webhook_never_arrives_is_settled_by_the_janitor_and_enters_dunning(
    subscribe, sandbox, gateway, plan, strategy, settings, django_capture_on_commit_callbacks
):
    settings.BILLING_STRATEGY = "schedule"
    settings.SITE_URL = "http://127.0.0.1:9"
    sub = subscribe(gateway, plan)
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "insufficient_funds")
    renewal_at = sub.current_period_end
    sandbox.set_now(int(renewal_at.timestamp()))  # the gateway runs the schedule; its webhook goes nowhere
    [executed] = [p for p in sandbox.payments() if p["customer_uid_usage"] == "payment.scheduled"]
    assert executed["status"] == "failed"

    later = renewal_at + dt.timedelta(seconds=settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS + 60)
    with django_capture_on_commit_callbacks(execute=True):
        billing_run(now=later, gateway=gateway)  # no webhook delivered: only the janitor can know

    sub.refresh_from_db()
    assert sub.status == S.PAST_DUE and sub.has_access
    renewal = Invoice.objects.get(subscription_link__subscription=sub, subscription_link__kind="renewal")
    assert renewal.status == Invoice.Status.OPEN and renewal.next_attempt_at > later
    assert [a.status for a in renewal.attempts.all()] == ["failed"]
