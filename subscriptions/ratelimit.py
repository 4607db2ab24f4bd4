"""Fixed-window rate limits for the subscriber web views (log-in, card registration), counted in the cache.

The API throttles with DRF (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]), which never sees the session-based
pages, so the log-in form and the card registration endpoints of the web UI are limited here. Counters live
in Django's default cache: the default LocMem cache counts per process, so production must point CACHES at a
cache every process shares (DJANGO_CACHE_URL in config/settings/production.py), or each worker counts alone.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import get_language

MESSAGES = {
    "login": {
        "ko": "로그인 실패가 너무 많습니다. {minutes}분 후에 다시 시도하세요.",
        "en": "Too many failed log-in attempts. Try again in {minutes} minutes.",
    },
    "card_registration": {
        "ko": "카드 등록 시도가 너무 많습니다. {seconds}초 후에 다시 시도하세요.",
        "en": "Too many card registration attempts. Try again in {seconds} seconds.",
    },
}


def refusal_message(kind: str, *, retry_after: int) -> str:
    """Korean first; English when the request asked for it (the same rule as the pages)."""
    lang = "en" if (get_language() or "ko").startswith("en") else "ko"
    return MESSAGES[kind][lang].format(seconds=retry_after, minutes=max(1, math.ceil(retry_after / 60)))


@dataclass(frozen=True)
class RateLimit:
    scope: str
    limit: int
    window_seconds: int

    def _key(self, parts: tuple[str, ...]) -> str:
        # Hashed: usernames are user input, and memcached/Redis keys must stay short and printable.
        digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
        return f"ratelimit:{self.scope}:{digest}"

    def count(self, *parts: str) -> int:
        return cache.get(self._key(parts)) or 0

    def exceeded(self, *parts: str) -> bool:
        return self.count(*parts) >= self.limit

    def hit(self, *parts: str) -> int:
        """Count one event and return the count in the current window (which starts at the first event)."""
        key = self._key(parts)
        if cache.add(key, 1, self.window_seconds):
            cache.set(f"{key}:until", time.time() + self.window_seconds, self.window_seconds)
            return 1
        try:
            return cache.incr(key)
        except ValueError:  # the window ended between add and incr: start a new one
            cache.set(key, 1, self.window_seconds)
            cache.set(f"{key}:until", time.time() + self.window_seconds, self.window_seconds)
            return 1

    def retry_after(self, *parts: str) -> int:
        until = cache.get(f"{self._key(parts)}:until")
        return max(1, math.ceil(until - time.time())) if until else self.window_seconds

    def reset(self, *parts: str) -> None:
        key = self._key(parts)
        cache.delete_many([key, f"{key}:until"])


def login_failures() -> RateLimit:
    return RateLimit("login", settings.RATE_LIMIT_LOGIN_FAILURES, settings.RATE_LIMIT_LOGIN_WINDOW_SECONDS)


def card_registrations(step: str) -> RateLimit:
    return RateLimit(
        f"card_{step}", settings.RATE_LIMIT_CARD_REGISTRATION, settings.RATE_LIMIT_CARD_REGISTRATION_WINDOW_SECONDS
    )
