"""Renewal: the sweep's batch task, and invoicing a period.

A due subscription (its `next_event_at` passed) takes one step (`_advance`): expire an unpaid first charge,
send the 7-day trial notice or wait for its delivery (services/notices.py), end at the period end, begin or end
a pause, or start its next period. Starting a
period moves the subscription and opens the period's invoice; `subscriptions_renew` does it for a whole batch
in one short transaction and then charges every invoice at once (billing/services/payments). Each renewal's
result is a `RenewalOutcome`.

Periods are invoiced by `period_invoices`: once per (subscription, period start), whoever asks (a renewal, a
first charge, a pre-registered schedule).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from django.db import transaction
from django.utils import timezone, translation

from billing.bulk import rows_update
from billing.errors import InvoiceNotPayableError, PaymentInProgressError
from billing.models import Invoice, PaymentAttempt
from billing.services.audit import audit_record
from billing.services.invoices import (
    InvoiceDraft,
    LineSpec,
    invoice_create,
    invoice_finalize,
    invoice_void,
    invoices_create_open,
)
from billing.services.payments import payment_attempts_create, payment_charge, payments_charge
from subscriptions.models import Plan, Subscription, SubscriptionInvoice
from subscriptions.periods import bounds, index_at
from subscriptions.services import consent
from subscriptions.services.notices import trial_notice_step
from subscriptions.services.status import set_status, subscription_end

logger = logging.getLogger(__name__)
S = Subscription.Status


class RenewalOutcome(StrEnum):
    """What a renewal did. A period that was invoiced also says what became of its charge."""

    LOCKED = "locked"  # another worker holds the row: it renews it
    NOT_DUE = "not_due"
    TRIAL_NOTICE = "trial_notice"
    NOTICE_PENDING = "notice_pending"  # the conversion waits for the 7-day notice's delivery report
    CONVERSION_MOVED = "conversion_moved"  # a late notice: the first charge moves to 7 days after delivery
    PAUSED = "paused"
    ENDED = "ended"
    WAITING_FOR_SETTLEMENT = "waiting_for_settlement"  # an unpaid first charge waits for the janitor
    RENEWED = "renewed"  # the new period needed no charge (credit paid it)
    RENEWED_PAID = "renewed:succeeded"
    RENEWED_DECLINED = "renewed:failed"
    RENEWED_UNKNOWN = "renewed:unknown"
    RENEWED_PENDING = "renewed:pending"
    RENEWED_NOT_CHARGED = "renewed:skipped"  # paid meanwhile, a payment in flight, or no card
    RENEWAL_EXISTS = "renewal_exists"  # the period was invoiced before (a doubled sweep)
    RENEWAL_EXISTS_PAID = "renewal_exists:succeeded"
    RENEWAL_EXISTS_DECLINED = "renewal_exists:failed"
    RENEWAL_EXISTS_UNKNOWN = "renewal_exists:unknown"
    RENEWAL_EXISTS_PENDING = "renewal_exists:pending"
    RENEWAL_EXISTS_NOT_CHARGED = "renewal_exists:skipped"

    def charged(self, attempt_status: str | None) -> RenewalOutcome:
        """This outcome with its charge's result: the attempt's status, or None when nothing was charged."""
        return _CHARGED[self][attempt_status]


_CHARGED = {
    RenewalOutcome.RENEWED: {
        PaymentAttempt.Status.SUCCEEDED: RenewalOutcome.RENEWED_PAID,
        PaymentAttempt.Status.FAILED: RenewalOutcome.RENEWED_DECLINED,
        PaymentAttempt.Status.UNKNOWN: RenewalOutcome.RENEWED_UNKNOWN,
        PaymentAttempt.Status.PENDING: RenewalOutcome.RENEWED_PENDING,
        None: RenewalOutcome.RENEWED_NOT_CHARGED,
    },
    RenewalOutcome.RENEWAL_EXISTS: {
        PaymentAttempt.Status.SUCCEEDED: RenewalOutcome.RENEWAL_EXISTS_PAID,
        PaymentAttempt.Status.FAILED: RenewalOutcome.RENEWAL_EXISTS_DECLINED,
        PaymentAttempt.Status.UNKNOWN: RenewalOutcome.RENEWAL_EXISTS_UNKNOWN,
        PaymentAttempt.Status.PENDING: RenewalOutcome.RENEWAL_EXISTS_PENDING,
        None: RenewalOutcome.RENEWAL_EXISTS_NOT_CHARGED,
    },
}


# --- the renewal batch ---------------------------------------------------------------------------------


def subscriptions_due(*, now: dt.datetime, limit: int | None = None) -> list[int]:
    """Subscriptions whose next event (period end, trial end or notice, resume, expiry) is due: one indexed
    range scan over `subscription_due_idx`."""
    query = (
        Subscription.objects.filter(
            status__in=[
                Subscription.Status.INCOMPLETE,
                Subscription.Status.TRIALING,
                Subscription.Status.ACTIVE,
                Subscription.Status.PAST_DUE,
                Subscription.Status.PAUSED,
            ],
            next_event_at__lte=now,
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


def subscriptions_renew(
    *, subscription_ids: Sequence[int], now: dt.datetime, gateway=None
) -> dict[int, RenewalOutcome]:
    """Advance a batch of due subscriptions and charge what fell due; returns an outcome per id.

    One short transaction claims the rows (SKIP LOCKED: a row another worker holds is left to it), re-checks
    that each is due, advances it, opens the new periods' invoices and records their payment attempts, in a
    fixed number of statements for the common case (an active subscription renewing); the gateway is then
    called for every attempt at once, outside any transaction, and the outcomes are recorded as they come, in
    short transactions of a chunk each (`payments_charge`). Safe to run twice at the same moment and with
    overlapping batches: the claim, the re-check and the one-invoice-per-period constraint make each renewal
    happen once.
    """
    outcomes: dict[int, RenewalOutcome] = {}
    with transaction.atomic():
        claimed = {
            sub.pk: sub
            for sub in Subscription.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("plan", "customer", "price_version")
            .filter(pk__in=subscription_ids)
            .order_by("pk")
        }
        # Price versions of the batch's plans, read once, so a batch costs the same statements at any size.
        versions = consent.price_versions_by_plan(plan_ids={sub.plan_id for sub in claimed.values()})
        starting = []
        for subscription_id in subscription_ids:
            sub = claimed.get(subscription_id)
            if sub is None:
                outcomes[subscription_id] = RenewalOutcome.LOCKED
            elif sub.next_event_at is None or sub.next_event_at > now:
                outcomes[subscription_id] = RenewalOutcome.NOT_DUE
            else:
                step = _advance(sub, now, versions)
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
        outcomes[due[invoice_id]] = outcomes[due[invoice_id]].charged(None)
    for attempt in payments_charge(attempts=attempts, now=now, gateway=gateway):
        outcomes[due[attempt.invoice_id]] = outcomes[due[attempt.invoice_id]].charged(attempt.status)
    return outcomes


def subscription_renew(*, subscription_id: int, now: dt.datetime, gateway=None) -> RenewalOutcome:
    """`subscriptions_renew` for one subscription."""
    return subscriptions_renew(subscription_ids=[subscription_id], now=now, gateway=gateway)[subscription_id]


def _advance(sub: Subscription, now: dt.datetime, versions: dict) -> RenewalOutcome | _StartPeriod:
    """What a due subscription does next. Every case but a new period is written here, one row at a time;
    a new period is returned so the caller can open all of a batch's periods together."""
    if sub.status == S.INCOMPLETE:
        return _expire_incomplete(sub, now)
    if sub.status == S.TRIALING:
        if sub.cancel_at_period_end:
            subscription_end(sub, now, at=sub.trial_end, reason="canceled_at_period_end")
            return RenewalOutcome.ENDED
        # At the trial's end, no "yes" ends it uncharged (전자상거래법 §13 ⑥, subscriptions/services/consent.py);
        # nothing is charged then, so the 7-day notice no longer matters.
        if now >= sub.trial_end and not consent.trial_conversion_at_end(sub, now):
            return RenewalOutcome.ENDED
        # The 7-day notice must have reached the subscriber before the first charge (subscriptions/services/notices.py).
        notice_step = trial_notice_step(sub, now)
        if notice_step is not None:
            return RenewalOutcome(notice_step)
        return _StartPeriod("first")
    if sub.status == S.PAUSED:
        if sub.resume_at is not None and now >= sub.resume_at:
            set_status(sub, S.ACTIVE, now=now, reason="pause ended")
            sub.resume_at = None
            return _StartPeriod("renewal")
        return RenewalOutcome.PAUSED
    # active (past_due subscriptions have no next event: dunning settles them first)
    if now < sub.current_period_end:
        sub.next_event_at = sub.current_period_end
        sub.save()
        return RenewalOutcome.NOT_DUE
    if sub.cancel_at_period_end:
        subscription_end(sub, now, at=sub.current_period_end, reason="canceled_at_period_end")
        return RenewalOutcome.ENDED
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
    elif sub.plan_id in versions and not consent.price_at_renewal(sub, now, versions[sub.plan_id]):
        return RenewalOutcome.ENDED  # an increase without consent ends here (전자상거래법 §13 ⑥)
    return _StartPeriod("renewal")


