"""Seeds the beat entries of outgoing events (a sweep for lost dispatches and due retries) and of expired
idempotency keys; both are sweeps over "everything due as of now"."""

from django.db import migrations

JOBS = [
    ("billing: deliver due events", "billing.tasks.events_dispatch_task", 60),
    ("billing: forget expired idempotency keys", "billing.tasks.idempotency_records_expire_task", 3600),
]


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds in JOBS:
        schedule, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.update_or_create(name=name, defaults={"task": task, "interval": schedule})


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[n for n, _t, _s in JOBS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0009_integration"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
