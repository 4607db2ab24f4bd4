"""Dunning: the one policy for what happens after a renewal charge fails.

- Soft declines (insufficient funds, limit exceeded, unknown texts) retry at +1, +3, +5, +10 and +14 days
  after the FIRST failure (settings.BILLING_DUNNING_SOFT_RETRY_DAYS).
- Hard declines (lost or stolen, invalid, expired) are not retried on the same card: they wait for a new
  card until the end of the soft schedule.
- Gateway errors (Iamport or the PG unreachable; nothing was charged) get quick retries
  (BILLING_DUNNING_GATEWAY_RETRY_MINUTES), then follow the soft schedule.
- Meanwhile the subscription is past_due and keeps access. When the schedule is exhausted the final action
  runs: cancel (default) or `unpaid` (BILLING_DUNNING_FINAL_ACTION).
- Every failure emails the subscriber (ko/en) with a link to update the card; a new card retries the open
  invoice at once, on the same subscription.
- A charge the gateway refused for its rate (HTTP 429, a burst over a PG's cap) reached no card company: it is
  retried after 1, 2, 4, ... minutes without dunning, past due or email (BILLING_THROTTLED_RETRIES times).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction

from billing.decline import GATEWAY, HARD
from billing.models import Invoice, PaymentAttempt
from billing.selectors import billing_keys_default
from billing.services.audit import audit_record
from billing.services.invoices import invoice_mark_uncollectible
from billing.services.payments import NOT_SENT, THROTTLED, payment_attempts_create, payments_charge
from subscriptions import notifications
from subscriptions.models import Subscription, SubscriptionInvoice
from subscriptions.services.common import set_status

logger = logging.getLogger(__name__)


def dunning_deadline(invoice: Invoice) -> dt.datetime:
    return invoice.first_failed_at + dt.timedelta(days=max(settings.BILLING_DUNNING_SOFT_RETRY_DAYS))


def dunning_next_attempt_at(*, invoice: Invoice, decline_class: str, now: dt.datetime) -> dt.datetime | None:
    """When to try again after a failure at `now`, or None when the schedule is exhausted.
    `invoice.first_failed_at` must already be set."""
    first = invoice.first_failed_at
    if decline_class == HARD:
        deadline = dunning_deadline(invoice)
        return deadline if deadline > now else None
    if decline_class == GATEWAY:
        gateway_failures = invoice.attempts.filter(status="failed", decline_class=GATEWAY).count()
        minutes = settings.BILLING_DUNNING_GATEWAY_RETRY_MINUTES
        if gateway_failures <= len(minutes):
            return now + dt.timedelta(minutes=minutes[gateway_failures - 1])
    for days in settings.BILLING_DUNNING_SOFT_RETRY_DAYS:
        moment = first + dt.timedelta(days=days)
        if moment > now:
            return moment
    return None


def dunning_on_failure(*, subscription: Subscription, invoice: Invoice, attempt: PaymentAttempt, now: dt.datetime):
    """A renewal charge failed (called inside the settling transaction, subscription locked)."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status != Invoice.Status.OPEN:
        return
    if attempt.failure_code in (THROTTLED, NOT_SENT) and _retry_quietly(invoice, attempt, now):
        return
    if invoice.first_failed_at is None:
        invoice.first_failed_at = now
    invoice.last_decline_class = attempt.decline_class
    invoice.last_failure_reason = attempt.failure_reason[:255]
    invoice.next_attempt_at = dunning_next_attempt_at(invoice=invoice, decline_class=attempt.decline_class, now=now)
    invoice.save(update_fields=["first_failed_at", "last_decline_class", "last_failure_reason", "next_attempt_at"])
    audit_record(
        at=now,
        action="dunning.scheduled" if invoice.next_attempt_at else "dunning.exhausted",
        obj=invoice,
        customer=invoice.customer,
        amount=invoice.total,
        reason=attempt.failure_reason,
        data={"class": attempt.decline_class, "next_attempt_at": str(invoice.next_attempt_at or "")},
    )
    if invoice.next_attempt_at is None:
        _final_action(subscription=subscription, invoice=invoice, now=now)
    elif subscription.status in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING):
        set_status(subscription, Subscription.Status.PAST_DUE, now=now, reason=attempt.failure_reason)
        # No new period starts while the current one is unpaid: the sweep waits for dunning to settle.
        subscription.next_event_at = None
        subscription.save()
    invoice_id, attempt_id = invoice.pk, attempt.pk
    transaction.on_commit(lambda: notifications.send_payment_failed(invoice_id=invoice_id, attempt_id=attempt_id))


