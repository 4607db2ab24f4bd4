"""Plan changes: upgrade, downgrade, interval change, previews (subscriptions/services/plan_changes.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.errors import PaymentDeclinedError
from subscriptions.errors import PlanChangeNotAllowedError
from subscriptions.models import SubscriptionInvoice
from subscriptions.services.dunning import invoices_retry_due
from subscriptions.services.plan_changes import subscription_change_plan, subscription_change_preview
from tests.factories import (
    PlanFactory,
)
from tests.subscriptions.lifecycle_helpers import KST, T0, S, committed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("strategy", "_after_commit_runs")]


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