def _start_periods(items: Sequence[tuple[Subscription, str]], now: dt.datetime) -> list[tuple[RenewalOutcome, Invoice]]:
    """Move each (locked) subscription to the period containing `now` (missed periods while paused are not
    billed) and invoice it: one UPDATE for all the rows, then `period_invoices`. Returns (outcome, invoice)."""
    if not items:
        return []
    requests = []
    for sub, kind in items:
        index = max(index_at(anchor=sub.billing_anchor, plan=sub.plan, moment=now), 0)
        start, end = bounds(anchor=sub.billing_anchor, plan=sub.plan, index=index)
        sub.current_period_index, sub.current_period_start, sub.current_period_end = index, start, end
        sub.next_event_at = end
        sub.updated_at = timezone.now()  # auto_now's value; the set-based UPDATE below writes it
        requests.append(PeriodRequest(subscription=sub, plan=sub.plan, index=index, kind=kind))
    rows_update(Subscription, (sub for sub, _ in items), _PERIOD_FIELDS)
    opened = period_invoices(requests=requests, now=now)
    return [
        (RenewalOutcome.RENEWED if created else RenewalOutcome.RENEWAL_EXISTS, invoice) for invoice, created in opened
    ]


def start_period(sub: Subscription, now: dt.datetime, *, kind: str) -> tuple[RenewalOutcome, Invoice]:
    """Move one (locked) subscription to the period containing `now` and invoice it (e.g. a resumed pause)."""
    return _start_periods([(sub, kind)], now)[0]


