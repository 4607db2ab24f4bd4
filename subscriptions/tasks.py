"""Celery tasks: ids in, one service call, no business branching. Beat sweeps fan out one task per batch of
rows (renewals) or per row (dunning retries); every task re-checks its rows, so doubled sweeps are harmless."""

from collections import Counter

from celery import shared_task
from django.conf import settings

from billing import clock
from subscriptions.services.dunning import invoice_retry, invoices_retry_due
from subscriptions.services.lifecycle import subscriptions_due, subscriptions_renew


@shared_task(ignore_result=True)
def subscriptions_renew_due_task() -> int:
    ids = subscriptions_due(now=clock.now())
    size = max(settings.BILLING_RENEWAL_BATCH_SIZE, 1)
    for start in range(0, len(ids), size):
        subscriptions_renew_task.delay(ids[start : start + size])
    return len(ids)


@shared_task(ignore_result=True, acks_late=True)
def subscriptions_renew_task(subscription_ids: list[int]) -> dict[str, int]:
    outcomes = subscriptions_renew(subscription_ids=subscription_ids, now=clock.now())
    return dict(Counter(outcomes.values()))  # what the worker logs: a count per outcome


@shared_task(ignore_result=True)
def invoices_retry_due_task() -> int:
    ids = invoices_retry_due(now=clock.now())
    for invoice_id in ids:
        invoice_retry_task.delay(invoice_id)
    return len(ids)


@shared_task(ignore_result=True, acks_late=True)
def invoice_retry_task(invoice_id: int) -> None:
    invoice_retry(invoice_id=invoice_id, now=clock.now())
