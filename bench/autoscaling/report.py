"""The bench's tables, as data: printed with rich, or written as Markdown (--markdown)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from bench.autoscaling.coldstart import ColdStart
from bench.autoscaling.decisions import DecisionCost
from bench.autoscaling.figures import Ramp, Ratios, RunFigures, ratio
from bench.autoscaling.runs import RunResult


@dataclass(frozen=True)
class Grid:
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def show(grids: list[Grid], console: Console) -> None:
    for grid in grids:
        caption = "\n".join(grid.notes) or None
        table = Table(
            title=grid.title, title_justify="left", caption=caption, caption_justify="left"
        )
        for index, header in enumerate(grid.headers):
            table.add_column(header, justify="left" if index == 0 else "right")
        for row in grid.rows:
            table.add_row(*row)
        console.print(table)


_NUMBER = re.compile(r"^(-|[-+]?[\d.,]+ ?(ms|s|µs|×|%)?)$")


def markdown(grids: list[Grid]) -> str:
    parts = []
    for grid in grids:
        lines = [f"**{grid.title}**", "", "| " + " | ".join(grid.headers) + " |"]
        lines.append("|" + "|".join(_align(grid, i) for i in range(len(grid.headers))) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in grid.rows]
        lines += ["", *grid.notes] if grid.notes else []
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _align(grid: Grid, column: int) -> str:
    """Right for a column of numbers, else left."""
    cells = [row[column] for row in grid.rows if column < len(row) and row[column]]
    numeric = column > 0 and cells and all(_NUMBER.match(cell) for cell in cells)
    return "---:" if numeric else "---"


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}×"


def cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def errors(by_kind: dict[str, int]) -> str:
    return ",".join(f"{k}:{n}" for k, n in sorted(by_kind.items())) or "0"


def phases(runs: list[RunFigures]) -> Grid:
    rows = []
    for run in runs:
        for index, p in enumerate(run.phases):
            rows.append(
                [
                    run.label,
                    f"{index + 1}: {p.clients} clients, {p.end - p.start:.0f} s",
                    str(p.requests),
                    errors(p.errors),
                    ms(p.ttft_p50),
                    ms(p.ttft_p90),
                    ms(p.latency_p50),
                    ms(p.latency_p90),
                    f"{p.live_mean:.2f}",
                    f"{p.ready_mean:.2f}",
                    cores(p.bench_cores),
                    cores(p.other_cores),
                ]
            )
    headers = [
        "run",
        "phase",
        "requests",
        "errors",
        "TTFT p50",
        "TTFT p90",
        "latency p50",
        "latency p90",
        "replicas (mean)",
        "ready (mean)",
        "bench cores",
        "other cores",
    ]
    notes = [
        "bench cores: CPU this bench's processes (fleet, engines, load generator) kept busy; "
        "other cores: the rest of the machine's busy CPU (someone else's load)"
    ]
    return Grid("Per phase", headers, rows, notes)


def totals(ours: RunFigures, baseline: RunFigures, ratios: Ratios) -> Grid:
    rows = [
        [
            r.label,
            f"{r.seconds:.0f}",
            f"{r.replica_seconds:.0f}",
            f"{r.ready_replica_seconds:.0f}",
            str(r.peak_live),
            str(r.requests),
            errors(r.errors),
            cores(r.bench_cores),
            cores(r.other_cores),
        ]
        for r in (ours, baseline)
    ]
    rows.append(
        [
            "ours / baseline",
            "",
            x(ratios.replica_seconds),
            x(ratios.ready_replica_seconds),
            "",
            x(ours.requests / baseline.requests if baseline.requests else None),
            "",
            "",
            "",
        ]
    )
    headers = [
        "run",
        "seconds",
        "replica-seconds",
        "ready replica-seconds",
        "peak replicas",
        "requests",
        "errors",
        "bench cores",
        "other cores",
    ]
    return Grid("Replica-seconds over the load", headers, rows)


def ttft_ratios(ours: RunFigures, ratios: Ratios) -> Grid:
    rows = [
        [f"{i + 1}: {p.clients} clients", x(a), x(b)]
        for i, (p, a, b) in enumerate(
            zip(ours.phases, ratios.ttft_p50, ratios.ttft_p90, strict=False)
        )
    ]
    return Grid("TTFT, autoscaled / fixed at the peak", ["phase", "p50", "p90"], rows)


def ramps(runs: list[tuple[str, list[Ramp]]], seconds: float) -> Grid:
    rows = []
    for label, found in runs:
        for ramp in found:
            rows.append(
                [
                    label,
                    f"{ramp.clients_before} → {ramp.clients} clients at {ramp.at:.0f} s",
                    str(ramp.requests),
                    ms(ramp.ttft_p50),
                    ms(ramp.ttft_p90),
                    since(ramp.scaled_after),
                    since(ramp.capacity_after),
                    str(ramp.capacity),
                ]
            )
    if len(runs) == 2:
        for ours, baseline in zip(runs[0][1], runs[1][1], strict=False):
            rows.append(
                [
                    "ours / baseline",
                    f"at {ours.at:.0f} s",
                    "",
                    x(ratio(ours.ttft_p50, baseline.ttft_p50)),
                    x(ratio(ours.ttft_p90, baseline.ttft_p90)),
                    "",
                    "",
                    "",
                ]
            )
    headers = [
        "run",
        "step up",
        "requests",
        "TTFT p50",
        "TTFT p90",
        "first Scaled after",
        "full capacity after",
        "ready replicas then",
    ]
    notes = [
        f"requests sent in the first {seconds:g} s after the step; full capacity: the first "
        "sample with as many Ready replicas as the phase ever had"
    ]
    return Grid(f"The ramp: the first {seconds:g} s after each step up", headers, rows, notes)


def since(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"


def scaled(result: RunResult) -> Grid:
    rows = [[f"{t:.1f} s", message] for t, message in result.scaled]
    return Grid(
        f"{result.spec.label}: Scaled events (time since the load started)",
        ["time", "message"],
        rows,
    )


def placement(results: list[RunResult]) -> Grid:
    rows = []
    for result in results:
        peaks: dict[str, int] = {}
        for s in result.samples:
            for cluster, (live, _) in s.clusters.items():
                peaks[cluster] = max(peaks.get(cluster, 0), live)
        rows.append([result.spec.label, ", ".join(f"{c}: {n}" for c, n in peaks.items())])
    return Grid("Most replicas seen per cluster", ["run", "clusters"], rows)


def cold(start: ColdStart) -> list[Grid]:
    points = [[p.label, "-" if p.at is None else f"{p.at:.3f} s", p.source] for p in start.points]
    segments = [
        [
            s.label,
            "-" if s.seconds is None else f"{s.seconds:.3f} s",
            f"{s.between[0]} → {s.between[1]}",
        ]
        for s in start.segments
    ]
    if start.engine_import_seconds is not None:
        segments.append(
            [
                "(apart) fresh interpreter importing the engine and torch",
                f"{start.engine_import_seconds:.3f} s",
                "spawn → exit, measured alone",
            ]
        )
    if start.autoscaler_cold_start_seconds is not None:
        segments.append(
            [
                "(the autoscaler's own) status.autoscaling.coldStartSeconds",
                f"{start.autoscaler_cold_start_seconds:.3f} s",
                "replica first seen → first seen Ready",
            ]
        )
    title = f"Cold start from zero: replica {start.replica} on {start.cluster}"
    return [
        Grid(f"{title}, timeline", ["point", "since request sent", "source"], points),
        Grid(f"{title}, breakdown", ["segment", "seconds", "between"], segments),
    ]


def decision_cost(cost: DecisionCost) -> Grid:
    shape = cost.shape
    rows = []
    for reading, named in (
        (cost.baseline, "whole retention (baseline)"),
        (cost.ours, "stable window + lookback (ours)"),
    ):
        for label, t in (
            ("board read", reading.board_read),
            ("decide", reading.decide),
            ("read + decide", reading.both),
        ):
            rows.append(
                [
                    named,
                    f"{reading.samples_per_deployment:.0f}",
                    label,
                    f"{t.median_us:.1f}",
                    f"{t.p99_us:.1f}",
                    f"{t.mean_us:.1f}",
                    f"{t.total_s:.3f}",
                ]
            )
    ratio = cost.ours.both.median_us / cost.baseline.both.median_us
    rows.append(["ours / baseline", "", "read + decide", f"{ratio:.2f}×", "", "", ""])
    title = (
        f"Autoscaler cost per deployment: {shape.deployments} deployments × {shape.replicas} "
        f"replicas, {shape.window:g} s of samples every {shape.interval:g} s "
        f"({cost.samples} samples held)"
    )
    columns = ["samples read", "samples/deployment", "step", "median µs", "p99 µs", "mean µs"]
    return Grid(title, [*columns, "all deployments, s"], rows)
