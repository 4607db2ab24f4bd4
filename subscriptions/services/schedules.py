"""The schedule strategy (settings.BILLING_STRATEGY == "schedule"): Iamport charges the next period itself.

After each paid period, the next period's invoice is opened and its charge pre-registered with
/subscribe/payments/schedule (notice_url = our webhook), recorded first as a PENDING attempt with
via=schedule, exactly like a charge. Iamport executes it at the period start and tells us by webhook (paid or
failed); the janitor looks up any schedule whose webhook never came. A failed scheduled charge enters the same
dunning as a declined `again` (retries use `again`).

`subscription_schedule_sync` is the one reconciling function: it computes what should be scheduled (the next
period, its plan after any pending downgrade, the current card) and, when what is registered differs (a plan
change, cancel, pause, new card), unschedules it and registers the right one. Every lifecycle change calls it
after commit, so the schedule never drifts from the subscription.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction

from billing.gateway.base import ScheduleItem
from billing.gateway.errors import GatewayError, GatewayNotFound, GatewayRejected
from billing.models import Invoice, PaymentAttempt
from billing.selectors import billing_key_default
from billing.services.gateway import get_gateway
from billing.services.invoices import invoice_void
from billing.services.payments import (
    payment_attempt_create,
    payment_reconcile,
    payment_revoke_scheduled,
    webhook_url,
)
from subscriptions.models import Subscription, SubscriptionInvoice
from subscriptions.selectors import subscription_locked as locked
from subscriptions.services.renewals import period_invoice

logger = logging.getLogger(__name__)


def schedule_strategy_enabled() -> bool:
    return settings.BILLING_STRATEGY == "schedule"


def _pending_scheduled(sub: Subscription) -> tuple[SubscriptionInvoice, PaymentAttempt] | None:
    link = (
        SubscriptionInvoice.objects.select_related("invoice", "plan")
        .filter(subscription=sub, kind="renewal", superseded=False, invoice__status=Invoice.Status.OPEN)
        .filter(
            invoice__attempts__via=PaymentAttempt.Via.SCHEDULE, invoice__attempts__status=PaymentAttempt.Status.PENDING
        )
        .order_by("-period_start")
        .first()
    )
    if link is None:
        return None
    return link, link.invoice.attempts.get(via=PaymentAttempt.Via.SCHEDULE, status=PaymentAttempt.Status.PENDING)


def _desired(sub: Subscription) -> tuple[int, object, str] | None:
    """(period index, plan, customer_uid) that should be scheduled now, or None."""
    if sub.status != Subscription.Status.ACTIVE or sub.cancel_at_period_end or sub.pause_requested:
        return None
    key = billing_key_default(customer_id=sub.customer_id)
    if key is None:
        return None
    last_paid = (
        SubscriptionInvoice.objects.filter(
            subscription=sub, kind__in=["first", "renewal"], superseded=False, invoice__status=Invoice.Status.PAID
        )
        .order_by("-period_index")
        .values_list("period_index", flat=True)
        .first()
    )
    if last_paid is None or last_paid < sub.current_period_index:
        return None  # the current period is not paid yet: dunning or the sweep owns it
    return last_paid + 1, sub.pending_plan or sub.plan, key.customer_uid


def subscription_schedule_sync(*, subscription_id: int, now: dt.datetime, gateway=None) -> str:
    """Make Iamport's schedule match what the subscription needs next. Safe to run any time, any number of times."""
    if not schedule_strategy_enabled():
        return "disabled"
    gateway = gateway or get_gateway()
    sub = Subscription.objects.select_related("plan", "pending_plan").get(pk=subscription_id)
    desired = _desired(sub)
    current = _pending_scheduled(sub)
    if current is not None:
        link, attempt = current
        if desired == (link.period_index, link.plan, attempt.customer_uid):
            return "in_place"
        outcome = _revoke(link, attempt, now=now, gateway=gateway)
        if outcome != "revoked":
            return outcome
    if desired is None:
        return "revoked" if current else "nothing"
    return _register(sub.pk, desired, now=now, gateway=gateway)


def _revoke(link: SubscriptionInvoice, attempt: PaymentAttempt, *, now: dt.datetime, gateway) -> str:
    try:
        gateway.unschedule_charges(customer_uid=attempt.customer_uid, merchant_uids=[attempt.merchant_uid])
    except GatewayNotFound:
        # Nothing left to revoke: it already ran. Its outcome decides, like any charge.
        settled = payment_reconcile(attempt_id=attempt.pk, now=now, gateway=gateway, source="schedule_sync")
        return f"already_executed:{settled.status}"
    except GatewayError as exc:
        logger.warning("unschedule %s failed (%s); will try again on the next sync", attempt.merchant_uid, exc)
        return "unschedule_failed"
    with transaction.atomic():
        payment_revoke_scheduled(attempt_id=attempt.pk, now=now, reason="replaced by a new schedule")
        invoice_void(invoice=link.invoice, now=now, reason="scheduled renewal revoked")
        SubscriptionInvoice.objects.filter(pk=link.pk).update(superseded=True)
    return "revoked"


def _register(subscription_id: int, desired, *, now: dt.datetime, gateway) -> str:
    index, plan, customer_uid = desired
    with transaction.atomic():
        sub = locked(subscription_id)
        invoice, _created = period_invoice(subscription=sub, plan=plan, index=index, kind="renewal", now=now)
        if invoice.status != Invoice.Status.OPEN:
            return "nothing_due"  # covered by credit
        period_start = SubscriptionInvoice.objects.get(invoice=invoice).period_start
        attempt = payment_attempt_create(
            invoice_id=invoice.pk,
            now=now,
            customer_uid=customer_uid,
            via=PaymentAttempt.Via.SCHEDULE,
            scheduled_for=period_start,
        )
    item = ScheduleItem(
        merchant_uid=attempt.merchant_uid,
        schedule_at=period_start,
        amount=attempt.amount,
        name=invoice.description,
        tax_free=attempt.tax_free_amount,
        vat_amount=attempt.vat_amount,
        notice_url=webhook_url(),
    )
    try:
        gateway.schedule_charges(customer_uid=customer_uid, schedules=[item])
    except GatewayRejected as exc:
        # Refused outright: nothing is scheduled. Fall back to charging with `again` at the period start.
        payment_revoke_scheduled(attempt_id=attempt.pk, now=now, reason=f"schedule refused: {exc.message}")
        Invoice.objects.filter(pk=invoice.pk).update(next_attempt_at=period_start)
        return "refused"
    except GatewayError as exc:
        # Unknown: the janitor looks the merchant_uid up after schedule_at, like any unsettled attempt.
        logger.warning("schedule %s outcome unknown: %s", attempt.merchant_uid, exc)
        return "unknown"
    return "scheduled"


def schedule_sync_on_commit(subscription_id: int, now: dt.datetime) -> None:
    """Lifecycle services call this inside their transaction; the gateway is called after commit."""
    if schedule_strategy_enabled():
        transaction.on_commit(lambda: subscription_schedule_sync(subscription_id=subscription_id, now=now))
