"""Iamport webhooks: stored raw at once, processed after commit by re-fetching the payment.

V1 webhooks are unsigned (docs/iamport-v1.md#webhooks), so the body is only a hint: the payment is re-fetched from
Iamport, matched to our attempt by the merchant_uid IAMPORT reports (not the one in the body), its amount
compared, and state only moves forward. Duplicates and reordering therefore change nothing, and a forged
event can at most make us look something up.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from urllib.parse import parse_qs

from django.db import transaction

from billing.gateway.errors import GatewayError, GatewayNotFound
from billing.models import PaymentAttempt, WebhookEvent
from billing.services.gateway import get_gateway
from billing.services.payments import payment_apply_gateway_payment
from billing.services.refunds import refunds_sync_from_gateway

logger = logging.getLogger(__name__)

State = WebhookEvent.State
_KEPT_HEADERS = ("content-type", "user-agent", "x-forwarded-for", "content-length")


def _no_nul(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def _parse(raw: str, content_type: str) -> dict:
    if "json" in content_type or raw.lstrip().startswith("{"):
        data = json.loads(raw or "{}")
        if not isinstance(data, dict):
            raise ValueError("webhook body is not a JSON object")
        return data
    return {key: values[0] for key, values in parse_qs(raw).items()}


def webhook_receive(
    *, raw_body: str, content_type: str, headers: dict, source_ip: str | None, now: dt.datetime
) -> WebhookEvent:
    """Store the event as received. Never raises on a malformed body: it is kept and ignored. PostgreSQL text
    cannot hold NUL, so NUL characters (raw or JSON-escaped) are stored as U+FFFD."""
    raw_body = _no_nul(raw_body)
    kept = {k: _no_nul(str(v)) for k, v in headers.items() if k.lower() in _KEPT_HEADERS}
    event = WebhookEvent(
        received_at=now, source_ip=source_ip, content_type=content_type[:100], headers=kept, raw_body=raw_body
    )
    try:
        data = _parse(raw_body, content_type)
        event.imp_uid = _no_nul(str(data.get("imp_uid") or ""))[:40]
        event.merchant_uid = _no_nul(str(data.get("merchant_uid") or ""))[:40]
        event.status = _no_nul(str(data.get("status") or ""))[:16]
        if not event.imp_uid:
            event.state, event.result = State.IGNORED, "no imp_uid in the body"
    except (ValueError, json.JSONDecodeError) as exc:
        event.state, event.result = State.IGNORED, f"unreadable body: {exc}"[:255]
    event.save()
    return event


# V2 event types -> the short status our events keep (WebhookEvent.status holds 16 characters).
_V2_STATUS = {
    "Transaction.Paid": "paid",
    "Transaction.Failed": "failed",
    "Transaction.Cancelled": "cancelled",
    "Transaction.PartialCancelled": "cancelled",
}


def webhook_receive_v2(
    *, raw_body: str, headers: dict, source_ip: str | None, now: dt.datetime, event: dict
) -> WebhookEvent:
    """Store a PortOne V2 webhook whose signature the view has verified. Processed like V1's: the paymentId
    (our merchant_uid, and the port's imp_uid on V2) is re-fetched from PortOne, never read from the body."""
    kept = {k: _no_nul(str(v)) for k, v in headers.items() if k.lower() in (*_KEPT_HEADERS, "webhook-id")}
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    kind = str(event.get("type") or "")
    payment_id = _no_nul(str(data.get("paymentId") or ""))[:40]
    record = WebhookEvent(
        received_at=now,
        source_ip=source_ip,
        content_type="application/json",
        headers=kept,
        raw_body=_no_nul(raw_body),
        imp_uid=payment_id,
        merchant_uid=payment_id,
        status=_V2_STATUS.get(kind, kind.rpartition(".")[2].lower())[:16],
    )
    if not kind.startswith("Transaction.") or not payment_id:
        record.state, record.result = State.IGNORED, f"V2 {kind or 'event'} carries no payment of ours"[:255]
    record.save()
    return record


def webhook_process(*, event_id: int, now: dt.datetime, gateway=None, reprocess: bool = False) -> WebhookEvent:
    """Apply one stored event. Safe to run twice; `reprocess` re-runs an event already handled."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event_id)
        if event.state != State.RECEIVED and not (reprocess or event.state == State.FAILED):
            return event
        if not event.imp_uid:
            return event
        event.process_count += 1
        event.save(update_fields=["process_count"])
    gateway = gateway or get_gateway()
    try:
        payment = gateway.get_payment(imp_uid=event.imp_uid)
    except GatewayNotFound:
        return _finish(event, now, State.IGNORED, "Iamport does not know this imp_uid")
    except GatewayError as exc:
        _finish(event, now, State.FAILED, f"lookup failed: {exc}"[:255])
        raise
    if event.merchant_uid and event.merchant_uid != payment.merchant_uid:
        return _finish(event, now, State.FLAGGED, "merchant_uid in the body differs from Iamport's")
    if payment.customer_uid_usage == "issue":
        return _finish(event, now, State.IGNORED, "billing-key issuance, not a charge")
    attempt = PaymentAttempt.objects.filter(merchant_uid=payment.merchant_uid).first()
    if attempt is None:
        return _finish(event, now, State.IGNORED, "no attempt of ours has this merchant_uid")
    attempt = payment_apply_gateway_payment(attempt_id=attempt.pk, payment=payment, now=now, source="webhook")
    if payment.cancel_history:
        refunds_sync_from_gateway(attempt=attempt, payment=payment, now=now)
    if attempt.flagged_reason:
        return _finish(event, now, State.FLAGGED, attempt.flagged_reason)
    return _finish(event, now, State.PROCESSED, f"attempt {attempt.merchant_uid} is {attempt.status}")


def _finish(event: WebhookEvent, now: dt.datetime, state: str, result: str) -> WebhookEvent:
    WebhookEvent.objects.filter(pk=event.pk).update(state=state, result=result[:255], processed_at=now)
    event.state, event.result, event.processed_at = state, result[:255], now
    logger.info("webhook %s (%s %s): %s", event.pk, event.imp_uid, event.status, result)
    return event
