"""Celery: the notice sweep (delivery reports, retries after a provider error). Thin; beat runs it every minute."""

from celery import shared_task

from billing import clock
from notices.services import notices_send_due


@shared_task(ignore_result=True)
def notices_send_due_task() -> dict[str, int]:
    return notices_send_due(now=clock.now())
