"""The test clock (billing/clock.py): every process sees a move of the clock at its next read."""

from __future__ import annotations

import datetime as dt

import pytest

from billing import clock
from billing.models import ClockOffset

pytestmark = pytest.mark.django_db


def test_now_follows_a_move_made_by_another_process_at_the_next_read():
    before = clock.now()
    # What `manage.py clock advance` in another process writes: the row, not this process's memory.
    ClockOffset.objects.update_or_create(pk=1, defaults={"offset_seconds": 31 * 86_400})

    after = clock.now()

    assert after - before >= dt.timedelta(days=31)


def test_the_clock_only_moves_forward():
    clock.set_offset(3_600)
    with pytest.raises(ValueError):
        clock.set_offset(60)
    assert clock.offset_seconds() == 3_600


def test_the_clock_is_real_time_when_the_test_clock_is_off(settings):
    ClockOffset.objects.update_or_create(pk=1, defaults={"offset_seconds": 86_400})
    settings.BILLING_TEST_CLOCK = False

    assert clock.offset_seconds() == 0
    with pytest.raises(RuntimeError):
        clock.set_offset(90_000)
