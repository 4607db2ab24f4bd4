"""Outgoing events: the outbox, its feed order, and delivery to the merchant's endpoints (Standard Webhooks).

Every fact a merchant is told about is already an audit row written in the transaction of the change
(docs/architecture.md#gateway-sandbox-and-payment-states). `events_from_audit` turns the audit rows whose action
names such a fact into `Event` rows in the same transaction and the same number of statements (one INSERT for a
batch), so an event exists exactly when its change committed: a crash after the commit loses nothing, a rollback
leaves nothing. It is called from `audit_records`, the one function every status change saves its audit rows
through, so billing and subscriptions both emit through it and billing never imports subscriptions.

After commit, `events_sequence` numbers the new rows (under one advisory lock, in the order they became visible):
the feed pages by that number, so a row that committed after a later id was read is never skipped. Sequencing
also creates one `EventDelivery` per endpoint that wants the event, and `endpoint_deliver` sends them in
sequence order, one customer's events strictly in order (a failing one holds back the later ones of the same
customer, never another customer's), retried with exponential backoff for `EVENT_RETRY_FOR` before giving up.
An endpoint failing for `EVENT_DISABLE_AFTER` is disabled and the admins are told.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import secrets
from collections.abc import Iterable, Sequence

import requests
from celery import current_app
from django.conf import settings
from django.core.mail import mail_admins
from django.db import connection, transaction
from standardwebhooks.webhooks import Webhook

from billing.models import AuditLog, Event, EventDelivery, EventEndpoint

logger = logging.getLogger(__name__)

EVENT_RETRY_FOR = dt.timedelta(days=3)
EVENT_DISABLE_AFTER = dt.timedelta(days=3)
_SEQUENCE_LOCK = 7_200_012  # pg advisory lock id of the sequencer
_ENDPOINT_LOCK = 7_200_013  # (this, endpoint id): one deliverer per endpoint

# Subscription status -> event type. Paused -> active is "resumed"; any other way into active is "activated".
_SUBSCRIPTION_STATUS_EVENTS = {
    "trialing": "subscription.trialing",
    "active": "subscription.activated",
    "past_due": "subscription.past_due",
    "paused": "subscription.paused",
    "canceled": "subscription.canceled",
    "unpaid": "subscription.unpaid",
}
# Audit action -> event type, for the actions that are one fact each.
_ACTION_EVENTS = {
    "customer.created": "customer.created",
    "billing_key.registered": "billing_key.registered",
    "billing_key.deleted": "billing_key.removed",
    "subscription.created": "subscription.created",
    "subscription.plan_changed": "subscription.plan_changed",
    "subscription.cancel_scheduled": "subscription.cancel_scheduled",
    "subscription.pause_scheduled": "subscription.pause_scheduled",
    "invoice.finalized": "invoice.created",
    "invoice.paid": "invoice.paid",
    "invoice.voided": "invoice.voided",
    "invoice.uncollectible": "invoice.uncollectible",
    "payment.succeeded": "payment.settled",
    "payment.failed": "invoice.payment_failed",
    "payment.unknown": "payment.unknown",
    "refund.requested": "refund.created",
    "refund.succeeded": "refund.succeeded",
    "refund.failed": "refund.failed",
}
# Access is derived from the status (subscriptions/models.py ACCESS_STATUSES); a change of it is its own event.
_ACCESS_STATUSES = frozenset({"trialing", "active", "past_due"})

EVENT_TYPES = sorted(
    {*_SUBSCRIPTION_STATUS_EVENTS.values(), *_ACTION_EVENTS.values(), "subscription.resumed", "entitlements.updated"}
)


def _object_name(object_type: str) -> str:
    # billing.paymentattempt -> payment, subscriptions.subscription -> subscription
    name = object_type.rpartition(".")[2]
    return {"paymentattempt": "payment", "billingkey": "billing_key"}.get(name, name)


def _events_for(entry: AuditLog) -> list[Event]:
    if entry.action == "subscription.status":
        kind = _SUBSCRIPTION_STATUS_EVENTS.get(entry.to_status)
        if entry.from_status == "paused" and entry.to_status == "active":
            kind = "subscription.resumed"
        kinds = [kind] if kind else []
        if (entry.from_status in _ACCESS_STATUSES) != (entry.to_status in _ACCESS_STATUSES):
            kinds.append("entitlements.updated")
    else:
        kinds = [_ACTION_EVENTS[entry.action]] if entry.action in _ACTION_EVENTS else []
    data = {
        "object": _object_name(entry.object_type),
        "id": _as_id(entry.object_id),
        **({"status": entry.to_status} if entry.to_status else {}),
        **({"previous_status": entry.from_status} if entry.from_status else {}),
        **({"amount": entry.amount} if entry.amount is not None else {}),
        **({"reason": entry.reason} if entry.reason else {}),
        **({"details": entry.data} if entry.data else {}),
    }
    return [
        Event(
            type=kind,
            customer_id=entry.customer_id,
            object_type=data["object"],
            object_id=entry.object_id,
            data=data,
            created_at=entry.at,
        )
        for kind in kinds
    ]


def _as_id(value: str):
    return int(value) if value.isdigit() else value


def events_from_audit(entries: Iterable[AuditLog]) -> list[Event]:
    """Record the events the audit rows report, in the caller's transaction (one INSERT, none when no row is an
    event), and have them sequenced and delivered after commit."""
    events = [event for entry in entries for event in _events_for(entry)]
    if events:
        Event.objects.bulk_create(events)
        _dispatch_on_commit()
    return events


def event_record(*, type: str, obj, customer_id: int | None, at: dt.datetime, data: dict | None = None) -> Event:
    """One event that no audit row reports, in the caller's transaction."""
    event = Event.objects.create(
        type=type,
        customer_id=customer_id,
        object_type=_object_name(obj._meta.label_lower),
        object_id=str(obj.pk),
        data={"object": _object_name(obj._meta.label_lower), "id": obj.pk, **(data or {})},
        created_at=at,
    )
    _dispatch_on_commit()
    return event


