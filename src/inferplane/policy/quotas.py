"""Rate limits and budgets: a pure ledger the gateway and the simulator share.

Per subject (an API key, a namespace's Quota): a request bucket of capacity rpm and a token
bucket of capacity tpm, each refilled at capacity/60 per second, and usage in the current budget
period (UTC day, calendar month, or total). A request needs one request token and a token bucket
out of debt; tokens are recorded after the response, so that bucket may go into debt. A budget
is spent once used >= cap, until the next period. A request is admitted only if every subject
checked admits it, and the Denied returned is the one a retry must wait out longest. ``now`` is
epoch seconds, passed in: nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from inferplane.api import apikeys

PERIODS = ("day", "month", "total")
DAY_SECONDS = 86400.0
TIME_SLACK = 1e-5
"""Seconds early a bucket admits, so that float rounding never fails an exact retry_after."""


@dataclass(frozen=True)
class Limits:
    """One subject's limits; None is unlimited."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    budget_cost: float | None = None
    budget_tokens: int | None = None
    period: str = "day"
    """Budget period: day | month (calendar, UTC) | total (never resets)."""

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise ValueError(f"period: expected one of {', '.join(PERIODS)}, got {self.period!r}")

    @classmethod
    def of(cls, rate_limits: apikeys.RateLimits, budget: apikeys.Budget | None) -> Limits:
        """The limits an ApiKey's or a Quota's spec states."""
        rpm, tpm = rate_limits.requestsPerMinute, rate_limits.tokensPerMinute
        if budget is None:
            return cls(requests_per_minute=rpm, tokens_per_minute=tpm)
        return cls(rpm, tpm, budget.cost, budget.tokens, budget.period)

    def unlimited(self) -> bool:
        return (
            self.requests_per_minute is None
            and self.tokens_per_minute is None
            and self.budget_cost is None
            and self.budget_tokens is None
        )


@dataclass(frozen=True)
class Denied:
    """Why a request is refused, and when retrying can succeed."""

    subject: str
    """Whose limit, e.g. "key default/ci-bot" or "quota default/team"."""
    limit: str
    """The limit in words, e.g. "60 requests per minute" or "$5.00 per day"."""
    retry_after: float | None
    """Seconds until a retry can succeed (round up for a Retry-After header); None: never."""
    kind: Literal["rate", "budget"] = "rate"
    """A rate limit (wait seconds) or a spent budget (wait for the next period)."""

    @property
    def error_type(self) -> str:
        """OpenAI's error type for a 429 of this kind."""
        return "rate_limit_exceeded" if self.kind == "rate" else "insufficient_quota"

    def message(self) -> str:
        if self.kind == "rate":
            head = f"rate limit of {self.subject} exceeded: {self.limit}"
        else:
            head = f"budget of {self.subject} spent: {self.limit}"
        if self.retry_after is None:
            return f"{head}; it does not renew"
        return f"{head}; retry after {_wait(self.retry_after)}"


