"""What this cluster offers, as Pools: found on the host, or read from a pool file.

On the host: the CPU cores and memory as a pool named `cpu`, and NVIDIA GPUs (whole, and MIG
partitions) as a pool named `gpu`, read from `nvidia-smi`. A pool file describes pools the
host cannot tell (a fleet of H100 nodes behind this agent, or, in tests, GPUs on a CPU-only
machine); see docs/agent.md for its format.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
import yaml

from inferplane.api import fleet, meta

NVIDIA_DRIVER = "gpu.nvidia.com"
GPU_FIELDS = ("index", "uuid", "name", "memory.total", "compute_cap", "mig.mode.current",
              "driver_version")  # fmt: skip
GPU_QUERY = ["nvidia-smi", f"--query-gpu={','.join(GPU_FIELDS)}", "--format=csv,noheader,nounits"]
GPU_LIST = ["nvidia-smi", "-L"]
ARCHITECTURES = {
    "7.0": "Volta", "7.2": "Volta", "7.5": "Turing", "8.0": "Ampere", "8.6": "Ampere",
    "8.7": "Ampere", "8.9": "Ada Lovelace", "9.0": "Hopper", "10.0": "Blackwell",
    "10.3": "Blackwell", "12.0": "Blackwell",
}  # fmt: skip
_BRANDS = {"NVIDIA", "Tesla", "GeForce", "Quadro"}
_GPU_LINE = re.compile(r"^GPU (?P<index>\d+): (?P<name>.+?) \(UUID: (?P<uuid>[^)]+)\)\s*$")
_MIG_LINE = re.compile(
    r"^\s+MIG (?P<profile>\S+)\s+Device\s+(?P<device>\d+): \(UUID: (?P<uuid>[^)]+)\)\s*$"
)

Runner = Callable[[list[str]], str | None]
"""Runs a command and returns its stdout, or None when it is missing or fails."""


class PoolFileError(Exception):
    """The pool file cannot be read or describes an invalid pool; the message says where."""


@dataclass(frozen=True)
class PoolPlan:
    """A pool this agent reports: its short name, the spec it sets, and local device ids."""

    name: str
    """Short name; the Pool object is named CLUSTER-NAME."""
    spec: dict[str, Any]
    """PoolSpec fields (without cluster), exactly those the agent sets."""
    device_ids: dict[str, list[str]] = field(default_factory=dict)
    """Per device group, what CUDA_VISIBLE_DEVICES says for each device index (a GPU or MIG
    UUID); a group not listed uses the index itself."""


def object_name(cluster: str, pool: str) -> str:
    return f"{cluster}-{pool}"


# --- the host ------------------------------------------------------------------------------


def cpu_pool() -> PoolPlan:
    """The host's cores and memory, as one node."""
    spec: dict[str, Any] = {"nodeCount": 1, "cpu": str(os.cpu_count() or 1)}
    memory = _memory_bytes()
    if memory:
        spec["memory"] = f"{memory // 2**20}Mi"
    return PoolPlan("cpu", spec)


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def run_command(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def host_pools(run: Runner = run_command) -> list[PoolPlan]:
    """The cpu pool, and the gpu pool when nvidia-smi finds GPUs."""
    found = [cpu_pool()]
    query = run(GPU_QUERY)
    if query:
        gpus = parse_gpu_query(query)
        migs = parse_gpu_list(run(GPU_LIST) or "")
        gpu = gpu_pool(gpus, migs)
        if gpu is not None:
            found.append(gpu)
    return found


# --- nvidia-smi ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    name: str
    memory_mib: int | None
    compute_cap: str
    mig_enabled: bool
    driver_version: str


@dataclass(frozen=True)
class MigDevice:
    gpu: int
    """Index of the parent GPU."""
    profile: str
    """e.g. 1g.10gb"""
    uuid: str


def parse_gpu_query(text: str) -> list[Gpu]:
    """Rows of `nvidia-smi --query-gpu=<GPU_FIELDS> --format=csv,noheader,nounits`."""
    gpus = []
    for row in csv.reader(io.StringIO(text), skipinitialspace=True):
        if len(row) < len(GPU_FIELDS) or not row[0].strip().isdigit():
            continue
        index, uuid, name, memory, cap, mig, driver = (cell.strip() for cell in row[:7])
        gpus.append(
            Gpu(
                index=int(index),
                uuid=uuid,
                name=name,
                memory_mib=int(memory) if memory.isdigit() else None,
                compute_cap=_known(cap),
                mig_enabled=mig.lower() == "enabled",
                driver_version=_known(driver),
            )
        )
    return gpus


def _known(cell: str) -> str:
    return "" if cell.startswith("[") or cell.lower() in ("n/a", "") else cell


def parse_gpu_list(text: str) -> list[MigDevice]:
    """The MIG devices in `nvidia-smi -L`, each under its parent GPU's line."""
    found = []
    parent: int | None = None
    for line in text.splitlines():
        gpu = _GPU_LINE.match(line)
        if gpu:
            parent = int(gpu["index"])
            continue
        mig = _MIG_LINE.match(line)
        if mig and parent is not None:
            found.append(MigDevice(gpu=parent, profile=mig["profile"], uuid=mig["uuid"]))
    return found


def short_product(name: str) -> str:
    """`NVIDIA H100 80GB HBM3` -> H100, `NVIDIA A100-SXM4-40GB` -> A100, `NVIDIA GeForce RTX
    4090` -> RTX 4090: the name selectors compare with, as in docs/placement.md."""
    words = [w for w in name.split() if w not in _BRANDS]
    if not words:
        return name
    first = words[0].split("-")[0]
    if not any(c.isdigit() for c in first) and len(words) > 1:
        return f"{first} {words[1].split('-')[0]}"
    return first


def gpu_pool(gpus: list[Gpu], migs: list[MigDevice]) -> PoolPlan | None:
    """One node's GPUs as device groups: whole GPUs by model, MIG slices by profile."""
    groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
    by_index = {g.index: g for g in gpus}
    whole = [g for g in gpus if not g.mig_enabled]
    models = {(short_product(g.name), g.memory_mib) for g in whole}
    for gpu in whole:
        product = short_product(gpu.name)
        name = "gpu" if len(models) == 1 else f"gpu-{_slug(product)}-{gpu.memory_mib or 0}"
        _add(groups, name, _gpu_group(gpu), gpu.uuid)
    products = {short_product(by_index[m.gpu].name) for m in migs if m.gpu in by_index}
    for mig in migs:
        parent = by_index.get(mig.gpu)
        product = short_product(parent.name) if parent else ""
        name = f"mig-{_slug(mig.profile)}"
        if len(products) > 1:
            name = f"{name}-{_slug(product)}"
        _add(groups, name, _mig_group(mig, product), mig.uuid)
    if not groups:
        return None
    devices = [{**group, "name": name, "count": len(ids)} for name, (group, ids) in groups.items()]
    ids = {name: list(uuids) for name, (_, uuids) in groups.items()}
    return PoolPlan("gpu", {"nodeCount": 1, "devicesPerNode": devices}, ids)


def _add(
    groups: dict[str, tuple[dict[str, Any], list[str]]],
    name: str,
    group: dict[str, Any],
    uuid: str,
) -> None:
    groups.setdefault(name, (group, []))[1].append(uuid)


def _gpu_group(gpu: Gpu) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "type": "gpu",
        "productName": short_product(gpu.name),
        "productFullName": gpu.name,
    }
    if gpu.compute_cap:
        attributes["cudaComputeCapability"] = gpu.compute_cap
        if gpu.compute_cap in ARCHITECTURES:
            attributes["architecture"] = ARCHITECTURES[gpu.compute_cap]
    if gpu.driver_version:
        attributes["driverVersion"] = gpu.driver_version
    capacity = {"memory": f"{gpu.memory_mib}Mi"} if gpu.memory_mib else {}
    return {"driver": NVIDIA_DRIVER, "attributes": attributes, "capacity": capacity}


