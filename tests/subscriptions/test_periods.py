"""Anchored billing periods in KST: month-end clamping, leap years, boundaries and tiling."""

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subscriptions.periods import (
    KST,
    Period,
    add_interval,
    period_bounds,
    period_containing,
    period_index_at,
    period_start,
)

ONE_MICROSECOND = timedelta(microseconds=1)


def kst(*args: int) -> datetime:
    return datetime(*args, tzinfo=KST)


# (anchor, interval, count, index, expected start of that period)
PERIOD_START_CASES = [
    pytest.param(kst(2027, 1, 31), "month", 1, 0, kst(2027, 1, 31), id="index-0-is-the-anchor"),
    pytest.param(kst(2027, 1, 31), "month", 1, 1, kst(2027, 2, 28), id="jan31-clamps-to-feb28-in-2027"),
    pytest.param(kst(2027, 1, 31), "month", 1, 2, kst(2027, 3, 31), id="jan31-returns-to-mar31"),
    pytest.param(kst(2027, 1, 31), "month", 1, 3, kst(2027, 4, 30), id="jan31-clamps-to-apr30"),
    pytest.param(kst(2028, 1, 31), "month", 1, 1, kst(2028, 2, 29), id="jan31-clamps-to-feb29-in-leap-2028"),
    pytest.param(kst(2027, 1, 30), "month", 1, 1, kst(2027, 2, 28), id="jan30-clamps-to-feb28"),
    pytest.param(kst(2027, 1, 30), "month", 1, 2, kst(2027, 3, 30), id="jan30-returns-to-mar30"),
    pytest.param(kst(2027, 1, 29), "month", 1, 1, kst(2027, 2, 28), id="jan29-clamps-to-feb28-in-2027"),
    pytest.param(kst(2028, 1, 29), "month", 1, 1, kst(2028, 2, 29), id="jan29-fits-feb29-in-leap-2028"),
    pytest.param(kst(2027, 3, 31), "month", 1, 1, kst(2027, 4, 30), id="mar31-clamps-to-apr30"),
    pytest.param(kst(2027, 3, 31), "month", 1, 2, kst(2027, 5, 31), id="mar31-returns-to-may31"),
    pytest.param(kst(2027, 8, 31), "month", 1, 1, kst(2027, 9, 30), id="aug31-clamps-to-sep30"),
    pytest.param(kst(2027, 8, 31), "month", 1, 2, kst(2027, 10, 31), id="aug31-returns-to-oct31"),
    pytest.param(kst(2100, 1, 31), "month", 1, 1, kst(2100, 2, 28), id="2100-is-not-leap"),
    pytest.param(kst(2000, 1, 31), "month", 1, 1, kst(2000, 2, 29), id="2000-is-leap"),
    pytest.param(kst(2028, 2, 29), "year", 1, 1, kst(2029, 2, 28), id="yearly-feb29-to-feb28-common-year"),
    pytest.param(kst(2028, 2, 29), "year", 1, 3, kst(2031, 2, 28), id="yearly-feb29-stays-feb28-until-leap"),
    pytest.param(kst(2028, 2, 29), "year", 1, 4, kst(2032, 2, 29), id="yearly-feb29-back-in-leap-2032"),
    pytest.param(kst(2096, 2, 29), "year", 1, 4, kst(2100, 2, 28), id="yearly-feb29-2100-not-leap"),
    pytest.param(kst(1996, 2, 29), "year", 1, 1, kst(1997, 2, 28), id="yearly-feb29-1996-to-1997"),
    pytest.param(kst(1996, 2, 29), "year", 1, 4, kst(2000, 2, 29), id="yearly-feb29-2000-is-leap"),
    pytest.param(kst(2027, 3, 15), "year", 2, 3, kst(2033, 3, 15), id="every-2-years"),
    # Quarterly: Nov 30 + 3 months = Feb (clamped, leap) and + 6 months = May 30 (not May 29).
    pytest.param(kst(2027, 11, 30), "month", 3, 1, kst(2028, 2, 29), id="quarterly-nov30-to-feb29"),
    pytest.param(kst(2027, 11, 30), "month", 3, 2, kst(2028, 5, 30), id="quarterly-nov30-back-to-may30"),
    pytest.param(kst(2027, 8, 31), "month", 3, 1, kst(2027, 11, 30), id="quarterly-aug31-to-nov30"),
    pytest.param(kst(2027, 8, 31), "month", 3, 3, kst(2028, 5, 31), id="quarterly-aug31-to-may31"),
    # Two weeks: 26 × 14 = 364 days after 2027-01-01.
    pytest.param(kst(2027, 1, 1), "week", 2, 1, kst(2027, 1, 15), id="biweekly-first-renewal"),
    pytest.param(kst(2027, 1, 1), "week", 2, 26, kst(2027, 12, 31), id="biweekly-26th-period"),
    pytest.param(kst(2027, 1, 1), "day", 1, 365, kst(2028, 1, 1), id="daily-365-days-in-2027"),
    pytest.param(kst(2028, 1, 1), "day", 1, 366, kst(2029, 1, 1), id="daily-366-days-in-leap-2028"),
    pytest.param(kst(2027, 1, 1, 9), "day", 7, 2, kst(2027, 1, 15, 9), id="every-7-days"),
    # 1000 months = 83 years + 4 months: 2027-01 -> 2110-05; May has 31 days.
    pytest.param(kst(2027, 1, 31), "month", 1, 1000, kst(2110, 5, 31), id="1000th-month"),
    # 100,000 days straight from the anchor, no stepping.
    pytest.param(kst(2027, 1, 1), "day", 1, 100_000, kst(2300, 10, 17), id="100000th-day"),
    # KST midnight given in UTC: 2027-01-31 00:00 KST is 2027-01-30 15:00 UTC.
    pytest.param(
        datetime(2027, 1, 30, 15, tzinfo=UTC),
        "month",
        1,
        1,
        datetime(2027, 2, 27, 15, tzinfo=UTC),
        id="kst-midnight-anchor-given-in-utc",
    ),
    # 00:30 KST is the previous day in UTC; the KST time of day is kept.
    pytest.param(kst(2027, 1, 31, 0, 30), "month", 1, 1, kst(2027, 2, 28, 0, 30), id="kst-0030-kept"),
]