def _expire_incomplete(sub: Subscription, now: dt.datetime) -> RenewalOutcome:
    if now < sub.incomplete_expires_at:
        sub.next_event_at = sub.incomplete_expires_at
        sub.save()
        return RenewalOutcome.NOT_DUE
    for link in SubscriptionInvoice.objects.filter(subscription=sub, invoice__status=Invoice.Status.OPEN):
        if link.invoice.attempts.filter(
            status__in=[PaymentAttempt.Status.PENDING, PaymentAttempt.Status.UNKNOWN]
        ).exists():
            sub.next_event_at = now + dt.timedelta(minutes=5)  # wait for the janitor to settle it
            sub.save()
            return RenewalOutcome.WAITING_FOR_SETTLEMENT
        invoice_void(invoice=link.invoice, now=now, reason="subscription never paid")
    subscription_end(sub, now, at=now, reason="incomplete_expired")
    return RenewalOutcome.ENDED


def _begin_pause(sub: Subscription, now: dt.datetime) -> RenewalOutcome:
    set_status(sub, S.PAUSED, now=now, reason="pause requested")
    sub.pause_requested = False
    if sub.pause_periods:
        resume_index = sub.current_period_index + 1 + sub.pause_periods
        sub.resume_at = bounds(anchor=sub.billing_anchor, plan=sub.plan, index=resume_index)[0]
    else:
        sub.resume_at = None
    sub.next_event_at = sub.resume_at
    sub.save()
    return RenewalOutcome.PAUSED


# --- invoicing a period -------------------------------------------------------------------------------


def plan_label(plan: Plan) -> str:
    """An invoice's description: the plan's Korean name (invoices are issued in Korean)."""
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
                lines=[_plan_line(request, start, end)],
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


def _plan_line(request: PeriodRequest, start: dt.datetime, end: dt.datetime) -> LineSpec:
    plan = request.plan
    amount, tax_free_amount = consent.period_price(request.subscription, plan)  # a consented price version
    return LineSpec(
        description=f"{plan.name_ko} / {plan.name_en}",
        amount=amount,
        tax_free_amount=tax_free_amount,
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
    invoice it covers entirely is paid at once (the `invoices_paid` receiver needs the link)."""
    with translation.override("ko"):
        invoice = invoice_create(
            customer=request.subscription.customer,
            kind=_invoice_kind(request.kind),
            description=plan_label(request.plan),
            lines=[_plan_line(request, start, end)],
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
