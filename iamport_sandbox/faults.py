"""Injected failures and latency: a queue of faults per endpoint, consumed in order, plus a global delay.

Holds (simulated timeouts) and sleeps wait on an Event so `stop()` and `reset()` can release them at once.
Nothing here runs under the database lock.
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
MODES = ("timeout_after_commit", "timeout_before_commit", "http_500", "http_503", "code_error", "delay")
DEFAULT_HOLD_MS = 120_000


class FaultError(ValueError):
    pass


@dataclass
class Fault:
    endpoint: str
    mode: str
    times: int
    delay_ms: int | None = None
    hold_ms: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class FaultBoard:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._latency_ms = 0
        self._release = threading.Event()
        self._stopped = False

    def add(self, endpoint: str, mode: str, times: int = 1, delay_ms=None, hold_ms=None) -> Fault:
        if endpoint not in ENDPOINTS:
            raise FaultError(f"unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
        if mode not in MODES:
            raise FaultError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        if not isinstance(times, int) or isinstance(times, bool) or times < 1:
            raise FaultError("times must be a positive integer")
        for name, value in (("delay_ms", delay_ms), ("hold_ms", hold_ms)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise FaultError(f"{name} must be a non-negative integer")
        if mode == "delay" and delay_ms is None:
            raise FaultError("mode 'delay' needs delay_ms")
        fault = Fault(endpoint, mode, times, delay_ms, hold_ms)
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
                    return Fault(fault.endpoint, fault.mode, 1, fault.delay_ms, fault.hold_ms)
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

    def sleep(self, ms: int) -> None:
        """Wait `ms` milliseconds, or less if the server is stopping or being reset."""
        if ms > 0:
            with self._lock:
                event = self._release
            event.wait(ms / 1000)

    def hold(self, fault: Fault) -> None:
        self.sleep(DEFAULT_HOLD_MS if fault.hold_ms is None else fault.hold_ms)

    def release_all(self) -> None:
        """Wake every hold and sleep in progress; later ones wait again (unless the server stopped)."""
        with self._lock:
            self._release.set()
            if not self._stopped:
                self._release = threading.Event()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._release.set()

    def reset(self) -> None:
        self.clear()
        self._latency_ms = 0
        self.release_all()
