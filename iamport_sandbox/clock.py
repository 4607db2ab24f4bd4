"""The sandbox clock: real time plus an offset that only moves forward, optionally frozen.

Everything time-dependent in the sandbox (tokens, expiry checks, schedules, timestamps) reads this clock,
so tests can jump ahead a month without waiting.
"""

import threading
import time
from calendar import monthrange
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from iamport_sandbox.store import Store

KST = timezone(timedelta(hours=9), "Asia/Seoul")


class ClockError(ValueError):
    pass


class SandboxClock:
    """`wall` is the real-time source (injectable so the clock's arithmetic can be tested without waiting)."""

    def __init__(self, store: Store, wall: Callable[[], float] = time.time):
        self._store = store
        self._wall = wall
        self._lock = threading.Lock()
        offset = store.meta_get("clock:offset")
        frozen = store.meta_get("clock:frozen_at")
        self._offset = int(offset) if offset else 0
        self._frozen_at = int(frozen) if frozen else None

    def now(self) -> int:
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> int:
        if self._frozen_at is not None:
            return self._frozen_at
        return int(self._wall()) + self._offset

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def set_now(self, target: int) -> int:
        with self._lock:
            current = self._now_locked()
            if target < current:
                raise ClockError(f"the sandbox clock only moves forward (now={current}, asked {target})")
            if self._frozen_at is not None:
                self._frozen_at = target
            else:
                self._offset = target - int(self._wall())
            self._persist()
            return target

    def advance(self, seconds: int) -> int:
        if seconds < 0:
            raise ClockError("advance must be zero or positive")
        with self._lock:
            target = self._now_locked() + seconds
        return self.set_now(target)

    def freeze(self, frozen: bool) -> int:
        with self._lock:
            current = self._now_locked()
            if frozen:
                self._frozen_at = current
            elif self._frozen_at is not None:
                self._offset = current - int(self._wall())
                self._frozen_at = None
            self._persist()
            return current

    def reset(self) -> None:
        with self._lock:
            self._offset = 0
            self._frozen_at = None
            self._persist()

    def snapshot(self) -> dict:
        with self._lock:
            return {"now": self._now_locked(), "offset": self._offset, "frozen": self._frozen_at is not None}

    def _persist(self) -> None:
        self._store.meta_set("clock:offset", str(self._offset))
        self._store.meta_set("clock:frozen_at", None if self._frozen_at is None else str(self._frozen_at))


def add_months_kst(timestamp: int, months: int) -> int:
    """Same day-of-month `months` later on the Korean calendar (clamped to the month's last day)."""
    moment = datetime.fromtimestamp(timestamp, UTC).astimezone(KST)
    years, month_index = divmod(moment.month - 1 + months, 12)
    year, month = moment.year + years, month_index + 1
    day = min(moment.day, monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())
