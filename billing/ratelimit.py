"""A global limit on charges per second, shared by every worker through PostgreSQL.

Some PGs ask merchants to stay under a call rate (Daou/Kiwoom: at most 50 billing-key charges per second).
Celery's own rate_limit is per worker process, so it cannot promise a global cap; this can. It is a
"virtual scheduling" token bucket (GCRA): one row holds the earliest moment the next charge may start; a
batch of k charges takes k consecutive slots and pushes the row k/R seconds further in one atomic statement,
and hands each charge to a gateway thread when its own slot comes. Starts are therefore at least 1/R apart across all
processes, so no second ever sees more than R charges start (a fixed per-second counter would allow 2R across
a boundary). Time is the database's clock, so workers on different hosts agree. The statement runs on its
own, outside any transaction, so the row lock lasts microseconds; nothing is held while sleeping. Off (0) by default.
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


def charge_slots_reserve(*, count: int, limit: int | None = None) -> tuple[list[float], float] | None:
    """Reserve `count` consecutive slots in one statement: (their start moments, the database's now), both in
    UNIX seconds on the database clock, 1/R apart. None without a limit."""
    limit = settings.BILLING_CHARGE_RATE_LIMIT if limit is None else limit
    if not limit or count <= 0:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_TAKE, {"span": count / limit})
        first, db_now = cursor.fetchone()
    return [float(first) + i / limit for i in range(count)], float(db_now)


def charge_slots_acquire(*, count: int, limit: int | None = None) -> list[float] | None:
    """`charge_slots_reserve` without waiting, for a batch: returns for each charge the `time.monotonic()`
    moment it may start, or None without a limit. The caller hands each charge to a gateway thread at its own."""
    reserved = charge_slots_reserve(count=count, limit=limit)
    if reserved is None:
        return None
    slots, db_now = reserved
    # Map the database clock onto ours as of the answer: never earlier than the slot, at worst a round trip late.
    offset = time.monotonic() - db_now
    return [offset + slot for slot in slots]
