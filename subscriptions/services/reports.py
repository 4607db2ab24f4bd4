"""Finance reports that need subscription data: revenue by plan, MRR movements, deferred revenue of annual plans,
and `finance_report`, the whole report of a KST month or quarter (billing's tax figures included) that the admin
page, the CSV/XLSX exports and the API all render.

Rules (one each, documented here):
- A charge or refund belongs to the plan of the invoice it paid (for a plan change, the plan moved to).
- MRR at an instant: per customer, the monthly equivalent of the plan of the paid period covering that instant,
  rounded half up to a won per customer (so every movement is whole won and start + movements = end exactly).
  Movements over a period compare each customer's MRR at its start and at its end: new (0 -> >0, never paid
  before), reactivation (0 -> >0, had paid before), expansion, contraction, churn (>0 -> 0).
- Deferred revenue of annual plans: each paid yearly period's revenue excluding VAT is recognised by KST day
  over the period's days (`pricing.recognised_through`); deferred = what is paid and not yet recognised.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from fractions import Fraction

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce

from billing.models import Invoice
from billing.money import round_half_up
from billing.services.reports import KST, Period, charges_in, refunds_in, tax_report
from subscriptions.models import Plan, SubscriptionInvoice
from subscriptions.pricing import monthly_amount, recognised_through

PAID_PERIOD_KINDS = ("first", "renewal", "upgrade", "interval_change")


def revenue_by_plan(*, period: Period) -> list[dict]:
    """Charged, refunded and net per plan (invoices of no subscription under `None`); sums to tax_report."""
    plan_of = Coalesce("invoice__subscription_link__target_plan_id", "invoice__subscription_link__plan_id")
    charged = (
        charges_in(period)
        .annotate(plan_id=plan_of)
        .values("plan_id")
        .annotate(count=Count("id"), amount=Sum("amount"), vat=Sum("vat_amount"), tax_free=Sum("tax_free_amount"))
    )
    refunds = (
        refunds_in(period)
        .annotate(
            plan_id=Coalesce(
                "attempt__invoice__subscription_link__target_plan_id", "attempt__invoice__subscription_link__plan_id"
            )
        )
        .values("plan_id")
        .annotate(count=Count("id"), amount=Sum("amount"), vat=Sum("vat_amount"), tax_free=Sum("tax_free_amount"))
    )
    rows: dict = defaultdict(lambda: {"charged": 0, "refunded": 0, "vat": 0, "tax_free": 0, "count": 0})
    for r in charged:
        row = rows[r["plan_id"]]
        row["charged"] += r["amount"]
        row["vat"] += r["vat"]
        row["tax_free"] += r["tax_free"]
        row["count"] += r["count"]
    for r in refunds:
        row = rows[r["plan_id"]]
        row["refunded"] += r["amount"]
        row["vat"] -= r["vat"]
        row["tax_free"] -= r["tax_free"]
    plans = Plan.objects.in_bulk([pid for pid in rows if pid is not None])
    result = []
    for plan_id, r in sorted(rows.items(), key=lambda item: (item[0] is None, item[0] or 0)):
        plan = plans.get(plan_id)
        net = r["charged"] - r["refunded"]
        result.append(
            {
                "plan_code": plan.code if plan else "",
                "plan_name": plan.name_ko if plan else "",
                "charges": r["count"],
                "charged": r["charged"],
                "refunded": r["refunded"],
                "net": net,
                "net_supply_amount": net - r["vat"] - r["tax_free"],
                "net_vat_amount": r["vat"],
                "net_tax_free_amount": r["tax_free"],
            }
        )
    return result


def _paid_periods():
    return SubscriptionInvoice.objects.filter(
        invoice__status=Invoice.Status.PAID, kind__in=PAID_PERIOD_KINDS
    ).select_related("plan", "target_plan", "subscription")


def mrr_by_customer(*, at: dt.datetime) -> dict[int, int]:
    """Each paying customer's MRR at `at` (won, rounded half up per customer)."""
    links = _paid_periods().filter(period_start__lte=at, period_end__gt=at).order_by("period_start", "id")
    exact: dict[int, Fraction] = {}
    for link in links:  # the latest paid period covering `at` wins (a plan change replaces the period's plan)
        plan = link.target_plan or link.plan
        exact[link.subscription.customer_id] = monthly_amount(
            amount=plan.amount, interval=plan.interval, interval_count=plan.interval_count
        )
    return {customer: round_half_up(value) for customer, value in exact.items() if value}


def mrr_movements(*, period: Period) -> dict:
    start, end = period.window
    before = mrr_by_customer(at=start)
    after = mrr_by_customer(at=end - dt.timedelta(microseconds=1))
    paid_before = set(
        _paid_periods().filter(period_start__lt=start).values_list("subscription__customer_id", flat=True)
    )
    moves = {"new": 0, "reactivation": 0, "expansion": 0, "contraction": 0, "churn": 0}
    counts = dict.fromkeys(moves, 0)
    for customer in before.keys() | after.keys():
        m0, m1 = before.get(customer, 0), after.get(customer, 0)
        if m0 == m1:
            continue
        if m0 == 0:
            kind = "reactivation" if customer in paid_before else "new"
        elif m1 == 0:
            kind = "churn"
        else:
            kind = "expansion" if m1 > m0 else "contraction"
        moves[kind] += m1 - m0
        counts[kind] += 1
    return {
        "start_mrr": sum(before.values()),
        **moves,
        "end_mrr": sum(after.values()),
        "customers": counts,
    }


def deferred_revenue(*, period: Period) -> dict:
    """Annual plans: revenue (VAT excluded) recognised in `period` by day, and what is deferred at its end."""
    start, end = period.window
    links = (
        _paid_periods()
        .filter(Q(plan__interval="year") | Q(target_plan__interval="year"))
        .filter(period_start__lt=end, period_end__gt=start)
        .annotate(revenue=F("invoice__total") - F("invoice__vat_amount"))
    )
    daily = dict.fromkeys(period.days, 0)
    deferred_end = 0
    for link in links:
        first = link.period_start.astimezone(KST).date()
        days = max((link.period_end.astimezone(KST).date() - first).days, 1)

        def through(day: dt.date, link=link, first=first, days=days) -> int:
            return recognised_through(total=link.revenue, days_elapsed=(day - first).days, days=days)

        for day in period.days:
            daily[day] += through(day + dt.timedelta(days=1)) - through(day)
        deferred_end += link.revenue - through(period.end)
    recognised = sum(daily.values())
    return {
        "recognised": recognised,
        "deferred_at_end": deferred_end,
        "daily": [{"day": day.isoformat(), "recognised": amount} for day, amount in daily.items()],
    }


def finance_report(*, period: Period) -> dict:
    """Everything the finance pages, exports and API show for `period`."""
    return {
        **tax_report(period=period),
        "by_plan": revenue_by_plan(period=period),
        "mrr": mrr_movements(period=period),
        "deferred": deferred_revenue(period=period),
    }
