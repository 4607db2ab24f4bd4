"""Subscribe, renew, cancel, resume, pause: the subscription lifecycle.

incomplete --paid--> active --period end--> (renewal invoice) active | past_due --dunning--> canceled | unpaid
trialing --trial end--> first invoice --> active | past_due
active --pause from next period--> paused --resume / N periods--> active
A subscription is active only once money moved; `incomplete` expires after 23 hours without payment.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from billing.bulk import rows_update
from billing.errors import NoPaymentMethodError
from billing.models import Customer, Invoice, PaymentAttempt
from billing.selectors import billing_key_default
from billing.services.audit import audit_record
from billing.services.invoices import invoice_void
from billing.services.payments import payment_attempts_create, payments_charge
from subscriptions import notifications
from subscriptions.errors import AlreadySubscribedError, PlanNotAvailableError, SubscriptionStateError
from subscriptions.models import Plan, Subscription, SubscriptionInvoice
from subscriptions.services.common import (
    PeriodRequest,
    bounds,
    charge_invoice,
    index_at,
    locked,
    period_invoice,
    period_invoices,
    set_status,
)
from subscriptions.services.policies import AgreementInput, agreement_record
from subscriptions.services.schedules import schedule_sync_on_commit

logger = logging.getLogger(__name__)
S = Subscription.Status


def subscription_create(
    *, customer: Customer, plan: Plan, now: dt.datetime, gateway=None, agreement: AgreementInput | None = None
) -> Subscription:
    """Subscribe: with a trial, no charge until it ends; otherwise the first period is invoiced and charged
    now, and the subscription becomes active only when that charge succeeds.

    `agreement` (what the subscriber agreed to at checkout) is written in the same transaction as the
    subscription; the web checkout and the API refuse to call this without one."""
    if not plan.active:
        raise PlanNotAvailableError()
    invoice = None
    with transaction.atomic():
        Customer.objects.select_for_update().get(pk=customer.pk)  # one subscribe at a time per customer
        key = billing_key_default(customer_id=customer.pk)
        if key is None:
            raise NoPaymentMethodError()
        if Subscription.objects.filter(customer=customer).exclude(status=S.CANCELED).exists():
            raise AlreadySubscribedError()
        if plan.trial_days:
            trial_end = now + dt.timedelta(days=plan.trial_days)
            notice_at = trial_end - dt.timedelta(days=settings.BILLING_TRIAL_NOTICE_DAYS)
            subscription = Subscription.objects.create(
                customer=customer,
                plan=plan,
                billing_key=key,
                status=S.TRIALING,
                billing_anchor=trial_end,
                current_period_index=-1,
                current_period_start=now,
                current_period_end=trial_end,
                trial_end=trial_end,
                next_event_at=max(notice_at, now),
                created_at=now,
            )
        else:
            start, end = bounds(anchor=now, plan=plan, index=0)
            subscription = Subscription.objects.create(
                customer=customer,
                plan=plan,
                billing_key=key,
                status=S.INCOMPLETE,
                billing_anchor=now,
                current_period_index=0,
                current_period_start=start,
                current_period_end=end,
                incomplete_expires_at=now + dt.timedelta(hours=settings.BILLING_INCOMPLETE_EXPIRY_HOURS),
                next_event_at=now + dt.timedelta(hours=settings.BILLING_INCOMPLETE_EXPIRY_HOURS),
                created_at=now,
            )
            invoice, _ = period_invoice(subscription=subscription, plan=plan, index=0, kind="first", now=now)
        audit_record(
            at=now,
            action="subscription.created",
            obj=subscription,
            customer=customer,
            to_status=subscription.status,
            data={"plan": plan.code},
        )
        if agreement is not None:
            agreement_record(subscription=subscription, agreement=agreement, now=now)
    if invoice is not None:
        charge_invoice(invoice_id=invoice.pk, now=now, gateway=gateway)
    subscription.refresh_from_db()
    return subscription


def subscription_latest_attempt(subscription: Subscription) -> PaymentAttempt | None:
    return (
        PaymentAttempt.objects.filter(invoice__subscription_link__subscription=subscription)
        .order_by("-created_at", "-id")
        .first()
    )


# --- renewal ------------------------------------------------------------------------------------------


def subscriptions_due(*, now: dt.datetime, limit: int | None = None) -> list[int]:
    """Subscriptions whose next event (period end, trial end or notice, resume, expiry) is due: one indexed
    range scan over `subscription_due_idx`."""
    query = (
        Subscription.objects.filter(
            status__in=["incomplete", "trialing", "active", "past_due", "paused"], next_event_at__lte=now
        )
        .order_by("next_event_at")
        .values_list("id", flat=True)
    )
    return list(query[:limit] if limit else query)


@dataclass(frozen=True)
class _StartPeriod:
    """`_advance`'s answer when the subscription enters a new period that must be invoiced."""

    kind: str  # "first" or "renewal"