def _retry_quietly(invoice: Invoice, attempt: PaymentAttempt, now: dt.datetime) -> bool:
    """A charge refused for the gateway's rate (a billing burst over a PG's cap), or held back by our own
    queue, never reached the card company: retry it after 1, 2, 4, ... minutes (at most 30) without starting
    dunning, marking the subscription past due or emailing anyone. After BILLING_THROTTLED_RETRIES such
    refusals it is treated as a gateway error. Returns whether it was rescheduled."""
    refusals = invoice.attempts.filter(failure_code__in=(THROTTLED, NOT_SENT)).count()
    if refusals > settings.BILLING_THROTTLED_RETRIES:
        return False
    invoice.next_attempt_at = now + dt.timedelta(minutes=min(2 ** (refusals - 1), 30))
    invoice.save(update_fields=["next_attempt_at"])
    audit_record(
        at=now,
        action="dunning.throttled",
        obj=invoice,
        customer_id=invoice.customer_id,
        amount=invoice.total,
        reason=attempt.failure_reason,
        data={"refusals": refusals, "next_attempt_at": str(invoice.next_attempt_at)},
    )
    return True


def _final_action(*, subscription: Subscription, invoice: Invoice, now: dt.datetime) -> None:
    if settings.BILLING_DUNNING_FINAL_ACTION == "unpaid":
        set_status(subscription, Subscription.Status.UNPAID, now=now, reason="dunning exhausted")
        subscription.next_event_at = None
    else:
        set_status(subscription, Subscription.Status.CANCELED, now=now, reason="dunning exhausted")
        subscription.canceled_at = subscription.canceled_at or now
        subscription.ended_at = now
        subscription.end_reason = "dunning_exhausted"
        subscription.next_event_at = None
        invoice_mark_uncollectible(invoice=invoice, now=now, reason="dunning exhausted")
    subscription.save()


def invoices_retry_due(*, now: dt.datetime) -> list[int]:
    return list(
        Invoice.objects.filter(status=Invoice.Status.OPEN, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)
    )


def invoices_retry(
    *, invoice_ids: Sequence[int], now: dt.datetime, gateway=None, force: bool = False
) -> dict[int, PaymentAttempt | None]:
    """Retry a batch of open invoices whose next attempt is due (or now, with force=True: a new card, an
    admin), like renewals: one short transaction re-checks them and records their attempts, then the gateway
    is called for all of them at once outside it. Returns the attempt per invoice, None where nothing was
    charged. A hard decline is not retried on the same card; at the deadline the final action runs instead.
    The sweep skips an invoice another worker holds (the next sweep sees it if it is still due)."""
    results: dict[int, PaymentAttempt | None] = dict.fromkeys(invoice_ids)
    with transaction.atomic():
        locking = Invoice.objects.select_for_update(of=("self",), skip_locked=not force)
        invoices = list(locking.filter(pk__in=invoice_ids, status=Invoice.Status.OPEN).order_by("pk"))
        links = {
            link.invoice_id: link
            for link in SubscriptionInvoice.objects.select_related("subscription").filter(invoice__in=invoices)
        }
        hard = [i.customer_id for i in invoices if i.last_decline_class == HARD and not force]
        keys = billing_keys_default(customer_ids=hard)
        due = []
        for invoice in invoices:
            if not force and (invoice.next_attempt_at is None or invoice.next_attempt_at > now):
                continue  # another worker got here first, or the schedule moved
            link = links.get(invoice.pk)
            subscription = link.subscription if link else None
            if subscription is not None and subscription.status == Subscription.Status.CANCELED:
                continue
            if invoice.last_decline_class == HARD and not force:
                if _waits_for_a_new_card(invoice, subscription, keys.get(invoice.customer_id), now):
                    continue
            due.append(invoice.pk)
        attempts, refused = payment_attempts_create(invoice_ids=due, now=now)
    for invoice_id, error in refused.items():
        logger.info("invoice %s not retried: %s", invoice_id, error.code)
    for attempt in payments_charge(attempts=attempts, now=now, gateway=gateway):
        results[attempt.invoice_id] = attempt
    return results


def invoice_retry(*, invoice_id: int, now: dt.datetime, gateway=None, force: bool = False) -> PaymentAttempt | None:
    """`invoices_retry` for one invoice."""
    return invoices_retry(invoice_ids=[invoice_id], now=now, gateway=gateway, force=force)[invoice_id]


def _waits_for_a_new_card(invoice: Invoice, subscription, current_key, now: dt.datetime) -> bool:
    """After a hard decline, the same card is not charged again: wait for a new one until the dunning
    deadline, then run the final action. False when the customer has a new card to try."""
    last = invoice.attempts.filter(status="failed").order_by("-created_at").first()
    if last is None or current_key is None or current_key.customer_uid != last.customer_uid:
        return False
    if now >= dunning_deadline(invoice) and subscription is not None:
        Subscription.objects.select_for_update().get(pk=subscription.pk)
        subscription.refresh_from_db()
        _final_action(subscription=subscription, invoice=invoice, now=now)
    else:
        Invoice.objects.filter(pk=invoice.pk).update(next_attempt_at=dunning_deadline(invoice))
    return True
