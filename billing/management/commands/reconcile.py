"""`manage.py reconcile --date 2027-01-31`: reconcile one KST business day with Iamport (default: yesterday).

Exits 1 when Iamport could not be read to the end (run it again to resume where it stopped); prints the
differences a person must look at."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from billing import clock
from billing.errors import ApplicationError
from billing.services.reconciliation import kst_day, reconciliation_run


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date must be a day as YYYY-MM-DD (e.g. 2027-01-31), not {value!r}") from None


class Command(BaseCommand):
    help = "Reconcile one KST business day (대사) against Iamport's payments."

    def add_arguments(self, parser):
        parser.add_argument("--date", type=_day, help="YYYY-MM-DD (KST); default: yesterday")

    def handle(self, *args, date: dt.date | None = None, **options):
        now = clock.now()
        day = date or kst_day(now) - dt.timedelta(days=1)
        try:
            run = reconciliation_run(day=day, now=now, trigger="command")
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        counts = ", ".join(f"{k}={v}" for k, v in sorted(run.counts.items())) or "-"
        self.stdout.write(
            f"{day:%Y-%m-%d} run #{run.pk}: {run.status}; pages {run.pages_fetched}, Iamport listed "
            f"{run.iamport_total}; {counts}; unresolved {run.unresolved_count} (new {run.new_count})"
        )
        for row in run.rows.filter(resolution="open"):
            self.stdout.write(f"  {row.kind}: {row.merchant_uid} {row.imp_uid} {row.detail}")
        if run.status != "complete":
            raise CommandError(f"stopped part way ({run.error}); run the same command again to resume")
        if run.is_clean:
            self.stdout.write(self.style.SUCCESS("clean: Iamport and our books agree"))