@pytest.mark.parametrize(("anchor", "interval", "count", "index", "expected"), PERIOD_START_CASES)
def test_period_starts_from_original_anchor_when_computed(anchor, interval, count, index, expected):
    start = period_start(anchor, interval=interval, count=count, index=index)

    assert start == expected
    assert start.tzinfo is KST


def test_output_is_kst_and_same_instant_when_anchor_is_given_in_utc():
    anchor_utc = datetime(2027, 1, 30, 15, 30, tzinfo=UTC)  # 2027-01-31 00:30 KST

    start, end = period_bounds(anchor_utc, interval="month", count=1, index=1)

    assert (start.tzinfo, end.tzinfo) == (KST, KST)
    assert start.replace(tzinfo=None) == datetime(2027, 2, 28, 0, 30)
    assert start.astimezone(UTC) == datetime(2027, 2, 27, 15, 30, tzinfo=UTC)
    assert end == kst(2027, 3, 31, 0, 30)


def test_period_end_is_next_start_when_bounds_requested():
    start, end = period_bounds(kst(2027, 1, 31), interval="month", count=1, index=1)

    assert (start, end) == (kst(2027, 2, 28), kst(2027, 3, 31))


def test_period_start_is_o1_when_index_is_huge():
    # A loop over periods would take visibly long here; direct arithmetic answers at once.
    assert period_start(kst(2027, 1, 1), interval="day", count=1, index=2_000_000) == kst(2027, 1, 1) + timedelta(
        days=2_000_000
    )
    assert period_index_at(
        kst(2027, 1, 1), interval="day", count=1, moment=kst(2027, 1, 1) + timedelta(days=2_000_000, hours=1)
    ) == (2_000_000)


