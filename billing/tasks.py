"""Celery tasks of billing: the reconciliation janitor and webhook processing."""

from celery import shared_task

from billing import clock
from billing.gateway.errors import GatewayError
from billing.services.payments import payments_reconcile_unsettled
from billing.services.reconciliation import reconciliations_run_due
from billing.services.refunds import refunds_reconcile_unsettled
from billing.services.webhooks import webhook_process


@shared_task(ignore_result=True)
def payments_reconcile_unsettled_task() -> dict:
    now = clock.now()
    return {**payments_reconcile_unsettled(now=now), "refunds": refunds_reconcile_unsettled(now=now)}


@shared_task(ignore_result=True)
def reconciliations_run_due_task() -> dict:
    """Hourly from 00:30 KST: reconcile yesterday until it has a complete run, and resume unfinished runs."""
    return reconciliations_run_due(now=clock.now())


@shared_task(ignore_result=True, bind=True, max_retries=8, acks_late=True)
def webhook_process_task(self, event_id: int, reprocess: bool = False) -> None:
    try:
        webhook_process(event_id=event_id, now=clock.now(), reprocess=reprocess)
    except GatewayError as exc:  # Iamport unreachable: the event is kept FAILED and retried with backoff
        raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 600)) from exc
