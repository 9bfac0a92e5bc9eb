"""The Slurm cluster's nodes as Pools: one per distinct node shape (CPUs, memory, GPUs by
GRES type), its nodeCount the nodes of that shape. Pure: `sinfo` is read by `commands`.

GPUs are described as host discovery describes NVIDIA ones (driver gpu.nvidia.com, type gpu,
productName), with what Slurm knows of them: the GRES type, upper-cased, as productName
(`gpu:a100:4` → A100), and the type as written in slurmGresType. Slurm does not tell their
memory or compute capability; a pool file says more where selectors need it.
"""

from __future__ import annotations

import re
from typing import Any

from inferplane.agent import discovery
from inferplane.agent.runtime.slurm import queue

Shape = tuple[int, int, tuple[tuple[str, int], ...]]


def plans(nodes: list[queue.Node]) -> list[discovery.PoolPlan]:
    """One plan per shape, named cpu, gpu or gpu-TYPE, with the shape added where two
    shapes would share a name."""
    counts: dict[Shape, int] = {}
    for node in nodes:
        counts[node.shape] = counts.get(node.shape, 0) + 1
    shapes = sorted(counts)
    bases = {shape: _base_name(shape) for shape in shapes}
    found: list[discovery.PoolPlan] = []
    taken: set[str] = set()
    for shape in shapes:
        shared = sum(1 for other in shapes if bases[other] == bases[shape]) > 1
        name = f"{bases[shape]}-{_shape_suffix(shape)}" if shared else bases[shape]
        name = name[:40].rstrip("-")
        if name in taken:  # same GPUs in total, split otherwise between types
            name = f"{name}-{len(found)}"
        taken.add(name)
        found.append(discovery.PoolPlan(name, _spec(shape, counts[shape])))
    return found


def _spec(shape: Shape, count: int) -> dict[str, Any]:
    cpus, memory_mib, gpus = shape
    spec: dict[str, Any] = {"nodeCount": count, "cpu": str(cpus)}
    if memory_mib:
        spec["memory"] = f"{memory_mib}Mi"
    if gpus:
        spec["devicesPerNode"] = [_group(kind, n, several=len(gpus) > 1) for kind, n in gpus]
    return spec


def _group(kind: str, count: int, *, several: bool) -> dict[str, Any]:
    attributes: dict[str, Any] = {"type": "gpu"}
    if kind:
        attributes["productName"] = kind.upper()
        attributes["slurmGresType"] = kind
    return {
        "name": f"gpu-{_slug(kind)}" if several else "gpu",
        "count": count,
        "driver": discovery.NVIDIA_DRIVER,
        "attributes": attributes,
        "capacity": {},
    }


def _base_name(shape: Shape) -> str:
    gpus = shape[2]
    if not gpus:
        return "cpu"
    kinds = [_slug(kind) for kind, _ in gpus if kind]
    return "-".join(["gpu", *kinds])


def _shape_suffix(shape: Shape) -> str:
    cpus, memory_mib, gpus = shape
    total = sum(count for _, count in gpus)
    memory = f"{memory_mib // 1024}g" if memory_mib % 1024 == 0 else f"{memory_mib}m"
    return (f"{total}x-" if total else "") + f"{cpus}c-{memory}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower()) or "x"
