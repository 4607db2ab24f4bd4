"""Read-only queries over subscriptions.

- Owner-scoped reads behind the subscriber's web pages (`account_summary`, `invoices_for_customer`,
  `invoice_receipt`, ...) and the subscriptions API (`subscriptions_for_user`, `billing_key_for_user`, ...):
  each is filtered to one customer or user, so another subscriber's object is simply not found.
  `plans_available` is the public plan catalogue.
- The operator dashboard: `dashboard_metrics` and the figures it is made of.

Dashboard definitions (the numbers an operator reads must mean one thing):
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

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, TruncWeek
from django.utils.translation import gettext as _

from billing.models import BillingKey, Customer, Invoice, PaymentAttempt, Refund
from billing.money import round_half_up
from billing.money_status import invoice_money_status
from billing.selectors import (
    KST,
    DayAmount,
    OpenInvoices,
    Ratio,
    attempts_unknown_count,
    billing_key_default,
    dunning_recovery,
    invoices_open_summary,
    kst_midnight,
    revenue_paid_by_day,
)
from subscriptions.models import ConsentDecision, ConsentRequest, Plan, PolicyDocument, Subscription
from subscriptions.periods import period_bounds
from subscriptions.pricing import VatSplit, monthly_amount, split_vat

# --- dashboard figures ---

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
    trials_ended_without_consent: int
    revenue_by_day: list[DayAmount]
    subscriptions_by_week: list[WeekCounts]


def dashboard_metrics(*, now: dt.datetime, revenue_days: int = 30, weeks: int = 12) -> DashboardMetrics:
    """Every figure of the operator dashboard as of `now`, in nine queries whatever the data size."""
    active = subscriptions_active_and_mrr()
    return DashboardMetrics(
        now=now,
        active_subscriptions=active.active_count,
        mrr=active.mrr,
        churn=subscriptions_churn_this_month(now=now),
        invoices=invoices_open_summary(),
        dunning_recovery=dunning_recovery(now=now),
        unknown_attempts=attempts_unknown_count(),
        trials_ended_without_consent=trials_ended_without_consent(now=now),
        revenue_by_day=revenue_paid_by_day(now=now, days=revenue_days),
        subscriptions_by_week=subscriptions_new_vs_canceled_by_week(now=now, weeks=weeks),
    )


# --- owner-scoped reads (pages and API) ---


def plans_available() -> QuerySet[Plan]:
    """The plans a subscriber can choose (the public catalogue, not owner-scoped), in display order."""
    return Plan.objects.filter(active=True).order_by("sort_order", "amount", "id")


def subscriptions_for_user(*, user) -> QuerySet[Subscription]:
    """The user's subscriptions (every status), with the current and the pending plan."""
    return Subscription.objects.filter(customer__user=user).select_related("plan", "pending_plan")


def billing_key_for_user(*, user, pk: int) -> BillingKey | None:
    """One of the user's active cards, or None if there is no such card or it is someone else's."""
    return BillingKey.objects.filter(customer__user=user, status=BillingKey.Status.ACTIVE, pk=pk).first()


def billing_key_is_only_card_of_live_subscription(*, billing_key: BillingKey) -> bool:
    """True when a live (not canceled) subscription charges this card and the customer has no other card."""
    live = Subscription.objects.filter(customer_id=billing_key.customer_id).exclude(status=Subscription.Status.CANCELED)
    if not live.exists():
        return False
    in_use = billing_key.is_default or live.filter(billing_key=billing_key).exists()
    others = (
        BillingKey.objects.filter(customer_id=billing_key.customer_id, status=BillingKey.Status.ACTIVE)
        .exclude(pk=billing_key.pk)
        .exists()
    )
    return in_use and not others


@dataclass(frozen=True)
class NextCharge:
    at: dt.datetime
    amount: int
    plan: Plan


@dataclass(frozen=True)
class AccountSummary:
    subscription: Subscription | None
    card: BillingKey | None
    next_charge: NextCharge | None
    open_invoice: Invoice | None
    last_failure: PaymentAttempt | None


def subscription_current(*, customer: Customer) -> Subscription | None:
    """The live subscription, else the most recent one (to show that it ended)."""
    subs = Subscription.objects.filter(customer=customer).select_related("plan", "pending_plan", "billing_key")
    return subs.exclude(status=Subscription.Status.CANCELED).first() or subs.order_by("-created_at", "-id").first()


def subscription_next_charge(subscription: Subscription) -> NextCharge | None:
    """When the next charge falls due, of how much and for which plan; None when no charge is coming
    (cancel or pause requested, paused without a resume date, or not active/trialing/paused)."""
    S = Subscription.Status
    if subscription.cancel_at_period_end or subscription.pause_requested:
        return None
    if subscription.status == S.TRIALING:
        return NextCharge(subscription.trial_end, subscription.plan.amount, subscription.plan)
    if subscription.status == S.PAUSED:
        if subscription.resume_at is None:
            return None
        return NextCharge(subscription.resume_at, subscription.plan.amount, subscription.plan)
    if subscription.status == S.ACTIVE:
        plan = subscription.pending_plan or subscription.plan
        return NextCharge(subscription.current_period_end, plan.amount, plan)
    return None


