"""The autoscaler's cost per deployment and tick, pure Python and no process: a LoadBoard
holding a minute of samples (every 2 s) of 4 replicas for each of 10,000 deployments, and
gateway samples for each; then, per deployment, the controller's read of its window from
the board and one `policy.autoscaling.decide`, each timed alone."""

from __future__ import annotations

import gc
import random
import statistics
import time
from dataclasses import dataclass

from inferplane.api.autoscaling import AutoscalingSpec
from inferplane.control.loadboard import RETENTION_SECONDS, LoadBoard
from inferplane.policy import autoscaling

NAMESPACE = "bench"
NOW = 1_700_000_000.0


@dataclass(frozen=True)
class Shape:
    deployments: int = 10_000
    replicas: int = 4
    window: float = 60.0
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
class DecisionCost:
    shape: Shape
    samples: int
    """Replica samples held by the board."""
    fill_seconds: float
    board_read: Timing
    decide: Timing
    both: Timing
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
    """Fill the board, then time the read and the decision of every deployment once."""
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
    clusters = {f"r{i}": f"cluster-{i}" for i in range(shape.replicas)}
    reads, decides, desired = [], [], dict[int, int]()
    gc.collect()
    for d in range(shape.deployments):
        name = f"d{d:05d}"
        bound = {f"{name}-{r}": cluster for r, cluster in clusters.items()}
        now = clock()
        began = time.perf_counter_ns()
        samples = board.replica_samples(NAMESPACE, bound, now - RETENTION_SECONDS)
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
        desired[decision.desired] = desired.get(decision.desired, 0) + 1
    both = [a + b for a, b in zip(reads, decides, strict=True)]
    held = sum(
        len(
            board.replica_samples(NAMESPACE, {f"d{d:05d}-{r}": c for r, c in clusters.items()}, 0.0)
        )
        for d in range(shape.deployments)
    )
    return DecisionCost(
        shape,
        held,
        fill,
        _timing(reads),
        _timing(decides),
        _timing(both),
        dict(sorted(desired.items())),
    )
