"""Helpers shared by the subscription services: period maths on a subscription, period invoices, charging."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import translation

from billing.errors import InvoiceNotPayableError, PaymentInProgressError
from billing.models import Invoice, PaymentAttempt
from billing.services.audit import audit_record
from billing.services.invoices import LineSpec, invoice_create, invoice_finalize
from billing.services.payments import payment_charge
from subscriptions import periods
from subscriptions.models import Plan, Subscription, SubscriptionInvoice

logger = logging.getLogger(__name__)


def bounds(*, anchor: dt.datetime, plan: Plan, index: int) -> tuple[dt.datetime, dt.datetime]:
    return periods.period_bounds(anchor, interval=plan.interval, count=plan.interval_count, index=index)


def index_at(*, anchor: dt.datetime, plan: Plan, moment: dt.datetime) -> int:
    return periods.period_index_at(anchor, interval=plan.interval, count=plan.interval_count, moment=moment)


def plan_label(plan: Plan) -> str:
    return plan.name_ko[:40]


def period_invoice(
    *, subscription: Subscription, plan: Plan, index: int, kind: str, now: dt.datetime
) -> tuple[Invoice, bool]:
    """The invoice of one period, created (and finalized) at most once: the (subscription, period_start)
    unique constraint makes the renewal idempotent however often the sweep fires. Returns (invoice, created).
    Must run inside the caller's transaction, with the subscription row locked."""
    start, end = bounds(anchor=subscription.billing_anchor, plan=plan, index=index)
    existing = (
        SubscriptionInvoice.objects.select_related("invoice")
        .filter(subscription=subscription, period_start=start, kind__in=["first", "renewal"], superseded=False)
        .first()
    )
    if existing is not None:
        return existing.invoice, False
    with translation.override("ko"):
        invoice = invoice_create(
            customer=subscription.customer,
            kind=Invoice.Kind.SUBSCRIPTION_CREATE if kind == "first" else Invoice.Kind.RENEWAL,
            description=plan_label(plan),
            lines=[
                LineSpec(
                    description=f"{plan.name_ko} / {plan.name_en}",
                    amount=plan.amount,
                    tax_free_amount=plan.tax_free_amount,
                    period_start=start,
                    period_end=end,
                    details={"plan": plan.code},
                )
            ],
            now=now,
            period_start=start,
            period_end=end,
        )
    SubscriptionInvoice.objects.create(
        subscription=subscription,
        invoice=invoice,
        kind=kind,
        plan=plan,
        period_index=index,
        period_start=start,
        period_end=end,
        created_at=now,
    )
    invoice = invoice_finalize(invoice=invoice, now=now)
    if invoice.status == Invoice.Status.OPEN:
        # A safety net: if the worker dies before it charges, the retry sweep picks the invoice up.
        Invoice.objects.filter(pk=invoice.pk).update(next_attempt_at=now + dt.timedelta(minutes=2))
    return invoice, True


def charge_invoice(*, invoice_id: int, now: dt.datetime, gateway=None) -> PaymentAttempt | None:
    """Charge an open invoice with the customer's default card. None when there was nothing to do: already
    paid, or another attempt is in flight (its settlement decides)."""
    try:
        return payment_charge(invoice_id=invoice_id, now=now, gateway=gateway)
    except (InvoiceNotPayableError, PaymentInProgressError) as exc:
        logger.info("invoice %s not charged: %s", invoice_id, exc.code)
        return None


def set_status(subscription: Subscription, status: str, *, now: dt.datetime, reason: str = "", actor=None) -> None:
    """Change a (locked) subscription's status with an audit entry. The caller saves."""
    if subscription.status == status:
        return
    audit_record(
        at=now,
        action="subscription.status",
        obj=subscription,
        actor=actor,
        actor_label="system",
        customer=subscription.customer,
        from_status=subscription.status,
        to_status=status,
        reason=reason,
    )
    subscription.status = status


def locked(subscription_id: int) -> Subscription:
    return (
        Subscription.objects.select_for_update(of=("self",)).select_related("plan", "customer").get(pk=subscription_id)
    )


def on_commit(func) -> None:
    transaction.on_commit(func)