def account_summary(*, customer: Customer) -> AccountSummary:
    """What the account page shows: the current subscription, the default card, the next charge, and for
    that subscription its latest open invoice and latest failed payment (revoked-card failures left out)."""
    subscription = subscription_current(customer=customer)
    card = billing_key_default(customer_id=customer.pk)
    open_invoice = None
    last_failure = None
    if subscription is not None:
        open_invoice = (
            Invoice.objects.filter(subscription_link__subscription=subscription, status=Invoice.Status.OPEN)
            .order_by("-created_at")
            .first()
        )
        last_failure = (
            PaymentAttempt.objects.filter(
                invoice__subscription_link__subscription=subscription, status=PaymentAttempt.Status.FAILED
            )
            .exclude(failure_code="revoked")
            .order_by("-created_at")
            .first()
        )
    return AccountSummary(
        subscription=subscription,
        card=card,
        next_charge=subscription_next_charge(subscription) if subscription else None,
        open_invoice=open_invoice,
        last_failure=last_failure,
    )


def _refunded_total():
    refunds = Refund.objects.filter(attempt__invoice=OuterRef("pk"), status=Refund.Status.SUCCEEDED)
    return Coalesce(Subquery(refunds.values("attempt__invoice").annotate(t=Sum("amount")).values("t")[:1]), 0)


def _with_money_status(invoice: Invoice) -> Invoice:
    invoice.money_status = invoice_money_status(invoice, refunded=invoice.refunded)
    return invoice


def invoices_for_customer(*, customer: Customer) -> list[Invoice]:
    """The customer's invoices, newest finalized first: drafts left out, and void ones that were never charged.
    Each carries `refunded` (won) and `money_status` (billing.money_status), as the receipt does."""
    invoices = (
        Invoice.objects.filter(customer=customer)
        .exclude(status=Invoice.Status.DRAFT)
        .exclude(status=Invoice.Status.VOID, attempts__isnull=True)
        .distinct()
        .annotate(refunded=_refunded_total())
        .order_by("-finalized_at", "-id")
    )
    return [_with_money_status(invoice) for invoice in invoices]


@dataclass(frozen=True)
class ReceiptLine:
    label: str
    amount: int


@dataclass(frozen=True)
class RefundLine:
    """One refund as the books record it (Refund row): its VAT and tax-free parts, the rest is supply."""

    at: dt.datetime
    amount: int
    supply: int
    vat: int
    tax_free: int
    reason: str


@dataclass(frozen=True)
class Receipt:
    invoice: Invoice
    lines: list[ReceiptLine]
    refunds: list[RefundLine]
    refunded: VatSplit  # the refunds summed: total, supply, vat, tax_free
    net: VatSplit  # what the subscriber finally paid: the invoice's parts minus the refunds' parts


def _line_label(line, link) -> str:
    """An invoice line in the page's language (lines store both languages; the plan knows its names)."""
    if line.amount < 0:
        return str(_("Credit applied"))
    if link is not None and link.target_plan_id:
        return f"{link.plan.name} → {link.target_plan.name}"
    plan_code = (line.details or {}).get("plan")
    if link is not None and (plan_code is None or plan_code == link.plan.code):
        return link.plan.name
    plan = Plan.objects.filter(code=plan_code).first() if plan_code else None
    return plan.name if plan else line.description


def invoice_receipt(*, customer: Customer, invoice_id: int) -> Receipt | None:
    """One of the customer's invoices with its lines, payments and refunds (None if not theirs)."""
    refunds = Refund.objects.filter(status=Refund.Status.SUCCEEDED).order_by("created_at")
    attempts = PaymentAttempt.objects.order_by("created_at").prefetch_related(Prefetch("refunds", queryset=refunds))
    invoice = (
        Invoice.objects.filter(customer=customer, pk=invoice_id)
        .exclude(status=Invoice.Status.DRAFT)
        .select_related("subscription_link__plan", "subscription_link__target_plan")
        .prefetch_related("lines", Prefetch("attempts", queryset=attempts))
        .annotate(refunded=_refunded_total())
        .first()
    )
    if invoice is None:
        return None
    _with_money_status(invoice)
    link = getattr(invoice, "subscription_link", None)
    refund_lines = [
        RefundLine(
            at=refund.created_at,
            amount=refund.amount,
            supply=refund.amount - refund.vat_amount - refund.tax_free_amount,
            vat=refund.vat_amount,
            tax_free=refund.tax_free_amount,
            reason=refund.reason,
        )
        for attempt in invoice.attempts.all()
        for refund in attempt.refunds.all()
    ]
    refunded = VatSplit(
        total=sum(r.amount for r in refund_lines),
        supply=sum(r.supply for r in refund_lines),
        vat=sum(r.vat for r in refund_lines),
        tax_free=sum(r.tax_free for r in refund_lines),
    )
    net = VatSplit(
        total=invoice.total - refunded.total,
        supply=invoice.supply_amount - refunded.supply,
        vat=invoice.vat_amount - refunded.vat,
        tax_free=invoice.tax_free_amount - refunded.tax_free,
    )
    return Receipt(
        invoice=invoice,
        lines=[ReceiptLine(label=_line_label(line, link), amount=line.amount) for line in invoice.lines.all()],
        refunds=refund_lines,
        refunded=refunded,
        net=net,
    )


