"""Celery tasks: ids in, one service call, no business branching. Beat sweeps fan out one task per batch of
BILLING_BATCH_SIZE rows (renewals, dunning retries); every task re-checks its rows, so doubled sweeps
are harmless."""

from collections import Counter

from celery import shared_task

from billing import clock
from subscriptions.services.consent import consents_ask_due
from subscriptions.services.dunning import invoices_retry, invoices_retry_due
from subscriptions.services.renewals import subscriptions_due, subscriptions_renew
from subscriptions.services.sweep import in_batches


@shared_task(ignore_result=True)
def subscriptions_renew_due_task() -> int:
    ids = subscriptions_due(now=clock.now())
    for batch in in_batches(ids):
        subscriptions_renew_task.delay(batch)
    return len(ids)


@shared_task(ignore_result=True, acks_late=True)
def subscriptions_renew_task(subscription_ids: list[int]) -> dict[str, int]:
    outcomes = subscriptions_renew(subscription_ids=subscription_ids, now=clock.now())
    return dict(Counter(outcomes.values()))  # what the worker logs: a count per outcome


@shared_task(ignore_result=True)
def invoices_retry_due_task() -> int:
    ids = invoices_retry_due(now=clock.now())
    for batch in in_batches(ids):
        invoices_retry_task.delay(batch)
    return len(ids)


@shared_task(ignore_result=True, acks_late=True)
def invoices_retry_task(invoice_ids: list[int]) -> dict[str, int]:
    attempts = invoices_retry(invoice_ids=invoice_ids, now=clock.now())
    return dict(Counter(a.status if a else "skipped" for a in attempts.values()))


@shared_task(ignore_result=True)
def consents_ask_due_task() -> int:
    return consents_ask_due(now=clock.now())
