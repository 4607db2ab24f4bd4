"""Charging invoices exactly once, and settling what we could not see
(docs/architecture.md#gateway-sandbox-and-payment-states).

A charge works in three steps, for one invoice or for a batch of them:
1. a short transaction locks the invoices, refuses any that is not open or still has an unsettled attempt
   (a partial unique index makes that race-proof), and records a PENDING attempt with a fresh merchant_uid for
   each (`payment_attempts_create`);
2. the gateway is called OUTSIDE any transaction, by threads that never touch the database, the calls of a
   batch overlapping (`payments_charge`), each starting at its slot of the global rate limit;
3. a short transaction records the outcomes: the common one (paid, the amount we asked for) for the whole
   batch in a few set-based statements, everything else one attempt at a time. A timeout (or a 5xx that may
   have charged) leaves the attempt UNKNOWN: it is never retried before `payment_reconcile` (the janitor, or
   a verified webhook) settles it.

A retry is always a new attempt with a new merchant_uid. Every other settlement path (the janitor, webhooks)
goes through `payment_apply_gateway_payment`, which only moves state forward and never books a payment whose
amount differs from what we asked for; the batch path books only what that function would book, and only
rows still PENDING (a webhook that got there first wins, and the attempt goes the one-row way).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from billing import signals
from billing.bulk import rows_update
from billing.decline import GATEWAY, classify_decline
from billing.dispatch import gateway_submit
from billing.errors import ApplicationError, InvoiceNotPayableError, NoPaymentMethodError, PaymentInProgressError
from billing.gateway.base import GatewayPayment
from billing.gateway.errors import (
    GatewayError,
    GatewayRejected,
    GatewayThrottled,
    GatewayTimeout,
    GatewayUnavailable,
)
from billing.models import Invoice, PaymentAttempt
from billing.ratelimit import charge_slots_acquire
from billing.selectors import billing_keys_default
from billing.services.audit import audit_entry, audit_records
from billing.services.gateway import get_gateway

logger = logging.getLogger(__name__)

Status = PaymentAttempt.Status
UNSETTLED = (Status.PENDING, Status.UNKNOWN)
THROTTLED = "throttled"  # failure_code of a charge the gateway refused for its rate (HTTP 429)
NOT_SENT = "not_sent"  # failure_code of a charge that waited in our own queue too long and was never sent
_SUCCESS_FIELDS = (
    "status",
    "imp_uid",
    "paid_at",
    "settled_at",
    "receipt_url",
    "pg_tid",
    "card_name",
    "card_number_masked",
    "failure_reason",
)


def _merchant_uid(invoice: Invoice, sequence: int) -> str:
    # ≤40 chars. The random tail keeps ids unique even when a development database is reset while the
    # Iamport account (or the sandbox data file) remembers earlier payments.
    return f"{settings.BILLING_UID_PREFIX}{invoice.pk}_{sequence}_{secrets.token_hex(3)}"


# --- step 1: record the attempts ------------------------------------------------------------------------


def payment_attempts_create(
    *,
    invoice_ids: Sequence[int],
    now: dt.datetime,
    customer_uids: Mapping[int, str] | None = None,
    via: str = PaymentAttempt.Via.AGAIN,
    scheduled_for: dt.datetime | None = None,
) -> tuple[list[PaymentAttempt], dict[int, ApplicationError]]:
    """Step 1: record a PENDING attempt for each open invoice, in one transaction (nested in the caller's).

    Returns the attempts (invoice and customer loaded, ready for `payments_charge`) and, for every invoice
    that cannot be charged now, the reason: not payable, no card, or a payment already in progress or parked
    for an operator. A fixed number of statements however many invoices there are.
    """
    customer_uids = customer_uids or {}
    refused: dict[int, ApplicationError] = {}
    with transaction.atomic(savepoint=False):  # nothing inside is caught: no savepoint needed when nested
        invoices = list(
            Invoice.objects.select_for_update(of=("self",))
            .select_related("customer")
            .filter(pk__in=invoice_ids)
            .order_by("pk")
        )
        found = {invoice.pk for invoice in invoices}
        refused.update({pk: InvoiceNotPayableError() for pk in invoice_ids if pk not in found})
        payable = []
        for invoice in invoices:
            if invoice.status != Invoice.Status.OPEN or invoice.total <= 0:
                refused[invoice.pk] = InvoiceNotPayableError()
            else:
                payable.append(invoice)
        keys = billing_keys_default(customer_ids=[i.customer_id for i in payable if not customer_uids.get(i.pk)])
        # Only an invoice charged before can have an attempt in flight or one parked for an operator.
        blocked = dict(
            PaymentAttempt.objects.filter(invoice_id__in=[i.pk for i in payable if i.attempt_count])
            .filter(Q(status__in=UNSETTLED) | ~Q(flagged_reason=""))
            .values_list("invoice_id", "flagged_reason")
        )
        attempts = []
        for invoice in payable:
            customer_uid = customer_uids.get(invoice.pk) or getattr(keys.get(invoice.customer_id), "customer_uid", None)
            if customer_uid is None:
                refused[invoice.pk] = NoPaymentMethodError()
                continue
            if invoice.pk in blocked:
                refused[invoice.pk] = (
                    PaymentInProgressError(_("A payment of this invoice is waiting for an operator's review."))
                    if blocked[invoice.pk]
                    else PaymentInProgressError()
                )
                continue
            invoice.attempt_count += 1
            invoice.next_attempt_at = None
            attempts.append(
                PaymentAttempt(
                    invoice=invoice,
                    merchant_uid=_merchant_uid(invoice, invoice.attempt_count),
                    customer_uid=customer_uid,
                    via=via,
                    amount=invoice.total,
                    tax_free_amount=invoice.tax_free_amount,
                    vat_amount=invoice.vat_amount,
                    scheduled_for=scheduled_for,
                    created_at=now,
                )
            )
        if attempts:
            try:
                with transaction.atomic():
                    PaymentAttempt.objects.bulk_create(attempts)
            except IntegrityError as exc:
                # attempt_one_unsettled_per_invoice: only reachable if something created an attempt without
                # the invoice lock. The database is the last line of defence: refuse the whole batch.
                for attempt in attempts:
                    refused[attempt.invoice_id] = PaymentInProgressError()
                logger.error("attempts refused by the database for invoices %s: %s", sorted(refused), exc)
                return [], refused
            Invoice.objects.filter(pk__in=[a.invoice_id for a in attempts]).update(
                attempt_count=F("attempt_count") + 1, next_attempt_at=None
            )
    return attempts, refused


def payment_attempt_create(
    *,
    invoice_id: int,
    now: dt.datetime,
    customer_uid: str | None = None,
    via: str = PaymentAttempt.Via.AGAIN,
    scheduled_for: dt.datetime | None = None,
) -> PaymentAttempt:
    """Step 1 for one invoice. Raises if the invoice cannot be charged now."""
    attempts, refused = payment_attempts_create(
        invoice_ids=[invoice_id],
        now=now,
        customer_uids={invoice_id: customer_uid} if customer_uid else None,
        via=via,
        scheduled_for=scheduled_for,
    )
    if refused:
        raise refused[invoice_id]
    return attempts[0]


# --- step 2: call the gateway ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    """What one gateway call told us: a payment, an unknown outcome, or a failure that charged nothing."""

    attempt: PaymentAttempt
    payment: GatewayPayment | None = None
    unknown: str = ""
    failure_code: str = ""
    failure_reason: str = ""


SETTLE_EVERY_SECONDS = 0.5  # the longest a batch's finished charges wait to be recorded


def _call_gateway(attempt: PaymentAttempt, gateway, send_by: float) -> _Outcome:
    """One `again` call, translated (docs/architecture.md#errors): a decline is a payment with status failed; a
    timeout, or an error after the request may have left, is UNKNOWN; an error before anything was charged is a
    failure.

    A charge still waiting (for its rate-limit slot or a free gateway thread) when the janitor would start
    looking at its attempt (`send_by`) is not sent at all: FAILED as never sent, so the janitor's verdict and
    a late charge can never meet. Dunning retries it quietly, like a charge the PG refused for its rate."""
    if time.monotonic() > send_by:
        logger.warning("charge %s not sent: it waited past the janitor's threshold", attempt.merchant_uid)
        return _Outcome(attempt, failure_code=NOT_SENT, failure_reason="waited too long to be sent; not sent")
    invoice = attempt.invoice
    try:
        payment = gateway.charge_billing_key(
            customer_uid=attempt.customer_uid,
            merchant_uid=attempt.merchant_uid,
            amount=attempt.amount,
            name=invoice.description,
            tax_free=attempt.tax_free_amount,
            vat_amount=attempt.vat_amount,
            notice_url=webhook_url(),
            buyer_email=invoice.customer.email or None,
        )
    except GatewayTimeout as exc:
        return _Outcome(attempt, unknown=f"timeout: {exc}")
    except GatewayThrottled as exc:
        # Refused for its rate before anything was processed: nothing charged. Dunning retries it shortly,
        # without telling the subscriber anything failed (see subscriptions.services.dunning).
        return _Outcome(attempt, failure_code=THROTTLED, failure_reason=str(exc))
    except GatewayUnavailable as exc:
        if exc.maybe_processed:
            return _Outcome(attempt, unknown=f"gateway {exc.status}: outcome unknown")
        return _Outcome(attempt, failure_code="unavailable", failure_reason=str(exc))
    except GatewayRejected as exc:
        # code != 0: the request to the card company itself failed; nothing was charged by this call.
        return _Outcome(attempt, failure_code=f"iamport_{exc.code}", failure_reason=exc.message or "")
    except GatewayError as exc:  # auth errors: the request was refused before any charge
        return _Outcome(attempt, failure_code="gateway_error", failure_reason=str(exc))
    except Exception:
        # A bug or an unexpected exception after the request may have left: never guess, reconcile.
        logger.exception("unexpected error charging %s", attempt.merchant_uid)
        return _Outcome(attempt, unknown="unexpected error during the charge")
    return _Outcome(attempt, payment=payment)


def payments_charge(*, attempts: Sequence[PaymentAttempt], now: dt.datetime, gateway=None) -> list[PaymentAttempt]:
    """Steps 2 and 3 for attempts from `payment_attempts_create`, in the same order: call the gateway for each
    (overlapping, outside any transaction, under the global rate limit), then record every outcome. Returns
    the attempts in their recorded states (SUCCEEDED, FAILED, or UNKNOWN when the outcome could not be seen)."""
    if not attempts:
        return []
    gateway = gateway or get_gateway()
    try:
        gateway.authenticate()  # before the slots: a token fetch would hold the first calls back, then bunch them
    except GatewayError as exc:
        logger.warning("gateway authentication before a charge batch failed: %s", exc)  # each call will say
    slots = charge_slots_acquire(count=len(attempts)) or [0.0] * len(attempts)  # 0: no limit, start at once
    send_by = time.monotonic() + settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS
    if len(attempts) == 1:
        _sleep_until(slots[0])
        return _record_outcomes([_call_gateway(attempts[0], gateway, send_by)], now=now)
    waiting = {
        gateway_submit(_call_gateway, a, gateway, send_by, at=slot) for a, slot in zip(attempts, slots, strict=True)
    }
    # Outcomes are recorded as they come, a chunk at a time, not when the slowest call of the batch returns:
    # a worker that dies mid-batch leaves only its calls in flight to the janitor.
    recorded: dict[int, PaymentAttempt] = {}
    ready: list[_Outcome] = []
    chunk = max(10, len(attempts) // 4)
    flushed = time.monotonic()
    while waiting:
        done, waiting = wait(waiting, timeout=SETTLE_EVERY_SECONDS, return_when=FIRST_COMPLETED)
        ready.extend(future.result() for future in done)
        if ready and (not waiting or len(ready) >= chunk or time.monotonic() - flushed >= SETTLE_EVERY_SECONDS):
            recorded.update((a.pk, a) for a in _record_outcomes(ready, now=now))
            ready, flushed = [], time.monotonic()
    return [recorded[attempt.pk] for attempt in attempts]


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def payment_charge(
    *, invoice_id: int, now: dt.datetime, customer_uid: str | None = None, gateway=None
) -> PaymentAttempt:
    """Charge an open invoice now with /subscribe/payments/again. Returns the attempt in its recorded state
    (SUCCEEDED, FAILED, or UNKNOWN when the outcome could not be seen)."""
    attempt = payment_attempt_create(invoice_id=invoice_id, now=now, customer_uid=customer_uid)
    return payments_charge(attempts=[attempt], now=now, gateway=gateway)[0]


# --- step 3: record the outcomes ------------------------------------------------------------------------


def _record_outcomes(outcomes: Sequence[_Outcome], *, now: dt.datetime) -> list[PaymentAttempt]:
    recorded = _record_paid(
        [
            o
            for o in outcomes
            if o.payment is not None
            and o.payment.status == "paid"
            and o.payment.merchant_uid == o.attempt.merchant_uid
            and o.payment.amount == o.attempt.amount
        ],
        now=now,
    )
    result = []
    for outcome in outcomes:
        attempt = recorded.get(outcome.attempt.pk)
        if attempt is None:
            attempt = _record_one(outcome, now=now)
        result.append(attempt)
    return result


def _record_one(outcome: _Outcome, *, now: dt.datetime) -> PaymentAttempt:
    attempt = outcome.attempt
    if outcome.unknown:
        return _mark_unknown(attempt, now=now, reason=outcome.unknown)
    if outcome.payment is None:
        return _mark_failed(
            attempt, now=now, decline_class=GATEWAY, code=outcome.failure_code, reason=outcome.failure_reason
        )
    return payment_apply_gateway_payment(attempt_id=attempt.pk, payment=outcome.payment, now=now, source="charge")


def _record_paid(outcomes: Sequence[_Outcome], *, now: dt.datetime) -> dict[int, PaymentAttempt]:
    """Book charges Iamport reports paid for the amount we asked, in one transaction of a few statements:
    attempts still PENDING become SUCCEEDED, their open invoices PAID, with audit rows, and `invoices_paid`
    goes to the layers above inside the same transaction. Returns the attempts it booked; any other one (a
    webhook settled it first, its invoice is no longer open, the database refused) is left to the one-row
    path, which knows every such case."""
    if not outcomes:
        return {}
    for outcome in outcomes:
        _set_succeeded(outcome.attempt, outcome.payment, now)
    with transaction.atomic():
        try:
            with transaction.atomic():
                booked = rows_update(
                    PaymentAttempt,
                    (o.attempt for o in outcomes),
                    _SUCCESS_FIELDS,
                    where="billing_paymentattempt.status = %s",
                    params=[Status.PENDING],
                )
        except IntegrityError:
            # One success per invoice, unique imp_uid: a second charge of an invoice. The one-row path flags it.
            booked = set()
        attempts = [o.attempt for o in outcomes if o.attempt.pk in booked]
        for attempt in attempts:
            invoice = attempt.invoice
            invoice.status, invoice.paid_at, invoice.next_attempt_at = Invoice.Status.PAID, attempt.paid_at, None
        paid = rows_update(
            Invoice,
            (a.invoice for a in attempts),
            ("status", "paid_at", "next_attempt_at"),
            where="billing_invoice.status = %s",
            params=[Invoice.Status.OPEN],
        )
        entries = []
        for attempt in attempts:
            data = {"imp_uid": attempt.imp_uid}
            entries.append(_audit_entry(attempt, now, "payment.succeeded", "pending", "succeeded", data=data))
            if attempt.invoice_id in paid:
                entries.append(_invoice_paid_entry(attempt.invoice, now, "system"))
        audit_records(entries)
        for attempt in attempts:
            if attempt.invoice_id not in paid:
                # Paid after we had given up (void/uncollectible): money moved, an operator must decide.
                invoice = attempt.invoice
                invoice.refresh_from_db(fields=["status", "paid_at", "next_attempt_at"])
                _flag(attempt, now, f"payment succeeded on a {invoice.status} invoice", "system")
        settled = [(a.invoice, a) for a in attempts if a.invoice_id in paid]
        if settled:
            signals.invoices_paid.send(sender=PaymentAttempt, payments=settled, now=now)
    return {attempt.pk: attempt for attempt in attempts}


def webhook_url() -> str | None:
    base = getattr(settings, "SITE_URL", "")
    return f"{base.rstrip('/')}/iamport/webhook" if base else None


def _mark_unknown(attempt: PaymentAttempt, *, now: dt.datetime, reason: str) -> PaymentAttempt:
    with transaction.atomic():
        attempt = PaymentAttempt.objects.select_for_update().get(pk=attempt.pk)
        if attempt.status != Status.PENDING:
            return attempt  # a webhook settled it meanwhile
        attempt.status = Status.UNKNOWN
        attempt.failure_reason = reason[:255]
        attempt.save(update_fields=["status", "failure_reason"])
        _audit(attempt, now, "payment.unknown", "pending", "unknown", reason)
    logger.warning("payment %s outcome unknown: %s", attempt.merchant_uid, reason)
    return attempt


def _audit(attempt, now, action, from_status, to_status, reason="", actor_label="system", data=None):
    _audit_entry(attempt, now, action, from_status, to_status, reason, actor_label, data).save(force_insert=True)


def _audit_entry(attempt, now, action, from_status, to_status, reason="", actor_label="system", data=None):
    return audit_entry(
        at=now,
        action=action,
        obj=attempt,
        actor_label=actor_label,
        customer_id=attempt.invoice.customer_id,
        amount=attempt.amount,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        data={"merchant_uid": attempt.merchant_uid, "invoice": attempt.invoice_id, **(data or {})},
    )


def _invoice_paid_entry(invoice: Invoice, now: dt.datetime, label: str):
    return audit_entry(
        at=now,
        action="invoice.paid",
        obj=invoice,
        actor_label=label,
        customer_id=invoice.customer_id,
        amount=invoice.total,
        from_status="open",
        to_status="paid",
    )


def _mark_failed(
    attempt: PaymentAttempt,
    *,
    now: dt.datetime,
    decline_class: str,
    code: str,
    reason: str,
    imp_uid: str | None = None,
    actor_label: str = "system",
) -> PaymentAttempt:
    with transaction.atomic():
        attempt = PaymentAttempt.objects.select_for_update(of=("self",)).select_related("invoice").get(pk=attempt.pk)
        if attempt.status not in UNSETTLED:
            return attempt
        previous = attempt.status
        attempt.status = Status.FAILED
        attempt.decline_class = decline_class
        attempt.failure_code = code[:32]
        attempt.failure_reason = reason[:255]
        attempt.settled_at = now
        if imp_uid:
            attempt.imp_uid = imp_uid
        attempt.save()
        _audit(attempt, now, "payment.failed", previous, "failed", reason, actor_label, {"class": decline_class})
        signals.invoice_payment_failed.send(sender=PaymentAttempt, invoice=attempt.invoice, attempt=attempt, now=now)
    return attempt


def payment_apply_gateway_payment(
    *, attempt_id: int, payment: GatewayPayment, now: dt.datetime, source: str
) -> PaymentAttempt:
    """Settle an attempt from what Iamport reports for its merchant_uid. Forward-only and idempotent."""
    label = {"charge": "system", "janitor": "janitor", "webhook": "webhook"}.get(source, source)
    with transaction.atomic():
        attempt = PaymentAttempt.objects.select_for_update(of=("self",)).select_related("invoice").get(pk=attempt_id)
        if payment.merchant_uid != attempt.merchant_uid:
            raise ValueError("payment does not belong to this attempt")
        charged = payment.status in ("paid", "cancelled")
        if charged and payment.amount != attempt.amount:
            return _flag(attempt, now, f"Iamport reports {payment.amount} won, we asked for {attempt.amount}", label)
        if attempt.status not in UNSETTLED:
            if charged and attempt.status == Status.FAILED and payment.imp_uid != attempt.imp_uid:
                # Money moved for an attempt we had recorded as failed (e.g. the janitor concluded "never reached
                # Iamport" before a slow PG finished). If the invoice still waits for money, this IS its payment:
                # record it, which also stops dunning from charging again. Otherwise an operator must refund.
                invoice = Invoice.objects.select_for_update().get(pk=attempt.invoice_id)
                if (
                    invoice.status == Invoice.Status.OPEN
                    and not invoice.attempts.filter(status=Status.SUCCEEDED).exists()
                ):
                    return _mark_succeeded(attempt, payment, now, label)
                return _flag(attempt, now, f"Iamport reports {payment.imp_uid} paid for a failed attempt", label)
            return attempt
        if charged:
            return _mark_succeeded(attempt, payment, now, label)
        if payment.status == "failed":
            reason = payment.fail_reason or ""
            return _mark_failed(
                attempt,
                now=now,
                decline_class=classify_decline(reason),
                code="declined",
                reason=reason,
                imp_uid=payment.imp_uid,
                actor_label=label,
            )
    return attempt  # "ready": nothing happened yet


def _set_succeeded(attempt: PaymentAttempt, payment: GatewayPayment, now: dt.datetime) -> None:
    """What a success records on the attempt (in memory; the caller writes _SUCCESS_FIELDS)."""
    attempt.status = Status.SUCCEEDED
    attempt.imp_uid = payment.imp_uid
    attempt.paid_at = payment.paid_at or now
    attempt.settled_at = now
    attempt.receipt_url = (payment.receipt_url or "")[:500]
    attempt.pg_tid = (payment.pg_tid or "")[:64]
    attempt.card_name = (payment.card_name or "")[:64]
    attempt.card_number_masked = (payment.card_number or "")[:32]
    attempt.failure_reason = ""


def _mark_succeeded(attempt: PaymentAttempt, payment: GatewayPayment, now: dt.datetime, label: str):
    previous = attempt.status
    invoice = Invoice.objects.select_for_update().get(pk=attempt.invoice_id)
    _set_succeeded(attempt, payment, now)
    try:
        with transaction.atomic():
            attempt.save()
    except IntegrityError:
        # attempt_one_success_per_invoice: the invoice was already paid by another attempt. The customer has
        # been charged twice: flag it loudly for a refund instead of hiding it.
        attempt.refresh_from_db()
        return _flag(attempt, now, f"second successful charge {payment.imp_uid} for a paid invoice", label)
    _audit(
        attempt,
        now,
        "payment.succeeded",
        previous,
        "succeeded",
        actor_label=label,
        data={"imp_uid": payment.imp_uid},
    )
    if invoice.status == Invoice.Status.OPEN:
        invoice.status = Invoice.Status.PAID
        invoice.paid_at = attempt.paid_at
        invoice.next_attempt_at = None
        invoice.save(update_fields=["status", "paid_at", "next_attempt_at"])
        _invoice_paid_entry(invoice, now, label).save(force_insert=True)
        signals.invoice_paid.send(sender=PaymentAttempt, invoice=invoice, attempt=attempt, now=now)
    elif invoice.status != Invoice.Status.PAID:
        # Paid after we had given up (void/uncollectible): money moved, an operator must decide.
        return _flag(attempt, now, f"payment succeeded on a {invoice.status} invoice", label)
    return attempt


def _flag(attempt: PaymentAttempt, now: dt.datetime, reason: str, label: str) -> PaymentAttempt:
    """Park an attempt for an operator: UNKNOWN with a reason, so nothing retries the invoice meanwhile."""
    previous = attempt.status
    if attempt.status == Status.PENDING:
        attempt.status = Status.UNKNOWN
    attempt.flagged_reason = reason[:255]
    attempt.save(update_fields=["status", "flagged_reason"])
    # Nothing retries an invoice with a payment parked for an operator.
    Invoice.objects.filter(pk=attempt.invoice_id).update(next_attempt_at=None)
    _audit(attempt, now, "payment.flagged", previous, attempt.status, reason, label)
    logger.error("payment %s flagged for an operator: %s", attempt.merchant_uid, reason)
    return attempt


def payment_revoke_scheduled(*, attempt_id: int, now: dt.datetime, reason: str) -> PaymentAttempt:
    """A scheduled charge that Iamport confirmed revoked: FAILED with code "revoked", without dunning (nothing
    was declined). Only a PENDING scheduled attempt can be revoked."""
    with transaction.atomic():
        attempt = PaymentAttempt.objects.select_for_update(of=("self",)).select_related("invoice").get(pk=attempt_id)
        if attempt.status != Status.PENDING or attempt.via != PaymentAttempt.Via.SCHEDULE:
            return attempt
        attempt.status = Status.FAILED
        attempt.failure_code = "revoked"
        attempt.failure_reason = reason[:255]
        attempt.settled_at = now
        attempt.save()
        _audit(attempt, now, "payment.schedule_revoked", "pending", "failed", reason)
    return attempt


def payment_reconcile(*, attempt_id: int, now: dt.datetime, gateway=None, source: str = "janitor") -> PaymentAttempt:
    """Settle one unsettled attempt by looking its merchant_uid up with findAll. Safe to run any time."""
    attempt = PaymentAttempt.objects.select_related("invoice").get(pk=attempt_id)
    if attempt.status not in UNSETTLED or attempt.flagged_reason:
        return attempt
    gateway = gateway or get_gateway()
    try:
        payments = gateway.find_payments(merchant_uid=attempt.merchant_uid)
    except GatewayError as exc:
        logger.warning("reconcile %s: lookup failed (%s); will try again", attempt.merchant_uid, exc)
        return attempt
    charged = [p for p in payments if p.status in ("paid", "cancelled")]
    failed = [p for p in payments if p.status == "failed"]
    if charged:
        if len(charged) > 1:
            logger.error("merchant_uid %s has %d charged payments", attempt.merchant_uid, len(charged))
        return payment_apply_gateway_payment(attempt_id=attempt.pk, payment=charged[0], now=now, source=source)
    if failed:
        return payment_apply_gateway_payment(attempt_id=attempt.pk, payment=failed[0], now=now, source=source)
    if payments:
        return attempt  # "ready": still in progress at the PG
    reference = attempt.scheduled_for or attempt.created_at
    if (now - reference).total_seconds() >= settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS:
        return _mark_failed(
            attempt,
            now=now,
            decline_class=GATEWAY,
            code="not_found",
            reason="Iamport has no payment for this merchant_uid: the request never reached it",
            actor_label=source,
        )
    return attempt


def payments_unsettled_due(*, now: dt.datetime) -> list[int]:
    """Attempts the janitor should look at: every UNKNOWN one not parked for an operator, and PENDING ones
    old enough that the request that created them must have finished (or died)."""
    pending_cutoff = now - dt.timedelta(seconds=settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS)
    unknown = PaymentAttempt.objects.filter(status=Status.UNKNOWN, flagged_reason="")
    stale = PaymentAttempt.objects.filter(
        status=Status.PENDING, via=PaymentAttempt.Via.AGAIN, created_at__lte=pending_cutoff
    )
    scheduled = PaymentAttempt.objects.filter(
        status=Status.PENDING, via=PaymentAttempt.Via.SCHEDULE, scheduled_for__lte=pending_cutoff
    )
    ids = unknown.union(stale, scheduled).values_list("id", flat=True)
    return sorted(ids)


def payments_reconcile_unsettled(*, now: dt.datetime, gateway=None) -> dict[str, int]:
    """The janitor: settle every attempt whose outcome we do not know. Safe to re-run."""
    counts = {"checked": 0, "succeeded": 0, "failed": 0, "still_unknown": 0}
    for attempt_id in payments_unsettled_due(now=now):
        attempt = payment_reconcile(attempt_id=attempt_id, now=now, gateway=gateway)
        counts["checked"] += 1
        key = {"succeeded": "succeeded", "failed": "failed"}.get(attempt.status, "still_unknown")
        counts[key] += 1
    return counts
