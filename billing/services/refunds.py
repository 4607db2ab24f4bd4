"""Refunds: a ledger of rows against a succeeded attempt, guarded by Iamport's `checksum`.

`refund_create` locks the attempt, refuses anything above the refundable balance (succeeded and in-flight
refunds count), records a PENDING row, then calls /payments/cancel OUTSIDE the transaction with
`checksum` = the balance Iamport should hold before this cancel, so a refund our ledger missed makes Iamport
refuse instead of refunding twice. One refund per attempt is in flight at a time, so concurrent admins can
never exceed the paid amount. Totals are always derived from the rows, never stored twice.

Which cancellation is ours: Iamport answers a cancel with the whole payment, every cancellation on it included.
Ours is the one whose `cancellation_id` no other refund row of this attempt holds (while one refund is in flight
nothing else records a row for the attempt: `refund_create` refuses and `refunds_sync_from_gateway` skips), never
"the newest": `cancelled_at` has whole-second resolution, so two equal refunds in one second look alike.

A refund whose outcome we do not know (UNKNOWN after a timeout, or PENDING because the process died between
the request and the answer) is settled by `refunds_reconcile_unsettled`, the refund half of the janitor.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils.translation import gettext as _

from billing.errors import (
    GatewayUnavailableError,
    PaymentInProgressError,
    RefundExceedsBalanceError,
    RefundFailedError,
    RefundNotAllowedError,
)
from billing.gateway.base import GatewayCancel, GatewayPayment
from billing.gateway.errors import GatewayError, GatewayRejected, GatewayTimeout, GatewayUnavailable
from billing.models import PaymentAttempt, Refund
from billing.money import split_refund
from billing.services.audit import audit_record
from billing.services.gateway import get_gateway

logger = logging.getLogger(__name__)

IN_FLIGHT = (Refund.Status.PENDING, Refund.Status.UNKNOWN)


def refund_totals(attempt: PaymentAttempt) -> dict[str, int]:
    sums = attempt.refunds.aggregate(
        refunded=Sum("amount", filter=Q(status=Refund.Status.SUCCEEDED), default=0),
        refunded_tax_free=Sum("tax_free_amount", filter=Q(status=Refund.Status.SUCCEEDED), default=0),
        in_flight=Sum("amount", filter=Q(status__in=IN_FLIGHT), default=0),
    )
    sums["refundable"] = attempt.amount - sums["refunded"] - sums["in_flight"]
    return sums


def refund_create(
    *, attempt_id: int, amount: int | None, reason: str, now: dt.datetime, actor=None, gateway=None
) -> Refund:
    """Refund `amount` won (None = everything still refundable). Raises ApplicationError subclasses."""
    reason = (reason or "").strip()
    if not reason:
        raise RefundFailedError(_("Give a reason for the refund."), field="reason")
    with transaction.atomic():
        attempt = PaymentAttempt.objects.select_for_update(of=("self",)).select_related("invoice").get(pk=attempt_id)
        if attempt.status != PaymentAttempt.Status.SUCCEEDED or not attempt.imp_uid:
            raise RefundNotAllowedError()
        totals = refund_totals(attempt)
        if totals["in_flight"]:
            raise PaymentInProgressError(_("Another refund of this payment is still being processed."))
        refundable = totals["refundable"]
        amount = refundable if amount is None else amount
        if amount <= 0:
            raise RefundExceedsBalanceError(_("Enter an amount above 0 won."), refundable=refundable)
        if amount > refundable:
            raise RefundExceedsBalanceError(
                _("At most %(refundable)s won can still be refunded.") % {"refundable": f"{refundable:,}"},
                refundable=refundable,
            )
        split = split_refund(
            refund_amount=amount,
            paid_total=attempt.amount,
            paid_tax_free=attempt.tax_free_amount,
            already_refunded=totals["refunded"],
            already_refunded_tax_free=totals["refunded_tax_free"],
        )
        refund = Refund.objects.create(
            attempt=attempt,
            amount=amount,
            tax_free_amount=split.tax_free,
            vat_amount=split.vat,
            reason=reason[:255],
            # A server key (billing/api/keys.py) has no user row: its audit rows name it instead.
            actor=actor if _is_user(actor) else None,
            created_at=now,
        )
        checksum = attempt.amount - totals["refunded"]
        audit_record(
            at=now,
            action="refund.requested",
            obj=refund,
            actor=actor,
            customer_id=attempt.invoice.customer_id,
            amount=amount,
            to_status=Refund.Status.PENDING,
            reason=reason,
            data={"attempt": attempt.merchant_uid, "checksum": checksum},
        )

    gateway = gateway or get_gateway()
    try:
        payment = gateway.cancel_payment(
            imp_uid=attempt.imp_uid,
            amount=amount,
            checksum=checksum,
            reason=reason[:255],
            tax_free=split.tax_free,
            vat_amount=split.vat,
        )
    except GatewayRejected as exc:
        refund_transition(refund, now, Refund.Status.FAILED, actor, failure=exc.message or "")
        raise RefundFailedError(
            _("Iamport refused the refund: %(message)s") % {"message": exc.message or exc.code}
        ) from exc
    except (GatewayTimeout, GatewayUnavailable) as exc:
        maybe = isinstance(exc, GatewayTimeout) or exc.maybe_processed
        refund_transition(
            refund, now, Refund.Status.UNKNOWN if maybe else Refund.Status.FAILED, actor, failure=str(exc)
        )
        if maybe:
            return refund_reconcile(refund_id=refund.pk, now=now, gateway=gateway, raise_if_unknown=True)
        raise GatewayUnavailableError() from exc
    except GatewayError as exc:
        refund_transition(refund, now, Refund.Status.FAILED, actor, failure=str(exc))
        raise GatewayUnavailableError() from exc
    return refund_transition(refund, now, Refund.Status.SUCCEEDED, actor, payment=payment)


def _unclaimed_cancellations(refund: Refund, payment: GatewayPayment) -> list[GatewayCancel]:
    """The cancellations on `payment` of this refund's amount that no other refund row of the attempt holds."""
    claimed = set(
        Refund.objects.filter(attempt_id=refund.attempt_id)
        .exclude(pk=refund.pk)
        .exclude(cancellation_id="")
        .values_list("cancellation_id", flat=True)
    )
    return [c for c in payment.cancel_history if c.cancellation_id not in claimed]