def _wait(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def money(amount: float) -> str:
    """$5.00, $0.005: cents, or the digits that matter below a cent."""
    return f"${amount:.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.3g}"


def period_bounds(now: float, period: str) -> tuple[float, float]:
    """Start and end (the next start) of the period holding ``now``, in epoch seconds."""
    if period == "day":
        start = now - now % DAY_SECONDS
        return start, start + DAY_SECONDS
    if period == "month":
        t = datetime.fromtimestamp(now, UTC)
        first = datetime(t.year, t.month, 1, tzinfo=UTC)
        after = datetime(t.year + t.month // 12, t.month % 12 + 1, 1, tzinfo=UTC)
        return first.timestamp(), after.timestamp()
    if period == "total":
        return 0.0, math.inf
    raise ValueError(f"period: expected one of {', '.join(PERIODS)}, got {period!r}")


class _Bucket:
    """A token bucket's level at ``stamp``; a bucket never used is full."""

    __slots__ = ("level", "stamp")

    def __init__(self, level: float = 0.0, stamp: float | None = None) -> None:
        self.level = level
        self.stamp = stamp

    def at(self, capacity: int, now: float) -> float:
        if self.stamp is None:
            return float(capacity)
        elapsed = max(0.0, now - self.stamp)
        return min(float(capacity), self.level + elapsed * capacity / 60.0)

    def take(self, amount: float, capacity: int, now: float) -> None:
        self.level = self.at(capacity, now) - amount
        self.stamp = now if self.stamp is None else max(self.stamp, now)

    def wait(self, need: float, capacity: int, now: float) -> float | None:
        """Seconds until the level reaches ``need``; None when it already has."""
        rate = capacity / 60.0
        short = need - self.at(capacity, now)
        return short / rate if short > TIME_SLACK * rate else None

    def to_json(self) -> list[float] | None:
        return None if self.stamp is None else [self.level, self.stamp]

    @classmethod
    def from_json(cls, data: Any) -> _Bucket:
        return cls() if data is None else cls(float(data[0]), float(data[1]))


class _Subject:
    """What the ledger remembers of one subject."""

    __slots__ = ("cost", "end", "period", "requests", "start", "tokens", "used")

    def __init__(self) -> None:
        self.requests = _Bucket()
        self.tokens = _Bucket()
        self.period = ""  # of start and end; "" until known (end is then 0: recompute)
        self.start = 0.0
        self.end = 0.0
        self.used = 0
        self.cost = 0.0

    def roll(self, period: str, now: float) -> None:
        """Move to the period holding ``now``, resetting usage once a new period began."""
        if self.period == period and self.start <= now < self.end:
            return
        start, end = period_bounds(now, period)
        if start > self.start:
            self.used, self.cost = 0, 0.0
        self.period, self.start, self.end = period, max(start, self.start), end

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests.to_json(),
            "tokens": self.tokens.to_json(),
            "periodStart": self.start,
            "tokensUsed": self.used,
            "costUsed": self.cost,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Subject:
        subject = cls()
        subject.requests = _Bucket.from_json(data["requests"])
        subject.tokens = _Bucket.from_json(data["tokens"])
        subject.start = float(data["periodStart"])
        subject.used, subject.cost = int(data["tokensUsed"]), float(data["costUsed"])
        return subject


def _denial(state: _Subject, subject: str, limits: Limits, now: float) -> Denied | None:
    """The longest-lasting reason this subject refuses a request now, if any."""
    worst = _over_budget(state, subject, limits, now)
    tpm, rpm = limits.tokens_per_minute, limits.requests_per_minute
    if tpm is not None and (wait := state.tokens.wait(0.0, tpm, now)) is not None:
        worst = _longer(worst, Denied(subject, f"{tpm:,} tokens per minute", wait))
    if rpm is not None and (wait := state.requests.wait(1.0, rpm, now)) is not None:
        worst = _longer(worst, Denied(subject, f"{rpm:,} requests per minute", wait))
    return worst


def _over_budget(state: _Subject, subject: str, limits: Limits, now: float) -> Denied | None:
    cost, tokens = limits.budget_cost, limits.budget_tokens
    if cost is None and tokens is None:
        return None
    state.roll(limits.period, now)
    per = "in total" if limits.period == "total" else f"per {limits.period}"
    if cost is not None and state.cost >= cost:
        limit = f"{money(cost)} {per}"
    elif tokens is not None and state.used >= tokens:
        limit = f"{tokens:,} tokens {per}"
    else:
        return None
    retry = None if limits.period == "total" else state.end - now
    return Denied(subject, limit, retry, kind="budget")


def _longer(a: Denied | None, b: Denied | None) -> Denied | None:
    """The denial a retry must outwait: never beats any wait, a longer wait a shorter one."""
    if a is None or b is None:
        return a or b
    if a.retry_after is None or b.retry_after is None:
        return a if a.retry_after is None else b
    return b if b.retry_after > a.retry_after else a


class Ledger:
    """Buckets and budget usage per subject; subjects appear on first use."""

    def __init__(self) -> None:
        self._subjects: dict[str, _Subject] = {}

    def _state(self, subject: str) -> _Subject:
        state = self._subjects.get(subject)
        return state if state is not None else self._subjects.setdefault(subject, _Subject())

    def admit(self, checks: Sequence[tuple[str, Limits]], now: float) -> Denied | None:
        """Check every subject; only if all admit, take one request from each request bucket."""
        worst: Denied | None = None
        for subject, limits in checks:
            if not limits.unlimited():
                worst = _longer(worst, _denial(self._state(subject), subject, limits, now))
        if worst is not None:
            return worst
        for subject, limits in checks:
            if limits.requests_per_minute is not None:
                self._subjects[subject].requests.take(1.0, limits.requests_per_minute, now)
        return None

    def record(
        self, checks: Sequence[tuple[str, Limits]], now: float, tokens: int, cost: float
    ) -> None:
        """Count a response's usage in each tokens-per-minute bucket (debt allowed) and budget."""
        for subject, limits in checks:
            state = self._state(subject)
            if limits.tokens_per_minute is not None:
                state.tokens.take(float(tokens), limits.tokens_per_minute, now)
            state.roll(limits.period, now)
            state.used += tokens
            state.cost += cost

    def usage(self, subject: str, limits: Limits, now: float) -> tuple[int, float]:
        """Tokens and cost used in the period (of ``limits``) holding ``now``."""
        state = self._subjects.get(subject)
        if state is None or period_bounds(now, limits.period)[0] > state.start:
            return 0, 0.0
        return state.used, state.cost

    def seed(self, subject: str, tokens: int, cost: float, period_start: float) -> None:
        """Restore usage known elsewhere (an ApiKey's status after a restart): a later period
        replaces what is here, the same one keeps the larger counts, an earlier one is ignored."""
        state = self._state(subject)
        if period_start > state.start:
            state.used, state.cost = tokens, cost
            state.start, state.period, state.end = period_start, "", 0.0
        elif period_start == state.start:
            state.used, state.cost = max(state.used, tokens), max(state.cost, cost)

    def forget(self, keep: Iterable[str]) -> None:
        """Drop every subject not in ``keep`` (deleted keys and quotas)."""
        kept = set(keep)
        self._subjects = {s: state for s, state in self._subjects.items() if s in kept}

    def to_json(self) -> dict[str, Any]:
        subjects = {name: state.to_json() for name, state in self._subjects.items()}
        return {"version": 1, "subjects": subjects}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ledger:
        """The ledger ``to_json`` saved; ValueError when ``data`` is not one."""
        ledger = cls()
        try:
            if data["version"] != 1:
                raise ValueError(f"version: expected 1, got {data['version']!r}")
            for name, state in data["subjects"].items():
                ledger._subjects[str(name)] = _Subject.from_json(state)
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ValueError(f"not a saved quota ledger: {exc!r}") from exc
        return ledger
