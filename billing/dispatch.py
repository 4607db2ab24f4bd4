"""The process's gateway threads, and the one thread that hands them charges at their rate-limit slots.

Gateway calls run on `BILLING_GATEWAY_CONCURRENCY` threads that never touch the database, so a worker keeps
many charges in flight on a handful of connections. A charge with a slot (`billing.ratelimit`) is not given
to a gateway thread to sleep on: with threads asleep on later slots, a batch holding earlier ones would wait
behind them and then start all at once, above the cap. One dispatcher thread per process keeps every pending
charge of every batch in slot order and submits each when its moment comes.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_dispatcher: _Dispatcher | None = None


def gateway_submit(fn, *args, at: float | None = None) -> Future:
    """Run `fn(*args)` on a gateway thread, not before `at` (a `time.monotonic()` moment) when one is given."""
    pool, dispatcher = _threads()
    if at is None or at <= time.monotonic():
        return pool.submit(fn, *args)
    return dispatcher.submit(at, fn, args)


def _threads() -> tuple[ThreadPoolExecutor, _Dispatcher]:
    global _pool, _dispatcher
    if _dispatcher is None:
        with _lock:
            if _dispatcher is None:
                _pool = ThreadPoolExecutor(
                    max_workers=max(settings.BILLING_GATEWAY_CONCURRENCY, 1), thread_name_prefix="gateway"
                )
                _dispatcher = _Dispatcher(_pool)
    return _pool, _dispatcher


class _Dispatcher:
    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool
        self._due: list = []  # heap of (moment, sequence, future, fn, args)
        self._sequence = itertools.count()
        self._changed = threading.Condition()
        threading.Thread(target=self._run, name="gateway-dispatch", daemon=True).start()

    def submit(self, at: float, fn, args: tuple) -> Future:
        future: Future = Future()
        with self._changed:
            heapq.heappush(self._due, (at, next(self._sequence), future, fn, args))
            self._changed.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._due:
                    self._changed.wait()
                delay = self._due[0][0] - time.monotonic()
                if delay > 0:
                    self._changed.wait(delay)  # or sooner, when an earlier slot arrives
                    continue
                _at, _sequence, future, fn, args = heapq.heappop(self._due)
            self._pool.submit(_run_into, future, fn, args)


def _run_into(future: Future, fn, args: tuple) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(fn(*args))
    except BaseException as exc:  # handed to whoever waits on the future, as ThreadPoolExecutor does
        future.set_exception(exc)
