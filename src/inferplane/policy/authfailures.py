"""Failed authentications per source address: a token bucket each, so guessing is slow.

Each address has a bucket of `limit` tries that refills at `limit` per `window` seconds; each
refused token takes one. An address whose bucket is empty is refused before its token is
looked at, until the bucket holds one try again (what a Retry-After says). Successes take
nothing, so an address that never fails is never here.

The table is bounded: an address is forgotten once its bucket is full again, and past
`max_sources` the address whose last failure is oldest is dropped first, so an attacker
rotating addresses cannot grow it without bound. ``now`` is any monotonic seconds, passed in:
nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections import OrderedDict

LIMIT = 10
"""Refused tokens an address may send in a burst, and per window after it."""
WINDOW_SECONDS = 60.0
MAX_SOURCES = 10_000
"""Addresses remembered at most: about 1 MB."""


class _Bucket:
    __slots__ = ("level", "stamp")

    def __init__(self, level: float, stamp: float) -> None:
        self.level = level
        self.stamp = stamp


class AuthFailures:
    """The failure buckets of the addresses that failed recently."""

    def __init__(
        self,
        *,
        limit: int = LIMIT,
        window: float = WINDOW_SECONDS,
        max_sources: int = MAX_SOURCES,
    ) -> None:
        if limit < 1 or window <= 0 or max_sources < 1:
            raise ValueError("limit and max_sources must be >= 1 and window > 0")
        self.limit = limit
        self.max_sources = max_sources
        self._rate = limit / window
        self.tracked: OrderedDict[str, _Bucket] = OrderedDict()
        """Address → bucket, the longest-ago failure first. Read-only outside this class: a
        hot path tests `address in tracked` before calling `retry_after`, which then costs
        nothing for an address that never failed."""

    def __len__(self) -> int:
        return len(self.tracked)

    def retry_after(self, source: str, now: float) -> int | None:
        """Whole seconds (rounded up, as a Retry-After says them) until `source` may try a
        token again; None when it may now."""
        bucket = self.tracked.get(source)
        if bucket is None:
            return None
        short = 1.0 - self._level(bucket, now)
        return max(1, math.ceil(short / self._rate - 1e-9)) if short > 1e-9 else None

    def failed(self, source: str, now: float) -> None:
        """`source` sent a token that was refused."""
        bucket = self.tracked.pop(source, None)
        level = float(self.limit) if bucket is None else self._level(bucket, now)
        self.tracked[source] = _Bucket(max(0.0, level - 1.0), now)
        self._forget(now)

    def _level(self, bucket: _Bucket, now: float) -> float:
        elapsed = max(0.0, now - bucket.stamp)
        return min(float(self.limit), bucket.level + elapsed * self._rate)

    def _forget(self, now: float) -> None:
        """Drop full buckets from the old end, and the oldest ones past the bound."""
        while self.tracked:
            source, bucket = next(iter(self.tracked.items()))
            full = self._level(bucket, now) >= self.limit
            if not full and len(self.tracked) <= self.max_sources:
                return
            del self.tracked[source]