def _own_cancellation(refund: Refund, payment: GatewayPayment) -> GatewayCancel | None:
    """This refund's cancellation: unclaimed and of its amount. Iamport lists cancellations oldest first, so
    the last such entry is the one our request just made (an equal console refund in the same instant, the
    only way two could qualify, leaves the other for `refunds_sync_from_gateway`)."""
    matching = [c for c in _unclaimed_cancellations(refund, payment) if c.amount == refund.amount]
    return matching[-1] if matching else None


def refund_transition(
    refund,
    now,
    status,
    actor=None,
    *,
    failure: str = "",
    payment: GatewayPayment | None = None,
    label="system",
):
    """The one way a refund's status changes: an in-flight refund moves to `status` once (a settled refund is
    returned as it is), under the attempt's lock, audited in the same transaction.

    A SUCCEEDED refund takes its own cancellation's id from `payment`, read under the attempt's lock so that
    no other row of the attempt can claim it meanwhile."""
    with transaction.atomic():
        PaymentAttempt.objects.select_for_update().filter(pk=refund.attempt_id).first()
        refund = Refund.objects.select_for_update(of=("self",)).select_related("attempt__invoice").get(pk=refund.pk)
        if refund.status not in IN_FLIGHT:
            return refund
        previous = refund.status
        refund.status = status
        refund.failure_reason = failure[:255]
        if status == Refund.Status.SUCCEEDED and payment is not None:
            own = _own_cancellation(refund, payment)
            refund.cancellation_id = ((own.cancellation_id or "") if own else "")[:64]
        if status != Refund.Status.UNKNOWN:
            refund.settled_at = now
        refund.save()
        audit_record(
            at=now,
            action=f"refund.{status}",
            obj=refund,
            actor=actor,
            actor_label=label,
            customer_id=refund.attempt.invoice.customer_id,
            amount=refund.amount,
            from_status=previous,
            to_status=status,
            reason=failure or refund.reason,
        )
    return refund