# What starting a period changes on a subscription (with what `_advance` changed on the way there).
_PERIOD_FIELDS = (
    "plan",
    "pending_plan",
    "status",
    "resume_at",
    "current_period_index",
    "current_period_start",
    "current_period_end",
    "next_event_at",
    "updated_at",
)


def subscriptions_renew(*, subscription_ids: Sequence[int], now: dt.datetime, gateway=None) -> dict[int, str]:
    """Advance a batch of due subscriptions and charge what fell due; returns an outcome per id.

    One short transaction claims the rows (SKIP LOCKED: a row another worker holds is left to it), re-checks
    that each is due, advances it, opens the new periods' invoices and records their payment attempts, in a
    fixed number of statements for the common case (an active subscription renewing); the gateway is then
    called for every attempt at once, outside any transaction, and the outcomes are recorded as they come, in
    short transactions of a chunk each (`payments_charge`). Safe to run twice at the same moment and with
    overlapping batches: the claim, the re-check and the one-invoice-per-period constraint make each renewal
    happen once.
    """
    outcomes: dict[int, str] = {}
    with transaction.atomic():
        claimed = {
            sub.pk: sub
            for sub in Subscription.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("plan", "customer")
            .filter(pk__in=subscription_ids)
            .order_by("pk")
        }
        starting = []
        for subscription_id in subscription_ids:
            sub = claimed.get(subscription_id)
            if sub is None:
                outcomes[subscription_id] = "locked"
            elif sub.next_event_at is None or sub.next_event_at > now:
                outcomes[subscription_id] = "not_due"
            else:
                step = _advance(sub, now)
                if isinstance(step, _StartPeriod):
                    starting.append((sub, step.kind))
                else:
                    outcomes[subscription_id] = step
        due: dict[int, int] = {}  # invoice id -> subscription id
        for (sub, _kind), (outcome, invoice) in zip(starting, _start_periods(starting, now), strict=True):
            outcomes[sub.pk] = outcome
            if invoice.status == Invoice.Status.OPEN:
                due[invoice.pk] = sub.pk
        attempts, refused = payment_attempts_create(invoice_ids=list(due), now=now)
    for invoice_id, error in refused.items():
        # Paid meanwhile, a payment in flight (its settlement decides), or no card: nothing to charge now.
        logger.info("invoice %s not charged: %s", invoice_id, error.code)
        outcomes[due[invoice_id]] += ":skipped"
    for attempt in payments_charge(attempts=attempts, now=now, gateway=gateway):
        outcomes[due[attempt.invoice_id]] += f":{attempt.status}"
    return outcomes


def subscription_renew(*, subscription_id: int, now: dt.datetime, gateway=None) -> str:
    """`subscriptions_renew` for one subscription."""
    return subscriptions_renew(subscription_ids=[subscription_id], now=now, gateway=gateway)[subscription_id]


