"""The PNG: replicas over time for both runs with the load steps, and TTFT over time.
matplotlib is imported only here, and only when a plot is asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.autoscaling.figures import points, ttft_bins
from bench.autoscaling.runs import RunResult

INSTALL = "pip install 'inferplane[bench]'  (in this checkout: .venv/bin/pip install matplotlib)"
COLORS = ("tab:blue", "tab:orange")
BIN_SECONDS = 5.0


class MissingMatplotlib(RuntimeError):
    pass


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingMatplotlib(f"the plot needs matplotlib: {INSTALL}") from exc
    return plt


def save(path: Path, runs: list[RunResult]) -> None:
    plt = _pyplot()
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6.4), dpi=100)
    for result, color in zip(runs, COLORS, strict=False):
        _replicas(top, result, color)
        _ttft(bottom, result, color)
    _steps(top.twinx(), runs[0])
    for axis in (top, bottom):
        edge = 0.0
        for step in runs[0].plan[:-1]:
            edge += step.seconds
            axis.axvline(edge, color="grey", linewidth=0.6, linestyle=":")
        axis.grid(alpha=0.3)
    top.set_ylabel("replicas")
    top.set_ylim(bottom=0)
    top.yaxis.get_major_locator().set_params(integer=True)
    top.legend(loc="center left", fontsize=8)
    bottom.set_ylabel(f"TTFT (ms, requests sent per {BIN_SECONDS:g} s)")
    bottom.set_ylim(bottom=0)
    bottom.set_xlabel("seconds since the load started")
    bottom.legend(loc="upper left", fontsize=8)
    load = " → ".join(str(step.clients) for step in runs[0].plan)
    title = f"demo model, {load} clients: {' vs '.join(r.spec.label for r in runs)}"
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _replicas(axis: Any, result: RunResult, color: str) -> None:
    for attr, style in (("live", "-"), ("ready", "--")):
        series = [
            (t, v)
            for t, v in points(result.samples, result.started, attr)
            if -1 <= t <= result.elapsed
        ]
        if series:
            times, values = zip(*series, strict=True)
            axis.step(
                times,
                values,
                where="post",
                color=color,
                linestyle=style,
                label=f"{result.spec.label}: {attr}",
            )


def _steps(axis: Any, result: RunResult) -> None:
    times, clients, edge = [], [], 0.0
    for step in result.plan:
        times.append(edge)
        clients.append(step.clients)
        edge += step.seconds
    times.append(edge)
    clients.append(result.plan[-1].clients)
    axis.fill_between(times, clients, step="post", color="grey", alpha=0.12, label="clients")
    axis.set_ylabel("clients (grey)")
    axis.set_ylim(0, max(clients) * 1.6)


def _ttft(axis: Any, result: RunResult, color: str) -> None:
    bins = ttft_bins(result, BIN_SECONDS)
    for index, style in ((1, "-"), (2, ":")):
        series = [(row[0] + BIN_SECONDS / 2, row[index]) for row in bins if row[index] is not None]
        if series:
            times, values = zip(*series, strict=True)
            name = "p50" if index == 1 else "p90"
            axis.plot(
                times,
                [v * 1000 for v in values],
                color=color,
                linestyle=style,
                label=f"{result.spec.label}: TTFT {name}",
            )