# (anchor, interval, count, moment, expected index): start inclusive, end exclusive.
INDEX_AT_CASES = [
    pytest.param(kst(2027, 1, 31), "month", 1, kst(2027, 1, 31), 0, id="at-anchor-is-0"),
    pytest.param(kst(2027, 1, 31), "month", 1, kst(2027, 1, 31) + ONE_MICROSECOND, 0, id="just-after-anchor"),
    pytest.param(kst(2027, 1, 31), "month", 1, kst(2027, 2, 28) - ONE_MICROSECOND, 0, id="end-is-exclusive"),
    pytest.param(kst(2027, 1, 31), "month", 1, kst(2027, 2, 28), 1, id="start-is-inclusive"),
    pytest.param(kst(2027, 1, 31), "month", 1, datetime(2027, 2, 27, 15, tzinfo=UTC), 1, id="boundary-given-in-utc"),
    pytest.param(
        kst(2027, 1, 31),
        "month",
        1,
        datetime(2027, 2, 27, 14, 59, 59, 999_999, tzinfo=UTC),
        0,
        id="just-before-boundary-in-utc",
    ),
    pytest.param(kst(2027, 1, 31), "month", 1, kst(2027, 3, 30, 23, 59), 1, id="feb-period-runs-to-mar31"),
    pytest.param(kst(2027, 1, 31), "month", 1, kst(2027, 3, 31), 2, id="mar31-starts-period-2"),
    pytest.param(kst(2027, 1, 31), "month", 1, kst(2110, 5, 31), 1000, id="1000th-month-boundary"),
    pytest.param(kst(2027, 1, 31), "month", 1, kst(2110, 5, 30, 23, 59), 999, id="just-before-1000th-month"),
    # Same calendar month as the next start but earlier in the day: still the previous period.
    pytest.param(kst(2027, 1, 31, 10), "month", 1, kst(2027, 2, 28, 9, 59), 0, id="before-kst-time-of-day"),
    pytest.param(kst(2027, 1, 31, 10), "month", 1, kst(2027, 2, 28, 10), 1, id="at-kst-time-of-day"),
    pytest.param(kst(2027, 1, 1, 9), "day", 1, kst(2027, 1, 2, 8, 59, 59), 0, id="daily-before-boundary"),
    pytest.param(kst(2027, 1, 1, 9), "day", 1, kst(2027, 1, 2, 9), 1, id="daily-at-boundary"),
    pytest.param(kst(2027, 1, 1), "week", 2, kst(2027, 1, 14, 23, 59, 59), 0, id="biweekly-before-boundary"),
    pytest.param(kst(2027, 1, 1), "week", 2, kst(2027, 1, 15), 1, id="biweekly-at-boundary"),
    pytest.param(kst(2027, 11, 30), "month", 3, kst(2028, 2, 29), 1, id="quarterly-at-clamped-boundary"),
    pytest.param(kst(2027, 11, 30), "month", 3, kst(2028, 2, 28, 23), 0, id="quarterly-before-clamped"),
    pytest.param(kst(2028, 2, 29), "year", 1, kst(2029, 2, 28), 1, id="yearly-feb29-at-feb28"),
    pytest.param(kst(2028, 2, 29), "year", 1, kst(2029, 2, 27, 23, 59), 0, id="yearly-feb29-before-feb28"),
    pytest.param(kst(2028, 2, 29), "year", 1, kst(2032, 2, 28, 12), 3, id="yearly-leap-feb28-is-period-3"),
]


@pytest.mark.parametrize(("anchor", "interval", "count", "moment", "expected"), INDEX_AT_CASES)
def test_period_index_counts_start_inclusive_end_exclusive_when_at_boundaries(
    anchor, interval, count, moment, expected
):
    assert period_index_at(anchor, interval=interval, count=count, moment=moment) == expected


def test_period_containing_returns_index_and_bounds_when_moment_inside():
    period = period_containing(kst(2027, 1, 31), interval="month", count=1, moment=kst(2027, 3, 5, 12))

    assert period == Period(index=1, start=kst(2027, 2, 28), end=kst(2027, 3, 31))


def test_period_containing_raises_when_moment_before_anchor():
    with pytest.raises(ValueError, match="before the anchor"):
        period_containing(kst(2027, 1, 31), interval="month", count=1, moment=kst(2027, 1, 31) - ONE_MICROSECOND)


