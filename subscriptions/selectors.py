"""Read-only queries over subscriptions, and `dashboard_metrics`, everything the operator dashboard shows.

Definitions (the numbers an operator reads must mean one thing):
- active subscriptions: status active, trialing or past_due (the statuses with access to the service).
- MRR: for subscriptions that pay (active and past_due; trials pay nothing yet), the current plan's amount
  (VAT included) normalised to a month: monthly ×1, yearly ×1/12, weekly ×52/12, daily ×365/12, each
  ÷ interval_count. The sum is kept exact (Fraction) and rounded ONCE, half-up, to the won.
- churn this month: subscriptions that ended (`ended_at`) in the current KST month / subscriptions active at
  the month start (created before it and not ended before it). Subscriptions that never started (an unpaid
  first invoice that expired) are neither. The row keeps no status history, so a subscription that was
  paused at the month start still counts as active then; the audit log has the exact history if needed.
- new vs canceled per KST week (Monday-Sunday): created / ended in that week, same exclusion.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncWeek

from billing.money import round_half_up
from billing.selectors import (
    KST,
    DayAmount,
    OpenInvoices,
    Ratio,
    attempts_unknown_count,
    dunning_recovery,
    invoices_open_summary,
    kst_midnight,
    revenue_paid_by_day,
)
from subscriptions.models import Subscription
from subscriptions.pricing import monthly_amount

ACTIVE_STATUSES = Subscription.ACCESS_STATUSES  # active, trialing, past_due
MRR_STATUSES = (Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)
NEVER_STARTED_REASON = "incomplete_expired"


def _started() -> Q:
    """Subscriptions that ever got going: not a first invoice that was never paid."""
    return ~Q(status=Subscription.Status.INCOMPLETE) & ~Q(end_reason=NEVER_STARTED_REASON)


@dataclass(frozen=True)
class ActiveAndMrr:
    active_count: int
    mrr: int


def subscriptions_active_and_mrr() -> ActiveAndMrr:
    """One query: grouped by the plan's interval, so the normalisation runs over a handful of rows."""
    rows = (
        Subscription.objects.filter(status__in=ACTIVE_STATUSES)
        .values("plan__interval", "plan__interval_count")
        .annotate(
            active=Count("id"),
            paying_amount=Sum("plan__amount", filter=Q(status__in=MRR_STATUSES), default=0),
        )
        .order_by()
    )
    active = 0
    mrr = Fraction(0)
    for row in rows:
        active += row["active"]
        mrr += monthly_amount(
            amount=row["paying_amount"], interval=row["plan__interval"], interval_count=row["plan__interval_count"]
        )
    return ActiveAndMrr(active_count=active, mrr=round_half_up(mrr))


def kst_month_start(now: dt.datetime) -> dt.datetime:
    return kst_midnight(now.astimezone(KST).date().replace(day=1))


def subscriptions_churn_this_month(*, now: dt.datetime) -> Ratio:
    """Ended this KST month / active at the month start. One query."""
    start = kst_month_start(now)
    row = (
        Subscription.objects.filter(_started())
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start))
        .aggregate(
            ended=Count("id", filter=Q(ended_at__gte=start, ended_at__lte=now)),
            active_at_start=Count("id", filter=Q(created_at__lt=start)),
        )
    )
    return Ratio(numerator=row["ended"], denominator=row["active_at_start"])


@dataclass(frozen=True)
class WeekCounts:
    week_start: dt.date  # the KST Monday
    new: int
    canceled: int


def subscriptions_new_vs_canceled_by_week(*, now: dt.datetime, weeks: int = 12) -> list[WeekCounts]:
    """New and ended subscriptions per KST week for the last `weeks` weeks including this one, oldest
    first, empty weeks as 0. Two queries."""
    today = now.astimezone(KST).date()
    this_monday = today - dt.timedelta(days=today.weekday())
    first = this_monday - dt.timedelta(weeks=weeks - 1)
    window_start, window_end = kst_midnight(first), kst_midnight(this_monday + dt.timedelta(weeks=1))
    started = Subscription.objects.filter(_started())

    def per_week(field: str) -> dict[dt.date, int]:
        rows = (
            started.filter(**{f"{field}__gte": window_start, f"{field}__lt": window_end})
            .annotate(week=TruncWeek(field, tzinfo=KST))
            .values("week")
            .annotate(n=Count("id"))
            .values_list("week", "n")
        )
        return {week.astimezone(KST).date(): n for week, n in rows}

    new, canceled = per_week("created_at"), per_week("ended_at")
    mondays = [first + dt.timedelta(weeks=offset) for offset in range(weeks)]
    return [WeekCounts(week_start=day, new=new.get(day, 0), canceled=canceled.get(day, 0)) for day in mondays]


@dataclass(frozen=True)
class DashboardMetrics:
    now: dt.datetime
    active_subscriptions: int
    mrr: int
    churn: Ratio
    invoices: OpenInvoices
    dunning_recovery: Ratio
    unknown_attempts: int
    revenue_by_day: list[DayAmount]
    subscriptions_by_week: list[WeekCounts]


def dashboard_metrics(*, now: dt.datetime, revenue_days: int = 30, weeks: int = 12) -> DashboardMetrics:
    """Every figure of the operator dashboard as of `now`, in eight queries whatever the data size."""
    active = subscriptions_active_and_mrr()
    return DashboardMetrics(
        now=now,
        active_subscriptions=active.active_count,
        mrr=active.mrr,
        churn=subscriptions_churn_this_month(now=now),
        invoices=invoices_open_summary(),
        dunning_recovery=dunning_recovery(now=now),
        unknown_attempts=attempts_unknown_count(),
        revenue_by_day=revenue_paid_by_day(now=now, days=revenue_days),
        subscriptions_by_week=subscriptions_new_vs_canceled_by_week(now=now, weeks=weeks),
    )