# --- policies (public) ---


def policies_current(*, now: dt.datetime) -> dict[str, PolicyDocument]:
    """The version of each policy kind in effect at `now` (the newest one whose effective date has come);
    kinds the merchant has not written yet are absent."""
    current: dict[str, PolicyDocument] = {}
    for document in PolicyDocument.objects.filter(effective_at__lte=now).order_by("kind", "-effective_at", "-id"):
        current.setdefault(document.kind, document)
    return current


def policy_versions(*, kind: str, now: dt.datetime) -> list[PolicyDocument]:
    """Every version of a kind that has taken effect, newest first (future versions are not public yet)."""
    return list(PolicyDocument.objects.filter(kind=kind, effective_at__lte=now).order_by("-effective_at", "-id"))


# --- checkout (what the subscriber must see before paying, 전자상거래법 §13) ---


@dataclass(frozen=True)
class CheckoutTerms:
    plan: Plan
    price: VatSplit  # the plan's amount: supply, VAT and tax-free parts
    charged_now: int  # 0 with a trial
    trial_end: dt.datetime | None  # when the trial ends and the first charge falls due
    first_charge_at: dt.datetime  # now without a trial
    next_charge_at: dt.datetime  # the charge after the first one (automatic renewal)


def checkout_terms(*, plan: Plan, now: dt.datetime) -> CheckoutTerms:
    """The facts the checkout page states, computed as subscription_create will: a trial starts now and
    ends after trial_days; the first period is anchored at its first charge, and renews from that anchor."""
    trial_end = now + dt.timedelta(days=plan.trial_days) if plan.trial_days else None
    anchor = trial_end or now
    _, first_period_end = period_bounds(anchor, interval=plan.interval, count=plan.interval_count, index=0)
    return CheckoutTerms(
        plan=plan,
        price=split_vat(plan.amount, plan.tax_free_amount),
        charged_now=0 if trial_end else plan.amount,
        trial_end=trial_end,
        first_charge_at=anchor,
        next_charge_at=first_period_end,
    )


def subscription_locked(subscription_id: int) -> Subscription:
    """The subscription, its row locked until the caller's transaction ends, with plan and customer loaded."""
    return (
        Subscription.objects.select_for_update(of=("self",)).select_related("plan", "customer").get(pk=subscription_id)
    )


# --- consent campaigns ---


@dataclass(frozen=True)
class PriceChangeCampaign:
    """Where a price change stands with its subscribers: asked, and their answers so far."""

    requested: int
    asked: int  # at least one email sent
    granted: int
    refused: int
    expired: int
    pending: int
    mrr_effect: int  # won per month: the increase of those who said yes


def price_change_campaign(*, version) -> PriceChangeCampaign:
    """The campaign page's figures: each request's newest decision decides its column (two queries)."""
    requests = list(ConsentRequest.objects.filter(price_version=version).values("id", "asks_sent", "amount_before"))
    latest: dict[int, str] = {}
    for decision in ConsentDecision.objects.filter(request__price_version=version).order_by("decided_at", "id"):
        latest[decision.request_id] = decision.outcome
    counts = {"granted": 0, "refused": 0, "expired": 0}
    effect = Fraction(0)
    plan = version.plan
    for row in requests:
        outcome = latest.get(row["id"])
        if outcome in counts:
            counts[outcome] += 1
        if outcome == "granted":
            effect += monthly_amount(
                amount=version.amount - row["amount_before"],
                interval=plan.interval,
                interval_count=plan.interval_count,
            )
    return PriceChangeCampaign(
        requested=len(requests),
        asked=sum(1 for row in requests if row["asks_sent"]),
        granted=counts["granted"],
        refused=counts["refused"],
        expired=counts["expired"],
        pending=len(requests) - sum(counts.values()),
        mrr_effect=round_half_up(effect),
    )


def trials_ended_without_consent(*, now: dt.datetime) -> int:
    """Trials that ended uncharged this KST month for want of a "yes" (the dashboard's count)."""
    return Subscription.objects.filter(
        end_reason__in=["trial_consent_refused", "trial_consent_missing"], ended_at__gte=kst_month_start(now)
    ).count()
