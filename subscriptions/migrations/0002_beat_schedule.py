"""The beat schedule lives in the database (django-celery-beat's DatabaseScheduler); this seeds it.
Every job is a sweep over "everything due as of now", so a missed or doubled beat is harmless."""

from django.db import migrations

JOBS = [
    ("subscriptions: renew due subscriptions", "subscriptions.tasks.subscriptions_renew_due_task", 60),
    ("subscriptions: retry due invoices (dunning)", "subscriptions.tasks.invoices_retry_due_task", 60),
    ("billing: reconcile unsettled payments (janitor)", "billing.tasks.payments_reconcile_unsettled_task", 180),
]


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds in JOBS:
        schedule, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.update_or_create(name=name, defaults={"task": task, "interval": schedule})


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, _, _ in JOBS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
