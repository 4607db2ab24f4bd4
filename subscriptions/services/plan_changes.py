"""Plan changes that subscribers find fair, priced by subscriptions.pricing.

- Upgrade (a higher daily price): takes effect now, charging the prorated difference for the rest of the
  period — and only if that charge succeeds; otherwise nothing changes and the error says why.
- Downgrade: takes effect at the period end (no refund, no credit).
- Interval change (monthly <-> yearly): a new period starts now, with credit for the unused time; credit
  beyond the new price stays on the customer's balance for the next invoices.
The preview and the charge run the same computation, so the amount shown is the amount charged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from billing.errors import PaymentDeclinedError, PaymentPendingError
from billing.models import Customer, Invoice, PaymentAttempt
from billing.services.audit import audit_record
from billing.services.invoices import LineSpec, invoice_create, invoice_finalize
from subscriptions import pricing
from subscriptions.errors import (
    PeriodNotCurrentError,
    PlanChangeNotAllowedError,
    PlanChangePreviewExpiredError,
    PlanNotAvailableError,
    ProrationAtInvalidError,
)
from subscriptions.models import Plan, Subscription, SubscriptionInvoice
from subscriptions.periods import bounds
from subscriptions.selectors import subscription_locked as locked
from subscriptions.services.renewals import charge_invoice, plan_label
from subscriptions.services.schedules import schedule_sync_on_commit

UPGRADE, DOWNGRADE, INTERVAL_CHANGE, CANCEL_PENDING = (
    "upgrade",
    "downgrade",
    "interval_change",
    "cancel_pending",
)


@dataclass(frozen=True)
class ChangePreview:
    kind: str
    current_plan: Plan
    new_plan: Plan
    amount_due: int
    credit_left: int
    effective_at: dt.datetime
    period_end: dt.datetime
    proration: pricing.Proration | None
    priced_at: dt.datetime | None = None  # pass back as proration_at to be charged exactly this amount

    def explanation(self, lang: str = "ko") -> tuple[str, ...]:
        if self.proration is not None:
            return self.proration.describe("en" if lang.startswith("en") else "ko")
        if self.kind == DOWNGRADE:
            if lang.startswith("en"):
                return (
                    f"Switches to {self.new_plan.name_en} at the end of the current period; nothing is charged now.",
                )
            return (f"현재 결제 기간이 끝나면 {self.new_plan.name_ko}(으)로 바뀝니다. 지금은 결제되지 않습니다.",)
        if lang.startswith("en"):
            return ("The scheduled plan change is cancelled; you stay on your current plan.",)
        return ("예약된 플랜 변경을 취소하고 현재 플랜을 유지합니다.",)


def _kind(sub: Subscription, new_plan: Plan) -> str:
    current = sub.plan
    if new_plan.pk == current.pk:
        if sub.pending_plan_id:
            return CANCEL_PENDING
        raise PlanChangeNotAllowedError(_("You are already on this plan."))
    if (new_plan.interval, new_plan.interval_count) != (current.interval, current.interval_count):
        return INTERVAL_CHANGE
    start, end = sub.current_period_start, sub.current_period_end
    length = int((end - start).total_seconds())
    upgrade = pricing.is_upgrade(
        old_amount=current.amount, old_len_seconds=length, new_amount=new_plan.amount, new_len_seconds=length
    )
    return UPGRADE if upgrade else DOWNGRADE


def _check(sub: Subscription, new_plan: Plan) -> None:
    if not new_plan.active:
        raise PlanNotAvailableError()
    if sub.status != Subscription.Status.ACTIVE:
        raise PlanChangeNotAllowedError(
            _("The plan can be changed only while the subscription is active (it is %(status)s).")
            % {"status": sub.get_status_display()}
        )
    if sub.cancel_at_period_end:
        raise PlanChangeNotAllowedError(_("Resume the subscription before changing its plan."))
    # Proration credits the current period, so it must be paid: a renewal still charging (or UNKNOWN until the
    # janitor settles it) or open in dunning would be credited without ever having been paid.
    if SubscriptionInvoice.objects.filter(
        subscription=sub,
        kind__in=["first", "renewal"],
        superseded=False,
        invoice__status=Invoice.Status.OPEN,
        period_start__lte=sub.current_period_start,  # a pre-registered next period (schedule strategy) is fine
    ).exists():
        raise PlanChangeNotAllowedError(
            _("A payment for your current period is still being processed. Try again once it is confirmed.")
        )


def subscription_change_preview(
    *, subscription: Subscription, new_plan: Plan, now: dt.datetime, proration_at: dt.datetime | None = None
) -> ChangePreview:
    """What changing to `new_plan` costs, priced at `proration_at` (an instant of the last 15 minutes inside
    the current period, like Stripe's proration_date: ProrationAtInvalidError otherwise) or now.

    An instant outside the current period means the period is being renewed (the sweep has not reached this
    subscription yet, or a clock moved meanwhile): PeriodNotCurrentError, never a price for the wrong period."""
    _check(subscription, new_plan)
    kind = _kind(subscription, new_plan)
    current = subscription.plan
    start, end = subscription.current_period_start, subscription.current_period_end
    if proration_at is not None:
        if not (now - PREVIEW_VALID <= proration_at <= now) or proration_at < start:
            raise ProrationAtInvalidError(field="proration_at")
        now = proration_at
    if kind in (UPGRADE, INTERVAL_CHANGE) and not (start <= now <= end):
        raise PeriodNotCurrentError()
    if kind == UPGRADE:
        proration = pricing.prorate_change(
            old_amount=current.amount,
            new_amount=new_plan.amount,
            old_tax_free=current.tax_free_amount,
            new_tax_free=new_plan.tax_free_amount,
            period_start=start,
            period_end=end,
            at=now,
        )
        return ChangePreview(kind, current, new_plan, proration.amount_due, 0, now, end, proration, now)
    if kind == INTERVAL_CHANGE:
        proration = pricing.prorate_interval_change(
            old_amount=current.amount,
            old_tax_free=current.tax_free_amount,
            new_amount=new_plan.amount,
            new_tax_free=new_plan.tax_free_amount,
            period_start=start,
            period_end=end,
            at=now,
        )
        _new_start, new_end = bounds(anchor=now, plan=new_plan, index=0)
        return ChangePreview(
            kind, current, new_plan, proration.amount_due, proration.credit_left, now, new_end, proration, now
        )
    return ChangePreview(kind, current, new_plan, 0, 0, end, end, None)


# How long a preview's price holds: confirming within this window charges exactly what the preview showed.
PREVIEW_VALID = dt.timedelta(minutes=15)


def _priced_at(sub: Subscription, now: dt.datetime, proration_at: dt.datetime | None) -> dt.datetime:
    """The instant the change is priced at: `proration_at` (the preview's instant, like Stripe's proration_date)
    when it is recent and inside the current period, so the amount charged is the amount the subscriber saw."""
    if proration_at is None:
        return now
    if not (now - PREVIEW_VALID <= proration_at <= now) or proration_at < sub.current_period_start:
        raise PlanChangePreviewExpiredError()
    return proration_at


def subscription_change_plan(
    *,
    subscription: Subscription,
    new_plan: Plan,
    now: dt.datetime,
    proration_at: dt.datetime | None = None,
    actor=None,
    gateway=None,
) -> Subscription:
    """Apply a plan change, priced at `proration_at` (a preview's instant, at most 15 minutes old) or now.
    Raises PaymentDeclinedError (nothing changed) or PaymentPendingError (the change applies if and when the
    janitor confirms the charge)."""
    invoice = None
    with transaction.atomic():
        sub = locked(subscription.pk)
        preview = subscription_change_preview(subscription=sub, new_plan=new_plan, now=now)
        priced_at = now
        if preview.kind in (UPGRADE, INTERVAL_CHANGE) and proration_at is not None:
            priced_at = _priced_at(sub, now, proration_at)
            preview = subscription_change_preview(subscription=sub, new_plan=new_plan, now=priced_at)
        if preview.kind in (DOWNGRADE, CANCEL_PENDING):
            sub.pending_plan = new_plan if preview.kind == DOWNGRADE else None
            sub.save()
            schedule_sync_on_commit(sub.pk, now)
            audit_record(
                at=now,
                action=f"subscription.{preview.kind}",
                obj=sub,
                actor=actor,
                customer=sub.customer,
                data={"from": sub.plan.code, "to": new_plan.code},
            )
            return sub
        if SubscriptionInvoice.objects.filter(
            subscription=sub,
            kind__in=[SubscriptionInvoice.Kind.UPGRADE, SubscriptionInvoice.Kind.INTERVAL_CHANGE],
            invoice__status=Invoice.Status.OPEN,
        ).exists():
            raise PlanChangeNotAllowedError(_("Another plan change is still being paid for."))
        invoice = _change_invoice(sub, preview, priced_at)
        if preview.credit_left:
            Customer.objects.filter(pk=sub.customer_id).update(credit_balance=F("credit_balance") + preview.credit_left)
        audit_record(
            at=now,
            action=f"subscription.{preview.kind}_requested",
            obj=sub,
            actor=actor,
            customer=sub.customer,
            amount=preview.amount_due,
            data={"from": sub.plan.code, "to": new_plan.code, "invoice": invoice.number},
        )
    if invoice.status == Invoice.Status.OPEN:
        attempt = charge_invoice(invoice_id=invoice.pk, now=now, gateway=gateway)
        if attempt is None or attempt.status in (PaymentAttempt.Status.PENDING, PaymentAttempt.Status.UNKNOWN):
            raise PaymentPendingError()
        if attempt.status == PaymentAttempt.Status.FAILED:
            raise PaymentDeclinedError(
                _("The plan was not changed: the card was declined (%(reason)s).")
                % {"reason": attempt.failure_reason or _("no reason given")},
                reason=attempt.failure_reason,
            )
    sub.refresh_from_db()
    return sub


def _change_invoice(sub: Subscription, preview: ChangePreview, now: dt.datetime) -> Invoice:
    new_plan = preview.new_plan
    kind = SubscriptionInvoice.Kind.UPGRADE if preview.kind == UPGRADE else SubscriptionInvoice.Kind.INTERVAL_CHANGE
    if preview.kind == UPGRADE:
        period_start, period_end, index = now, sub.current_period_end, sub.current_period_index
    else:
        period_start, period_end = bounds(anchor=now, plan=new_plan, index=0)
        index = 0
    invoice = invoice_create(
        customer=sub.customer,
        kind=Invoice.Kind.PLAN_CHANGE,
        description=plan_label(new_plan),
        lines=[
            LineSpec(
                description=f"{sub.plan.name_ko} → {new_plan.name_ko} / {sub.plan.name_en} → {new_plan.name_en}",
                amount=preview.amount_due,
                tax_free_amount=preview.proration.tax_free,
                period_start=period_start,
                period_end=period_end,
                details={
                    "kind": preview.kind,
                    "explanation_ko": list(preview.explanation("ko")),
                    "explanation_en": list(preview.explanation("en")),
                },
            )
        ],
        now=now,
        period_start=period_start,
        period_end=period_end,
    )
    SubscriptionInvoice.objects.create(
        subscription=sub,
        invoice=invoice,
        kind=kind,
        plan=sub.plan,
        target_plan=new_plan,
        period_index=index,
        period_start=period_start,
        period_end=period_end,
        created_at=now,
    )
    # A zero-amount change (fully covered by credit) is paid at finalization and applied by the receiver.
    return invoice_finalize(invoice=invoice, now=now)
