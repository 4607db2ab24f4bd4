"""Seeds the beat entry of the daily reconciliation (대사): every hour at :30 in Asia/Seoul, so the first run
of a day starts at 00:30 KST and later ones resume a run Iamport interrupted (or do nothing). The sweep is
over "everything due as of now", so a missed or doubled beat is harmless."""

from django.db import migrations

NAME = "billing: reconcile yesterday with Iamport (대사)"
TASK = "billing.tasks.reconciliations_run_due_task"


def create(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="*", day_of_week="*", day_of_month="*", month_of_year="*", timezone="Asia/Seoul"
    )
    PeriodicTask.objects.update_or_create(name=NAME, defaults={"task": TASK, "crontab": schedule, "interval": None})


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_reconciliation"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
