"""The one clock the whole app reads.

In production it is `django.utils.timezone.now()`. With `settings.BILLING_TEST_CLOCK` (dev and test) it runs
ahead of real time by an offset kept in the database, so the web server, workers, beat and the
`manage.py clock` command all agree; `manage.py clock advance 31d` moves it (and the sandbox's clock) forward
and runs the work that fell due. Services never call this: they take `now=`; entry points pass `clock.now()`.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

_last_read: int | None = None  # for reads while the database is away


def _enabled() -> bool:
    return bool(getattr(settings, "BILLING_TEST_CLOCK", False))


def offset_seconds() -> int:
    """The test clock's offset, read from the database at every call: never cached, because `manage.py clock`
    moves it (and renews what fell due) while web and worker processes serve requests, and a process that
    read an older offset would price a plan change before a period that has already begun. One primary-key
    read, in dev and test only; production never reads it.

    While the database is unreachable the last offset read is used (the offset only moves forward, so a stale
    one at worst makes work due a little later); with none read yet the error propagates."""
    global _last_read
    if not _enabled():
        return 0
    from django import db

    from billing.models import ClockOffset

    try:
        row = ClockOffset.objects.filter(pk=1).values_list("offset_seconds", flat=True).first()
    except (db.OperationalError, db.InterfaceError):
        db.close_old_connections()  # the next read reconnects
        if _last_read is None:
            raise
        return _last_read
    _last_read = int(row or 0)
    return _last_read


def now() -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=offset_seconds())


def set_offset(seconds: int) -> None:
    """Dev and test only. Moving the clock backwards is refused: billing never un-happens."""
    if not _enabled():
        raise RuntimeError("The test clock is disabled in this environment (BILLING_TEST_CLOCK is off)")
    from billing.models import ClockOffset

    current = offset_seconds()
    if seconds < current:
        raise ValueError("The test clock only moves forward")
    ClockOffset.objects.update_or_create(pk=1, defaults={"offset_seconds": seconds})


def advance_to(moment: dt.datetime) -> dt.datetime:
    """Move the clock so that now() is `moment` (forward only). Returns the new now()."""
    delta = (moment - timezone.now()).total_seconds()
    set_offset(max(offset_seconds(), int(delta + 0.999)))
    return now()
