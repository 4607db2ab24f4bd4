"""Read-only queries behind the subscriber's pages: every one is scoped to one customer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Prefetch, Q, Sum

from billing.models import BillingKey, Customer, Invoice, PaymentAttempt, Refund
from billing.selectors import billing_key_default
from subscriptions.models import Plan, Subscription


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
    return subs.exclude(status="canceled").first() or subs.order_by("-created_at", "-id").first()


def subscription_next_charge(subscription: Subscription) -> NextCharge | None:
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
            PaymentAttempt.objects.filter(invoice__subscription_link__subscription=subscription, status="failed")
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


def invoices_for_customer(*, customer: Customer):
    return (
        Invoice.objects.filter(customer=customer)
        .exclude(status=Invoice.Status.DRAFT)
        .exclude(status=Invoice.Status.VOID, attempts__isnull=True)
        .distinct()
        .order_by("-finalized_at", "-id")
    )


def invoice_receipt(*, customer: Customer, invoice_id: int) -> Invoice | None:
    """One of the customer's invoices with its lines, payments and refunds (None if not theirs)."""
    refunds = Refund.objects.filter(status=Refund.Status.SUCCEEDED).order_by("created_at")
    attempts = PaymentAttempt.objects.order_by("created_at").prefetch_related(Prefetch("refunds", queryset=refunds))
    invoice = (
        Invoice.objects.filter(customer=customer, pk=invoice_id)
        .exclude(status=Invoice.Status.DRAFT)
        .prefetch_related("lines", Prefetch("attempts", queryset=attempts))
        .annotate(refunded=Sum("attempts__refunds__amount", filter=Q(attempts__refunds__status="succeeded"), default=0))
        .first()
    )
    return invoice
