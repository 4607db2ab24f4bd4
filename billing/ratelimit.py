"""A global limit on charges per second, shared by every worker through PostgreSQL.

Some PGs ask merchants to stay under a call rate (Daou/Kiwoom: at most 50 billing-key charges per second).
Celery's own rate_limit is per worker process, so it cannot promise a global cap; this can. It is a
"virtual scheduling" token bucket (GCRA): one row holds the earliest moment the next charge may start; each
caller takes the slot and pushes the row 1/R seconds further in one atomic statement, then sleeps until its
slot. Starts are therefore at least 1/R apart across all processes, so no second ever sees more than R
charges start (a fixed per-second counter would allow 2R across a boundary). A batch reserves k consecutive
slots (k/R seconds) in the same one statement and starts its charges 1/R apart. Time is the database's clock, so
workers on different hosts agree. The statement runs on its own, outside any transaction, so the row lock
lasts microseconds; nothing is held while sleeping. Off (0) by default.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

_TAKE = """
INSERT INTO billing_chargeratelimiter (id, next_slot)
VALUES (1, EXTRACT(EPOCH FROM clock_timestamp()) + %(span)s)
ON CONFLICT (id) DO UPDATE
SET next_slot = GREATEST(billing_chargeratelimiter.next_slot, EXTRACT(EPOCH FROM clock_timestamp())) + %(span)s
RETURNING next_slot - %(span)s, EXTRACT(EPOCH FROM clock_timestamp())
"""


def _take(count: int, limit: int) -> tuple[float, float]:
    """Reserve `count` consecutive slots; returns (the first slot, the database's now), UNIX seconds."""
    with connection.cursor() as cursor:
        cursor.execute(_TAKE, {"span": count / limit})
        first, db_now = cursor.fetchone()
    return float(first), float(db_now)


def charge_slot_acquire(*, limit: int | None = None, sleep=time.sleep) -> float | None:
    """Block until this process may start one charge. Returns the slot (UNIX seconds), None without a limit."""
    limit = settings.BILLING_CHARGE_RATE_LIMIT if limit is None else limit
    if not limit:
        return None
    slot, db_now = _take(1, limit)
    wait = slot - db_now
    if wait > 0:
        sleep(wait)
    return slot


def charge_slots_acquire(*, count: int, limit: int | None = None) -> list[float] | None:
    """Reserve slots for `count` charges at once (one statement for a whole batch) without waiting: returns
    for each charge the `time.monotonic()` moment it may start, 1/R apart, or None without a limit. The
    caller's gateway threads each sleep until their own moment."""
    limit = settings.BILLING_CHARGE_RATE_LIMIT if limit is None else limit
    if not limit or count <= 0:
        return None
    first, db_now = _take(count, limit)
    # Map the database clock onto ours as of the answer: never earlier than the slot, at worst a round trip late.
    offset = time.monotonic() + (first - db_now)
    return [offset + i / limit for i in range(count)]
