"""A tiny discrete-time simulation of a gateway in front of engines, for routing tests.

Each step one request arrives and is routed with the endpoints' current in-flight counts;
requests finish after a drawn number of steps. Engines keep a bounded LRU of the prefixes
they have served, as a prefix cache does, so a "hit" means the engine still holds the
request's shared prefix when it arrives.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass, field

from inferplane.policy.routing import decisions, registry, strategies
from inferplane.policy.routing.endpoints import EndpointState
from inferplane.policy.routing.requests import RouteRequest


@dataclass(frozen=True)
class Arrival:
    prompt: str
    group: int
    """The shared prefix the prompt starts with; -1 for none."""
    duration: int
    """Steps the request stays in flight."""


@dataclass
class Engine:
    capacity: int
    cached: OrderedDict[int, None] = field(default_factory=OrderedDict)

    def serve(self, group: int) -> bool:
        """Whether the group's prefix was cached; it is cached (most recent) afterwards."""
        hit = group in self.cached
        if hit:
            self.cached.move_to_end(group)
        elif group >= 0:
            self.cached[group] = None
            if len(self.cached) > self.capacity:
                self.cached.popitem(last=False)
        return hit


@dataclass
class Result:
    hits: int = 0
    served: int = 0
    chosen: list[str] = field(default_factory=list)
    worst_ratio: float = 0.0
    """The highest max/mean in-flight seen after an arrival while the mean was at least
    `min_mean`; departures alone can raise it (no router controls which requests end)."""
    worst_chosen_ratio: float = 0.0
    """The highest chosen-endpoint/mean in-flight right after routing, same condition: what
    the router itself is answerable for."""

    @property
    def hit_rate(self) -> float:
        return self.hits / self.served if self.served else 0.0


def run(
    arrivals: list[Arrival],
    strategy: strategies.Strategy,
    *,
    endpoints: int = 4,
    capacity: int = 8,
    seed: int = 0,
    min_mean: float = 4.0,
) -> Result:
    names = [f"e{i}" for i in range(endpoints)]
    engines = {n: Engine(capacity) for n in names}
    in_flight = dict.fromkeys(names, 0)
    ending: list[tuple[int, str]] = []
    rng = random.Random(seed)
    result = Result()
    for step, arrival in enumerate(arrivals):
        for done in [d for d in ending if d[0] <= step]:
            ending.remove(done)
            in_flight[done[1]] -= 1
        states = [EndpointState(n, in_flight=in_flight[n]) for n in names]
        decision = registry.route(states, RouteRequest(arrival.prompt), strategy=strategy, rng=rng)
        assert isinstance(decision, decisions.Routed)
        name = decision.endpoint
        in_flight[name] += 1
        ending.append((step + arrival.duration, name))
        result.served += 1
        result.hits += engines[name].serve(arrival.group)
        result.chosen.append(name)
        mean = sum(in_flight.values()) / endpoints
        if mean >= min_mean:
            result.worst_ratio = max(result.worst_ratio, max(in_flight.values()) / mean)
            chosen_ratio = in_flight[name] / mean
            result.worst_chosen_ratio = max(result.worst_chosen_ratio, chosen_ratio)
    return result


def shared_prefix_workload(
    rng: random.Random,
    *,
    groups: int,
    requests: int,
    duration: int = 12,
    prefix_chars: int = 2048,
) -> list[Arrival]:
    """Users in `groups` groups, each group sharing a long system prompt; unique questions."""
    prefixes = [_text(rng, prefix_chars) for _ in range(groups)]
    out = []
    for i in range(requests):
        g = rng.randrange(groups)
        out.append(
            Arrival(prefixes[g] + f" user {i}: " + _text(rng, 200), g, rng.randint(1, duration))
        )
    return out


def unique_workload(rng: random.Random, *, requests: int) -> list[Arrival]:
    return [Arrival(_text(rng, 600), -1, rng.randint(1, 12)) for _ in range(requests)]


def hot_prefix_workload(
    rng: random.Random, *, requests: int, duration: int, fixed: bool = False
) -> list[Arrival]:
    """Every request shares one system prompt; long requests keep many in flight. With
    `fixed`, every request lasts `duration` steps, so requests end in the order they came."""
    prefix = _text(rng, 2048)
    return [
        Arrival(prefix + _text(rng, 300), 0, duration if fixed else rng.randint(1, duration))
        for _ in range(requests)
    ]


def _text(rng: random.Random, chars: int) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(chars))
