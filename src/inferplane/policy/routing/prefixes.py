"""Prefix-aware routing: send a prompt where its prefix was sent before — so the engine's
prefix cache likely holds it — but never past a load bound, so one hot prefix cannot pile
onto one endpoint.

The index mirrors what a prefix cache keys on, with characters standing in for tokens (no
tokenizer on the hot path): the prompt is cut into blocks of `block_chars` characters, each
block's hash chained to the one before, so a hash names a whole prefix. Entries are
(endpoint, block hash) pairs in one LRU, capped in total, since engines evict too.
"""

from __future__ import annotations

import random
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from inferplane.policy.routing import hashing
from inferplane.policy.routing.endpoints import EndpointState
from inferplane.policy.routing.requests import RouteRequest
from inferplane.policy.routing.strategies import Pick, least_loaded


@dataclass(frozen=True)
class LoadGate:
    """How far above the least loaded endpoint affinity may still send a request: an
    endpoint qualifies while, counting this request, load() + 1 <= min + max(slack,
    fraction × mean), the mean counting it too. Counting the request keeps the promise after
    it is sent: once the mean is past slack / fraction (6 with the defaults), affinity never
    takes an endpoint above (1 + fraction) × the mean. slack 3 counting the request is the
    same as in-flight <= min + 2 before it."""

    slack: float = 3.0
    """The absolute headroom; keeps affinity alive at low load, where fractions are noise."""
    fraction: float = 0.5
    """The headroom as a fraction of the mean load; scales with traffic."""

    def bound(self, loads: Sequence[float]) -> float:
        """The highest load an endpoint may reach by taking the request; `loads` are before it."""
        mean = (sum(loads) + 1) / len(loads)
        return min(loads) + max(self.slack, self.fraction * mean)


@dataclass
class PrefixIndex:
    """Which prefix blocks were routed to which endpoint, least recently used first."""

    block_chars: int = 128
    max_entries: int = 100_000
    """Cap on (endpoint, block) entries in total; the least recently used go first."""
    max_blocks: int = 256
    """Only the first blocks of a prompt are indexed: bounds the work on huge prompts, and
    a match that long already decides."""
    _entries: OrderedDict[tuple[str, bytes], None] = field(
        default_factory=OrderedDict, init=False, repr=False
    )
    _per_endpoint: Counter[str] = field(default_factory=Counter, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.block_chars < 1:
            raise ValueError(f"block_chars must be at least 1, got {self.block_chars}")
        if self.max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {self.max_entries}")

    def __len__(self) -> int:
        return len(self._entries)

    def blocks(self, prompt: str) -> list[bytes]:
        """The chained hashes of the prompt's whole blocks (a partial tail is never cached)."""
        hashes: list[bytes] = []
        previous = b""
        whole = min(len(prompt) // self.block_chars, self.max_blocks)
        for i in range(whole):
            previous = hashing.chain(
                previous, prompt[i * self.block_chars : (i + 1) * self.block_chars]
            )
            hashes.append(previous)
        return hashes

    def matched(self, endpoint: str, hashes: Sequence[bytes]) -> int:
        """How many leading blocks the endpoint has seen."""
        count = 0
        for h in hashes:
            if (endpoint, h) not in self._entries:
                break
            count += 1
        return count

    def record(self, endpoint: str, hashes: Sequence[bytes]) -> None:
        """The endpoint now holds these blocks, most recent last; evict beyond the cap."""
        for h in hashes:
            key = (endpoint, h)
            if key in self._entries:
                self._entries.move_to_end(key)
            else:
                self._entries[key] = None
                self._per_endpoint[endpoint] += 1
        while len(self._entries) > self.max_entries:
            (gone, _), _ = self._entries.popitem(last=False)
            self._drop_count(gone)

    def held(self, endpoint: str) -> int:
        """How many blocks the endpoint holds in the index."""
        return self._per_endpoint.get(endpoint, 0)

    def endpoints(self) -> frozenset[str]:
        """Endpoints with at least one entry."""
        return frozenset(self._per_endpoint)

    def retain(self, names: frozenset[str]) -> None:
        """Forget endpoints not in `names`; O(endpoints) unless one actually left."""
        if self._per_endpoint.keys() <= names:
            return
        for key in [k for k in self._entries if k[0] not in names]:
            del self._entries[key]
        for name in [n for n in self._per_endpoint if n not in names]:
            del self._per_endpoint[name]

    def _drop_count(self, endpoint: str) -> None:
        self._per_endpoint[endpoint] -= 1
        if self._per_endpoint[endpoint] <= 0:
            del self._per_endpoint[endpoint]


@dataclass
class PrefixAware:
    """The endpoint with the longest matched prefix among those the load gate admits (ties
    to a stable rendezvous choice); least-request when nothing admitted matches, ties to the
    endpoint whose cache holds the fewest indexed blocks. The chosen
    endpoint then records the prompt's blocks, as its engine will cache them."""

    name: str = "prefix-aware"
    index: PrefixIndex = field(default_factory=PrefixIndex)
    gate: LoadGate = field(default_factory=LoadGate)

    def choose(
        self, endpoints: Sequence[EndpointState], request: RouteRequest, rng: random.Random
    ) -> Pick:
        hashes = self.index.blocks(request.prompt_text)
        pick = self._affine(endpoints, hashes) or self._least(endpoints, rng)
        self.index.record(pick.endpoint.name, hashes)
        return pick

    def retain(self, names: frozenset[str]) -> None:
        self.index.retain(names)

    def _affine(self, endpoints: Sequence[EndpointState], hashes: list[bytes]) -> Pick | None:
        if not hashes:
            return None
        bound = self.gate.bound([e.load() for e in endpoints])
        # Equal matches go to the same endpoint every time (rendezvous on the first block),
        # not to the lighter one: bouncing a prefix between its holders would make every
        # holder's engine cache it. The gate alone keeps that endpoint from overloading.
        key = hashes[0].hex()
        best: EndpointState | None = None
        rank = (0, 0)
        for endpoint in endpoints:
            if endpoint.load() + 1 > bound:
                continue
            matched = self.index.matched(endpoint.name, hashes)
            candidate = (matched, hashing.score(key, endpoint.name))
            if matched and candidate > rank:
                best, rank = endpoint, candidate
        if best is None:
            return None
        why = (
            f"prefix-aware: {rank[0]}/{len(hashes)} blocks matched, "
            f"load {best.load():g} within {bound:g}"
        )
        return Pick(best, why)

    def _least(self, endpoints: Sequence[EndpointState], rng: random.Random) -> Pick:
        """The least loaded; among equals, the one holding the fewest indexed blocks, so that
        new prefixes spread evenly over the caches instead of by the draw (at low load
        everyone ties, and a random tie-break can give one cache twice its share)."""
        lowest = min(e.load() for e in endpoints)
        tied = [e for e in endpoints if e.load() == lowest]
        if len(tied) > 1:
            fewest = min(self.index.held(e.name) for e in tied)
            tied = [e for e in tied if self.index.held(e.name) == fewest]
        chosen = least_loaded(tied, rng)
        return Pick(
            chosen, f"prefix-aware: no admitted match; least-request load {chosen.load():g}"
        )
