"""A global limit on charges per second, shared by every worker through PostgreSQL.

Some PGs ask merchants to stay under a call rate (Daou/Kiwoom: at most 50 billing-key charges per second).
Celery's own rate_limit is per worker process, so it cannot promise a global cap; this fixed-window counter
can: a slot in the current second is taken with one UPDATE ... WHERE used < limit, atomically across
processes; when the second is full the caller sleeps until the next one. No transaction or lock is held
while waiting. Off (0) by default.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

_TAKE = "UPDATE billing_chargeratewindow SET used = used + 1 WHERE second = %s AND used < %s RETURNING used"
_OPEN = (
    "INSERT INTO billing_chargeratewindow (second, used) VALUES (%s, 1) ON CONFLICT (second) DO NOTHING RETURNING used"
)


def charge_slot_acquire(*, limit: int | None = None, clock=time.time, sleep=time.sleep, max_wait: float = 300.0) -> int:
    """Block until this process may start one charge. Returns the UNIX second whose slot it took."""
    limit = settings.BILLING_CHARGE_RATE_LIMIT if limit is None else limit
    if not limit:
        return int(clock())
    deadline = clock() + max_wait
    with connection.cursor() as cursor:
        while True:
            now = clock()
            second = int(now)
            cursor.execute(_TAKE, [second, limit])
            if cursor.fetchone() is not None:
                return second
            cursor.execute(_OPEN, [second])
            if cursor.fetchone() is not None:
                return second
            if now > deadline:
                raise TimeoutError("no charge slot became free")
            sleep(max(second + 1 - now, 0.001))


def charge_windows_prune(*, before_second: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM billing_chargeratewindow WHERE second < %s", [before_second])
        return cursor.rowcount
