"""Celery tasks of billing: the reconciliation janitor, webhook processing, and outgoing events."""

from celery import shared_task

from billing import clock
from billing.gateway.errors import GatewayError
from billing.services.events import endpoint_deliver, endpoints_with_due_deliveries, events_sequence
from billing.services.idempotency import idempotency_records_expire
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


@shared_task(ignore_result=True)
def events_dispatch_task() -> dict:
    """After a commit that recorded events, and every minute from beat: number the new events, then hand every
    endpoint with due deliveries to its own task."""
    now = clock.now()
    sequenced = events_sequence(now=now)
    endpoint_ids = endpoints_with_due_deliveries(now=now)
    for endpoint_id in endpoint_ids:
        event_endpoint_deliver_task.delay(endpoint_id)
    return {"sequenced": sequenced, "endpoints": endpoint_ids}


@shared_task(ignore_result=True, bind=True, max_retries=None, acks_late=True)
def event_endpoint_deliver_task(self, endpoint_id: int, second_look: bool = False) -> dict:
    result = endpoint_deliver(endpoint_id=endpoint_id, now_fn=clock.now)
    if result["busy"] and not second_look:
        # Another worker is delivering to it and goes round while it finds newer deliveries; one more look covers
        # a delivery committed just as it let go (the beat sweep covers the rest).
        event_endpoint_deliver_task.apply_async((endpoint_id, True), countdown=1)
    elif result["next_retry_at"] is not None:
        wait = max((result["next_retry_at"] - clock.now()).total_seconds(), 1)
        event_endpoint_deliver_task.apply_async((endpoint_id,), countdown=wait)
    return result


@shared_task(ignore_result=True)
def idempotency_records_expire_task() -> int:
    return idempotency_records_expire(now=clock.now())
