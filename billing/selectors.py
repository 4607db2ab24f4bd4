"""Read-only queries over billing records.

- Dashboard figures (`invoices_open_summary`, `dunning_recovery`, `attempts_unknown_count`,
  `revenue_paid_by_day`): the time-dependent ones take `now=` (the dashboard passes `clock.now()`); each runs
  a fixed number of queries however many rows there are and returns plain frozen dataclasses or lists.
  Days are KST calendar days.
- Default cards (`billing_key_default`, `billing_keys_default`): the card renewals and retries charge.
- Owner-scoped reads behind the billing API: querysets filtered to the requesting user, so another
  subscriber's object is simply not found. `payments_all` is the unscoped base, for staff lookups only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from zoneinfo import ZoneInfo

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from billing.models import BillingKey, Customer, Event, Invoice, MerchantApiKey, PaymentAttempt, Refund

KST = ZoneInfo("Asia/Seoul")

# Invoices whose dunning is over: paid (recovered), or given up (uncollectible, void).
SETTLED_INVOICE_STATUSES = (Invoice.Status.PAID, Invoice.Status.UNCOLLECTIBLE, Invoice.Status.VOID)


def kst_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=KST)


# --- dashboard figures ---


@dataclass(frozen=True)
class OpenInvoices:
    """Open invoices, and among them those past due (a charge failed: dunning is running)."""

    open_count: int
    open_amount: int
    past_due_count: int
    past_due_amount: int


def invoices_open_summary() -> OpenInvoices:
    """One query. `past due` = open with a recorded failure (`first_failed_at` is set only by dunning)."""
    past_due = Q(first_failed_at__isnull=False)
    row = Invoice.objects.filter(status=Invoice.Status.OPEN).aggregate(
        open_count=Count("id"),
        open_amount=Sum("total", default=0),
        past_due_count=Count("id", filter=past_due),
        past_due_amount=Sum("total", filter=past_due, default=0),
    )
    return OpenInvoices(**row)


@dataclass(frozen=True)
class Ratio:
    """A rate shown as a percentage; `rate` is None when there is nothing to divide by."""

    numerator: int
    denominator: int

    @property
    def rate(self) -> Fraction | None:
        return Fraction(self.numerator, self.denominator) if self.denominator else None

    @property
    def percent(self) -> float | None:
        """For display only (one decimal); never used in money maths."""
        rate = self.rate
        return None if rate is None else round(float(rate * 100), 1)


def dunning_recovery(*, now: dt.datetime, days: int = 90) -> Ratio:
    """Invoices whose first failed charge was in the last `days` days and that are settled by now:
    recovered (paid) / settled (paid, uncollectible or void). Still-open invoices are not counted yet."""
    row = Invoice.objects.filter(
        first_failed_at__gt=now - dt.timedelta(days=days),
        first_failed_at__lte=now,
        status__in=SETTLED_INVOICE_STATUSES,
    ).aggregate(settled=Count("id"), recovered=Count("id", filter=Q(status=Invoice.Status.PAID)))
    return Ratio(numerator=row["recovered"], denominator=row["settled"])


def attempts_unknown_count() -> int:
    """Attempts whose outcome we do not know (the janitor settles them; flagged ones wait for an operator)."""
    return PaymentAttempt.objects.filter(status=PaymentAttempt.Status.UNKNOWN).count()


@dataclass(frozen=True)
class DayAmount:
    day: dt.date
    amount: int


def revenue_paid_by_day(*, now: dt.datetime, days: int = 30) -> list[DayAmount]:
    """Won charged per KST day (succeeded attempts by `paid_at`, before refunds) for the last `days` days
    including today, oldest first, days without payments as 0. One query."""
    today = now.astimezone(KST).date()
    first = today - dt.timedelta(days=days - 1)
    rows = (
        PaymentAttempt.objects.filter(
            status=PaymentAttempt.Status.SUCCEEDED,
            paid_at__gte=kst_midnight(first),
            paid_at__lt=kst_midnight(today + dt.timedelta(days=1)),
        )
        .annotate(day=TruncDate("paid_at", tzinfo=KST))
        .values("day")
        .annotate(amount=Sum("amount"))
        .values_list("day", "amount")
    )
    by_day = dict(rows)
    return [
        DayAmount(day=day, amount=by_day.get(day, 0))
        for day in (first + dt.timedelta(days=offset) for offset in range(days))
    ]


# --- default cards ---


def billing_key_default(*, customer_id: int) -> BillingKey | None:
    """The customer's default active card: the one renewals charge (at most one, by a partial unique index)."""
    return BillingKey.objects.filter(customer_id=customer_id, status=BillingKey.Status.ACTIVE, is_default=True).first()


