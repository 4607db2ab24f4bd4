"""Settling what we could not see: the janitor, and revoked schedules.

`payment_reconcile` looks an unsettled attempt's merchant_uid up at the gateway and books what it finds through
`settlement` (the same booking functions a charge uses). `payments_reconcile_unsettled` runs it for every
attempt whose outcome we do not know. Both are safe to run at any time, twice, or concurrently.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction

from billing.decline import GATEWAY
from billing.gateway.base import GatewayPaymentStatus
from billing.gateway.errors import GatewayError
from billing.models import PaymentAttempt
from billing.services.gateway import get_gateway
from billing.services.payments.attempts import UNSETTLED, attempts_transition
from billing.services.payments.settlement import payment_apply_gateway_payment, payment_fail

logger = logging.getLogger(__name__)

Status = PaymentAttempt.Status


def payment_revoke_scheduled(*, attempt_id: int, now: dt.datetime, reason: str) -> PaymentAttempt:
    """A scheduled charge that Iamport confirmed revoked: FAILED with code "revoked", without dunning (nothing
    was declined). Only a PENDING scheduled attempt can be revoked."""
    with transaction.atomic():
        attempt = PaymentAttempt.objects.select_for_update(of=("self",)).select_related("invoice").get(pk=attempt_id)
        if attempt.status != Status.PENDING or attempt.via != PaymentAttempt.Via.SCHEDULE:
            return attempt
        attempt.failure_code = "revoked"
        attempt.failure_reason = reason[:255]
        attempt.settled_at = now
        attempts_transition(
            [(attempt, Status.PENDING)],
            to=Status.FAILED,
            fields=("failure_code", "failure_reason", "settled_at"),
            now=now,
            action="payment.schedule_revoked",
        )
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
    charged = [p for p in payments if p.status in (GatewayPaymentStatus.PAID, GatewayPaymentStatus.CANCELLED)]
    failed = [p for p in payments if p.status == GatewayPaymentStatus.FAILED]
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
        return payment_fail(
            attempt=attempt,
            now=now,
            decline_class=GATEWAY,
            code="not_found",
            reason="Iamport has no payment for this merchant_uid: the request never reached it",
            label=source,
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
        key = {Status.SUCCEEDED: "succeeded", Status.FAILED: "failed"}.get(attempt.status, "still_unknown")
        counts[key] += 1
    return counts
