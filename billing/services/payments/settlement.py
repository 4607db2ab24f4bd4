"""Step 3 of a charge, and every other way an attempt is settled (the janitor, webhooks, admin actions).

Each kind of outcome has one implementation, set-based; one attempt is a batch of one:
- paid for the amount we asked: `_book_paid` moves the attempts to SUCCEEDED and their open invoices to PAID,
  then sends `invoices_paid` to the layers above inside the same transaction;
- declined by the card company, or failed before anything was charged: `_book_failed` moves them to FAILED
  and sends `invoices_payment_failed` (dunning decides for the whole batch);
- unknown (a timeout, a 5xx that may have charged): `_book_unknown` leaves them for `reconcile`.
An attempt someone settled first (a webhook beat the answer), or a payment that is not what we asked for
(another amount, already cancelled), goes through `payment_apply_gateway_payment`, which knows every such
case and ends in the same booking functions.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from billing import signals
from billing.decline import GATEWAY, classify_decline
from billing.gateway.base import GatewayPayment, GatewayPaymentStatus
from billing.models import Invoice, PaymentAttempt
from billing.services.invoices import invoices_transition
from billing.services.payments.attempts import UNSETTLED, attempt_audit, attempts_transition

logger = logging.getLogger(__name__)

Status = PaymentAttempt.Status
_SUCCESS_FIELDS = (
    "imp_uid",
    "paid_at",
    "settled_at",
    "receipt_url",
    "pg_tid",
    "card_name",
    "card_number_masked",
    "failure_reason",
)
_FAILURE_FIELDS = ("decline_class", "failure_code", "failure_reason", "settled_at", "imp_uid")
_CHARGED = (GatewayPaymentStatus.PAID, GatewayPaymentStatus.CANCELLED)
_LABELS = {"charge": "system", "janitor": "janitor", "webhook": "webhook"}


@dataclass(frozen=True)
class Outcome:
    """What one gateway call told us: a payment, an unknown outcome, or a failure that charged nothing."""

    attempt: PaymentAttempt
    payment: GatewayPayment | None = None
    unknown: str = ""
    failure_code: str = ""
    failure_reason: str = ""


def outcomes_record(outcomes: Sequence[Outcome], *, now: dt.datetime) -> list[PaymentAttempt]:
    """Record what a chunk of gateway calls told us about attempts still PENDING, in one transaction: each kind
    of outcome for the whole chunk in a few statements. Returns the attempts in their recorded states, in
    order."""
    paid, failed, unknown = [], [], []
    for outcome in outcomes:
        attempt, payment = outcome.attempt, outcome.payment
        if outcome.unknown:
            attempt.failure_reason = outcome.unknown[:255]
            unknown.append((attempt, Status.PENDING))
        elif payment is None:
            _set_failed(attempt, now, GATEWAY, outcome.failure_code, outcome.failure_reason)
            failed.append((attempt, Status.PENDING))
        elif payment.merchant_uid != attempt.merchant_uid:
            continue  # not ours: the careful path below raises
        elif payment.status == GatewayPaymentStatus.PAID and payment.amount == attempt.amount:
            paid.append((attempt, payment, Status.PENDING))
        elif payment.status == GatewayPaymentStatus.FAILED:
            reason = payment.fail_reason or ""
            _set_failed(attempt, now, classify_decline(reason), "declined", reason, imp_uid=payment.imp_uid)
            failed.append((attempt, Status.PENDING))
    with transaction.atomic():
        recorded = _book_paid(paid, now=now, label="system")
        recorded.update(_book_failed(failed, now=now, label="system"))
        recorded.update(_book_unknown(unknown, now=now))
    result = []
    for outcome in outcomes:
        attempt = recorded.get(outcome.attempt.pk)
        if attempt is None:  # settled by someone else first, or a payment that needs a closer look
            attempt = _record_late(outcome, now=now)
        result.append(attempt)
    return result


def _record_late(outcome: Outcome, *, now: dt.datetime) -> PaymentAttempt:
    if outcome.payment is not None:
        return payment_apply_gateway_payment(
            attempt_id=outcome.attempt.pk, payment=outcome.payment, now=now, source="charge"
        )
    return PaymentAttempt.objects.select_related("invoice__customer").get(pk=outcome.attempt.pk)


def payment_apply_gateway_payment(
    *, attempt_id: int, payment: GatewayPayment, now: dt.datetime, source: str
) -> PaymentAttempt:
    """Settle an attempt from what Iamport reports for its merchant_uid. Forward-only and idempotent."""
    label = _LABELS.get(source, source)
    with transaction.atomic():
        attempt = PaymentAttempt.objects.select_for_update(of=("self",)).select_related("invoice").get(pk=attempt_id)
        if payment.merchant_uid != attempt.merchant_uid:
            raise ValueError("payment does not belong to this attempt")
        charged = payment.status in _CHARGED
        if charged and payment.amount != attempt.amount:
            return payment_flag(
                attempt,
                now=now,
                reason=f"Iamport reports {payment.amount} won, we asked for {attempt.amount}",
                label=label,
            )
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
                    return _book_paid([(attempt, payment, Status.FAILED)], now=now, label=label)[attempt.pk]
                return payment_flag(
                    attempt, now=now, reason=f"Iamport reports {payment.imp_uid} paid for a failed attempt", label=label
                )
            return attempt
        if charged:
            return _book_paid([(attempt, payment, attempt.status)], now=now, label=label)[attempt.pk]
        if payment.status == GatewayPaymentStatus.FAILED:
            reason = payment.fail_reason or ""
            _set_failed(attempt, now, classify_decline(reason), "declined", reason, imp_uid=payment.imp_uid)
            return _book_failed([(attempt, attempt.status)], now=now, label=label).get(attempt.pk, attempt)
    return attempt  # "ready": nothing happened yet


def payment_fail(
    *, attempt: PaymentAttempt, now: dt.datetime, decline_class: str, code: str, reason: str, label: str = "system"
) -> PaymentAttempt:
    """Record an unsettled attempt as FAILED for a reason of our own (e.g. the janitor: it never reached
    Iamport), with the same consequences as a decline (dunning)."""
    with transaction.atomic():
        previous = attempt.status
        _set_failed(attempt, now, decline_class, code, reason)
        booked = _book_failed([(attempt, previous)], now=now, label=label)
    return booked.get(attempt.pk) or PaymentAttempt.objects.select_related("invoice").get(pk=attempt.pk)


def _set_succeeded(attempt: PaymentAttempt, payment: GatewayPayment, now: dt.datetime) -> None:
    """What a success records on the attempt (in memory; `_book_paid` writes _SUCCESS_FIELDS)."""
    attempt.imp_uid = payment.imp_uid
    attempt.paid_at = payment.paid_at or now
    attempt.settled_at = now
    attempt.receipt_url = (payment.receipt_url or "")[:500]
    attempt.pg_tid = (payment.pg_tid or "")[:64]
    attempt.card_name = (payment.card_name or "")[:64]
    attempt.card_number_masked = (payment.card_number or "")[:32]
    attempt.failure_reason = ""


def _set_failed(attempt, now, decline_class: str, code: str, reason: str, imp_uid: str | None = None) -> None:
    """What a failure records on the attempt (in memory; `_book_failed` writes _FAILURE_FIELDS)."""
    attempt.decline_class = decline_class
    attempt.failure_code = (code or "")[:32]
    attempt.failure_reason = (reason or "")[:255]
    attempt.settled_at = now
    if imp_uid:
        attempt.imp_uid = imp_uid


def _book_paid(
    items: Sequence[tuple[PaymentAttempt, GatewayPayment, str]], *, now: dt.datetime, label: str
) -> dict[int, PaymentAttempt]:
    """Book payments Iamport reports paid for the amount we asked: each (attempt, payment, the attempt's
    status as read) becomes SUCCEEDED, its open invoice PAID, audited, and `invoices_paid` goes to the layers
    above inside the caller's transaction. Returns the attempts it settled (a second success the database
    refuses, or money for an invoice no longer waiting for it, is flagged for an operator); an attempt
    someone settled first is missing from the result."""
    if not items:
        return {}
    for attempt, payment, _previous in items:
        _set_succeeded(attempt, payment, now)
    try:
        with transaction.atomic():
            moved = attempts_transition(
                [(attempt, previous) for attempt, _payment, previous in items],
                to=Status.SUCCEEDED,
                fields=_SUCCESS_FIELDS,
                now=now,
                action="payment.succeeded",
                label=label,
                reason=lambda attempt: "",
                data=lambda attempt: {"imp_uid": attempt.imp_uid},
            )
    except IntegrityError:
        # attempt_one_success_per_invoice or a unique imp_uid: a second charge of an invoice. One attempt at a
        # time (the caller re-offers each one alone), so the one that caused it is flagged loudly for a refund.
        if len(items) > 1:
            return {}
        attempt, payment, _previous = items[0]
        attempt.refresh_from_db()
        reason = f"second successful charge {payment.imp_uid} for a paid invoice"
        return {attempt.pk: payment_flag(attempt, now=now, reason=reason, label=label)}
    for attempt in moved:
        invoice = attempt.invoice
        invoice.paid_at, invoice.next_attempt_at = attempt.paid_at, None
    paid = {
        invoice.pk
        for invoice in invoices_transition(
            [(attempt.invoice, Invoice.Status.OPEN) for attempt in moved],
            to=Invoice.Status.PAID,
            fields=("paid_at", "next_attempt_at"),
            now=now,
            action="invoice.paid",
            label=label,
        )
    }
    for attempt in moved:
        if attempt.invoice_id not in paid:
            invoice = attempt.invoice
            invoice.refresh_from_db(fields=["status", "paid_at", "next_attempt_at"])
            if invoice.status != Invoice.Status.PAID:
                # Paid after we had given up (void/uncollectible): money moved, an operator must decide.
                payment_flag(attempt, now=now, reason=f"payment succeeded on a {invoice.status} invoice", label=label)
    settled = [(attempt.invoice, attempt) for attempt in moved if attempt.invoice_id in paid]
    if settled:
        signals.invoices_paid.send(sender=PaymentAttempt, payments=settled, now=now)
    return {attempt.pk: attempt for attempt in moved}


def _book_failed(moves: Sequence[tuple[PaymentAttempt, str]], *, now: dt.datetime, label: str) -> dict:
    """Book failures (their fields set by `_set_failed`): FAILED, audited, and `invoices_payment_failed` to the
    layers above for the whole batch, inside the caller's transaction."""
    if not moves:
        return {}
    moved = attempts_transition(
        moves,
        to=Status.FAILED,
        fields=_FAILURE_FIELDS,
        now=now,
        action="payment.failed",
        label=label,
        data=lambda attempt: {"class": attempt.decline_class},
    )
    if moved:
        signals.invoices_payment_failed.send(
            sender=PaymentAttempt, failures=[(attempt.invoice, attempt) for attempt in moved], now=now
        )
    return {attempt.pk: attempt for attempt in moved}


