"""Fleet scheduler: placements per second, latency, packing and fragmentation, with baselines.

Places a seeded stream of replicas (1-8 GPUs of H100, A100 or L4, MIG slices, gangs of two
8-GPU nodes; some behind cluster selectors) onto a seeded fleet (1,000 clusters × 4 pools by
default), one replica at a time, with three schedulers in the same run:

- inferplane: `policy.placement.scheduler` with binpack (per-device accounting, free-capacity
  buckets, memoised filters).
- first-fit: per-device accounting too, but the obvious loop: clusters and pools in order,
  the first nodes (by index) that hold the replica. The same filters decide which pools may
  be used at all (same CEL results), so the difference is only in choosing and bookkeeping.
- whole-node: Modelplane's accounting: a replica takes whole nodes, first-fit, so a 1-GPU
  replica leaves 7 GPUs of its node stranded.

Prints, per scheduler: replicas placed and not placed, placements (decisions) per second,
latency of one decision (p50, p99), packing efficiency (devices allocated / device capacity
of the pools touched) and fragmentation (devices left free on nodes partly used: stranded),
then the ratios of inferplane to each baseline, and inferplane's throughput with the four
strategies mixed. A MIG slice counts as one device.

    .venv/bin/python -m bench.scheduler [--replicas 10000] [--clusters 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bench import fleet_gen
from inferplane.api import fleet
from inferplane.policy import devices
from inferplane.policy.placement import decisions, demands, filters, fits, scheduler, state

NodeUse = dict[tuple[str, str, int], int]
"""Devices allocated per (cluster, pool, node), to measure packing."""


@dataclass
class Result:
    name: str
    placed: int = 0
    failed: int = 0
    seconds: float = 0.0
    latencies_ns: list[int] = field(default_factory=list)
    use: NodeUse = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return (self.placed + self.failed) / self.seconds

    def percentile_us(self, q: float) -> float:
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


class Ours:
    name = "inferplane (binpack)"

    def __init__(self, snapshot: state.Snapshot) -> None:
        self.scheduler = scheduler.Scheduler(snapshot)

    def place(self, demand: demands.Demand) -> bool:
        return isinstance(self.scheduler.place(demand), decisions.Scheduled)

    def use(self) -> NodeUse:
        used: NodeUse = {}
        for pool in self.scheduler.pools.values():
            full = [count for _, count in pool.shape.groups]
            for node in pool.nodes.values():
                taken = sum(c - f for c, f in zip(full, node.free, strict=True))
                used[(pool.cluster, pool.name, node.index)] = taken
        return used


class Baseline:
    """Shared by both baselines: fleet order, the static filters, devices per node."""

    def __init__(self, snapshot: state.Snapshot) -> None:
        self.clusters = {c.metadata.name: c for c in snapshot.clusters}
        ordered = sorted(snapshot.pools, key=lambda p: (p.spec.cluster, p.metadata.name))
        self.pools = [state.pool_state(p, i) for i, p in enumerate(ordered)]
        self.usable: dict[demands.Shape, list[tuple[state.PoolState, fits.Options]]] = {}
        self.used: NodeUse = {}

    def candidates(self, shape: demands.Shape) -> list[tuple[state.PoolState, fits.Options]]:
        if shape not in self.usable:
            self.usable[shape] = [
                (p, v.options)
                for p in self.pools
                if filters.cluster_stage(self.clusters[p.cluster], shape) is None
                and (v := filters.pool_verdict(p, shape)).stage is filters.Stage.FITS
            ]
        return self.usable[shape]

    def use(self) -> NodeUse:
        return self.used


class FirstFit(Baseline):
    name = "first-fit (per device)"

    def __init__(self, snapshot: state.Snapshot) -> None:
        super().__init__(snapshot)
        self.free = {
            p.key: [[c for _, c in p.shape.groups] for _ in range(p.shape.node_count)]
            for p in self.pools
        }
        self.cpu = {p.key: [p.shape.cpu] * p.shape.node_count for p in self.pools}
        self.memory = {p.key: [p.shape.memory] * p.shape.node_count for p in self.pools}

    def place(self, demand: demands.Demand) -> bool:
        shape = demand.shape
        counts = tuple(n.count for n in shape.needs)
        for pool, options in self.candidates(shape):
            chosen = []
            for i, free in enumerate(self.free[pool.key]):
                fitting = self.cpu[pool.key][i] >= shape.cpu_milli
                fitting = fitting and self.memory[pool.key][i] >= shape.memory_bytes
                groups = fits.fit_free(free, options, counts) if fitting else None
                if groups is not None:
                    chosen.append((i, groups[0]))
                    if len(chosen) == shape.nodes:
                        self._take(pool, chosen, shape)
                        return True
        return False

    def _take(
        self, pool: state.PoolState, chosen: list[tuple[int, tuple[int, ...]]], shape: demands.Shape
    ) -> None:
        for i, groups in chosen:
            for g, need in zip(groups, shape.needs, strict=True):
                self.free[pool.key][i][g] -= need.count
            self.cpu[pool.key][i] -= shape.cpu_milli
            self.memory[pool.key][i] -= shape.memory_bytes
            key = (pool.cluster, pool.name, i)
            self.used[key] = self.used.get(key, 0) + sum(n.count for n in shape.needs)


class WholeNode(Baseline):
    name = "whole-node (Modelplane)"

    def __init__(self, snapshot: state.Snapshot) -> None:
        super().__init__(snapshot)
        self.next_free = {p.key: 0 for p in self.pools}

    def place(self, demand: demands.Demand) -> bool:
        shape = demand.shape
        for pool, _options in self.candidates(shape):
            first = self.next_free[pool.key]
            if pool.shape.node_count - first >= shape.nodes:
                self.next_free[pool.key] = first + shape.nodes
                for i in range(first, first + shape.nodes):
                    self.used[(pool.cluster, pool.name, i)] = sum(n.count for n in shape.needs)
                return True
        return False


def forget_memos() -> None:
    """Each scheduler pays for its own selector compiles and evaluations: none inherits them."""
    devices.compile_selector.cache_clear()
    devices.matches_key.cache_clear()
    filters.shape_verdict.cache_clear()


def run(
    make: Callable[[state.Snapshot], Ours | FirstFit | WholeNode],
    snapshot: state.Snapshot,
    stream: Iterable[demands.Demand],
) -> Result:
    forget_memos()
    algorithm = make(snapshot)  # building the books from the snapshot is not timed
    result = Result(algorithm.name)
    clock = time.perf_counter_ns
    started = clock()
    for demand in stream:
        before = clock()
        ok = algorithm.place(demand)
        result.latencies_ns.append(clock() - before)
        result.placed += ok
        result.failed += not ok
    result.seconds = (clock() - started) / 1e9
    result.use = algorithm.use()
    return result


@dataclass(frozen=True)
class Packing:
    efficiency: float
    stranded: int
    used_node_devices: int
    pools_touched: int


def packing(use: NodeUse, pools: dict[tuple[str, str], fleet.Pool]) -> Packing:
    per_node = {k: sum(g.count for g in p.spec.devicesPerNode) for k, p in pools.items()}
    touched = {(c, p) for (c, p, _), n in use.items() if n > 0}
    capacity = sum(per_node[k] * pools[k].spec.nodeCount for k in touched)
    allocated = sum(use.values())
    used_nodes = [(k, n) for k, n in use.items() if n > 0]
    node_devices = sum(per_node[(c, p)] for (c, p, _), _n in used_nodes)
    stranded = sum(per_node[(c, p)] - n for (c, p, _), n in used_nodes)
    return Packing(allocated / capacity if capacity else 0.0, stranded, node_devices, len(touched))


def table(results: list[Result], pools: dict[tuple[str, str], fleet.Pool]) -> list[Packing]:
    head = f"{'scheduler':<26}{'placed':>8}{'failed':>8}{'decisions/s':>13}"
    head += f"{'p50 µs':>9}{'p99 µs':>9}{'packing':>9}{'stranded':>10}{'pools':>7}"
    print(head)
    packs = []
    for r in results:
        pk = packing(r.use, pools)
        packs.append(pk)
        share = pk.stranded / pk.used_node_devices if pk.used_node_devices else 0.0
        print(
            f"{r.name:<26}{r.placed:>8}{r.failed:>8}{r.rate:>13,.0f}"
            f"{r.percentile_us(0.5):>9.0f}{r.percentile_us(0.99):>9.0f}"
            f"{pk.efficiency:>9.1%}{pk.stranded:>6} {share:>3.0%}{pk.pools_touched:>7}"
        )
    return packs


def ratios(results: list[Result], packs: list[Packing]) -> None:
    ours, our_pack = results[0], packs[0]
    for r, pk in zip(results[1:], packs[1:], strict=True):
        stranded = our_pack.stranded / pk.stranded if pk.stranded else float("inf")
        print(
            f"inferplane / {r.name}: decisions/s {ours.rate / r.rate:.2f}×, "
            f"packing {our_pack.efficiency / pk.efficiency:.2f}×, stranded devices "
            f"{stranded:.2f}×, placed {ours.placed - r.placed:+d}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=10_000)
    parser.add_argument("--clusters", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    clusters, pools = fleet_gen.make_fleet(random.Random(args.seed), args.clusters)
    snapshot = state.Snapshot(clusters, pools)
    stream = fleet_gen.make_demands(random.Random(args.seed + 1), args.replicas)
    asked = sum(n.count * d.shape.nodes for d in stream for n in d.shape.needs)
    print(
        f"{args.replicas} replicas ({asked} devices) onto {args.clusters} clusters × 4 pools"
        f" ({len(pools)} pools), seed {args.seed}, binpack; one decision at a time\n"
    )
    makers: list[Callable[[state.Snapshot], Ours | FirstFit | WholeNode]] = [
        Ours,
        FirstFit,
        WholeNode,
    ]
    results = [run(make, snapshot, stream) for make in makers]
    by_key = {(p.spec.cluster, p.metadata.name): p for p in pools}
    packs = table(results, by_key)
    print()
    ratios(results, packs)
    mixed = fleet_gen.make_demands(
        random.Random(args.seed + 1),
        args.replicas,
        strategies=("binpack", "spread", "cheapest", "cached"),
    )
    result = run(Ours, snapshot, mixed)
    print(
        f"\ninferplane, strategies mixed (binpack, spread, cheapest, cached): "
        f"{result.rate:,.0f} decisions/s, p50 {result.percentile_us(0.5):.0f} µs, "
        f"p99 {result.percentile_us(0.99):.0f} µs, {result.placed} placed"
    )


if __name__ == "__main__":
    main()