ADD_INTERVAL_CASES = [
    pytest.param(kst(2027, 1, 25, 13), "day", 14, kst(2027, 2, 8, 13), id="14-day-trial"),
    pytest.param(kst(2027, 1, 31), "month", 1, kst(2027, 2, 28), id="one-month-from-jan31"),
    pytest.param(kst(2028, 2, 29), "year", 1, kst(2029, 2, 28), id="one-year-from-feb29"),
    pytest.param(kst(2027, 12, 25), "week", 1, kst(2028, 1, 1), id="one-week-over-new-year"),
]


@pytest.mark.parametrize(("moment", "interval", "count", "expected"), ADD_INTERVAL_CASES)
def test_add_interval_clamps_month_end_when_adding(moment, interval, count, expected):
    assert add_interval(moment, interval=interval, count=count) == expected


INVALID_CASES = [
    pytest.param({"interval": "fortnight", "count": 1}, ValueError, "unknown interval", id="unknown-interval"),
    pytest.param({"interval": "months", "count": 1}, ValueError, "unknown interval", id="plural-interval"),
    pytest.param({"interval": "month", "count": 0}, ValueError, "count must be >= 1", id="count-zero"),
    pytest.param({"interval": "month", "count": -3}, ValueError, "count must be >= 1", id="count-negative"),
    pytest.param({"interval": "month", "count": 1.0}, TypeError, "must be an int", id="count-float"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), INVALID_CASES)
def test_every_function_rejects_when_interval_invalid(kwargs, error, message):
    anchor = kst(2027, 1, 31)
    with pytest.raises(error, match=message):
        period_start(anchor, index=0, **kwargs)
    with pytest.raises(error, match=message):
        period_bounds(anchor, index=0, **kwargs)
    with pytest.raises(error, match=message):
        period_index_at(anchor, moment=anchor, **kwargs)
    with pytest.raises(error, match=message):
        add_interval(anchor, **kwargs)


def test_period_start_rejects_when_index_negative():
    with pytest.raises(ValueError, match="index must be >= 0"):
        period_start(kst(2027, 1, 31), interval="month", count=1, index=-1)


def test_functions_reject_when_datetimes_naive():
    with pytest.raises(ValueError, match="aware"):
        period_start(datetime(2027, 1, 31), interval="month", count=1, index=1)
    with pytest.raises(ValueError, match="aware"):
        period_index_at(kst(2027, 1, 31), interval="month", count=1, moment=datetime(2027, 2, 1))


# --- properties --------------------------------------------------------------------------------------

# From 1990: KST had daylight saving in 1987-88; since then it is a fixed UTC+9.
anchors = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(KST))
intervals = st.sampled_from(["day", "week", "month", "year"])
counts = st.integers(min_value=1, max_value=12)
indexes = st.integers(min_value=0, max_value=500)


@given(anchor=anchors, interval=intervals, count=counts, index=indexes)
def test_consecutive_periods_tile_time_when_any_anchor(anchor, interval, count, index):
    start, end = period_bounds(anchor, interval=interval, count=count, index=index)
    next_start, _ = period_bounds(anchor, interval=interval, count=count, index=index + 1)

    assert start < end
    assert end == next_start  # no gap, no overlap
    assert period_index_at(anchor, interval=interval, count=count, moment=start) == index
    assert period_index_at(anchor, interval=interval, count=count, moment=end - ONE_MICROSECOND) == index
    assert start.time() == anchor.time()  # KST time of day is kept
    if interval in ("day", "week"):
        assert end - start == timedelta(days=count * (7 if interval == "week" else 1))
    else:
        month_length = calendar.monthrange(start.year, start.month)[1]
        assert start.day == min(anchor.day, month_length)
        if interval == "year":
            assert start.month == anchor.month


@given(
    anchor=anchors,
    interval=intervals,
    count=counts,
    offset=st.timedeltas(timedelta(0), timedelta(days=36_500)),
)
def test_period_containing_contains_moment_when_any_moment_after_anchor(anchor, interval, count, offset):
    moment = (anchor + offset).astimezone(UTC)  # callers pass UTC from the database

    period = period_containing(anchor, interval=interval, count=count, moment=moment)

    assert period.start <= moment < period.end
    assert period_bounds(anchor, interval=interval, count=count, index=period.index) == (
        period.start,
        period.end,
    )
