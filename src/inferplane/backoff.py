"""Exponential backoff, shared by everything that retries: work queues, watch reconnects."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay after the n-th consecutive failure: base * 2**(n-1), capped at `cap`."""

    base: float = 0.05
    cap: float = 300.0

    def delay(self, failures: int) -> float:
        return min(self.cap, self.base * 2 ** max(failures - 1, 0))
