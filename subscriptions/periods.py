"""Anchored billing calendar in Asia/Seoul: where each billing period of a subscription starts and ends.

This module owns the calendar maths only; it knows nothing about Django or money. `bounds` and `index_at` take
anything with a plan's `interval` and `interval_count`.

Rules (see docs/architecture.md#money-and-time):

- Period ``n`` starts at ``anchor + n × (count × interval)`` computed in KST wall-clock time from the
  ORIGINAL anchor, never from the previous period's end. Chaining from the previous end would let a
  short month shrink every later period for good (Jan 31 -> Feb 28 -> Mar 28 -> ...); anchoring gives
  Jan 31 -> Feb 28 (29 in leap years) -> Mar 31 -> Apr 30.
- For ``"month"`` and ``"year"`` the day of month is clamped to the target month's length, so a yearly
  anchor on Feb 29 renews on Feb 28 in common years and on Feb 29 again in the next leap year.
- The KST time of day is kept: an anchor at 00:30 KST (15:30 UTC the day before) renews at 00:30 KST.
- A period is half-open: ``start <= moment < end``; ``end`` of period ``n`` is ``start`` of period ``n + 1``,
  so consecutive periods tile time with no gaps and no overlaps.

Inputs are AWARE datetimes in any zone. Outputs are aware datetimes in KST (``KST``), because that is the
zone the calendar runs in and it reads naturally in logs and tests. Aware datetimes compare and subtract
by instant, so callers may store them as they are (Django converts to UTC on save) or call
``.astimezone(UTC)`` themselves.

Every function is O(1) in the period index: day and week periods are plain arithmetic on wall-clock
time, and month/year periods are arithmetic on (year, month) with a bounded ±1 correction step.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "INTERVALS",
    "KST",
    "Interval",
    "Period",
    "add_interval",
    "bounds",
    "index_at",
    "period_bounds",
    "period_containing",
    "period_index_at",
    "period_start",
]

KST = ZoneInfo("Asia/Seoul")

Interval = Literal["day", "week", "month", "year"]

# Fixed-length intervals as a number of days; calendar intervals as a number of months.
_DAYS_PER_UNIT = {"day": 1, "week": 7}
_MONTHS_PER_UNIT = {"month": 1, "year": 12}
INTERVALS: frozenset[str] = frozenset(_DAYS_PER_UNIT) | frozenset(_MONTHS_PER_UNIT)


@dataclass(frozen=True)
class Period:
    """One billing period: ``index`` counts from 0 at the anchor; ``start`` inclusive, ``end`` exclusive."""

    index: int
    start: datetime
    end: datetime


def period_start(anchor: datetime, *, interval: Interval, count: int, index: int) -> datetime:
    """Start of period ``index`` (0 is the anchor itself), in KST.

    Computed straight from the anchor so that a clamped short month never leaks into later periods.
    """
    _check_interval(interval, count)
    _check_aware(anchor, "anchor")
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"index must be an int, got {type(index).__name__}")
    if index < 0:
        raise ValueError(f"index must be >= 0 (no period precedes the anchor), got {index}")
    return _start(anchor.astimezone(KST), interval, count, index)


def period_bounds(anchor: datetime, *, interval: Interval, count: int, index: int) -> tuple[datetime, datetime]:
    """``(start, end)`` of period ``index`` in KST; ``end`` is the next period's start (exclusive)."""
    start = period_start(anchor, interval=interval, count=count, index=index)
    return start, _start(anchor.astimezone(KST), interval, count, index + 1)


def period_index_at(anchor: datetime, *, interval: Interval, count: int, moment: datetime) -> int:
    """Index of the period containing ``moment`` (start inclusive, end exclusive).

    Raises ValueError if ``moment`` is before the anchor: a subscription has no period before it began.
    """
    _check_interval(interval, count)
    _check_aware(anchor, "anchor")
    _check_aware(moment, "moment")
    local_anchor = anchor.astimezone(KST)
    local_moment = moment.astimezone(KST)
    if local_moment < local_anchor:
        raise ValueError(f"moment {moment.isoformat()} is before the anchor {anchor.isoformat()}")

    if interval in _DAYS_PER_UNIT:
        # Work on naive wall-clock values so the division agrees with how _start adds days.
        step = timedelta(days=_DAYS_PER_UNIT[interval] * count)
        guess = (local_moment.replace(tzinfo=None) - local_anchor.replace(tzinfo=None)) // step
    else:
        step_months = _MONTHS_PER_UNIT[interval] * count
        elapsed = (local_moment.year - local_anchor.year) * 12 + (local_moment.month - local_anchor.month)
        guess = elapsed // step_months

    # The guess can be one off: day clamping and time of day are ignored above. Each loop runs at most
    # a couple of times because consecutive starts are at least one day apart.
    index = max(guess, 0)
    while index > 0 and _start(local_anchor, interval, count, index) > local_moment:
        index -= 1
    while _start(local_anchor, interval, count, index + 1) <= local_moment:
        index += 1
    return index


def period_containing(anchor: datetime, *, interval: Interval, count: int, moment: datetime) -> Period:
    """The ``Period`` (index, start, end) that contains ``moment``; ValueError before the anchor."""
    index = period_index_at(anchor, interval=interval, count=count, moment=moment)
    start, end = period_bounds(anchor, interval=interval, count=count, index=index)
    return Period(index=index, start=start, end=end)


def add_interval(moment: datetime, *, interval: Interval, count: int) -> datetime:
    """``moment`` plus ``count`` intervals in KST with month-end clamping (trial ends, one-off periods).

    Equivalent to the start of period 1 of a subscription anchored at ``moment``.
    """
    return period_start(moment, interval=interval, count=count, index=1)


def _start(local_anchor: datetime, interval: str, count: int, index: int) -> datetime:
    """Start of period ``index`` for an anchor already in KST; arguments already validated."""
    if interval in _DAYS_PER_UNIT:
        # Aware + timedelta is wall-clock arithmetic in the anchor's zone, which is what "in KST" means.
        return local_anchor + timedelta(days=_DAYS_PER_UNIT[interval] * count * index)
    months = (local_anchor.month - 1) + _MONTHS_PER_UNIT[interval] * count * index
    year = local_anchor.year + months // 12
    month = months % 12 + 1
    day = min(local_anchor.day, calendar.monthrange(year, month)[1])
    return local_anchor.replace(year=year, month=month, day=day)


def _check_interval(interval: str, count: int) -> None:
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; expected one of {sorted(INTERVALS)}")
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"interval count must be an int, got {type(count).__name__}")
    if count < 1:
        raise ValueError(f"interval count must be >= 1, got {count}")


def _check_aware(value: datetime, name: str) -> None:
    # A naive datetime has no instant; guessing a zone here would silently shift periods by 9 hours.
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value.isoformat()}")


def bounds(*, anchor: datetime, plan, index: int) -> tuple[datetime, datetime]:
    """`period_bounds` for a plan (any object with `interval` and `interval_count`)."""
    return period_bounds(anchor, interval=plan.interval, count=plan.interval_count, index=index)


def index_at(*, anchor: datetime, plan, moment: datetime) -> int:
    """`period_index_at` for a plan (any object with `interval` and `interval_count`)."""
    return period_index_at(anchor, interval=plan.interval, count=plan.interval_count, moment=moment)
