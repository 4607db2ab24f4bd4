"""Helpers shared by the subscription services: period maths on a subscription, period invoices, charging."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import translation

from billing.errors import InvoiceNotPayableError, PaymentInProgressError
from billing.models import Invoice, PaymentAttempt
from billing.services.audit import audit_entry
from billing.services.invoices import InvoiceDraft, LineSpec, invoice_create, invoice_finalize, invoices_create_open
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


@dataclass(frozen=True)
class PeriodRequest:
    """One period of one subscription to invoice with `period_invoices`."""

    subscription: Subscription  # locked by the caller, with its customer loaded
    plan: Plan
    index: int
    kind: str  # "first" or "renewal"


def period_invoices(*, requests: Sequence[PeriodRequest], now: dt.datetime) -> list[tuple[Invoice, bool]]:
    """The invoice of each requested period, created (and opened) at most once: the (subscription,
    period_start) unique constraint makes renewals idempotent however often the sweep fires. Returns
    (invoice, created) per request, in order. Must run inside the caller's transaction, with the subscription
    rows locked. A fixed number of statements for any number of periods; a customer with credit is invoiced
    one by one, because applying credit locks the customer."""
    if not requests:
        return []
    spans = [bounds(anchor=r.subscription.billing_anchor, plan=r.plan, index=r.index) for r in requests]
    existing = {
        (link.subscription_id, link.period_start): link.invoice
        for link in SubscriptionInvoice.objects.select_related("invoice").filter(
            subscription_id__in={r.subscription.pk for r in requests},
            period_start__in={start for start, _ in spans},
            kind__in=["first", "renewal"],
            superseded=False,
        )
    }
    results: list[tuple[Invoice, bool] | None] = [None] * len(requests)
    batch = []
    for position, (request, (start, end)) in enumerate(zip(requests, spans, strict=True)):
        invoice = existing.get((request.subscription.pk, start))
        if invoice is not None:
            results[position] = (invoice, False)
        elif request.subscription.customer.credit_balance:
            results[position] = (_period_invoice_with_credit(request, start, end, now), True)
        else:
            batch.append((position, request, start, end))
    # A safety net: if the worker dies before it records an attempt, the retry sweep picks the invoice up.
    retry_at = now + dt.timedelta(minutes=2)
    invoices = invoices_create_open(
        drafts=[
            InvoiceDraft(
                customer=request.subscription.customer,
                kind=_invoice_kind(request.kind),
                description=plan_label(request.plan),
                lines=[_plan_line(request.plan, start, end)],
                period_start=start,
                period_end=end,
                next_attempt_at=retry_at,
            )
            for _, request, start, end in batch
        ],
        now=now,
    )
    SubscriptionInvoice.objects.bulk_create(
        _link(request, invoice, start, end, now)
        for (_, request, start, end), invoice in zip(batch, invoices, strict=True)
    )
    for (position, *_), invoice in zip(batch, invoices, strict=True):
        results[position] = (invoice, True)
    return results


def period_invoice(
    *, subscription: Subscription, plan: Plan, index: int, kind: str, now: dt.datetime
) -> tuple[Invoice, bool]:
    """`period_invoices` for one period."""
    request = PeriodRequest(subscription=subscription, plan=plan, index=index, kind=kind)
    return period_invoices(requests=[request], now=now)[0]


def _invoice_kind(kind: str) -> str:
    return Invoice.Kind.SUBSCRIPTION_CREATE if kind == "first" else Invoice.Kind.RENEWAL


def _plan_line(plan: Plan, start: dt.datetime, end: dt.datetime) -> LineSpec:
    return LineSpec(
        description=f"{plan.name_ko} / {plan.name_en}",
        amount=plan.amount,
        tax_free_amount=plan.tax_free_amount,
        period_start=start,
        period_end=end,
        details={"plan": plan.code},
    )


def _link(request: PeriodRequest, invoice: Invoice, start, end, now) -> SubscriptionInvoice:
    return SubscriptionInvoice(
        subscription=request.subscription,
        invoice=invoice,
        kind=request.kind,
        plan=request.plan,
        period_index=request.index,
        period_start=start,
        period_end=end,
        created_at=now,
    )


def _period_invoice_with_credit(request: PeriodRequest, start, end, now: dt.datetime) -> Invoice:
    """Draft, link, then finalize: finalizing applies the customer's credit under the customer's lock, and an
    invoice it covers entirely is paid at once (its `invoice_paid` receiver needs the link)."""
    with translation.override("ko"):
        invoice = invoice_create(
            customer=request.subscription.customer,
            kind=_invoice_kind(request.kind),
            description=plan_label(request.plan),
            lines=[_plan_line(request.plan, start, end)],
            now=now,
            period_start=start,
            period_end=end,
        )
    _link(request, invoice, start, end, now).save(force_insert=True)
    invoice = invoice_finalize(invoice=invoice, now=now)
    if invoice.status == Invoice.Status.OPEN:
        Invoice.objects.filter(pk=invoice.pk).update(next_attempt_at=now + dt.timedelta(minutes=2))
    return invoice


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
    entry = status_change(subscription, status, now=now, reason=reason, actor=actor)
    if entry is not None:
        entry.save(force_insert=True)


def status_change(subscription: Subscription, status: str, *, now: dt.datetime, reason: str = "", actor=None):
    """`set_status` for a batch: changes the status in memory and returns the unsaved audit row (None when
    nothing changes); the caller saves both."""
    if subscription.status == status:
        return None
    entry = audit_entry(
        at=now,
        action="subscription.status",
        obj=subscription,
        actor=actor,
        actor_label="system",
        customer_id=subscription.customer_id,
        from_status=subscription.status,
        to_status=status,
        reason=reason,
    )
    subscription.status = status
    return entry


def locked(subscription_id: int) -> Subscription:
    return (
        Subscription.objects.select_for_update(of=("self",)).select_related("plan", "customer").get(pk=subscription_id)
    )


def on_commit(func) -> None:
    transaction.on_commit(func)
