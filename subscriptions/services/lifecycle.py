"""Subscribe, renew, cancel, resume, pause: the subscription lifecycle.

incomplete --paid--> active --period end--> (renewal invoice) active | past_due --dunning--> canceled | unpaid
trialing --trial end, consent granted--> first invoice --> active | past_due
trialing --trial end, refused or no answer--> canceled, nothing charged (subscriptions/services/consent.py)
active --pause from next period--> paused --resume / N periods--> active
A subscription is active only once money moved; `incomplete` expires after 23 hours without payment.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction

from billing.errors import NoPaymentMethodError
from billing.models import Customer, Invoice, PaymentAttempt
from billing.selectors import billing_key_default
from billing.services.audit import audit_record
from billing.services.invoices import invoice_void
from subscriptions.errors import AlreadySubscribedError, PlanNotAvailableError, SubscriptionStateError
from subscriptions.models import Plan, Subscription, SubscriptionInvoice
from subscriptions.periods import bounds
from subscriptions.selectors import subscription_locked as locked
from subscriptions.services.consent import trial_consent_request_create
from subscriptions.services.notices import trial_notice_due_at
from subscriptions.services.policies import AgreementInput, agreement_record
from subscriptions.services.renewals import charge_invoice, period_invoice, start_period
from subscriptions.services.schedules import schedule_sync_on_commit
from subscriptions.services.status import set_status, subscription_end

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
                next_event_at=trial_notice_due_at(trial_end, now),
                created_at=now,
            )
            # Asked separately from this sign-up; without a "yes" the trial ends uncharged.
            trial_consent_request_create(subscription=subscription, now=now)
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
        for link in SubscriptionInvoice.objects.filter(
            subscription=sub, invoice__status__in=[Invoice.Status.DRAFT, Invoice.Status.OPEN]
        ):
            if not link.invoice.attempts.filter(
                status__in=[PaymentAttempt.Status.PENDING, PaymentAttempt.Status.UNKNOWN]
            ).exists():
                invoice_void(invoice=link.invoice, now=now, reason="subscription canceled", actor=actor)
        subscription_end(sub, now, at=now, reason=reason or "canceled_now", actor=actor)
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
            _outcome, invoice = start_period(sub, now, kind="renewal")
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