def _advance(sub: Subscription, now: dt.datetime) -> str | _StartPeriod:
    """What a due subscription does next. Every case but a new period is written here, one row at a time;
    a new period is returned so the caller can open all of a batch's periods together."""
    if sub.status == S.INCOMPLETE:
        return _expire_incomplete(sub, now)
    if sub.status == S.TRIALING:
        if sub.trial_notice_sent_at is None and now < sub.trial_end:
            sub.trial_notice_sent_at = now
            sub.next_event_at = sub.trial_end
            sub.save()
            sub_id = sub.pk
            transaction.on_commit(lambda: notifications.send_trial_ending(subscription_id=sub_id))
            return "trial_notice"
        if sub.cancel_at_period_end:
            return _end(sub, now, at=sub.trial_end, reason="canceled_at_period_end")
        return _StartPeriod("first")
    if sub.status == S.PAUSED:
        if sub.resume_at is not None and now >= sub.resume_at:
            set_status(sub, S.ACTIVE, now=now, reason="pause ended")
            sub.resume_at = None
            return _StartPeriod("renewal")
        return "paused"
    # active (past_due subscriptions have no next event: dunning settles them first)
    if now < sub.current_period_end:
        sub.next_event_at = sub.current_period_end
        sub.save()
        return "not_due"
    if sub.cancel_at_period_end:
        return _end(sub, now, at=sub.current_period_end, reason="canceled_at_period_end")
    if sub.pause_requested:
        return _begin_pause(sub, now)
    if sub.pending_plan_id:
        audit_record(
            at=now,
            action="subscription.plan_changed",
            obj=sub,
            customer=sub.customer,
            reason="downgrade at period end",
            data={"from": sub.plan.code, "to": sub.pending_plan.code},
        )
        sub.plan = sub.pending_plan
        sub.pending_plan = None
    return _StartPeriod("renewal")


def _start_periods(items: Sequence[tuple[Subscription, str]], now: dt.datetime) -> list[tuple[str, Invoice]]:
    """Move each (locked) subscription to the period containing `now` (missed periods while paused are not
    billed) and invoice it: one UPDATE for all the rows, then `period_invoices`. Returns (outcome, invoice)."""
    if not items:
        return []
    requests = []
    updated_at = Subscription._meta.get_field("updated_at")
    for sub, kind in items:
        index = max(index_at(anchor=sub.billing_anchor, plan=sub.plan, moment=now), 0)
        start, end = bounds(anchor=sub.billing_anchor, plan=sub.plan, index=index)
        sub.current_period_index, sub.current_period_start, sub.current_period_end = index, start, end
        sub.next_event_at = end
        updated_at.pre_save(sub, add=False)  # what save() would do (auto_now)
        requests.append(PeriodRequest(subscription=sub, plan=sub.plan, index=index, kind=kind))
    rows_update(Subscription, (sub for sub, _ in items), _PERIOD_FIELDS)
    opened = period_invoices(requests=requests, now=now)
    return [("renewed" if created else "renewal_exists", invoice) for invoice, created in opened]


def _start_period(sub: Subscription, now: dt.datetime, *, kind: str) -> tuple[str, Invoice]:
    return _start_periods([(sub, kind)], now)[0]


def _expire_incomplete(sub: Subscription, now: dt.datetime) -> str:
    if now < sub.incomplete_expires_at:
        sub.next_event_at = sub.incomplete_expires_at
        sub.save()
        return "not_due"
    for link in SubscriptionInvoice.objects.filter(subscription=sub, invoice__status="open"):
        if link.invoice.attempts.filter(status__in=["pending", "unknown"]).exists():
            sub.next_event_at = now + dt.timedelta(minutes=5)  # wait for the janitor to settle it
            sub.save()
            return "waiting_for_settlement"
        invoice_void(invoice=link.invoice, now=now, reason="subscription never paid")
    return _end(sub, now, at=now, reason="incomplete_expired")


