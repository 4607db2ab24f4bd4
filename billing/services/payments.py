"""Charging invoices exactly once, and settling what we could not see (style.md §4).

`payment_charge` works in three steps:
1. a short transaction locks the invoice, refuses if it is not open or if an attempt is still unsettled
   (a partial unique index makes that race-proof), and records a PENDING attempt with a fresh merchant_uid;
2. the gateway is called OUTSIDE any transaction, holding no database connection state;
3. a short transaction records the outcome. A timeout (or a 5xx that may have charged) leaves the attempt
   UNKNOWN: it is never retried before `payment_reconcile` (the janitor, or a verified webhook) settles it.

A retry is always a new attempt with a new merchant_uid. Every settlement path (the charge itself, the
janitor, webhooks) goes through `payment_apply_gateway_payment`, which only moves state forward and never
books a payment whose amount differs from what we asked for.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from billing import signals
from billing.decline import GATEWAY, classify_decline
from billing.errors import InvoiceNotPayableError, NoPaymentMethodError, PaymentInProgressError
from billing.gateway.base import GatewayPayment
from billing.gateway.errors import GatewayError, GatewayRejected, GatewayTimeout, GatewayUnavailable
from billing.models import Invoice, PaymentAttempt
from billing.ratelimit import charge_slot_acquire
from billing.selectors import billing_key_default
from billing.services.audit import audit_record
from billing.services.gateway import get_gateway

logger = logging.getLogger(__name__)

Status = PaymentAttempt.Status
UNSETTLED = (Status.PENDING, Status.UNKNOWN)


def _merchant_uid(invoice: Invoice, sequence: int) -> str:
    # ≤40 chars. The random tail keeps ids unique even when a development database is reset while the
    # Iamport account (or the sandbox data file) remembers earlier payments.
    return f"{settings.BILLING_UID_PREFIX}{invoice.pk}_{sequence}_{secrets.token_hex(3)}"


def payment_attempt_create(
    *,
    invoice_id: int,
    now: dt.datetime,
    customer_uid: str | None = None,
    via: str = PaymentAttempt.Via.AGAIN,
    scheduled_for: dt.datetime | None = None,
) -> PaymentAttempt:
    """Step 1: record a PENDING attempt for an open invoice. Raises if the invoice cannot be charged now."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update(of=("self",)).select_related("customer").get(pk=invoice_id)
        if invoice.status != Invoice.Status.OPEN or invoice.total <= 0:
            raise InvoiceNotPayableError()
        if customer_uid is None:
            key = billing_key_default(customer_id=invoice.customer_id)
            if key is None:
                raise NoPaymentMethodError()
            customer_uid = key.customer_uid
        if invoice.attempt_count and invoice.attempts.exclude(flagged_reason="").exists():
            raise PaymentInProgressError(_("A payment of this invoice is waiting for an operator's review."))
        invoice.attempt_count += 1
        try:
            with transaction.atomic():
                attempt = PaymentAttempt.objects.create(
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
        except IntegrityError as exc:  # attempt_one_unsettled_per_invoice: another attempt is in flight
            raise PaymentInProgressError() from exc
        invoice.next_attempt_at = None
        invoice.save(update_fields=["attempt_count", "next_attempt_at"])
    return attempt


def payment_charge(
    *, invoice_id: int, now: dt.datetime, customer_uid: str | None = None, gateway=None
) -> PaymentAttempt:
    """Charge an open invoice now with /subscribe/payments/again. Returns the attempt in its recorded state
    (SUCCEEDED, FAILED, or UNKNOWN when the outcome could not be seen)."""
    attempt = payment_attempt_create(invoice_id=invoice_id, now=now, customer_uid=customer_uid)
    invoice = attempt.invoice
    gateway = gateway or get_gateway()
    charge_slot_acquire()  # the PG's rate cap; waits outside any transaction
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
        return _mark_unknown(attempt, now=now, reason=f"timeout: {exc}")
    except GatewayUnavailable as exc:
        if exc.maybe_processed:
            return _mark_unknown(attempt, now=now, reason=f"gateway {exc.status}: outcome unknown")
        return _mark_failed(attempt, now=now, decline_class=GATEWAY, code="unavailable", reason=str(exc))
    except GatewayRejected as exc:
        # code != 0: the request to the card company itself failed; nothing was charged by this call.
        return _mark_failed(
            attempt, now=now, decline_class=GATEWAY, code=f"iamport_{exc.code}", reason=exc.message or ""
        )
    except GatewayError as exc:  # auth errors: the request was refused before any charge
        return _mark_failed(attempt, now=now, decline_class=GATEWAY, code="gateway_error", reason=str(exc))
    except Exception:
        # A bug or an unexpected exception after the request may have left: never guess, reconcile.
        logger.exception("unexpected error charging %s", attempt.merchant_uid)
        return _mark_unknown(attempt, now=now, reason="unexpected error during the charge")
    return payment_apply_gateway_payment(attempt_id=attempt.pk, payment=payment, now=now, source="charge")


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
    audit_record(
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


def _mark_succeeded(attempt: PaymentAttempt, payment: GatewayPayment, now: dt.datetime, label: str):
    previous = attempt.status
    invoice = Invoice.objects.select_for_update().get(pk=attempt.invoice_id)
    attempt.status = Status.SUCCEEDED
    attempt.imp_uid = payment.imp_uid
    attempt.paid_at = payment.paid_at or now
    attempt.settled_at = now
    attempt.receipt_url = (payment.receipt_url or "")[:500]
    attempt.pg_tid = (payment.pg_tid or "")[:64]
    attempt.card_name = (payment.card_name or "")[:64]
    attempt.card_number_masked = (payment.card_number or "")[:32]
    attempt.failure_reason = ""
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
        audit_record(
            at=now,
            action="invoice.paid",
            obj=invoice,
            actor_label=label,
            customer_id=invoice.customer_id,
            amount=invoice.total,
            from_status="open",
            to_status="paid",
        )
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
