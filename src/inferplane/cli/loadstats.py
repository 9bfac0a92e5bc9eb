"""The bookkeeping of `inferplane load`, with no clock and no network: the load profile,
percentiles, and the numbers the live display, the summary and --json show.

Times are seconds since the run started. Outcomes are kept in the order they finished,
so a window of the last N seconds is found by bisection.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Step:
    """A stretch of the profile: `clients` closed-loop clients for `seconds`."""

    clients: int
    seconds: float


@dataclass(frozen=True)
class Outcome:
    """One request."""

    start: float
    end: float
    ttft: float | None = None
    """Seconds from sending to the first streamed chunk; None unstreamed or failed."""
    error: str | None = None
    """None on success, else the HTTP status ("401") or what broke ("connect", "timeout")."""


@dataclass(frozen=True)
class Summary:
    """One step's numbers, as the summary table and --json show them."""

    clients: int
    seconds: float
    """How long the step ran: shorter than planned when the run was stopped."""
    requests: int
    """Requests that succeeded."""
    errors: dict[str, int] = field(default_factory=dict)
    ttft_p50: float | None = None
    ttft_p90: float | None = None
    latency_p50: float | None = None
    latency_p90: float | None = None

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def parse_steps(text: str) -> list[Step]:
    """`2:60,12:120` → 2 clients for 60 s, then 12 for 120 s; ValueError names the bad part."""
    steps = []
    for part in text.split(","):
        clients, sep, seconds = part.strip().partition(":")
        if not sep:
            raise ValueError(f"{part.strip()!r} is not CLIENTS:SECONDS (e.g. 2:60)")
        try:
            step = Step(int(clients), float(seconds))
        except ValueError:
            raise ValueError(f"{part.strip()!r}: CLIENTS and SECONDS must be numbers") from None
        if step.clients < 1 or not (0 < step.seconds < math.inf):
            raise ValueError(f"{part.strip()!r}: needs at least 1 client for more than 0 s")
        steps.append(step)
    return steps


def total(steps: Sequence[Step]) -> float:
    return sum(s.seconds for s in steps)


def step_at(steps: Sequence[Step], t: float) -> int:
    """Index of the step running at `t`; the last one from its end on."""
    edge = 0.0
    for index, step in enumerate(steps):
        edge += step.seconds
        if t < edge:
            return index
    return len(steps) - 1


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0 to 100), interpolated between the closest ranks; None of nothing."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def between(outcomes: Sequence[Outcome], start: float, end: float) -> Sequence[Outcome]:
    """The outcomes that finished in [start, end)."""
    low = bisect.bisect_left(outcomes, start, key=lambda o: o.end)
    high = bisect.bisect_left(outcomes, end, key=lambda o: o.end)
    return outcomes[low:high]


def errors_by_kind(outcomes: Sequence[Outcome]) -> dict[str, int]:
    return dict(Counter(o.error for o in outcomes if o.error is not None))


def ttfts(outcomes: Sequence[Outcome]) -> list[float]:
    return [o.ttft for o in outcomes if o.error is None and o.ttft is not None]


def summarize(outcomes: Sequence[Outcome], *, clients: int, start: float, end: float) -> Summary:
    """The numbers of what finished in [start, end), with `clients` running."""
    done = between(outcomes, start, end)
    ok = [o for o in done if o.error is None]
    first = ttfts(ok)
    latencies = [o.end - o.start for o in ok]
    return Summary(
        clients=clients,
        seconds=max(end - start, 0.0),
        requests=len(ok),
        errors=errors_by_kind(done),
        ttft_p50=percentile(first, 50),
        ttft_p90=percentile(first, 90),
        latency_p50=percentile(latencies, 50),
        latency_p90=percentile(latencies, 90),
    )


def per_step(
    steps: Sequence[Step], outcomes: Sequence[Outcome], *, elapsed: float
) -> list[Summary]:
    """One Summary per step that started before `elapsed`, each cut at `elapsed`."""
    summaries = []
    edge = 0.0
    for index, step in enumerate(steps):
        if edge >= elapsed and index:
            break
        last = index == len(steps) - 1
        # What finished after the planned end (the last requests) counts to the last step.
        end = math.inf if last else min(edge + step.seconds, elapsed)
        summary = summarize(outcomes, clients=step.clients, start=edge, end=end)
        seconds = min(edge + step.seconds, elapsed) - edge
        summaries.append(_with_seconds(summary, seconds))
        edge += step.seconds
    return summaries


def overall(outcomes: Sequence[Outcome], *, elapsed: float) -> Summary:
    """The whole run as one Summary (its clients: the most of any step is for the caller)."""
    return _with_seconds(summarize(outcomes, clients=0, start=0.0, end=math.inf), elapsed)


def series(
    steps: Sequence[Step], outcomes: Sequence[Outcome], *, elapsed: float
) -> list[dict[str, Any]]:
    """One row per second of the run, for --json."""
    rows = []
    for second in range(math.ceil(elapsed)):
        done = between(outcomes, second, second + 1)
        first = ttfts(done)
        rows.append(
            {
                "time": second,
                "clients": steps[step_at(steps, second)].clients,
                "completed": sum(o.error is None for o in done),
                "errors": sum(o.error is not None for o in done),
                "ttft_p50_ms": _ms(percentile(first, 50)),
                "ttft_p90_ms": _ms(percentile(first, 90)),
            }
        )
    return rows


def as_json(summary: Summary) -> dict[str, Any]:
    return {
        "clients": summary.clients,
        "seconds": round(summary.seconds, 3),
        "requests": summary.requests,
        "errors": summary.errors,
        "requests_per_second": round(summary.rate, 3),
        "ttft_p50_ms": _ms(summary.ttft_p50),
        "ttft_p90_ms": _ms(summary.ttft_p90),
        "latency_p50_ms": _ms(summary.latency_p50),
        "latency_p90_ms": _ms(summary.latency_p90),
    }


def _with_seconds(summary: Summary, seconds: float) -> Summary:
    return replace(summary, seconds=max(seconds, 0.0))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


@dataclass(frozen=True)
class Recent:
    """What the live display shows of the last seconds."""

    rate: float
    """Successful requests per second over the rate window."""
    ttft_p50: float | None
    ttft_p90: float | None


def recent(
    outcomes: Sequence[Outcome], now: float, *, rate_window: float, ttft_window: float
) -> Recent:
    """Requests per second over the last `rate_window` seconds (less at the start of the run)
    and TTFT percentiles over the last `ttft_window` seconds, as of `now`."""
    window = min(rate_window, now)
    done = between(outcomes, now - rate_window, math.inf)
    ok = sum(o.error is None for o in done)
    first = ttfts(between(outcomes, now - ttft_window, math.inf))
    return Recent(
        rate=ok / window if window > 0 else 0.0,
        ttft_p50=percentile(first, 50),
        ttft_p90=percentile(first, 90),
    )
