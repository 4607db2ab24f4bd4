"""How subscriptions react to settled payments: the one place for it, called by the signal receivers
(subscriptions/receivers.py) inside the transaction that settled the payments.

- Paid period invoices activate subscriptions waiting for them (first charge, trial end, dunning) with one
  UPDATE for the batch; a paid plan-change invoice applies the change; money for a subscription that ended
  meanwhile is flagged for an operator (billing's `payment_flag`; no app writes another app's rows).
- Failed charges: a plan change's invoice is voided (nothing changes); a renewal goes to dunning, decided for
  the whole batch (subscriptions/services/dunning.py).
- A new default card moves the live subscription onto it and retries its open invoice at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from billing.bulk import rows_update
from billing.models import BillingKey, Customer, Invoice, PaymentAttempt
from billing.services.audit import audit_record, audit_records
from billing.services.invoices import invoice_void
from billing.services.payments import payment_flag
from subscriptions import notifications
from subscriptions.models import Subscription, SubscriptionInvoice
from subscriptions.services.dunning import dunning_on_failures
from subscriptions.services.schedules import schedule_sync_on_commit
from subscriptions.services.status import status_change

S = Subscription.Status
K = SubscriptionInvoice.Kind
_PERIOD_KINDS = (K.FIRST, K.RENEWAL)
_WAITING_FOR_PAYMENT = (S.INCOMPLETE, S.TRIALING, S.PAST_DUE, S.UNPAID)
_ACTIVATED_FIELDS = ("status", "incomplete_expires_at", "next_event_at", "updated_at")


def _links(invoice_ids) -> list[SubscriptionInvoice]:
    """The invoices' subscription links, their subscriptions locked, in one query (in subscription order, so
    concurrent batches lock in the same order)."""
    return list(
        SubscriptionInvoice.objects.select_related("subscription__plan", "subscription__customer", "target_plan")
        .select_for_update(of=("subscription",))
        .filter(invoice_id__in=invoice_ids)
        .order_by("subscription_id")
    )


def subscriptions_on_invoices_paid(*, payments: Sequence[tuple[Invoice, PaymentAttempt | None]], now: dt.datetime):
    """Invoices became PAID. An active subscription has nothing to change; one waiting for the payment is
    activated (one UPDATE for the batch); plan changes and ended subscriptions are handled one by one."""
    by_invoice = {invoice.pk: (invoice, attempt) for invoice, attempt in payments}
    activated, entries, receipts = [], [], []
    for link in _links(by_invoice):
        sub, (invoice, attempt) = link.subscription, by_invoice[link.invoice_id]
        schedule_sync_on_commit(sub.pk, now)
        if attempt is not None:
            receipts.append((invoice, attempt, sub))
        if link.kind in (K.UPGRADE, K.INTERVAL_CHANGE):
            _apply_plan_change(sub, link, now)
        elif sub.status == S.CANCELED:
            if attempt is not None:
                # Money moved for a subscription that ended meanwhile (e.g. canceled while its first charge was
                # UNKNOWN): never silently keep it; an operator refunds or reactivates.
                payment_flag(attempt, now=now, reason="paid after the subscription was canceled: refund or reactivate")
        else:
            entry = _activate(sub, link, invoice, now)
            if entry is not None:
                sub.updated_at = timezone.now()  # auto_now's value; the set-based UPDATE below writes it
                activated.append(sub)
                entries.append(entry)
    rows_update(Subscription, activated, _ACTIVATED_FIELDS)
    audit_records(entries)
    if receipts:  # money moved: the subscriber gets a receipt with the terms, once the booking is committed
        transaction.on_commit(lambda: notifications.send_receipts(receipts=receipts))


def _activate(sub: Subscription, link: SubscriptionInvoice, invoice: Invoice, now: dt.datetime):
    """A paid period invoice activates a subscription waiting for it. Changes `_ACTIVATED_FIELDS` in memory and
    returns the unsaved audit row, or None when nothing changes."""
    if sub.status not in _WAITING_FOR_PAYMENT or link.period_index < sub.current_period_index:
        return None
    entry = status_change(sub, S.ACTIVE, now=now, reason=f"invoice {invoice.number} paid")
    sub.incomplete_expires_at = None
    # A period that ended while dunning ran is followed at once by the period containing now.
    sub.next_event_at = sub.current_period_end
    return entry


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


def subscriptions_on_payments_failed(*, failures: Sequence[tuple[Invoice, PaymentAttempt]], now: dt.datetime):
    """Charges failed. A plan change happens only if its charge succeeds: its invoice is voided. A first
    charge is the subscriber's to retry (no dunning); an ended subscription needs nothing. Renewals go to
    dunning, decided for the whole batch."""
    by_invoice = {invoice.pk: (invoice, attempt) for invoice, attempt in failures}
    dunned = []
    for link in _links(by_invoice):
        sub, (invoice, attempt) = link.subscription, by_invoice[link.invoice_id]
        if link.kind in (K.UPGRADE, K.INTERVAL_CHANGE):
            invoice_void(invoice=invoice, now=now, reason=f"plan change charge failed: {attempt.failure_reason}")
        elif link.kind in _PERIOD_KINDS and sub.status not in (S.INCOMPLETE, S.CANCELED):
            dunned.append((sub, invoice, attempt))
    dunning_on_failures(failures=dunned, now=now)


def subscription_on_default_card_changed(*, customer: Customer, billing_key: BillingKey, now: dt.datetime) -> None:
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
            subscription=sub, invoice__status=Invoice.Status.OPEN, kind__in=_PERIOD_KINDS
        ).values_list("invoice_id", flat=True)
    )
    if not open_ids:
        return

    def retry() -> None:
        from subscriptions.services.dunning import invoices_retry

        invoices_retry(invoice_ids=open_ids, now=now, force=True)

    transaction.on_commit(retry)
