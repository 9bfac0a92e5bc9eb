"""Stage two's simple strategies: round-robin, least-request, power-of-two and session.

A strategy is an object because some remember (round-robin its turn, prefix-aware its
index); that memory is plain bookkeeping with no clock and no I/O, so a simulator owns its
strategies exactly as the gateway does: one instance per Service route.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from inferplane.policy.routing import hashing
from inferplane.policy.routing.endpoints import EndpointState
from inferplane.policy.routing.requests import RouteRequest


class Pick(NamedTuple):
    """A strategy's answer (a tuple: made once per request, 2× faster than a frozen
    dataclass)."""

    endpoint: EndpointState
    why: str


class Strategy(Protocol):
    """Picks one endpoint of a non-empty set of ready candidates."""

    name: str

    def choose(
        self, endpoints: Sequence[EndpointState], request: RouteRequest, rng: random.Random
    ) -> Pick:
        """The endpoint for this request; `endpoints` is never empty."""
        ...

    def retain(self, names: frozenset[str]) -> None:
        """Forget what is remembered of endpoints not in `names` (they left the route)."""
        ...


def least_loaded(endpoints: Sequence[EndpointState], rng: random.Random) -> EndpointState:
    """An endpoint with the lowest load(); ties drawn from `rng`, so that an idle fleet does
    not send every short request to the first name, and a replay with the same seed gives
    the same answers."""
    lowest = min(e.load() for e in endpoints)
    tied = sorted((e for e in endpoints if e.load() == lowest), key=lambda e: e.name)
    return tied[0] if len(tied) == 1 else rng.choice(tied)


_by_name = operator.attrgetter("name")


@dataclass
class RoundRobin:
    """Each endpoint in name order, one request each, whatever their load."""

    name: str = "round-robin"
    turn: int = 0

    def choose(
        self, endpoints: Sequence[EndpointState], request: RouteRequest, rng: random.Random
    ) -> Pick:
        ordered = sorted(endpoints, key=_by_name)
        chosen = ordered[self.turn % len(ordered)]
        self.turn += 1
        return Pick(chosen, f"round-robin: turn {self.turn} of {len(ordered)}")

    def retain(self, names: frozenset[str]) -> None:
        pass


@dataclass
class LeastRequest:
    """The endpoint with the lowest load(), ties drawn at random."""

    name: str = "least-request"

    def choose(
        self, endpoints: Sequence[EndpointState], request: RouteRequest, rng: random.Random
    ) -> Pick:
        chosen = least_loaded(endpoints, rng)
        return Pick(chosen, f"least-request: load {chosen.load():g}")

    def retain(self, names: frozenset[str]) -> None:
        pass


@dataclass
class PowerOfTwo:
    """Two endpoints drawn at random, the less loaded of them: nearly least-request's balance
    without every gateway herding onto the same momentarily idle endpoint."""

    name: str = "power-of-two"

    def choose(
        self, endpoints: Sequence[EndpointState], request: RouteRequest, rng: random.Random
    ) -> Pick:
        if len(endpoints) == 1:
            return Pick(endpoints[0], "power-of-two: the only candidate")
        first, second = rng.sample(list(endpoints), 2)
        chosen = second if second.load() < first.load() else first
        return Pick(chosen, f"power-of-two: load {chosen.load():g} of the two drawn")

    def retain(self, names: frozenset[str]) -> None:
        pass


@dataclass
class Session:
    """Sticky by the session header through rendezvous (HRW) hashing: each endpoint scores
    the key, the highest wins. While the set is stable a key always lands on the same
    endpoint; when one leaves only its keys move, and when one joins it takes only the keys
    it now wins. Without a session the request goes to the least loaded endpoint."""

    name: str = "session"
    fallback: LeastRequest = field(default_factory=LeastRequest)

    def choose(
        self, endpoints: Sequence[EndpointState], request: RouteRequest, rng: random.Random
    ) -> Pick:
        if not request.session:
            pick = self.fallback.choose(endpoints, request, rng)
            return Pick(pick.endpoint, f"session: no session given; {pick.why}")
        key = request.session
        chosen = max(endpoints, key=lambda e: hashing.score(key, e.name))
        return Pick(chosen, "session: highest rendezvous score for the session")

    def retain(self, names: frozenset[str]) -> None:
        pass
