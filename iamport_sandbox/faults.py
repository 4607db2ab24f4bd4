"""Injected failures and latency: a queue of faults per endpoint, consumed in order, plus a global delay.

Holds (simulated timeouts), gates and sleeps wait on one Condition so `release_held()`, `stop()` and `reset()`
can wake them at once. Nothing here runs under the database lock.
"""

import threading
from dataclasses import asdict, dataclass

# Endpoint names as they appear in faults and in the request log.
ENDPOINTS = (
    "getToken",
    "again",
    "onetime",
    "cancel",
    "schedule",
    "unschedule",
    "schedules",
    "payments",
    "customers",
    "prepare",
)
MODES = (
    "timeout_after_commit",
    "timeout_before_commit",
    "http_500",
    "http_503",
    "code_error",
    "delay",
    "throttle",
    "gate",
)
DEFAULT_HOLD_MS = 120_000
DEFAULT_RETRY_AFTER_S = 1


class FaultError(ValueError):
    pass


@dataclass
class Fault:
    endpoint: str
    mode: str
    times: int
    delay_ms: int | None = None
    hold_ms: int | None = None
    retry_after: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class FaultBoard:
    def __init__(self):
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._faults: list[Fault] = []
        self._latency_ms = 0
        # Two epochs because the release control must end holds and gates without cutting short a `delay`
        # fault or the global latency (those model a slow PG, not a stuck one); reset and stop end everything.
        self._sleep_epoch = 0
        self._hold_epoch = 0
        self._stopped = False

    def add(self, endpoint: str, mode: str, times: int = 1, delay_ms=None, hold_ms=None, retry_after=None) -> Fault:
        if endpoint not in ENDPOINTS:
            raise FaultError(f"unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
        if mode not in MODES:
            raise FaultError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        if not isinstance(times, int) or isinstance(times, bool) or times < 1:
            raise FaultError("times must be a positive integer")
        for name, value in (("delay_ms", delay_ms), ("hold_ms", hold_ms), ("retry_after", retry_after)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise FaultError(f"{name} must be a non-negative integer")
        if mode == "delay" and delay_ms is None:
            raise FaultError("mode 'delay' needs delay_ms")
        if mode == "throttle" and retry_after is None:
            retry_after = DEFAULT_RETRY_AFTER_S
        fault = Fault(endpoint, mode, times, delay_ms, hold_ms, retry_after)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, endpoint: str) -> Fault | None:
        """The first pending fault for this endpoint, used up by one request."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.endpoint == endpoint:
                    fault.times -= 1
                    if fault.times == 0:
                        del self._faults[index]
                    return Fault(fault.endpoint, fault.mode, 1, fault.delay_ms, fault.hold_ms, fault.retry_after)
        return None

    def list(self) -> list[dict]:
        with self._lock:
            return [fault.as_dict() for fault in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def latency_ms(self) -> int:
        return self._latency_ms

    def set_latency(self, ms: int) -> None:
        if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
            raise FaultError("ms must be a non-negative integer")
        self._latency_ms = ms

    @property
    def hold_epoch(self) -> int:
        """Read when a request arrives and handed to `hold`, so a release covers every request that came before it."""
        return self._hold_epoch

    def sleep(self, ms: int) -> None:
        """Wait `ms` milliseconds, or less if the server is stopping or being reset."""
        if ms > 0:
            with self._wake:
                epoch = self._sleep_epoch
                self._wake.wait_for(lambda: self._stopped or self._sleep_epoch != epoch, ms / 1000)

    def hold(self, fault: Fault, arrived_epoch: int | None = None) -> None:
        """Wait `hold_ms` (default DEFAULT_HOLD_MS), or less if released, reset or stopped.

        With `arrived_epoch` the wait ends at once if a release came after the request arrived: a test that
        saw N requests in flight and then released must free all N, even one that had not reached its gate yet.
        """
        ms = DEFAULT_HOLD_MS if fault.hold_ms is None else fault.hold_ms
        if ms > 0:
            with self._wake:
                epoch = self._hold_epoch if arrived_epoch is None else arrived_epoch
                self._wake.wait_for(lambda: self._stopped or self._hold_epoch != epoch, ms / 1000)

    def release_held(self) -> None:
        """End every hold and gate of requests that arrived so far; later ones wait again."""
        with self._wake:
            self._hold_epoch += 1
            self._wake.notify_all()

    def release_all(self) -> None:
        """Wake every hold, gate and sleep in progress; later ones wait again (unless the server stopped)."""
        with self._wake:
            self._hold_epoch += 1
            self._sleep_epoch += 1
            self._wake.notify_all()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()

    def reset(self) -> None:
        self.clear()
        self._latency_ms = 0
        self.release_all()
