"""The autoscaler's cost per deployment and tick, pure Python and no process: a LoadBoard
holding `window` seconds of samples (every 2 s, as `up`'s agents report) of 4 replicas for
each of 10,000 deployments, and gateway samples for each; then, per deployment, the read of
its samples from the board and one `policy.autoscaling.decide`, each timed alone, twice on
the same board: reading since the controller's own horizon (the stable window and one
lookback, `samples_since`) and reading the whole retention (what the controller did before,
the baseline)."""

from __future__ import annotations

import gc
import random
import statistics
import time
from dataclasses import dataclass

from inferplane.api.autoscaling import AutoscalingSpec
from inferplane.control.controllers.autoscaling import samples_since
from inferplane.control.loadboard import RETENTION_SECONDS, LoadBoard
from inferplane.policy import autoscaling

NAMESPACE = "bench"
NOW = 1_700_000_000.0


@dataclass(frozen=True)
class Shape:
    deployments: int = 10_000
    replicas: int = 4
    window: float = 512.0
    """Seconds of samples held: 512 s every 2 s fills the board's 256 per replica."""
    interval: float = 2.0
    seed: int = 0


@dataclass(frozen=True)
class Timing:
    median_us: float
    p99_us: float
    mean_us: float
    total_s: float
    """All deployments together: one tick of the autoscaler over the fleet."""


@dataclass(frozen=True)
class Reading:
    """One way of reading the samples, and the decision on them."""

    since: str
    samples_per_deployment: float
    board_read: Timing
    decide: Timing
    both: Timing


@dataclass(frozen=True)
class DecisionCost:
    shape: Shape
    samples: int
    """Replica samples held by the board."""
    fill_seconds: float
    ours: Reading
    """Since `samples_since`: what the controller reads."""
    baseline: Reading
    """Since now - RETENTION_SECONDS: the whole board, as the controller read before."""
    desired: dict[int, int]
    """How many deployments each decision sized to N replicas (a check the load varies)."""


class _Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _fill(shape: Shape, rng: random.Random) -> tuple[LoadBoard, _Clock, float]:
    """The board with `window` seconds of samples; each deployment has a load level (some
    ramping, for panics), each of its replicas on its own cluster (one agent per cluster)."""
    clock = _Clock()
    board = LoadBoard(clock=clock)
    levels = [
        (rng.uniform(0, 40), rng.choice((0.0, 0.0, 0.0, 1.0))) for _ in range(shape.deployments)
    ]
    rounds = int(shape.window / shape.interval)
    start = time.perf_counter()
    for step in range(rounds):
        clock.now = NOW - shape.window + (step + 1) * shape.interval
        ramp = step / rounds
        for index in range(shape.replicas):
            reports = []
            for d, (level, slope) in enumerate(levels):
                per = level / shape.replicas * (1 + slope * 3 * ramp) * rng.uniform(0.8, 1.2)
                sample = autoscaling.Sample(
                    time=0.0,
                    replica=f"d{d:05d}-r{index}",
                    running=min(per, 8),
                    waiting=max(per - 8, 0),
                    ttft=0.05 + per / 100,
                    tpot=0.02,
                    rps=per / 2,
                )
                reports.append((NAMESPACE, sample))
            board.add_replicas(f"cluster-{index}", reports)
        board.add_gateway(
            "gw",
            "gw/0",
            [
                ((NAMESPACE, f"d{d:05d}"), autoscaling.GatewaySample(0.0, "gw", in_flight=int(lv)))
                for d, (lv, _) in enumerate(levels)
            ],
        )
    return board, clock, time.perf_counter() - start


def _timing(nanoseconds: list[int]) -> Timing:
    ordered = sorted(nanoseconds)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return Timing(
        median_us=statistics.median(ordered) / 1000,
        p99_us=p99 / 1000,
        mean_us=sum(ordered) / len(ordered) / 1000,
        total_s=sum(ordered) / 1e9,
    )


def measure(shape: Shape = Shape()) -> DecisionCost:
    """Fill the board, then time the read and the decision of every deployment, once per
    horizon; the decisions must agree, or the shorter read changed what the policy sees."""
    rng = random.Random(shape.seed)
    board, clock, fill = _fill(shape, rng)
    spec = AutoscalingSpec.model_validate(
        {
            "minReplicas": 1,
            "maxReplicas": 64,
            "metric": "concurrency",
            "target": 4,
            "objectives": {"ttft": {"targetSeconds": 0.5}},
        }
    )
    now = clock()
    gc.collect()
    ours, desired = _read_and_decide(board, shape, spec, samples_since(spec, now), "ours")
    baseline, before = _read_and_decide(board, shape, spec, now - RETENTION_SECONDS, "retention")
    if desired != before:
        raise SystemExit("the two horizons decided differently: the lookback is too short")
    held = sum(
        len(board.replica_samples(NAMESPACE, _bound(shape, d), 0.0))
        for d in range(shape.deployments)
    )
    counts: dict[int, int] = {}
    for replicas in desired:
        counts[replicas] = counts.get(replicas, 0) + 1
    return DecisionCost(shape, held, fill, ours, baseline, dict(sorted(counts.items())))


def _bound(shape: Shape, deployment: int) -> dict[str, str]:
    return {f"d{deployment:05d}-r{i}": f"cluster-{i}" for i in range(shape.replicas)}


def _read_and_decide(
    board: LoadBoard, shape: Shape, spec: AutoscalingSpec, since: float, label: str
) -> tuple[Reading, list[int]]:
    reads, decides, desired, samples_seen = [], [], [], 0
    now = NOW
    for d in range(shape.deployments):
        name, bound = f"d{d:05d}", _bound(shape, d)
        began = time.perf_counter_ns()
        samples = board.replica_samples(NAMESPACE, bound, since)
        gateway = board.gateway_samples((NAMESPACE, name), now - spec.stableWindowSeconds)
        read = time.perf_counter_ns()
        inputs = autoscaling.Inputs(
            now=now,
            current=shape.replicas,
            ready=frozenset(bound),
            starting=0,
            samples=samples,
            gateway=gateway,
            last_request_time=board.last_request((NAMESPACE, name)),
        )
        decided = time.perf_counter_ns()
        decision = autoscaling.decide(spec, inputs, autoscaling.State())
        done = time.perf_counter_ns()
        reads.append(read - began)
        decides.append(done - decided)
        desired.append(decision.desired)
        samples_seen += len(samples)
    both = [a + b for a, b in zip(reads, decides, strict=True)]
    reading = Reading(
        label,
        samples_seen / shape.deployments,
        _timing(reads),
        _timing(decides),
        _timing(both),
    )
    return reading, desired
