"""`manage.py billing_run`: one sweep (reconciliation, renewals, dunning retries) as of the clock's now."""

import json

from django.core.management.base import BaseCommand

from billing import clock
from subscriptions.services.sweep import billing_run


class Command(BaseCommand):
    help = "Run one billing sweep synchronously as of the (test) clock's now and print what it did."

    def handle(self, *args, **options):
        now = clock.now()
        result = billing_run(now=now)
        self.stdout.write(f"billing run at {now.isoformat()}")
        self.stdout.write(json.dumps(result, ensure_ascii=False, indent=2))
