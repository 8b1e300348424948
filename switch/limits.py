"""Per-source limits: a request rate limit and a concurrent-connection limit.

Sans-IO: callers pass ``now``.  Memory is bounded: the rate table forgets
sources whose buckets are full again, and never holds more than
``max_sources`` entries (the oldest are evicted first).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token bucket per source address: ``rate`` per second, ``burst`` deep."""

    def __init__(self, rate: float, burst: float, max_sources: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.refused = 0

    def allow(self, source: str, now: float) -> bool:
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= self.max_sources:
                self._buckets.popitem(last=False)
            bucket = self._buckets[source] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            self._buckets.move_to_end(source)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        self.refused += 1
        return False

    def __len__(self) -> int:
        return len(self._buckets)


class ConnectionLimiter:
    """Counts open connections per source address and in total."""

    def __init__(self, per_source: int, total: int) -> None:
        self.per_source = per_source
        self.total = total
        self._open: dict[str, int] = {}
        self._count = 0
        self.refused = 0

    def acquire(self, source: str) -> bool:
        n = self._open.get(source, 0)
        if n >= self.per_source or self._count >= self.total:
            self.refused += 1
            return False
        self._open[source] = n + 1
        self._count += 1
        return True

    def release(self, source: str) -> None:
        n = self._open.get(source, 0)
        if n <= 1:
            self._open.pop(source, None)
        else:
            self._open[source] = n - 1
        self._count = max(0, self._count - 1)

    def __len__(self) -> int:
        return self._count
