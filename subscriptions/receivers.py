"""How subscriptions react to billing events. Connected in SubscriptionsConfig.ready().

Receivers run inside the transaction that settled the payment, so "invoice paid" and "subscription
active" (or "plan changed") commit together, whichever path settled it: the charge itself, the janitor,
or a webhook.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.dispatch import receiver

from billing import signals
from billing.bulk import rows_update
from billing.models import BillingKey, Customer, Invoice, PaymentAttempt
from billing.services.audit import audit_record, audit_records
from billing.services.invoices import invoice_void
from subscriptions.models import Subscription, SubscriptionInvoice
from subscriptions.services.common import status_change
from subscriptions.services.dunning import dunning_on_failure
from subscriptions.services.schedules import schedule_sync_on_commit

logger = logging.getLogger(__name__)
S = Subscription.Status
K = SubscriptionInvoice.Kind


def _link(invoice: Invoice) -> SubscriptionInvoice | None:
    return SubscriptionInvoice.objects.select_related("target_plan", "plan").filter(invoice=invoice).first()


@receiver(signals.invoice_paid)
def on_invoice_paid(sender, *, invoice: Invoice, attempt: PaymentAttempt, now: dt.datetime, **kwargs) -> None:
    link = _link(invoice)
    if link is None:
        return
    sub = Subscription.objects.select_for_update(of=("self",)).select_related("plan").get(pk=link.subscription_id)
    schedule_sync_on_commit(sub.pk, now)
    if link.kind in (K.UPGRADE, K.INTERVAL_CHANGE):
        _apply_plan_change(sub, link, now)
        return
    if sub.status == S.CANCELED and attempt is not None:
        # Money moved for a subscription that ended meanwhile (e.g. canceled while its first charge was
        # UNKNOWN): never silently keep it; an operator refunds or reactivates.
        PaymentAttempt.objects.filter(pk=attempt.pk).update(
            flagged_reason="paid after the subscription was canceled: refund or reactivate"
        )
        audit_record(
            at=now,
            action="payment.flagged",
            obj=attempt,
            customer_id=sub.customer_id,
            amount=attempt.amount,
            reason="paid after the subscription was canceled",
        )
        return
    entry = _activate(sub, link, invoice, now)
    if entry is not None:
        entry.save(force_insert=True)
        sub.save()


def _activate(sub: Subscription, link: SubscriptionInvoice, invoice: Invoice, now: dt.datetime):
    """A paid period invoice activates a subscription waiting for it (first charge, trial end, dunning).
    Changes `_ACTIVATED_FIELDS` in memory and returns the unsaved audit row, or None when nothing changes."""
    if sub.status not in _WAITING_FOR_PAYMENT or link.period_index < sub.current_period_index:
        return None
    entry = status_change(sub, S.ACTIVE, now=now, reason=f"invoice {invoice.number} paid")
    sub.incomplete_expires_at = None
    # A period that ended while dunning ran is followed at once by the period containing now.
    sub.next_event_at = sub.current_period_end
    return entry


_WAITING_FOR_PAYMENT = (S.INCOMPLETE, S.TRIALING, S.PAST_DUE, S.UNPAID)
_ACTIVATED_FIELDS = ("status", "incomplete_expires_at", "next_event_at", "updated_at")


@receiver(signals.invoices_paid)
def on_invoices_paid(sender, *, payments: list, now: dt.datetime, **kwargs) -> None:
    """The batch form: one locking query for all the invoices' subscriptions; an active subscription has
    nothing to change, one waiting for the payment (past due, trial end) is activated with one UPDATE for the
    batch, and every other case (plan changes, canceled subscriptions) goes through `on_invoice_paid`."""
    by_invoice = {invoice.pk: (invoice, attempt) for invoice, attempt in payments}
    links = (
        SubscriptionInvoice.objects.select_related("subscription")
        .select_for_update(of=("subscription",))
        .filter(invoice_id__in=by_invoice)
        .order_by("subscription_id")
    )
    activated, entries = [], []
    updated_at = Subscription._meta.get_field("updated_at")
    for link in links:
        sub, (invoice, attempt) = link.subscription, by_invoice[link.invoice_id]
        if link.kind not in (K.FIRST, K.RENEWAL) or sub.status == S.CANCELED:
            on_invoice_paid(sender, invoice=invoice, attempt=attempt, now=now)
            continue
        schedule_sync_on_commit(sub.pk, now)
        entry = _activate(sub, link, invoice, now)
        if entry is not None:
            updated_at.pre_save(sub, add=False)  # what save() would do (auto_now)
            activated.append(sub)
            entries.append(entry)
    rows_update(Subscription, activated, _ACTIVATED_FIELDS)
    audit_records(entries)


def _apply_plan_change(sub: Subscription, link: SubscriptionInvoice, now: dt.datetime) -> None:
    audit_record(
        at=now,
        action="subscription.plan_changed",
        obj=sub,
        customer=sub.customer,
        reason=f"{link.kind} paid",
        data={"from": sub.plan.code, "to": link.target_plan.code},
    )
    sub.plan = link.target_plan
    sub.pending_plan = None
    if link.kind == K.INTERVAL_CHANGE:
        # A new period starts now, anchored at the change.
        sub.billing_anchor = link.period_start
        sub.current_period_index = 0
        sub.current_period_start = link.period_start
        sub.current_period_end = link.period_end
        sub.next_event_at = link.period_end
    sub.save()


@receiver(signals.invoice_payment_failed)
def on_invoice_payment_failed(sender, *, invoice: Invoice, attempt: PaymentAttempt, now: dt.datetime, **kwargs) -> None:
    link = _link(invoice)
    if link is None:
        return
    sub = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan", "customer")
        .get(pk=link.subscription_id)
    )
    if link.kind in (K.UPGRADE, K.INTERVAL_CHANGE):
        # A plan change happens only if its charge succeeds: otherwise nothing changes.
        invoice_void(invoice=invoice, now=now, reason=f"plan change charge failed: {attempt.failure_reason}")
        return
    if sub.status == S.INCOMPLETE:
        return  # the first charge: the subscriber sees the decline and may try another card; no dunning
    if sub.status == S.CANCELED:
        return
    dunning_on_failure(subscription=sub, invoice=invoice, attempt=attempt, now=now)


@receiver(signals.default_billing_key_changed)
def on_default_billing_key_changed(sender, *, customer: Customer, billing_key: BillingKey, now: dt.datetime, **kwargs):
    """A new card moves the live subscription onto it (never a second subscription) and retries the open
    invoice at once."""
    sub = Subscription.objects.select_for_update().filter(customer=customer).exclude(status=S.CANCELED).first()
    if sub is None:
        return
    sub.billing_key = billing_key
    sub.save(update_fields=["billing_key", "updated_at"])
    schedule_sync_on_commit(sub.pk, now)
    open_ids = list(
        SubscriptionInvoice.objects.filter(
            subscription=sub, invoice__status=Invoice.Status.OPEN, kind__in=[K.FIRST, K.RENEWAL]
        ).values_list("invoice_id", flat=True)
    )
    if not open_ids:
        return

    def retry() -> None:
        from subscriptions.services.dunning import invoice_retry

        for invoice_id in open_ids:
            invoice_retry(invoice_id=invoice_id, now=now, force=True)

    transaction.on_commit(retry)
