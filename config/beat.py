"""The beat schedule, kept in the database by django-celery-beat's DatabaseScheduler.

Every job is a sweep over "everything due as of now", so a missed or doubled beat is harmless.
`install()` is idempotent: the data migration seeds it, and tests call it after a database flush.
"""

JOBS = [
    ("subscriptions: renew due subscriptions", "subscriptions.tasks.subscriptions_renew_due_task", 60),
    ("subscriptions: retry due invoices (dunning)", "subscriptions.tasks.invoices_retry_due_task", 60),
    ("notices: delivery reports and retries", "notices.tasks.notices_send_due_task", 60),
    ("subscriptions: ask for consent (trial end, price increase)", "subscriptions.tasks.consents_ask_due_task", 300),
    ("billing: reconcile unsettled payments (janitor)", "billing.tasks.payments_reconcile_unsettled_task", 180),
    # Outgoing events whose after-commit dispatch was lost (a crash, the broker away) and retries that are due.
    ("billing: deliver due events", "billing.tasks.events_dispatch_task", 60),
    ("billing: forget expired idempotency keys", "billing.tasks.idempotency_records_expire_task", 3600),
]


def install(every_seconds: int | None = None) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for name, task, seconds in JOBS:
        schedule, _ = IntervalSchedule.objects.get_or_create(every=every_seconds or seconds, period="seconds")
        PeriodicTask.objects.update_or_create(name=name, defaults={"task": task, "interval": schedule})
