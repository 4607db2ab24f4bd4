"""Step 1 of a charge, and the one function that changes an attempt's status.

`payment_attempts_create` records a PENDING attempt per chargeable invoice in one short transaction.
`attempts_transition` moves attempts from one status to another: the allowed moves are written down once
(`ALLOWED_FROM`), the move is a guarded UPDATE (the row must still be in the status the caller read, so a
webhook or the janitor that settled it first wins), and every move it makes is audited in the same statement
batch. Every path that settles an attempt (a batch of charges, one charge, a webhook, the janitor, an admin)
goes through it.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from billing.bulk import rows_move
from billing.errors import ApplicationError, InvoiceNotPayableError, NoPaymentMethodError, PaymentInProgressError
from billing.models import AuditLog, Invoice, PaymentAttempt
from billing.selectors import billing_keys_default
from billing.services.audit import audit_entry, audit_records

logger = logging.getLogger(__name__)

Status = PaymentAttempt.Status
UNSETTLED = (Status.PENDING, Status.UNKNOWN)
THROTTLED = "throttled"  # failure_code of a charge the gateway refused for its rate (HTTP 429)
NOT_SENT = "not_sent"  # failure_code of a charge that waited in our own queue too long and was never sent

# The statuses an attempt may move to, and from which. Forward only: PENDING -> SUCCEEDED | FAILED | UNKNOWN,
# UNKNOWN -> SUCCEEDED | FAILED. FAILED -> SUCCEEDED is the one late move: money the gateway took for an
# attempt we had concluded failed (the janitor's "never reached it" before a slow PG finished).
ALLOWED_FROM: dict[str, frozenset[str]] = {
    Status.SUCCEEDED: frozenset({Status.PENDING, Status.UNKNOWN, Status.FAILED}),
    Status.FAILED: frozenset({Status.PENDING, Status.UNKNOWN}),
    Status.UNKNOWN: frozenset({Status.PENDING}),
}


def attempts_transition(
    moves: Sequence[tuple[PaymentAttempt, str]],
    *,
    to: str,
    fields: Sequence[str],
    now: dt.datetime,
    action: str,
    label: str = "system",
    reason: Callable[[PaymentAttempt], str] = lambda attempt: attempt.failure_reason,
    data: Callable[[PaymentAttempt], dict] = lambda attempt: {},
) -> list[PaymentAttempt]:
    """Move attempts to status `to`. Each move is (attempt with its new `fields` set in memory, the status its
    row must still have). One guarded UPDATE per starting status and one audit INSERT, however many attempts;
    returns the attempts it moved, in order. A row no longer in its expected status is left alone (someone
    settled it first) and is missing from the result: the caller re-reads it. Raises ValueError for a move
    `ALLOWED_FROM` does not allow, and IntegrityError when the database refuses it (a second success)."""
    moved = rows_move(PaymentAttempt, moves, to=to, allowed_from=ALLOWED_FROM, fields=fields)
    audit_records(
        attempt_audit_entry(attempt, now, action, previous, to, reason(attempt), label, data(attempt))
        for attempt, previous in moved
    )
    return [attempt for attempt, _previous in moved]


def attempt_audit_entry(attempt, now, action, from_status, to_status, reason="", actor_label="system", data=None):
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


def attempt_audit(*args, **kwargs) -> AuditLog:
    entry = attempt_audit_entry(*args, **kwargs)
    audit_records([entry])
    return entry


def _merchant_uid(invoice: Invoice, sequence: int) -> str:
    # ≤40 chars. The random tail keeps ids unique even when a development database is reset while the
    # Iamport account (or the sandbox data file) remembers earlier payments.
    return f"{settings.BILLING_UID_PREFIX}{invoice.pk}_{sequence}_{secrets.token_hex(3)}"


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
