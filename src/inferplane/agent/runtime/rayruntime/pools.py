"""A Ray cluster's nodes as Pools: one per distinct node shape. Pure: it reads what
`ray.nodes()` answers.

A shape is what the scheduler needs to tell nodes apart: CPU cores, memory (Ray's schedulable
memory, whole GiB, so that nodes of one machine type whose free memory differs by a little
make one pool), the GPU count and the accelerator type Ray found (its `accelerator_type:<T>`
resource). Pool names say the shape, e.g. `ray-h100-8gpu-96cpu-900gi` or `ray-cpu-4cpu-14gi`;
nodeCount counts the alive nodes of the shape. The spec is the one host discovery writes
(agent/discovery.py), GPUs as a device group `gpu` with productName.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from inferplane.agent import discovery
from inferplane.agent.runtime.rayruntime import placement
from inferplane.api import fleet

_SAFE_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$")
_DRIVERS = (("amd", "gpu.amd.com"), ("intel", "gpu.intel.com"))


@dataclass(frozen=True, order=True)
class Shape:
    """What each node of a pool offers."""

    gpus: int
    accelerator: str
    """Ray's accelerator type (`A100`, `H100`...), '' when it names none."""
    cpu: float
    memory_gib: int

    @property
    def name(self) -> str:
        kind = (_slug(self.accelerator) or "gpu") if self.gpus else "cpu"
        gpus = f"-{self.gpus}gpu" if self.gpus else ""
        return f"ray-{kind}{gpus}-{_slug(f'{self.cpu:g}')}cpu-{self.memory_gib}gi"


def shape_of(node: Mapping[str, Any]) -> Shape | None:
    """The node's shape; None for a dead node or one that offers nothing."""
    if not node.get("Alive"):
        return None
    resources = node.get("Resources")
    if not isinstance(resources, Mapping):
        return None
    cpu = _number(resources.get("CPU"))
    gpus = int(_number(resources.get("GPU")))
    memory = int(_number(resources.get("memory")) // 2**30)
    if not cpu and not gpus:
        return None
    return Shape(gpus=gpus, accelerator=_accelerator(resources), cpu=cpu, memory_gib=memory)


def plans_of(nodes: Iterable[Mapping[str, Any]]) -> list[discovery.PoolPlan]:
    """One pool per distinct shape of the alive nodes, largest first."""
    counts = Counter(shape for shape in map(shape_of, nodes) if shape is not None)
    plans: list[discovery.PoolPlan] = []
    taken: set[str] = set()
    for shape, count in sorted(counts.items(), reverse=True):
        name = _unique(shape.name, taken)
        plans.append(discovery.PoolPlan(name, spec_of(shape, count)))
    return plans


def spec_of(shape: Shape, count: int) -> dict[str, Any]:
    """The PoolSpec fields of `count` nodes of `shape`, validated by the schema."""
    spec: dict[str, Any] = {"nodeCount": count, "cpu": f"{shape.cpu:g}"}
    if shape.memory_gib:
        spec["memory"] = f"{shape.memory_gib}Gi"
    if shape.gpus:
        spec["devicesPerNode"] = [_gpu_group(shape)]
    fleet.PoolSpec.model_validate({**spec, "cluster": "c"})  # raises on a bug here only
    return spec


def accelerator_of(pool: str | None, plans: Iterable[discovery.PoolPlan]) -> str | None:
    """The Ray accelerator type of the pool a replica is bound to (Pool objects are named
    <cluster>-<plan>); None when it is not one of these pools, or names no type."""
    if not pool:
        return None
    matching = [p for p in plans if pool == p.name or pool.endswith("-" + p.name)]
    if not matching:
        return None
    best = max(matching, key=lambda p: len(p.name))
    for group in best.spec.get("devicesPerNode") or []:
        value = (group.get("attributes") or {}).get("rayAcceleratorType")
        if isinstance(value, str) and value:
            return value
    return None


def _gpu_group(shape: Shape) -> dict[str, Any]:
    driver = next(
        (d for prefix, d in _DRIVERS if shape.accelerator.lower().startswith(prefix)),
        discovery.NVIDIA_DRIVER,
    )
    attributes: dict[str, Any] = {"type": "gpu"}
    if shape.accelerator:
        attributes["productName"] = discovery.short_product(shape.accelerator)
        attributes["rayAcceleratorType"] = shape.accelerator
    return {"name": "gpu", "count": shape.gpus, "driver": driver, "attributes": attributes}


def _accelerator(resources: Mapping[str, Any]) -> str:
    """The node's accelerator type, when it has exactly one that reads as a name."""
    found = sorted(
        key.removeprefix(placement.ACCELERATOR_PREFIX)
        for key in resources
        if isinstance(key, str) and key.startswith(placement.ACCELERATOR_PREFIX)
    )
    if len(found) != 1 or not _SAFE_VALUE.match(found[0]):
        return ""
    return found[0]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) and value > 0 else 0.0


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())[:16]


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate = f"{name}-{n}"
        n += 1
    taken.add(candidate)
    return candidate