def billing_keys_default(*, customer_ids) -> dict[int, BillingKey]:
    """`billing_key_default` for many customers in one query: {customer_id: key}, customers without a card absent."""
    if not customer_ids:
        return {}
    keys = BillingKey.objects.filter(customer_id__in=customer_ids, status=BillingKey.Status.ACTIVE, is_default=True)
    return {key.customer_id: key for key in keys}


# --- owner-scoped reads (API) ---


def billing_keys_for_user(*, user) -> QuerySet[BillingKey]:
    """The user's active cards: the default first, then newest first."""
    return BillingKey.objects.filter(customer__user=user, status=BillingKey.Status.ACTIVE).order_by(
        "-is_default", "-created_at", "-id"
    )


def invoices_for_user(*, user) -> QuerySet[Invoice]:
    """Finalized invoices (drafts are not bills yet), with the refunded total derived from the refund rows."""
    return invoices_finalized().filter(customer__user=user)


def invoices_finalized() -> QuerySet[Invoice]:
    """Every customer's finalized invoices, newest first, with the refunded total derived from the refund rows."""
    return (
        Invoice.objects.exclude(status=Invoice.Status.DRAFT)
        .annotate(
            refunded_total=Sum(
                "attempts__refunds__amount",
                filter=Q(attempts__refunds__status=Refund.Status.SUCCEEDED),
                default=0,
            )
        )
        .prefetch_related("lines")
        .order_by("-created_at", "-id")
    )


def payments_all() -> QuerySet[PaymentAttempt]:
    """Every payment attempt, newest first, with its invoice and its refunds (oldest first).

    Not scoped to anyone: the base of `payments_for_user`, and used as is only for staff lookups."""
    return (
        PaymentAttempt.objects.select_related("invoice")
        .prefetch_related(Prefetch("refunds", queryset=Refund.objects.order_by("created_at", "id")))
        .order_by("-created_at", "-id")
    )


def payments_for_user(*, user) -> QuerySet[PaymentAttempt]:
    """`payments_all` limited to the payments of the user's own invoices."""
    return payments_all().filter(invoice__customer__user=user)


def refunds_for_payment(*, attempt: PaymentAttempt) -> QuerySet[Refund]:
    """The refund rows of one payment attempt (every status), newest first, with the acting user."""
    return Refund.objects.filter(attempt=attempt).select_related("actor").order_by("-created_at", "-id")


def refund_get(*, pk: int) -> Refund | None:
    """One refund row (any status, anyone's), with its payment attempt and the acting user: for staff lookups."""
    return Refund.objects.select_related("attempt", "actor").filter(pk=pk).first()


# --- the merchant's reads (server keys) ---


def server_key_from_secret(secret: str) -> MerchantApiKey | None:
    """The usable (not revoked) key whose hash matches the secret; expiry is the caller's to check."""
    try:
        return MerchantApiKey.objects.get_from_key(secret)
    except MerchantApiKey.DoesNotExist:
        return None


def customer_for_merchant(*, ref: str) -> Customer | None:
    """A customer by kbilling id (`123`) or by the merchant's id (`ext:<external_id>`)."""
    if ref.startswith("ext:"):
        return Customer.objects.filter(external_id=ref[4:]).first()
    if ref.isdigit():
        return Customer.objects.filter(pk=int(ref)).first()
    return None


def customers_for_merchant(*, external_id: str | None = None) -> QuerySet[Customer]:
    customers = Customer.objects.order_by("-id")
    if external_id is not None:
        customers = customers.filter(external_id=external_id)
    return customers


def billing_keys_for_customer(*, customer: Customer) -> QuerySet[BillingKey]:
    return BillingKey.objects.filter(customer=customer, status=BillingKey.Status.ACTIVE).order_by(
        "-is_default", "-created_at", "-id"
    )


def payments_for_customer(*, customer: Customer) -> QuerySet[PaymentAttempt]:
    return payments_all().filter(invoice__customer=customer)


def events_after(*, after: int, limit: int, types: list[str] | None = None) -> list[Event]:
    """Sequenced events after the cursor, in sequence (commit) order: the feed. Run `events_sequence` first so the
    newest committed events are numbered."""
    events = Event.objects.filter(sequence__gt=after).select_related("customer").order_by("sequence")
    if types:
        events = events.filter(type__in=types)
    return list(events[:limit])