def _end(sub: Subscription, now: dt.datetime, *, at: dt.datetime, reason: str, actor=None) -> str:
    set_status(sub, S.CANCELED, now=now, reason=reason, actor=actor)
    sub.canceled_at = sub.canceled_at or now
    sub.ended_at = at
    sub.end_reason = reason
    sub.next_event_at = None
    sub.cancel_at_period_end = False
    sub.save()
    return "ended"


def _begin_pause(sub: Subscription, now: dt.datetime) -> str:
    set_status(sub, S.PAUSED, now=now, reason="pause requested")
    sub.pause_requested = False
    if sub.pause_periods:
        resume_index = sub.current_period_index + 1 + sub.pause_periods
        sub.resume_at = bounds(anchor=sub.billing_anchor, plan=sub.plan, index=resume_index)[0]
    else:
        sub.resume_at = None
    sub.next_event_at = sub.resume_at
    sub.save()
    return "paused"


# --- subscriber actions -----------------------------------------------------------------------------


def subscription_cancel(
    *, subscription: Subscription, now: dt.datetime, at_period_end: bool = True, actor=None, reason: str = ""
) -> Subscription:
    with transaction.atomic():
        sub = locked(subscription.pk)
        if sub.status == S.CANCELED:
            raise SubscriptionStateError()
        if at_period_end and sub.status in (S.ACTIVE, S.TRIALING, S.PAST_DUE):
            sub.cancel_at_period_end = True
            sub.pause_requested = False
            sub.save()
            schedule_sync_on_commit(sub.pk, now)
            audit_record(
                at=now,
                action="subscription.cancel_scheduled",
                obj=sub,
                actor=actor,
                customer=sub.customer,
                reason=reason or "cancel at period end",
            )
            return sub
        for link in SubscriptionInvoice.objects.filter(subscription=sub, invoice__status__in=["draft", "open"]):
            if not link.invoice.attempts.filter(status__in=["pending", "unknown"]).exists():
                invoice_void(invoice=link.invoice, now=now, reason="subscription canceled", actor=actor)
        _end(sub, now, at=now, reason=reason or "canceled_now", actor=actor)
        schedule_sync_on_commit(sub.pk, now)
    return sub


def subscription_resume(*, subscription: Subscription, now: dt.datetime, actor=None, gateway=None) -> Subscription:
    """Undo a scheduled cancel or pause, or end a pause now (billing the current period)."""
    invoice = None
    with transaction.atomic():
        sub = locked(subscription.pk)
        if sub.status == S.PAUSED:
            set_status(sub, S.ACTIVE, now=now, reason="resumed", actor=actor)
            sub.resume_at = None
            _outcome, invoice = _start_period(sub, now, kind="renewal")
        elif sub.cancel_at_period_end or sub.pause_requested:
            sub.cancel_at_period_end = False
            sub.pause_requested = False
            sub.pause_periods = None
            sub.save()
            audit_record(at=now, action="subscription.resumed", obj=sub, actor=actor, customer=sub.customer)
        else:
            raise SubscriptionStateError()
        schedule_sync_on_commit(sub.pk, now)
    if invoice is not None and invoice.status == Invoice.Status.OPEN:
        charge_invoice(invoice_id=invoice.pk, now=now, gateway=gateway)
    sub.refresh_from_db()
    return sub


def subscription_pause(
    *, subscription: Subscription, now: dt.datetime, periods: int | None = None, actor=None
) -> Subscription:
    """Pause from the next period, for `periods` periods or until resumed (None)."""
    if periods is not None and periods < 1:
        raise SubscriptionStateError("Pause for at least one period.", field="periods")
    with transaction.atomic():
        sub = locked(subscription.pk)
        if sub.status != S.ACTIVE or sub.cancel_at_period_end:
            raise SubscriptionStateError()
        sub.pause_requested = True
        sub.pause_periods = periods
        sub.save()
        schedule_sync_on_commit(sub.pk, now)
        audit_record(
            at=now,
            action="subscription.pause_scheduled",
            obj=sub,
            actor=actor,
            customer=sub.customer,
            data={"periods": periods},
        )
    return sub
