"""The one clock the whole app reads.

In production it is `django.utils.timezone.now()`. With `settings.BILLING_TEST_CLOCK` (dev and test) it runs
ahead of real time by an offset kept in the database, so the web server, workers, beat and the
`manage.py clock` command all agree; `manage.py clock advance 31d` moves it (and the sandbox's clock) forward
and runs the work that fell due. Services never call this: they take `now=`; entry points pass `clock.now()`.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

from django.conf import settings
from django.utils import timezone

_CACHE_SECONDS = 1.0
_lock = threading.Lock()
_cached_offset: int | None = None
_cached_at = 0.0


def _enabled() -> bool:
    return bool(getattr(settings, "BILLING_TEST_CLOCK", False))


def offset_seconds() -> int:
    """The test clock's offset. While the database is unreachable the last offset read is kept (the offset only
    moves forward, so a stale one at worst makes work due a little later); with none read yet the error
    propagates."""
    global _cached_offset, _cached_at
    if not _enabled():
        return 0
    with _lock:
        if _cached_offset is not None and time.monotonic() - _cached_at < _CACHE_SECONDS:
            return _cached_offset
    from django import db

    from billing.models import ClockOffset

    try:
        row = ClockOffset.objects.filter(pk=1).values_list("offset_seconds", flat=True).first()
    except (db.OperationalError, db.InterfaceError):
        db.close_old_connections()  # the next read reconnects
        with _lock:
            if _cached_offset is None:
                raise
            return _cached_offset
    with _lock:
        _cached_offset = int(row or 0)
        _cached_at = time.monotonic()
        return _cached_offset


def now() -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=offset_seconds())


def set_offset(seconds: int) -> None:
    """Dev and test only. Moving the clock backwards is refused: billing never un-happens."""
    global _cached_offset, _cached_at
    if not _enabled():
        raise RuntimeError("The test clock is disabled in this environment (BILLING_TEST_CLOCK is off)")
    from billing.models import ClockOffset

    current = offset_seconds()
    if seconds < current:
        raise ValueError("The test clock only moves forward")
    ClockOffset.objects.update_or_create(pk=1, defaults={"offset_seconds": seconds})
    with _lock:
        _cached_offset = seconds
        _cached_at = time.monotonic()


def advance_to(moment: dt.datetime) -> dt.datetime:
    """Move the clock so that now() is `moment` (forward only). Returns the new now()."""
    delta = (moment - timezone.now()).total_seconds()
    set_offset(max(offset_seconds(), int(delta + 0.999)))
    return now()


def reset_cache() -> None:
    global _cached_offset
    with _lock:
        _cached_offset = None
