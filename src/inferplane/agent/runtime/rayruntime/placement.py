"""A replica as a Ray placement group: one bundle per node of the replica, and a strategy.

Pure: no Ray here. Each bundle holds what the replica asks of each node: `GPU` for its devices,
`CPU` from its cpu request, `memory` from its memory request, and, when the replica's pool is
a kind of accelerator, a sliver of Ray's `accelerator_type:<type>` resource, so that Ray puts
it on the nodes the scheduler meant (an H100 replica never lands on an A10G node of the same
Ray cluster).

The strategy is STRICT_PACK for a single-node replica (one bundle: one node) and
STRICT_SPREAD for a gang. A gang's members are one per node, as the scheduler placed them:
it accounted each node's devices to one member. PACK would put several members on one node
whenever it fits (a 2-node gang of 1 GPU each on one 8-GPU node), which defeats what a gang
is for (each member's share of memory and network) and the scheduler's accounting; SPREAD is
best effort and falls back to the same. STRICT_SPREAD places the gang on distinct nodes or
not at all: the replica stays Starting, saying the group waits for nodes.

The placement travels in the launch (`ENV`), so the launch's fingerprint covers it (a changed
request replaces the engine) and an agent that adopts a running replica reads it back.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from inferplane.agent import recipes
from inferplane.api import deployments, values

Strategy = Literal["STRICT_PACK", "STRICT_SPREAD"]
SINGLE_NODE: Strategy = "STRICT_PACK"
GANG: Strategy = "STRICT_SPREAD"

ENV = "INFERPLANE_RAY_PLACEMENT"
"""The launch's variable holding its placement group, as JSON; the engine sees it too."""
ACCELERATOR_PREFIX = "accelerator_type:"
"""Ray's resource naming a node's kind of accelerator (1 on each such node)."""
ACCELERATOR_SHARE = 0.001
"""How much of `accelerator_type:<type>` a bundle takes: enough to pin it to such a node."""
UNACCOUNTED_CPU = 0.01
"""CPU of a bundle whose replica requests none: Ray refuses an empty bundle."""
MAX_NODES = 1024
"""The largest gang this runtime places; a larger one is refused, not queued for ever."""
MAX_CPU = 1_000_000.0
MAX_GPU = 1024
MAX_MEMORY = 2**50
"""Ray keeps resources as fixed-point int64 (1e-4 units): far above these and its accounting
overflows. A request beyond them is refused with its field named."""
_RESOURCE_NAME = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")
_PRECISION = 10_000


class PlacementError(recipes.LaunchError):
    """The replica's resources cannot be a Ray placement group; the message names the field."""


Bundle = dict[str, float]


@dataclass(frozen=True)
class Placement:
    """A placement group to create: its bundles (index i: gang member i) and strategy."""

    bundles: tuple[Mapping[str, float], ...]
    strategy: Strategy

    @property
    def nodes(self) -> int:
        return len(self.bundles)

    def to_json(self) -> str:
        body = {"strategy": self.strategy, "bundles": [dict(b) for b in self.bundles]}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Placement:
        """Read back `to_json`; PlacementError when it is not a placement this runtime makes."""
        try:
            raw = json.loads(text)
            strategy, bundles = raw["strategy"], raw["bundles"]
        except (ValueError, TypeError, KeyError) as exc:
            raise PlacementError(f"{ENV} is not a placement: {exc}") from exc
        if strategy not in (SINGLE_NODE, GANG) or not isinstance(bundles, list) or not bundles:
            raise PlacementError(f"{ENV} is not a placement: {text[:200]!r}")
        return cls(tuple(_checked_bundle(b) for b in bundles), strategy)


def placement_for(
    resources: deployments.ResourcesSpec, *, accelerator: str | None = None
) -> Placement:
    """The placement group of a replica needing `resources` on each of its nodes, on nodes
    of Ray's `accelerator` type when given; PlacementError naming the field that cannot be."""
    nodes = resources.nodes
    if not 1 <= nodes <= MAX_NODES:
        raise PlacementError(f"spec.resources.nodes: {nodes} nodes; at most {MAX_NODES}")
    bundle = bundle_for(resources, accelerator=accelerator)
    strategy = SINGLE_NODE if nodes == 1 else GANG
    return Placement(tuple(dict(bundle) for _ in range(nodes)), strategy)


def bundle_for(resources: deployments.ResourcesSpec, *, accelerator: str | None = None) -> Bundle:
    """What one node of the replica holds, in Ray's resource names."""
    bundle: Bundle = {"CPU": _cpu(resources.cpu)}
    gpus = sum(request.count for request in resources.devices)
    if gpus > MAX_GPU:
        raise PlacementError(f"spec.resources.devices: {gpus} devices per node; at most {MAX_GPU}")
    if gpus:
        bundle["GPU"] = float(gpus)
        if accelerator:
            name = ACCELERATOR_PREFIX + accelerator
            if not _RESOURCE_NAME.match(name):
                raise PlacementError(f"accelerator type {accelerator[:80]!r} is not a Ray resource")
            bundle[name] = ACCELERATOR_SHARE
    memory = _memory(resources.memory)
    if memory:
        bundle["memory"] = float(memory)
    return bundle


def actor_options(bundle: Mapping[str, float]) -> dict[str, Any]:
    """The resources an engine actor claims: its whole bundle, so that Ray hands it the
    bundle's GPUs (and sets their IDs) and nothing else runs in the bundle's share."""
    options: dict[str, Any] = {"num_cpus": bundle.get("CPU", 0.0)}
    options["num_gpus"] = bundle.get("GPU", 0.0)
    if bundle.get("memory"):
        options["memory"] = int(bundle["memory"])
    custom = {k: v for k, v in bundle.items() if k not in ("CPU", "GPU", "memory")}
    if custom:
        options["resources"] = custom
    return options


def _cpu(quantity: str | None) -> float:
    if quantity is None:
        return UNACCOUNTED_CPU
    cores = _parsed("spec.resources.cpu", quantity)
    if cores > MAX_CPU:
        raise PlacementError(f"spec.resources.cpu: {quantity!r} is more than {MAX_CPU:g} cores")
    rounded = math.ceil(cores * _PRECISION) / _PRECISION  # Ray counts CPU in 1e-4 units
    return rounded or UNACCOUNTED_CPU


def _memory(quantity: str | None) -> int:
    if quantity is None:
        return 0
    amount = _parsed("spec.resources.memory", quantity)
    if amount > MAX_MEMORY:
        raise PlacementError(f"spec.resources.memory: {quantity!r} is more than 1Pi")
    return math.ceil(amount)


def _parsed(field: str, quantity: str) -> float:
    try:
        amount = values.parse_quantity(quantity)
    except ValueError as exc:
        raise PlacementError(f"{field}: {exc}") from exc
    if not math.isfinite(amount) or amount < 0:
        raise PlacementError(f"{field}: {quantity!r} must be a finite amount of at least 0")
    return amount


def _checked_bundle(raw: Any) -> Bundle:
    if not isinstance(raw, dict) or not raw:
        raise PlacementError(f"{ENV}: a bundle must be a mapping of resources")
    bundle: Bundle = {}
    for name, amount in raw.items():
        ok = isinstance(name, str) and _RESOURCE_NAME.match(name)
        number = isinstance(amount, int | float) and not isinstance(amount, bool)
        if not ok or not number or not math.isfinite(amount) or amount < 0:
            raise PlacementError(f"{ENV}: bad resource {str(name)[:80]!r}")
        bundle[name] = float(amount)
    if not any(bundle.values()):
        raise PlacementError(f"{ENV}: a bundle must hold some resource")
    return bundle
