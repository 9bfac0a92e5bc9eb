"""A Kubernetes cluster's pools, from its Node objects: pure, one Pool per node shape.

A node's shape is what a replica sees of it: its GPUs (the device plugin's `nvidia.com/gpu`
capacity, described by NVIDIA GPU feature discovery's labels: nvidia.com/gpu.product,
.memory, .count, .compute.major/minor, nvidia.com/cuda.driver-version.full), its MIG slices
(`nvidia.com/mig.strategy` single: the slices are `nvidia.com/gpu`; mixed: one
`nvidia.com/mig-<profile>` resource per profile), its allocatable CPU (whole cores) and
memory (whole GiB, so that identical nodes with a few KiB more or less reserved still share a
shape). Cordoned nodes (spec.unschedulable) are left out. The device groups have the shape
host discovery writes (agent/discovery.py), and their names say which device-plugin resource
they are: `mig-1g-10gb` is `nvidia.com/mig-1g.10gb`, every other group `nvidia.com/gpu`
(`resource_of`).

Each pool keeps the node labels that all its nodes share among `SELECTOR_LABELS`, so that the
runtime pins a replica's pods to its pool's nodes (`Shape.node_selector`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from inferplane.agent import discovery
from inferplane.api import values

Obj = dict[str, Any]

GPU = "nvidia.com/gpu"
MIG_PREFIX = "nvidia.com/mig-"
PRODUCT = "nvidia.com/gpu.product"
MEMORY = "nvidia.com/gpu.memory"
COUNT = "nvidia.com/gpu.count"
STRATEGY = "nvidia.com/mig.strategy"
SELECTOR_LABELS = (PRODUCT, COUNT, MEMORY, "nvidia.com/mig.config",
                   "node.kubernetes.io/instance-type")  # fmt: skip
_PROFILE = re.compile(r"^(?P<g>\d+g)\.(?P<mem>\d+gb)(?:\+(?P<ext>[a-z0-9]+))?$")
_GROUP = re.compile(r"^mig-(?P<g>\d+g)-(?P<mem>\d+gb)(?:-(?P<ext>[a-z0-9]+))?$")


@dataclass(frozen=True)
class Shape:
    """One pool: its plan, and how to keep pods on its nodes."""

    plan: discovery.PoolPlan
    node_selector: dict[str, str]
    nodes: tuple[str, ...]
    """The names of its nodes, sorted."""


def plans(nodes: Iterable[Obj]) -> list[discovery.PoolPlan]:
    return [shape.plan for shape in shapes(nodes)]


def shapes(nodes: Iterable[Obj]) -> list[Shape]:
    """The pools of these nodes, named by their shape, sorted by name."""
    grouped: dict[str, list[tuple[Obj, dict[str, Any]]]] = {}
    for node in nodes:
        if (node.get("spec") or {}).get("unschedulable"):
            continue
        spec = node_spec(node)
        grouped.setdefault(json.dumps(spec, sort_keys=True), []).append((node, spec))
    named = [(_base_name(members[0][1]), key, members) for key, members in grouped.items()]
    counts: dict[str, int] = {}
    for base_name, _, _ in named:
        counts[base_name] = counts.get(base_name, 0) + 1
    found = []
    for base_name, key, members in named:
        name = base_name
        if counts[base_name] > 1:  # same devices, other CPU or memory
            name = f"{base_name}-{hashlib.sha256(key.encode()).hexdigest()[:6]}"
        spec = {"nodeCount": len(members), **members[0][1]}
        found.append(
            Shape(
                plan=discovery.PoolPlan(name, spec),
                node_selector=_shared_labels([node for node, _ in members]),
                nodes=tuple(sorted(_name(node) for node, _ in members)),
            )
        )
    return sorted(found, key=lambda shape: shape.plan.name)


def node_spec(node: Obj) -> dict[str, Any]:
    """The PoolSpec fields one node stands for (all but nodeCount)."""
    status = node.get("status") or {}
    allocatable = status.get("allocatable") or {}
    capacity = status.get("capacity") or {}
    spec: dict[str, Any] = {}
    groups = device_groups(_labels(node), capacity)
    if groups:
        spec["devicesPerNode"] = groups
    cores = _amount(allocatable.get("cpu") or capacity.get("cpu"))
    if cores is not None and cores >= 1:
        spec["cpu"] = str(int(cores))
    memory = _amount(allocatable.get("memory") or capacity.get("memory"))
    if memory is not None and memory >= 2**30:
        spec["memory"] = f"{int(memory // 2**30)}Gi"
    return spec


def device_groups(labels: dict[str, str], capacity: dict[str, Any]) -> list[dict[str, Any]]:
    """The node's GPUs and MIG slices as device groups."""
    groups = []
    whole = _count(capacity.get(GPU))
    if whole is None and GPU not in capacity:
        whole = _count(labels.get(COUNT))  # e.g. GPUs a DRA driver publishes, labelled by GFD
    product = labels.get(PRODUCT, "")
    single_mig = labels.get(STRATEGY) == "single" and "-MIG-" in product
    if whole:
        group = _mig_single(labels) if single_mig else _gpu(labels)
        groups.append({"name": "gpu", "count": whole, **group})
    for key in sorted(capacity):
        if not key.startswith(MIG_PREFIX):
            continue
        profile = key.removeprefix(MIG_PREFIX)
        count = _count(capacity.get(key))
        name = group_of_profile(profile)
        if count and name is not None:
            groups.append({"name": name, "count": count, **_mig_mixed(labels, profile)})
    return groups