def _book_unknown(moves: Sequence[tuple[PaymentAttempt, str]], *, now: dt.datetime) -> dict:
    """Outcomes we could not see: UNKNOWN until the janitor or a webhook settles them. Nothing retries them."""
    moved = attempts_transition(moves, to=Status.UNKNOWN, fields=("failure_reason",), now=now, action="payment.unknown")
    for attempt in moved:
        logger.warning("payment %s outcome unknown: %s", attempt.merchant_uid, attempt.failure_reason)
    return {attempt.pk: attempt for attempt in moved}


def payment_flag(attempt: PaymentAttempt, *, now: dt.datetime, reason: str, label: str = "system") -> PaymentAttempt:
    """Park a payment for an operator (money that moved where it should not have, or an amount we did not ask
    for): a PENDING attempt becomes UNKNOWN, the reason is kept, and nothing retries its invoice meanwhile. The
    one way any layer flags a payment."""
    with transaction.atomic():
        attempt.flagged_reason = reason[:255]
        if attempt.status == Status.PENDING:
            attempts_transition(
                [(attempt, Status.PENDING)],
                to=Status.UNKNOWN,
                fields=("flagged_reason",),
                now=now,
                action="payment.flagged",
                label=label,
                reason=lambda attempt: attempt.flagged_reason,
            )
        else:
            PaymentAttempt.objects.filter(pk=attempt.pk).update(flagged_reason=attempt.flagged_reason)
            attempt_audit(attempt, now, "payment.flagged", attempt.status, attempt.status, reason, label)
        Invoice.objects.filter(pk=attempt.invoice_id).update(next_attempt_at=None)
    logger.error("payment %s flagged for an operator: %s", attempt.merchant_uid, reason)
    return attempt
