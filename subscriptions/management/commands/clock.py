"""`manage.py clock show | advance 31d | set 2027-01-31T09:00+09:00` (dev and test only).

Moves the app's clock and the sandbox's clock together, stepping through every due event on the way
(period ends, trial notices, dunning retries) and running the due work synchronously at each step, so a
month of billing can be watched in seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Min

from billing import clock
from billing.models import Invoice
from subscriptions.models import Subscription
from subscriptions.services.sweep import billing_run

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> dt.timedelta:
    match = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    if not match:
        raise CommandError(f"Cannot read duration {text!r}: use e.g. 90s, 15m, 12h, 31d, 2w")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def next_due_event(after: dt.datetime, until: dt.datetime) -> dt.datetime | None:
    subs = Subscription.objects.filter(
        status__in=[
            Subscription.Status.INCOMPLETE,
            Subscription.Status.TRIALING,
            Subscription.Status.ACTIVE,
            Subscription.Status.PAST_DUE,
            Subscription.Status.PAUSED,
        ],
        next_event_at__gt=after,
        next_event_at__lte=until,
    ).aggregate(m=Min("next_event_at"))["m"]
    invoices = Invoice.objects.filter(
        status=Invoice.Status.OPEN, next_attempt_at__gt=after, next_attempt_at__lte=until
    ).aggregate(m=Min("next_attempt_at"))["m"]
    candidates = [moment for moment in (subs, invoices) if moment is not None]
    return min(candidates) if candidates else None


def move_sandbox_clock(moment: dt.datetime) -> None:
    base = getattr(settings, "IAMPORT_SANDBOX_URL", None)
    if not base:
        return
    try:
        current = requests.get(f"{base}/__sandbox__/clock", timeout=5).json()["now"]
        target = int(moment.timestamp())
        if target > current:
            requests.post(f"{base}/__sandbox__/clock", json={"now": target}, timeout=120).raise_for_status()
    except requests.RequestException as exc:
        raise CommandError(f"Could not move the sandbox clock at {base}: {exc}") from exc


def travel_to(target: dt.datetime, *, write=lambda line: None, gateway=None) -> list[dict]:
    """Step the clocks to `target`, running the due work at every event on the way."""
    runs = []
    now = clock.now()
    if target < now:
        raise CommandError("The test clock only moves forward")
    while True:
        step = next_due_event(now, target)
        moment = step or target
        clock.advance_to(moment)
        move_sandbox_clock(moment)
        now = clock.now()
        result = billing_run(now=now, gateway=gateway)
        runs.append({"at": now.isoformat(), **result})
        write(f"{now.isoformat()}  {json.dumps(result, ensure_ascii=False)}")
        if step is None:
            return runs


class Command(BaseCommand):
    help = "Show or move the test clock (dev/test only): clock show | clock advance 31d | clock set ISO-TIME"

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["show", "advance", "set"])
        parser.add_argument("value", nargs="?")

    def handle(self, *args, action, value=None, **options):
        if not getattr(settings, "BILLING_TEST_CLOCK", False):
            raise CommandError("The test clock is disabled in this environment")
        if action == "show":
            self.stdout.write(f"{clock.now().isoformat()} (offset {clock.offset_seconds()} s)")
            return
        if not value:
            raise CommandError(f"clock {action} needs a value")
        if action == "advance":
            target = clock.now() + parse_duration(value)
        else:
            try:
                target = dt.datetime.fromisoformat(value)
            except ValueError as exc:
                raise CommandError(f"Cannot read time {value!r}: use ISO 8601 with an offset") from exc
            if target.tzinfo is None:
                raise CommandError("Give the time with its offset, e.g. 2027-01-31T09:00+09:00")
        travel_to(target, write=self.stdout.write)
        self.stdout.write(f"clock is now {clock.now().isoformat()}")