def group_of_profile(profile: str) -> str | None:
    """`1g.10gb` -> `mig-1g-10gb`, `1g.10gb+me` -> `mig-1g-10gb-me`: a DNS label that
    `resource_of` reads back; None for a profile of another form."""
    match = _PROFILE.match(profile)
    if match is None:
        return None
    return "-".join(p for p in ("mig", match["g"], match["mem"], match["ext"]) if p)


def resource_of(group: str) -> str:
    """The device-plugin resource a pool's device group is asked for by."""
    match = _GROUP.match(group)
    if match is None:
        return GPU
    extension = f"+{match['ext']}" if match["ext"] else ""
    return f"{MIG_PREFIX}{match['g']}.{match['mem']}{extension}"


# --- attributes, as host discovery writes them ---------------------------------------------


def _gpu(labels: dict[str, str]) -> dict[str, Any]:
    product = labels.get(PRODUCT, "")
    attributes: dict[str, Any] = {"type": "gpu"}
    if product:
        attributes["productName"] = discovery.short_product(product.replace("-", " "))
        attributes["productFullName"] = product
    _compute(labels, attributes)
    memory = _count(labels.get(MEMORY))
    capacity = {"memory": f"{memory}Mi"} if memory else {}
    return {"driver": discovery.NVIDIA_DRIVER, "attributes": attributes, "capacity": capacity}


def _mig_single(labels: dict[str, str]) -> dict[str, Any]:
    """strategy single: every GPU is cut alike and the slices are nvidia.com/gpu, whose
    product label is the parent's with -MIG-<profile> appended."""
    parent, _, profile = labels.get(PRODUCT, "").partition("-MIG-")
    group = _mig(parent, profile)
    memory = _count(labels.get(MEMORY))
    if memory:
        group["capacity"] = {"memory": f"{memory}Mi"}
    return group


def _mig_mixed(labels: dict[str, str], profile: str) -> dict[str, Any]:
    group = _mig(labels.get(PRODUCT, ""), profile)
    memory = _count(labels.get(f"{MIG_PREFIX}{profile}.memory"))
    if memory:
        group["capacity"] = {"memory": f"{memory}Mi"}
    return group


def _mig(parent: str, profile: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {"type": "mig", "migProfile": profile}
    if parent:
        attributes["productName"] = discovery.short_product(parent.replace("-", " "))
    memory = re.search(r"(\d+)gb", profile)
    capacity = {"memory": f"{memory.group(1)}Gi"} if memory else {}
    return {"driver": discovery.NVIDIA_DRIVER, "attributes": attributes, "capacity": capacity}


def _compute(labels: dict[str, str], attributes: dict[str, Any]) -> None:
    major = labels.get("nvidia.com/gpu.compute.major")
    minor = labels.get("nvidia.com/gpu.compute.minor")
    if major and minor and major.isdigit() and minor.isdigit():
        capability = f"{major}.{minor}"
        attributes["cudaComputeCapability"] = capability
        if capability in discovery.ARCHITECTURES:
            attributes["architecture"] = discovery.ARCHITECTURES[capability]
    driver = labels.get("nvidia.com/cuda.driver-version.full") or ".".join(
        labels.get(f"nvidia.com/cuda.driver.{part}", "") for part in ("major", "minor", "rev")
    ).strip(".")
    if driver:
        attributes["driverVersion"] = driver


# --- names and selectors -------------------------------------------------------------------


def _base_name(spec: dict[str, Any]) -> str:
    groups = spec.get("devicesPerNode") or []
    if not groups:
        return f"cpu-{spec.get('cpu', '0')}c-{spec.get('memory', '0Gi').lower()}"
    first = groups[0]
    product = _slug(str(first["attributes"].get("productName") or "gpu"))
    if any(g["attributes"].get("type") == "mig" for g in groups):
        return f"mig-{product}-{sum(int(g['count']) for g in groups)}"
    return f"gpu-{product}-{first['count']}"


def _shared_labels(nodes: list[Obj]) -> dict[str, str]:
    shared = {}
    for key in SELECTOR_LABELS:
        seen = {_labels(node).get(key) for node in nodes}
        if len(seen) == 1 and None not in seen:
            shared[key] = str(seen.pop())
    return shared


def _labels(node: Obj) -> dict[str, str]:
    return dict((node.get("metadata") or {}).get("labels") or {})


def _name(node: Obj) -> str:
    return str((node.get("metadata") or {}).get("name") or "")


def _amount(quantity: Any) -> float | None:
    try:
        return values.parse_quantity(str(quantity)) if quantity is not None else None
    except ValueError:
        return None


def _count(value: Any) -> int | None:
    amount = _amount(value)
    return int(amount) if amount is not None and amount >= 0 else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower()) or "x"
