"""Pure checks of what the watchers saw against what the writer wrote, and latency statistics.

A watcher passes when it saw every write's event exactly once (matched by name and
resourceVersion, with the right type) and every event it saw came in strictly increasing
resourceVersion order. Events nobody in the benchmark wrote (a controller's status update,
say) are allowed and counted as extra.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench import objects, watchers, writer

SHOWN_PER_WATCHER = 3


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    """Send-to-delivered latency of every (watcher, write) pair that was delivered."""
    checked: int = 0
    """(watcher, write) pairs checked."""
    extra: int = 0
    """Events no benchmark write caused."""
    last_delivery: float = 0.0
    """time.monotonic() of the latest delivery of a benchmark write's event to any watcher."""


def judge(writes: Sequence[writer.Write], logs: Sequence[watchers.WatcherLog]) -> Verdict:
    """Check every watcher's log against the writes; collect latencies on the way."""
    expected = {(w.name, w.resource_version): w for w in writes}
    verdict = Verdict()
    for number, log in enumerate(logs):
        problems = _judge_one(expected, log, verdict)
        verdict.problems += [f"watcher {number}: {p}" for p in problems[:SHOWN_PER_WATCHER]]
        if len(problems) > SHOWN_PER_WATCHER:
            more = len(problems) - SHOWN_PER_WATCHER
            verdict.problems.append(f"watcher {number}: ... and {more} more problems")
    return verdict


def _judge_one(
    expected: dict[tuple[str, int], writer.Write], log: watchers.WatcherLog, verdict: Verdict
) -> list[str]:
    problems = [log.error] if log.error else []
    events = [e for e in log.events if e.name != objects.END_MARKER]
    problems += _order_problems(events)
    seen = Counter((e.name, e.resource_version) for e in events)
    for key, write in expected.items():
        count = seen.get(key, 0)
        if count != 1:
            problems.append(f"{write.type} {key[0]} rv={key[1]} received {count} times")
    for event in events:
        caused_by = expected.get((event.name, event.resource_version))
        if caused_by is None:
            verdict.extra += 1
        elif event.type != caused_by.type:
            problems.append(
                f"{event.name} rv={event.resource_version}: {event.type}, not {caused_by.type}"
            )
        else:
            verdict.latencies_ms.append((event.at - caused_by.sent) * 1000.0)
            verdict.last_delivery = max(verdict.last_delivery, event.at)
    verdict.checked += len(expected)
    return problems


def _order_problems(events: Sequence[watchers.Received]) -> list[str]:
    return [
        f"rv={later.resource_version} ({later.name}) came after rv={earlier.resource_version}"
        for earlier, later in itertools.pairwise(events)
        if later.resource_version <= earlier.resource_version
    ]


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-th percentile (0 < q <= 100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(q / 100.0 * len(ordered)), 1)
    return ordered[rank - 1]