def _dispatch_on_commit() -> None:
    # One dispatch per transaction however many batches it records.
    if any(callback is _dispatch for _sids, callback, _robust in connection.run_on_commit):
        return
    transaction.on_commit(_dispatch)


def _dispatch() -> None:
    try:
        # By name: services never import an entry point (billing/tasks.py defines it).
        current_app.send_task("billing.tasks.events_dispatch_task")
    except Exception:  # the broker is down: the sweep (events_dispatch_due) sends them
        logger.exception("could not queue events_dispatch_task; the sweep will deliver the events")


# --- sequencing ------------------------------------------------------------------------------------------------


def events_sequence(*, now: dt.datetime) -> int:
    """Number the committed, unnumbered events after the highest number, in id order, and create their deliveries.
    Safe to run at any time and from many workers (one at a time, under an advisory lock). Returns how many."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SEQUENCE_LOCK])
            cursor.execute(
                """
                WITH base AS (SELECT coalesce(max(sequence), 0) AS top FROM billing_event),
                     fresh AS (SELECT id, row_number() OVER (ORDER BY id) AS n
                               FROM billing_event WHERE sequence IS NULL)
                UPDATE billing_event e SET sequence = base.top + fresh.n
                FROM base, fresh WHERE e.id = fresh.id
                RETURNING e.id, e.sequence, e.type, e.customer_id
                """
            )
            rows = cursor.fetchall()
        if rows:
            endpoints = list(EventEndpoint.objects.filter(enabled=True))
            EventDelivery.objects.bulk_create(
                EventDelivery(
                    endpoint=endpoint,
                    event_id=event_id,
                    sequence=sequence,
                    ordering_key=f"customer:{customer_id}" if customer_id else f"event:{event_id}",
                    next_attempt_at=now,
                    created_at=now,
                )
                for event_id, sequence, kind, customer_id in rows
                for endpoint in endpoints
                if endpoint.wants(kind)
            )
    return len(rows)


def endpoints_with_due_deliveries(*, now: dt.datetime) -> list[int]:
    return sorted(
        EventDelivery.objects.filter(
            status=EventDelivery.Status.PENDING, next_attempt_at__lte=now, endpoint__enabled=True
        )
        .values_list("endpoint_id", flat=True)
        .distinct()
    )


# --- the payload -----------------------------------------------------------------------------------------------


def event_payload(event: Event) -> dict:
    """What the feed lists and an endpoint receives (the `webhook-id` is `id`)."""
    customer = event.customer
    return {
        "id": f"evt_{event.pk}",
        "object": "event",
        "type": event.type,
        "sequence": event.sequence,
        "created_at": event.created_at.isoformat(),
        "customer": ({"id": customer.pk, "external_id": customer.external_id} if customer is not None else None),
        "data": {"object": event.data},
    }


def event_secret_new() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


# --- delivery --------------------------------------------------------------------------------------------------


def _backoff(attempts: int) -> dt.timedelta:
    """5 s, 10 s, 20 s … doubling, at most 1 hour between attempts (≈ 75 attempts in 3 days)."""
    return dt.timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 3600))


def endpoint_deliver(*, endpoint_id: int, now_fn, session: requests.Session | None = None) -> dict:
    """Send the endpoint's due deliveries, in sequence order, until none is left that may go now. One deliverer
    per endpoint: a second caller returns at once with busy=True (its task tries again shortly), and the holder
    goes round again while deliveries it has not seen yet exist, so nothing committed while it ran waits for the
    sweep. Returns counts and the time of the next retry, if any."""
    result = {"delivered": 0, "failed": 0, "next_retry_at": None, "busy": False}
    session = session or requests.Session()
    seen = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_ENDPOINT_LOCK, endpoint_id])
            if not cursor.fetchone()[0]:
                result["busy"] = True
                return result
        try:
            seen, more = _deliver_round(endpoint_id, now_fn, session, result, seen)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_ENDPOINT_LOCK, endpoint_id])
        if not more:
            return result


_ROUND = 500


def _deliver_round(endpoint_id: int, now_fn, session, result: dict, seen: int) -> tuple[int, bool]:
    """One pass over the pending deliveries. Returns the highest delivery id seen and whether to go round again."""
    endpoint = EventEndpoint.objects.filter(pk=endpoint_id, enabled=True).first()
    if endpoint is None:
        return seen, False
    pending = list(
        EventDelivery.objects.filter(endpoint=endpoint, status=EventDelivery.Status.PENDING)
        .select_related("event__customer")
        .order_by("sequence")[:_ROUND]
    )
    webhook = Webhook(endpoint.secret)
    held: set[str] = set()
    next_retry = None
    for delivery in pending:
        seen = max(seen, delivery.pk)
        if delivery.ordering_key in held:
            continue
        now = now_fn()
        if delivery.next_attempt_at > now:
            held.add(delivery.ordering_key)
            next_retry = min(next_retry or delivery.next_attempt_at, delivery.next_attempt_at)
            continue
        if _send(endpoint, webhook, delivery, session, now):
            result["delivered"] += 1
            continue
        held.add(delivery.ordering_key)
        if delivery.status == EventDelivery.Status.PENDING:
            next_retry = min(next_retry or delivery.next_attempt_at, delivery.next_attempt_at)
        else:
            result["failed"] += 1
        if not EventEndpoint.objects.filter(pk=endpoint.pk, enabled=True).exists():
            return seen, False  # this failure disabled it
    result["next_retry_at"] = next_retry
    if len(pending) == _ROUND and result["delivered"]:
        return seen, True
    newer = EventDelivery.objects.filter(endpoint=endpoint, status=EventDelivery.Status.PENDING, pk__gt=seen)
    return seen, newer.exists()


def _send(endpoint: EventEndpoint, webhook: Webhook, delivery: EventDelivery, session, now: dt.datetime) -> bool:
    event = delivery.event
    body = json.dumps(event_payload(event), ensure_ascii=False, separators=(",", ":"))
    msg_id = f"evt_{event.pk}"
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhook.sign(msg_id=msg_id, timestamp=now, data=body),
        "user-agent": "kbilling-events/1",
    }
    status_code, error = None, ""
    try:
        response = session.post(
            endpoint.url,
            data=body.encode(),
            headers=headers,
            timeout=settings.EVENT_DELIVERY_TIMEOUT,
            allow_redirects=False,
        )
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}: {response.text[:200]}"
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = status_code
    delivery.last_error = error[:255]
    fields = ["attempts", "last_attempt_at", "last_status_code", "last_error", "status", "next_attempt_at"]
    if not error:
        delivery.status = EventDelivery.Status.SUCCEEDED
        delivery.delivered_at = now
        delivery.save(update_fields=[*fields, "delivered_at"])
        if endpoint.failing_since is not None:
            EventEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            endpoint.failing_since = None
        return True
    if now - delivery.created_at >= EVENT_RETRY_FOR:
        delivery.status = EventDelivery.Status.FAILED
    else:
        delivery.next_attempt_at = now + _backoff(delivery.attempts)
    delivery.save(update_fields=fields)
    _note_failure(endpoint, now, error)
    return False


def _note_failure(endpoint: EventEndpoint, now: dt.datetime, error: str) -> None:
    if endpoint.failing_since is None:
        EventEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
        endpoint.failing_since = now
        return
    if now - endpoint.failing_since >= EVENT_DISABLE_AFTER:
        reason = f"every delivery failed since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC; last: {error}"[:255]
        EventEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason=reason)
        mail_admins(
            f"Event endpoint disabled: {endpoint.url}",
            f"{reason}\n\nFix the receiver, then enable the endpoint in the admin and replay its failed deliveries.",
        )


def deliveries_replay(*, delivery_ids: Sequence[int], now: dt.datetime) -> int:
    """Send these deliveries again (admin): pending from now, whatever they ended as."""
    count = EventDelivery.objects.filter(pk__in=delivery_ids).update(
        status=EventDelivery.Status.PENDING, next_attempt_at=now, created_at=now
    )
    _dispatch_on_commit()
    return count


def endpoint_create(*, url: str, event_types: Sequence[str] = (), description: str = "", now: dt.datetime):
    return EventEndpoint.objects.create(
        url=url, event_types=list(event_types), description=description, secret=event_secret_new(), created_at=now
    )
