"""The three seeded chat workloads of the routing bench, as plain data.

Each request is a system prompt plus a short user message. The shape of a run (arrival times,
which group each request belongs to) comes from the seed alone; the words come from the seed
and a `salt`, so every strategy sees the same traffic in fresh words that no engine has cached
from an earlier run (the engines stay up between strategies).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_WORDS = (
    "the of and to is in that for be as are it with this by or on not if can which from its "
    "used object function value type list name class method module string argument attribute "
    "default return statement expression exception error file number sequence element item "
    "key dictionary set call code operator variable loop block line data new first last only "
    "each other same when then else there also any all some must may will should time way "
    "case part example result order form point level true false none state user team report "
    "question answer help support service account invoice billing request reply instance "
    "scope local global import package path index slice range count length size format text"
)
WORDS = tuple(_WORDS.split())
"""Common words of the English the demo model's tokenizer was trained on (Python's docs):
about 1.3 tokens each, so a prompt's token count follows its word count closely."""

SHARED, UNIQUE, HOT = "shared-prefix", "unique", "hot-prefix"
KINDS = (SHARED, UNIQUE, HOT)


@dataclass(frozen=True)
class Request:
    at: float
    """Intended send time, seconds from the run's start (open loop; 0 in a closed loop)."""
    system: str
    user: str
    group: int
    """The shared system prompt's group; -1 when the system prompt is the request's own."""

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]


@dataclass(frozen=True)
class Workload:
    kind: str
    requests: tuple[Request, ...]
    max_tokens: int
    concurrency: int = 0
    """Requests kept in flight (closed loop); 0: open loop at each request's `at`."""


@dataclass(frozen=True)
class Shape:
    """What every workload of a run shares."""

    seed: int
    requests: int
    rate: float
    """Poisson arrivals per second (open loop)."""
    groups: int
    prefix_words: int = 300
    """Words of a system prompt: about 390 tokens of the demo model (whose context is 512)."""
    user_words: int = 8
    max_tokens: int = 16
    hot_concurrency: int = 32
    """Requests in flight on the hot prefix: a mean of 8 per replica over 4, past the point
    (6) where prefix-aware's load gate bounds a replica at 1.5 x the mean."""

    def count(self, kind: str) -> int:
        """Requests of a workload: the hot prefix's closed loop runs fast (its prefix is
        cached everywhere), so it gets at least 10 rounds of its concurrency."""
        return max(self.requests, 10 * self.hot_concurrency) if kind == HOT else self.requests


def words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


def poisson_times(rng: random.Random, count: int, rate: float) -> list[float]:
    """Arrival times of a Poisson process at `rate` per second, the first at 0."""
    if rate <= 0:
        raise ValueError(f"rate: must be > 0, got {rate}")
    times, now = [], 0.0
    for _ in range(count):
        times.append(now)
        now += rng.expovariate(rate)
    return times


def build(kind: str, shape: Shape, *, salt: str) -> Workload:
    """The `kind` workload of `shape`, its words drawn afresh for `salt`."""
    draw = random.Random(f"{shape.seed}/{kind}")
    text = random.Random(f"{shape.seed}/{kind}/{salt}")
    count = shape.count(kind)
    times = poisson_times(draw, count, shape.rate)
    if kind == SHARED:
        groups = [draw.randrange(shape.groups) for _ in range(count)]
        prompts = [words(text, shape.prefix_words) for _ in range(shape.groups)]
        systems = [prompts[g] for g in groups]
    elif kind == UNIQUE:
        groups = [-1] * count
        systems = [words(text, shape.prefix_words) for _ in range(count)]
    elif kind == HOT:
        groups, times = [0] * count, [0.0] * count
        systems = [words(text, shape.prefix_words)] * count
    else:
        raise ValueError(f"kind: one of {', '.join(KINDS)}, got {kind!r}")
    requests = tuple(
        Request(at, system, f"question {i}: {words(text, shape.user_words)}?", group)
        for i, (at, system, group) in enumerate(zip(times, systems, groups, strict=True))
    )
    concurrency = shape.hot_concurrency if kind == HOT else 0
    return Workload(kind, requests, shape.max_tokens, concurrency)
