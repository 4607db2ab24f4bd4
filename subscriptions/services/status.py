"""A subscription's status changes, each with its audit row. The caller holds the row's lock and saves it."""

from __future__ import annotations

import datetime as dt

from billing.models import AuditLog
from billing.services.audit import audit_entry, audit_records
from subscriptions.models import Subscription


def status_change(
    subscription: Subscription, status: str, *, now: dt.datetime, reason: str = "", actor=None
) -> AuditLog | None:
    """Change the status in memory and return the unsaved audit row (None when nothing changes): a batch saves
    both for many subscriptions at once. The caller saves the subscription."""
    if subscription.status == status:
        return None
    entry = audit_entry(
        at=now,
        action="subscription.status",
        obj=subscription,
        actor=actor,
        actor_label="system",
        customer_id=subscription.customer_id,
        from_status=subscription.status,
        to_status=status,
        reason=reason,
    )
    subscription.status = status
    return entry


def set_status(subscription: Subscription, status: str, *, now: dt.datetime, reason: str = "", actor=None) -> None:
    """`status_change` for one subscription, its audit row saved at once. The caller saves the subscription."""
    entry = status_change(subscription, status, now=now, reason=reason, actor=actor)
    if entry is not None:
        audit_records([entry])  # saves it and the event it reports


def subscription_end(sub: Subscription, now: dt.datetime, *, at: dt.datetime, reason: str, actor=None) -> None:
    """End a (locked) subscription: canceled, access until `at`, with the reason. Saves it."""
    set_status(sub, Subscription.Status.CANCELED, now=now, reason=reason, actor=actor)
    sub.canceled_at = sub.canceled_at or now
    sub.ended_at = at
    sub.end_reason = reason
    sub.next_event_at = None
    sub.cancel_at_period_end = False
    sub.save()