def refund_reconcile(
    *,
    refund_id: int,
    now: dt.datetime,
    gateway=None,
    raise_if_unknown=False,
    label: str = "janitor",
    not_found_after: int | None = None,
) -> Refund:
    """Settle a refund whose outcome we do not know (UNKNOWN, or PENDING after its request died) from the
    payment as Iamport holds it. Safe to run any time: a settled refund is returned unchanged.

    - A cancellation of this amount that no other row holds is ours: SUCCEEDED, with its id.
    - None, and the request is `not_found_after` seconds old (default BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS,
      as for charges): FAILED. Iamport cancels exactly the amount asked, so a cancellation of another amount is
      never ours; it is someone else's (the console) and is recorded as such right after. An operator may
      settle at once (0): should the lost request still reach Iamport later, its `checksum` (the balance before
      it) no longer matches and Iamport refuses it, so a FAILED verdict can never turn into money.
    - Iamport unreachable, or too early to tell: unchanged, for the next run.
    """
    refund = Refund.objects.select_related("attempt__invoice").get(pk=refund_id)
    if refund.status not in IN_FLIGHT:
        return refund
    gateway = gateway or get_gateway()
    try:
        payment = gateway.get_payment(imp_uid=refund.attempt.imp_uid)
    except GatewayError as exc:
        logger.warning("refund %s: lookup failed (%s); will try again", refund.pk, exc)
        payment = None
    if payment is not None:
        if _own_cancellation(refund, payment) is not None:
            return refund_transition(refund, now, Refund.Status.SUCCEEDED, label=label, payment=payment)
        if not_found_after is None:
            not_found_after = settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS
        if (now - refund.created_at).total_seconds() >= not_found_after:
            refund = refund_transition(
                refund, now, Refund.Status.FAILED, label=label, failure="Iamport shows no refund for this request"
            )
            refunds_sync_from_gateway(attempt=refund.attempt, payment=payment, now=now)
            return refund
    if raise_if_unknown:
        from billing.errors import PaymentPendingError

        raise PaymentPendingError(_("The refund was sent but Iamport has not confirmed it yet."))
    return refund


def refunds_unsettled_due(*, now: dt.datetime) -> list[int]:
    """Refunds the janitor should look at: every UNKNOWN one, and PENDING ones old enough that the request
    that created them must have finished or died (BILLING_RECONCILE_PENDING_AFTER_SECONDS)."""
    cutoff = now - dt.timedelta(seconds=settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS)
    unknown = Refund.objects.filter(status=Refund.Status.UNKNOWN)
    stale = Refund.objects.filter(status=Refund.Status.PENDING, created_at__lte=cutoff)
    return sorted(unknown.union(stale).values_list("id", flat=True))


def refunds_reconcile_unsettled(*, now: dt.datetime, gateway=None) -> dict[str, int]:
    """The janitor's refund half: settle every refund whose outcome we do not know. Safe to re-run."""
    counts = {"checked": 0, "succeeded": 0, "failed": 0, "still_unknown": 0}
    for refund_id in refunds_unsettled_due(now=now):
        refund = refund_reconcile(refund_id=refund_id, now=now, gateway=gateway)
        counts["checked"] += 1
        counts[
            {Refund.Status.SUCCEEDED: "succeeded", Refund.Status.FAILED: "failed"}.get(refund.status, "still_unknown")
        ] += 1
    return counts


def refunds_sync_from_gateway(
    *, attempt: PaymentAttempt, payment: GatewayPayment, now: dt.datetime, label: str = "webhook"
) -> int:
    """Record refunds made outside this app (Iamport console) that a webhook or lookup revealed; audited as
    `label` (the webhook, or the daily reconciliation)."""
    if attempt.status != PaymentAttempt.Status.SUCCEEDED:
        return 0
    known_ids = set(attempt.refunds.exclude(cancellation_id="").values_list("cancellation_id", flat=True))
    created = 0
    for cancel in payment.cancel_history:
        if not cancel.cancellation_id or cancel.cancellation_id in known_ids:
            continue
        with transaction.atomic():
            locked = PaymentAttempt.objects.select_for_update().get(pk=attempt.pk)
            if locked.refunds.filter(cancellation_id=cancel.cancellation_id).exists():
                continue  # recorded by a concurrent delivery of the same webhook
            totals = refund_totals(locked)
            if totals["in_flight"] or cancel.amount > totals["refundable"]:
                continue  # our own in-flight refund: its own settlement records it
            split = split_refund(
                refund_amount=cancel.amount,
                paid_total=locked.amount,
                paid_tax_free=locked.tax_free_amount,
                already_refunded=totals["refunded"],
                already_refunded_tax_free=totals["refunded_tax_free"],
            )
            refund = Refund.objects.create(
                attempt=locked,
                amount=cancel.amount,
                tax_free_amount=split.tax_free,
                vat_amount=split.vat,
                reason=(cancel.reason or "refunded at Iamport")[:255],
                status=Refund.Status.SUCCEEDED,
                cancellation_id=cancel.cancellation_id[:64],
                created_at=now,
                settled_at=now,
            )
            audit_record(
                at=now,
                action="refund.synced",
                obj=refund,
                actor_label=label,
                customer_id=attempt.invoice.customer_id,
                amount=cancel.amount,
                to_status=Refund.Status.SUCCEEDED,
                reason=refund.reason,
            )
            created += 1
    return created


def _is_user(actor) -> bool:
    return getattr(actor, "is_authenticated", False) and not getattr(actor, "is_server_key", False)
