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
- Failures are decided a batch at a time (`dunning_on_failures`): a day when most cards still fail costs a few
  statements per chunk of charges, like a day when they pay.
- A charge the gateway refused for its rate (HTTP 429, a burst over a PG's cap) reached no card company: it is
  retried after 1, 2, 4, ... minutes without dunning, past due or email (BILLING_THROTTLED_RETRIES times).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from billing.bulk import rows_update
from billing.decline import GATEWAY, HARD
from billing.models import Invoice, PaymentAttempt
from billing.selectors import billing_keys_default
from billing.services.audit import audit_entry, audit_records
from billing.services.invoices import invoice_mark_uncollectible
from billing.services.payments import NOT_SENT, THROTTLED, payment_attempts_create, payments_charge
from subscriptions import notifications
from subscriptions.models import Subscription, SubscriptionInvoice
from subscriptions.services.status import set_status, status_change

logger = logging.getLogger(__name__)


def dunning_deadline(invoice: Invoice) -> dt.datetime:
    return invoice.first_failed_at + dt.timedelta(days=max(settings.BILLING_DUNNING_SOFT_RETRY_DAYS))


def dunning_next_attempt_at(
    *, invoice: Invoice, decline_class: str, now: dt.datetime, gateway_failures: int = 0
) -> dt.datetime | None:
    """When to try again after a failure at `now`, or None when the schedule is exhausted.
    `invoice.first_failed_at` must already be set; `gateway_failures` counts the invoice's failed attempts of
    the gateway class, this one included."""
    first = invoice.first_failed_at
    if decline_class == HARD:
        deadline = dunning_deadline(invoice)
        return deadline if deadline > now else None
    if decline_class == GATEWAY:
        minutes = settings.BILLING_DUNNING_GATEWAY_RETRY_MINUTES
        if gateway_failures <= len(minutes):
            return now + dt.timedelta(minutes=minutes[gateway_failures - 1])
    for days in settings.BILLING_DUNNING_SOFT_RETRY_DAYS:
        moment = first + dt.timedelta(days=days)
        if moment > now:
            return moment
    return None


_DUNNING_FIELDS = ("first_failed_at", "last_decline_class", "last_failure_reason", "next_attempt_at")
_PAST_DUE_FIELDS = ("status", "next_event_at", "updated_at")


def dunning_on_failures(*, failures: Sequence[tuple[Subscription, Invoice, PaymentAttempt]], now: dt.datetime):
    """Renewal charges failed (inside the settling transaction, the subscriptions locked): decide each one's
    next step for the whole batch in a fixed number of statements. A charge that never reached the card
    company for the gateway's rate is retried quietly; every other failure schedules the next retry (or
    runs the final action when the schedule is exhausted), marks the subscription past due, and emails the
    subscriber after commit."""
    if not failures:
        return
    invoices = {
        invoice.pk: invoice
        for invoice in Invoice.objects.select_for_update()
        .select_related("customer")
        .filter(pk__in=[invoice.pk for _, invoice, _ in failures], status=Invoice.Status.OPEN)
        .order_by("pk")
    }
    # Earlier refusals and gateway failures decide only a quiet retry and the gateway schedule: a day of card
    # declines needs no count at all.
    counted = [i.pk for _, i, a in failures if a.decline_class == GATEWAY or a.failure_code in (THROTTLED, NOT_SENT)]
    counts = (
        {
            row["invoice_id"]: row
            for row in PaymentAttempt.objects.filter(invoice_id__in=counted)
            .values("invoice_id")
            .annotate(
                refusals=Count("id", filter=Q(failure_code__in=(THROTTLED, NOT_SENT))),
                gateway=Count("id", filter=Q(status=PaymentAttempt.Status.FAILED, decline_class=GATEWAY)),
            )
        }
        if counted
        else {}
    )
    quiet, dunned, past_due, entries, emails, finals = [], [], [], [], [], []
    for subscription, invoice, attempt in failures:
        invoice = invoices.get(invoice.pk)
        if invoice is None:
            continue  # no longer open: nothing to chase
        count = counts.get(invoice.pk, {"refusals": 0, "gateway": 0})
        if attempt.failure_code in (THROTTLED, NOT_SENT) and count["refusals"] <= settings.BILLING_THROTTLED_RETRIES:
            invoice.next_attempt_at = now + dt.timedelta(minutes=min(2 ** (count["refusals"] - 1), 30))
            quiet.append(invoice)
            entries.append(_dunning_entry(invoice, attempt, now, "dunning.throttled", refusals=count["refusals"]))
            continue
        if invoice.first_failed_at is None:
            invoice.first_failed_at = now
        invoice.last_decline_class = attempt.decline_class
        invoice.last_failure_reason = attempt.failure_reason[:255]
        invoice.next_attempt_at = dunning_next_attempt_at(
            invoice=invoice, decline_class=attempt.decline_class, now=now, gateway_failures=count["gateway"]
        )
        dunned.append(invoice)
        action = "dunning.scheduled" if invoice.next_attempt_at else "dunning.exhausted"
        entries.append(_dunning_entry(invoice, attempt, now, action))
        emails.append((invoice, attempt, subscription.plan, subscription.pk))
        if invoice.next_attempt_at is None:
            finals.append((subscription, invoice))
        elif subscription.status in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING):
            entry = status_change(subscription, Subscription.Status.PAST_DUE, now=now, reason=attempt.failure_reason)
            entries.append(entry)
            # No new period starts while the current one is unpaid: the sweep waits for dunning to settle.
            subscription.next_event_at = None
            subscription.updated_at = timezone.now()  # auto_now's value; the set-based UPDATE below writes it
            past_due.append(subscription)
    rows_update(Invoice, quiet, ("next_attempt_at",))
    rows_update(Invoice, dunned, _DUNNING_FIELDS)
    rows_update(Subscription, past_due, _PAST_DUE_FIELDS)
    audit_records(entries)
    for subscription, invoice in finals:
        _final_action(subscription=subscription, invoice=invoice, now=now)
    if emails:
        transaction.on_commit(
            lambda: notifications.send_payments_failed(failures=emails, now=now)
        )  # the rows as committed


def _dunning_entry(invoice: Invoice, attempt: PaymentAttempt, now: dt.datetime, action: str, **data):
    return audit_entry(
        at=now,
        action=action,
        obj=invoice,
        customer_id=invoice.customer_id,
        amount=invoice.total,
        reason=attempt.failure_reason,
        data={"class": attempt.decline_class, "next_attempt_at": str(invoice.next_attempt_at or ""), **data},
    )


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
    last = invoice.attempts.filter(status=PaymentAttempt.Status.FAILED).order_by("-created_at").first()
    if last is None or current_key is None or current_key.customer_uid != last.customer_uid:
        return False
    if now >= dunning_deadline(invoice) and subscription is not None:
        Subscription.objects.select_for_update().get(pk=subscription.pk)
        subscription.refresh_from_db()
        _final_action(subscription=subscription, invoice=invoice, now=now)
    else:
        Invoice.objects.filter(pk=invoice.pk).update(next_attempt_at=dunning_deadline(invoice))
    return True
