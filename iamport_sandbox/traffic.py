"""Traffic accounting for API requests: in-flight counts with their peaks, and per-endpoint rate caps.

Both run on every API request, so they are a lock and a few dict operations: no SQLite, no allocation per
request beyond a float in a deque. Controls (`/__sandbox__`) and the SDK script are never counted.
"""

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from iamport_sandbox.faults import ENDPOINTS

RATE_WINDOW_S = 1.0


class RateLimitError(ValueError):
    pass


class InflightCounter:
    """Requests between arrival and answer, per endpoint name, and the highest count seen since the last reset."""

    def __init__(self):
        self._lock = threading.Lock()
        self._current: dict[str, int] = {}
        self._peak: dict[str, int] = {}

    def enter(self, endpoint: str) -> None:
        with self._lock:
            count = self._current.get(endpoint, 0) + 1
            self._current[endpoint] = count
            if count > self._peak.get(endpoint, 0):
                self._peak[endpoint] = count

    def leave(self, endpoint: str) -> None:
        with self._lock:
            count = self._current[endpoint] - 1
            if count:
                self._current[endpoint] = count
            else:
                del self._current[endpoint]

    def snapshot(self) -> dict:
        with self._lock:
            return {"current": dict(self._current), "peak": dict(self._peak)}

    def reset_peaks(self) -> None:
        # Peaks drop to what is in flight now, not to zero: requests still running are real concurrency,
        # and each of them will `leave` later, so `current` itself is never cleared.
        with self._lock:
            self._peak = dict(self._current)


class RateLimiter:
    """At most `cap` request starts per endpoint in any sliding window of RATE_WINDOW_S, like a PG's cap.

    Real monotonic time, not the sandbox clock: a PG counts wall-clock seconds, and moving the sandbox
    clock by a month must not open or close the window. `monotonic` is injectable so the window arithmetic
    can be tested without waiting.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic):
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._caps: dict[str, int] = {}
        self._starts: dict[str, deque[float]] = {}

    @staticmethod
    def validate(limits) -> dict[str, int | None]:
        """`{"again": 50, "cancel": null}` checked as a whole, so a bad entry changes nothing."""
        if not isinstance(limits, dict):
            raise RateLimitError('rate_limits must be an object like {"again": 50}')
        checked = {}
        for endpoint, cap in limits.items():
            if endpoint not in ENDPOINTS:
                raise RateLimitError(f"unknown endpoint {endpoint!r} in rate_limits; one of {', '.join(ENDPOINTS)}")
            if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 0):
                raise RateLimitError(
                    f"rate_limits[{endpoint!r}] must be a non-negative integer (requests per second) or null"
                )
            checked[endpoint] = cap or None
        return checked

    def update(self, limits) -> dict[str, int]:
        """Set the named caps; 0 or None removes one. Endpoints not named keep their cap."""
        checked = self.validate(limits)
        with self._lock:
            for endpoint, cap in checked.items():
                if cap is None:
                    self._caps.pop(endpoint, None)
                    self._starts.pop(endpoint, None)
                else:
                    self._caps[endpoint] = cap
            return dict(self._caps)

    def caps(self) -> dict[str, int]:
        with self._lock:
            return dict(self._caps)

    def clear(self) -> None:
        with self._lock:
            self._caps.clear()
            self._starts.clear()

    def forget_starts(self) -> None:
        """Forget the starts counted so far, caps kept: as if a quiet second had passed, without waiting one."""
        with self._lock:
            self._starts.clear()

    def admit(self, endpoint: str) -> tuple[int, int] | None:
        """None when the request may start (and it is counted); else (whole seconds until a slot frees, >= 1; cap).

        A refused request is not counted as a start: a PG that answers 429 did not begin the payment, and a
        client that keeps retrying must not push its own slot further away.
        """
        if endpoint not in self._caps:  # unlocked fast path; a cap set concurrently applies from the next request
            return None
        with self._lock:
            cap = self._caps.get(endpoint)
            if cap is None:
                return None
            now = self._monotonic()
            starts = self._starts.setdefault(endpoint, deque())
            while starts and starts[0] <= now - RATE_WINDOW_S:
                starts.popleft()
            if len(starts) < cap:
                starts.append(now)
                return None
            return max(1, math.ceil(starts[0] + RATE_WINDOW_S - now)), cap
