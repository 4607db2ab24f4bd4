"""The Celery app. Tasks live in each app's tasks.py; the beat schedule is kept in the database.

Every task of the app runs as `InfrastructureRetryTask`: when it fails because the database connection dropped
or the broker could not be reached (a failover, a PgBouncer or Redis restart, a deploy), it is retried after a
bounded, jittered backoff instead of being dropped. That is safe because every task is idempotent: ids in, rows
claimed and re-checked, an attempt recorded before the gateway call and settled by the janitor when its outcome
is unknown. Business errors are never retried here.
"""

from __future__ import annotations

import logging
import os
import random

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

logger = logging.getLogger(__name__)


def infrastructure_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean "the database or the broker is not there", not "this work is wrong"."""
    from django import db
    from kombu.exceptions import OperationalError as BrokerError

    return (db.OperationalError, db.InterfaceError, BrokerError)


def infrastructure_retry_countdown(retries: int) -> float:
    """Seconds before retry number `retries` + 1: between half and all of min(MAX, BASE x 2^retries).

    Half is fixed so a flood of failed tasks never retries at once in a tight loop; half is random so the
    tasks of a whole batch run do not come back in lockstep against a database that has just returned."""
    from django.conf import settings

    ceiling = min(settings.TASK_INFRA_RETRY_MAX_SECONDS, settings.TASK_INFRA_RETRY_BASE_SECONDS * 2**retries)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class InfrastructureRetryTask(Task):
    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except infrastructure_errors() as exc:
            if self.request.is_eager or self.request.called_directly:
                raise  # called in-process (tests, eager mode): the caller sees the error
            from django import db
            from django.conf import settings

            db.close_old_connections()  # a dropped connection is closed, the retry opens a new one
            countdown = infrastructure_retry_countdown(self.request.retries)
            logger.warning(
                "%s[%s] lost the database or broker (%s: %s); retry %d in %.1fs",
                self.name,
                self.request.id,
                type(exc).__name__,
                str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                self.request.retries + 1,
                countdown,
            )
            raise self.retry(exc=exc, countdown=countdown, max_retries=settings.TASK_INFRA_RETRIES) from exc


app = Celery("kbilling", task_cls=InfrastructureRetryTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
