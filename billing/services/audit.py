"""The audit log: one append-only row for every money or status change. Saving rows here is also what records
the outgoing events they report, in the same transaction (billing/services/events.py): save audit rows only
through `audit_record` and `audit_records`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from billing.models import AuditLog, Customer
from billing.services.events import events_from_audit


def audit_entry(
    *,
    at: dt.datetime,
    action: str,
    obj,
    actor=None,
    actor_label: str = "system",
    customer: Customer | None = None,
    customer_id: int | None = None,
    amount: int | None = None,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    data: dict | None = None,
) -> AuditLog:
    """An unsaved audit row: `audit_record` saves one, `audit_records` saves many in one statement."""
    if getattr(actor, "is_server_key", False):  # a merchant's server key (billing/api/keys.py): no user row
        actor_label, actor = actor.label, None
    elif actor is not None and getattr(actor, "is_authenticated", False):
        actor_label = f"user:{actor.get_username()}"
    else:
        actor = None
    return AuditLog(
        at=at,
        actor=actor,
        actor_label=actor_label,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        customer_id=customer.pk if customer is not None else customer_id,
        amount=amount,
        from_status=from_status or "",
        to_status=to_status or "",
        reason=(reason or "")[:255],
        data=data or {},
    )


def audit_record(**kwargs) -> AuditLog:
    """Append one audit row (keyword arguments as `audit_entry`)."""
    entry = audit_entry(**kwargs)
    entry.save(force_insert=True)
    events_from_audit([entry])
    return entry


def audit_records(entries: Iterable[AuditLog]) -> None:
    """Append many audit rows (from `audit_entry`) in one INSERT."""
    entries = list(entries)
    if entries:
        AuditLog.objects.bulk_create(entries)
        events_from_audit(entries)