def _mig_group(mig: MigDevice, product: str) -> dict[str, Any]:
    attributes = {"type": "mig", "productName": product, "migProfile": mig.profile}
    memory = re.search(r"(\d+)gb", mig.profile)
    capacity = {"memory": f"{memory.group(1)}Gi"} if memory else {}
    return {"driver": NVIDIA_DRIVER, "attributes": attributes, "capacity": capacity}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower()) or "x"


# --- the pool file -------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolFile:
    pools: list[PoolPlan]
    discover: bool
    """Also report the host's own pools."""


def read_pool_file(path: Path, *, cluster: str) -> PoolFile:
    """Read and validate a pool file; raises PoolFileError naming the file and field."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PoolFileError(f"cannot read pool file {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("pools"), list):
        raise PoolFileError(f"{path}: expected a mapping with a list under 'pools'")
    plans = [_plan(path, i, entry, cluster) for i, entry in enumerate(raw["pools"])]
    names = [plan.name for plan in plans]
    for name in names:
        if names.count(name) > 1:
            raise PoolFileError(f"{path}: pool {name!r} is listed twice")
    return PoolFile(plans, bool(raw.get("discover", False)))


def _plan(path: Path, index: int, entry: Any, cluster: str) -> PoolPlan:
    where = f"{path}: pools[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise PoolFileError(f"{where}: each pool needs a name")
    spec = {k: v for k, v in entry.items() if k != "name"}
    name = entry["name"]
    try:
        meta.check_dns_label(name)
        meta.check_dns_label(object_name(cluster, name))
    except ValueError as exc:
        raise PoolFileError(f"{where}.name: {exc}") from exc
    groups = spec.get("devicesPerNode") or []
    ids: dict[str, list[str]] = {}
    if isinstance(groups, list):
        spec["devicesPerNode"] = [_group_without_ids(g, ids) for g in groups]
    try:
        fleet.PoolSpec.model_validate({**spec, "cluster": cluster})
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise PoolFileError(f"{where}: {problems}") from exc
    return PoolPlan(name, spec, ids)


def _group_without_ids(group: Any, ids: dict[str, list[str]]) -> Any:
    if not isinstance(group, dict) or "deviceIds" not in group:
        return group
    group = dict(group)
    ids[str(group.get("name", "gpu"))] = [str(i) for i in group.pop("deviceIds") or []]
    return group


def plans(pool_file: Path | None, *, cluster: str, run: Runner = run_command) -> list[PoolPlan]:
    """The pools to report: the file's, plus the host's when there is no file or it asks."""
    if pool_file is None:
        return host_pools(run)
    read = read_pool_file(pool_file, cluster=cluster)
    if not read.discover:
        return read.pools
    listed = {plan.name for plan in read.pools}
    return read.pools + [plan for plan in host_pools(run) if plan.name not in listed]
