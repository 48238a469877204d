"""Per-user token buckets (in process; a Redis-backed limiter replaces this for several processes)."""

from __future__ import annotations

import time
from collections.abc import Callable

from .errors import RateLimited


class RateLimiter:
    """Allows `rate` events a second per key, with bursts of up to `burst`."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)

    def check(self, key: str) -> None:
        """Take one token for `key`, or raise RateLimited and take nothing."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            raise RateLimited("too many requests; slow down and retry")
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:
            self._forget_full(now)

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled completely; they hold nothing worth keeping."""
        full = [k for k, (t, last) in self._buckets.items() if t + (now - last) * self._rate >= self._burst]
        for key in full:
            del self._buckets[key]
