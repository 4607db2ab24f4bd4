"""The operator dashboard: every figure checked against a hand-computed seeded dataset (KST calendar, MRR
rounding, churn, dunning recovery), and the page rendered with a bounded number of queries."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from billing.models import Invoice, PaymentAttempt
from subscriptions.models import Subscription
from subscriptions.selectors import dashboard_metrics, subscriptions_active_and_mrr
from tests.admin.conftest import staff_user
from tests.factories import PlanFactory, make_customer

pytestmark = pytest.mark.django_db
KST = ZoneInfo("Asia/Seoul")
NOW = dt.datetime(2027, 3, 15, 12, 0, tzinfo=KST)  # a Monday
_numbers = itertools.count(1)


def kst(month: int, day: int, hour: int = 12, minute: int = 0, year: int = 2027) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=KST)


def subscription(plan, status, created_at, ended_at=None, end_reason="") -> Subscription:
    return Subscription.objects.create(
        customer=make_customer(),
        plan=plan,
        status=status,
        billing_anchor=created_at,
        current_period_start=created_at,
        current_period_end=created_at + dt.timedelta(days=30),
        created_at=created_at,
        ended_at=ended_at,
        end_reason=end_reason,
    )


def invoice(status, total, first_failed_at=None) -> Invoice:
    return Invoice.objects.create(
        customer=make_customer(),
        kind=Invoice.Kind.RENEWAL,
        number=f"T-{next(_numbers)}",
        status=status,
        description="seed",
        total=total,
        supply_amount=total,
        first_failed_at=first_failed_at,
        created_at=kst(1, 1),
    )


def attempt(on_invoice, status, amount, paid_at=None, flagged="") -> PaymentAttempt:
    return PaymentAttempt.objects.create(
        invoice=on_invoice,
        merchant_uid=f"seed_{next(_numbers)}",
        customer_uid="seed",
        amount=amount,
        status=status,
        paid_at=paid_at,
        created_at=paid_at or kst(3, 10),
        flagged_reason=flagged,
    )


@pytest.fixture
def seeded():
    """The dataset the expected figures below are computed from by hand."""
    monthly = PlanFactory(code="monthly", amount=9_900)
    yearly = PlanFactory(code="yearly", amount=99_000, interval="year")  # 8,250 a month
    weekly = PlanFactory(code="weekly", amount=1_000, interval="week")  # 4,333.33…
    daily = PlanFactory(code="daily", amount=110, interval="day")  # 3,345.83…
    quarterly = PlanFactory(code="quarterly", amount=30_000, interval="month", interval_count=3)  # 10,000
    S = Subscription.Status
    subscription(monthly, S.ACTIVE, kst(1, 10))
    subscription(monthly, S.ACTIVE, kst(2, 20))
    subscription(yearly, S.ACTIVE, kst(1, 5))
    subscription(weekly, S.ACTIVE, kst(3, 3))
    subscription(daily, S.ACTIVE, kst(2, 1))
    subscription(quarterly, S.ACTIVE, kst(12, 1, year=2026))
    subscription(monthly, S.PAST_DUE, kst(1, 20))
    subscription(monthly, S.TRIALING, kst(3, 10))
    subscription(monthly, S.PAUSED, kst(1, 15))
    subscription(monthly, S.INCOMPLETE, kst(3, 15, 10))
    subscription(monthly, S.CANCELED, kst(1, 1), ended_at=kst(3, 5), end_reason="canceled_at_period_end")
    subscription(monthly, S.CANCELED, kst(2, 1), ended_at=kst(2, 28, 23, 30), end_reason="canceled_now")
    subscription(monthly, S.CANCELED, kst(3, 2), ended_at=kst(3, 3), end_reason="incomplete_expired")
    subscription(monthly, S.CANCELED, kst(3, 1, 0, 30), ended_at=kst(3, 12), end_reason="canceled_now")
    # Ended 30 minutes into March in Seoul, which is still February in UTC.
    subscription(monthly, S.CANCELED, kst(1, 1), ended_at=kst(3, 1, 0, 30), end_reason="dunning_exhausted")

    inv, att = Invoice.Status, PaymentAttempt.Status
    open_a = invoice(inv.OPEN, 9_900)
    open_b = invoice(inv.OPEN, 29_900, first_failed_at=kst(3, 10))
    open_c = invoice(inv.OPEN, 5_000, first_failed_at=kst(3, 1))
    invoice(inv.PAID, 9_900, first_failed_at=kst(2, 1))
    invoice(inv.PAID, 9_900, first_failed_at=kst(3, 2))
    invoice(inv.UNCOLLECTIBLE, 9_900, first_failed_at=kst(1, 10))
    invoice(inv.VOID, 9_900, first_failed_at=kst(2, 10))
    invoice(inv.PAID, 9_900, first_failed_at=kst(11, 1, year=2026))  # failed more than 90 days ago
    attempt(open_a, att.UNKNOWN, 9_900)
    attempt(open_b, att.UNKNOWN, 29_900, flagged="amount differs")
    attempt(open_c, att.FAILED, 5_000)
    attempt(invoice(inv.PAID, 9_900), att.SUCCEEDED, 9_900, paid_at=kst(3, 15, 9))
    attempt(invoice(inv.PAID, 29_900), att.SUCCEEDED, 29_900, paid_at=kst(3, 15, 0, 10))  # 14 Mar in UTC
    attempt(invoice(inv.PAID, 5_000), att.SUCCEEDED, 5_000, paid_at=kst(3, 14, 23, 50))
    attempt(invoice(inv.PAID, 1_000), att.SUCCEEDED, 1_000, paid_at=kst(2, 14, 0, 0))  # first day of the window
    attempt(invoice(inv.PAID, 7_000), att.SUCCEEDED, 7_000, paid_at=kst(2, 13, 23, 59))  # one minute before it


def test_metrics_match_the_hand_computed_figures_when_the_dataset_is_seeded(seeded):
    metrics = dashboard_metrics(now=NOW)

    assert metrics.active_subscriptions == 8  # 6 active + 1 past due + 1 trialing
    # 9,900 × 3 (two active, one past due) + 8,250 + 4,333.33… + 3,345.83… + 10,000 = 55,629.17 -> 55,629
    assert metrics.mrr == 55_629
    # ended on 1 (00:30 KST), 5 and 12 March / live on 1 March 00:00 KST: 9 subscriptions
    assert (metrics.churn.numerator, metrics.churn.denominator, metrics.churn.percent) == (3, 9, 33.3)
    invoices = metrics.invoices
    assert (invoices.open_count, invoices.open_amount) == (3, 44_800)
    assert (invoices.past_due_count, invoices.past_due_amount) == (2, 34_900)
    assert (metrics.dunning_recovery.numerator, metrics.dunning_recovery.denominator) == (2, 4)
    assert metrics.dunning_recovery.percent == 50.0
    assert metrics.unknown_attempts == 2


def test_revenue_is_grouped_by_kst_day_over_thirty_days_when_payments_cross_midnight_utc(seeded):
    days = dashboard_metrics(now=NOW).revenue_by_day

    assert len(days) == 30
    assert (days[0].day, days[-1].day) == (dt.date(2027, 2, 14), dt.date(2027, 3, 15))
    assert {d.day: d.amount for d in days if d.amount} == {
        dt.date(2027, 2, 14): 1_000,
        dt.date(2027, 3, 14): 5_000,
        dt.date(2027, 3, 15): 39_800,
    }


def test_new_and_canceled_are_counted_per_kst_week_when_subscriptions_start_and_end(seeded):
    weeks = dashboard_metrics(now=NOW).subscriptions_by_week

    assert len(weeks) == 12
    assert (weeks[0].week_start, weeks[-1].week_start) == (dt.date(2026, 12, 28), dt.date(2027, 3, 15))
    assert {w.week_start: w.new for w in weeks if w.new} == {
        dt.date(2026, 12, 28): 2,
        dt.date(2027, 1, 4): 2,
        dt.date(2027, 1, 11): 1,
        dt.date(2027, 1, 18): 1,
        dt.date(2027, 2, 1): 2,
        dt.date(2027, 2, 15): 1,
        dt.date(2027, 3, 1): 2,
        dt.date(2027, 3, 8): 1,
    }
    assert {w.week_start: w.canceled for w in weeks if w.canceled} == {
        dt.date(2027, 2, 22): 1,
        dt.date(2027, 3, 1): 2,
        dt.date(2027, 3, 8): 1,
    }


def test_mrr_rounds_once_after_summing_when_prices_do_not_divide_evenly():
    weekly = PlanFactory(code="weekly", amount=1_000, interval="week")
    for _ in range(2):
        subscription(weekly, Subscription.Status.ACTIVE, kst(1, 4))

    # 2 × 1,000 × 52 / 12 = 8,666.67: rounding each subscription first would give 8,666.
    assert subscriptions_active_and_mrr().mrr == 8_667


def test_rates_are_empty_when_there_is_nothing_to_divide_by():
    metrics = dashboard_metrics(now=NOW)

    assert (metrics.active_subscriptions, metrics.mrr) == (0, 0)
    assert metrics.churn.percent is None and metrics.dunning_recovery.percent is None


def test_dashboard_page_renders_with_a_bounded_number_of_queries_when_data_exists(
    admin_client, seeded, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse("admin:dashboard"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "55,629" in page
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" viewBox') == 2 and "<rect" in page
    assert "?status__exact=unknown" in page
    assert "<script" not in page.split('id="content-main"')[1]  # charts are plain SVG


def test_dashboard_is_open_to_staff_and_closed_to_customers_when_requested(client):
    client.force_login(staff_user())
    staff = client.get(reverse("admin:dashboard"))
    client.force_login(make_customer().user)
    customer = client.get(reverse("admin:dashboard"))

    assert staff.status_code == 200
    assert customer.status_code == 302 and "/admin/login/" in customer["Location"]
