"""Autoscaling claim, live: autoscaled vs fixed at the peak, cold start, decision cost.

The demo model autoscaled against the same model fixed at its peak size, under the same
stepped load, on this machine; its cold start from zero; the autoscaler's cost per decision.

One run starts, in a temporary data dir on free loopback ports, a control plane, a gateway and
the agents of two local planes of different sizes (local-a's pool has room for 3 replicas of
one core and 1 GiB, local-b's for 4; each engine gets one torch thread). The demo model is
built once into MODEL_DIR/models (~100 s of training) and reused after (--model-dir, default
$INFERPLANE_DATA_DIR or ~/.inferplane); the engines load it from there as a file:// source.

1. Cold start: a Deployment at zero (minReplicas 0) gets one streamed request through the
   gateway; the wait is split into gateway hold + autoscaler + replica creation, scheduling
   (created → Scheduled), engine start (Scheduled → engine process started), model load
   (→ the agent's first good health probe) and first token (→ first SSE chunk, with the
   Replica's Ready and its Endpoint in between), from a watch, the objects and the agent's log.
2. Two runs, one after the other, of the same work: the demo model (a) autoscaled (KPA on
   concurrency, --min-replicas 1 to --max-replicas, target --target 4, as `inferplane up`'s
   demo), (b) fixed at --baseline-replicas (the peak size). Each gets the stepped load of
   `inferplane load` (its own code, closed-loop clients of streamed chat completions of
   --max-tokens tokens; default 2 → 12 → 2 clients for 30 / 90 / 90 s, --quick 15 / 45 / 30)
   while the deployment's replicas (live, ready, spec.replicas, per cluster) are read from
   the control API every second.
3. The autoscaler's decision cost, pure Python: a LoadBoard full (256 samples, every 2 s, of
   4 replicas for each of 10,000 deployments); per deployment, the board's read and one
   `policy.autoscaling.decide`, timed alone (median, p99, and the sum: one tick over the
   whole fleet), reading since the controller's horizon (ours) and the whole retention (the
   baseline, as the controller read before), with their ratio.

Prints, per run and phase: requests, errors, TTFT and request latency p50/p90, mean live and
ready replicas, and the cores this bench's processes and everything else on the machine kept
busy (a shared machine shows there); replica-seconds (integral of live and of ready replicas
over the load) and the ratio autoscaled / fixed, of those and of TTFT per phase; the Scaled
events; the most replicas per cluster; the cold-start timeline and breakdown; the decision
cost. Writes the time series and results as JSON, a PNG (replicas over time with the load
steps, TTFT over time; needs matplotlib: pip install 'inferplane[bench]') and, with
--markdown, the tables.
Progress goes to stderr; every process is stopped on exit, Ctrl-C included. Logs of the
processes are copied to ~/.cache/inferplane-bench/logs/autoscaling-live-*/.

    .venv/bin/python bench/autoscaling_live.py [--quick] [--steps 2:30,12:90,2:90]
        [--min-replicas 1] [--max-replicas N] [--baseline-replicas N] [--target 4]
        [--model-dir DIR] [--json FILE] [--png FILE | --write-docs-figure] [--markdown FILE]
        [--no-cold-start] [--no-runs] [--no-decision-cost] [--deployments 10000]
        [--decision-window 512]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.autoscaling import coldstart, decisions, figures, fleet, objects, plot, report, runs
from bench.autoscaling.progress import elapsed, note
from bench.jsonout import write_json
from inferplane import datadir, lifeline
from inferplane.cli import loadstats as stats
from inferplane.cli import updemo

CACHE = Path.home() / ".cache" / "inferplane-bench"
DOCS_FIGURE = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "autoscaling.png"
STEPS, QUICK_STEPS = "2:30,12:90,2:90", "2:15,12:45,2:30"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--quick", action="store_true", help=f"shorter load steps: {QUICK_STEPS}")
    add("--steps", help=f"the load, CLIENTS:SECONDS,... (default {STEPS})")
    add("--min-replicas", type=int, default=1, help="autoscaled run's minReplicas (default 1)")
    add("--max-replicas", type=int, help="its maxReplicas (default: ceil(peak clients / target))")
    add("--baseline-replicas", type=int, help="the fixed run's replicas (default: max replicas)")
    add(
        "--target",
        type=float,
        default=updemo.DEMO_TARGET,
        help=f"concurrency per replica the autoscaler aims at (default {updemo.DEMO_TARGET})",
    )
    add(
        "--ramp-seconds",
        type=float,
        default=15.0,
        help="the window after each step up reported as the ramp (default 15)",
    )
    add("--max-tokens", type=int, default=32, help="max_tokens of each request (default 32)")
    add(
        "--model-dir",
        type=Path,
        default=datadir.default(),
        help="data dir whose models/ holds the demo model, built there if missing "
        "(default $INFERPLANE_DATA_DIR, else ~/.inferplane: the one `inferplane up` uses)",
    )
    add(
        "--json",
        default=str(CACHE / "autoscaling-live.json"),
        help="where the results and time series go; - for stdout (default %(default)s)",
    )
    add("--png", type=Path, help=f"the plot (default {CACHE / 'autoscaling.png'})")
    add("--write-docs-figure", action="store_true", help=f"the plot to {DOCS_FIGURE}")
    add("--markdown", type=Path, help="also write the printed tables as Markdown to this file")
    add("--no-cold-start", action="store_true", help="skip the cold start from zero")
    add("--no-runs", action="store_true", help="skip the autoscaled and fixed runs")
    add("--no-decision-cost", action="store_true", help="skip the decision cost")
    add(
        "--deployments",
        type=int,
        default=10_000,
        help="deployments in the decision-cost board (default 10000)",
    )
    add(
        "--decision-window",
        type=float,
        default=512.0,
        help="seconds of samples (one every 2 s) the board holds per replica (default 512, "
        "the board's 256 per replica)",
    )
    args = parser.parse_args()
    try:
        args.plan = stats.parse_steps(args.steps or (QUICK_STEPS if args.quick else STEPS))
    except ValueError as exc:
        parser.error(f"--steps: {exc}")
    peak = max(step.clients for step in args.plan)
    args.max_replicas = args.max_replicas or max(args.min_replicas, math.ceil(peak / args.target))
    args.baseline_replicas = args.baseline_replicas or args.max_replicas
    args.png = args.png or (DOCS_FIGURE if args.write_docs_figure else CACHE / "autoscaling.png")
    return args


def run_specs(args: argparse.Namespace) -> tuple[runs.RunSpec, runs.RunSpec]:
    autoscaling = {
        "minReplicas": args.min_replicas,
        "maxReplicas": args.max_replicas,
        "metric": "concurrency",
        "target": args.target,
    }
    auto = runs.RunSpec("autoscaled", "autoscaled", args.min_replicas, autoscaling)
    fixed = runs.RunSpec(
        "fixed", f"fixed at {args.baseline_replicas}", args.baseline_replicas, None
    )
    return auto, fixed


def demo_model(model_dir: Path) -> Path:
    from rich.console import Console

    from inferplane.engine import demo

    where = demo.demo_path(model_dir.expanduser(), demo.DemoSpec())
    if (where / demo.DONE_MARKER).exists():
        note("model", f"reusing the demo model in {where}")
    else:
        note("model", f"building the demo model into {where} (once, ~100 s of training)")
    return updemo.build_demo(model_dir.expanduser(), Console(stderr=True))


def live(args: argparse.Namespace, model: Path) -> dict[str, Any]:
    """Start the fleet, measure the cold start and the two runs; stop everything."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="autoscaling-live-") as tmp:
        data_dir = Path(tmp)
        try:
            with fleet.running(data_dir) as started:
                with started.client() as client:
                    client.apply(objects.model(model))
                if not args.no_cold_start:
                    out["cold"] = coldstart.measure(started)
                if not args.no_runs:
                    auto, fixed = run_specs(args)
                    kwargs = {"max_tokens": args.max_tokens}
                    out["runs"] = [
                        runs.run(started, spec, args.plan, **kwargs) for spec in (auto, fixed)
                    ]
        finally:
            keep_logs(data_dir)
    return out


def keep_logs(data_dir: Path) -> None:
    """The processes' and engines' logs, out of the data dir before it goes."""
    target = CACHE / "logs" / f"autoscaling-live-{time.strftime('%Y%m%d-%H%M%S')}"
    for sub in ("logs", "agents"):
        if (data_dir / sub).exists():
            shutil.copytree(data_dir / sub, target / sub, ignore=shutil.ignore_patterns("*.sock"))
    note("logs", f"kept in {target}")


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    lifeline.interruptible()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"command: {' '.join(sys.argv)}\ncores: {os.cpu_count()}; load average {load}")
    measured: dict[str, Any] = {}
    try:
        if not (args.no_cold_start and args.no_runs):
            measured = live(args, demo_model(args.model_dir))
            if args.json != "-":  # kept even if what follows fails
                save_json(args.json, document(args, measured, load))
        if not args.no_decision_cost:
            measured["cost"] = decision_cost(args)
    except KeyboardInterrupt:
        note("interrupted", "every process was stopped")
        raise SystemExit(130) from None
    finish(args, measured, load)


def decision_cost(args: argparse.Namespace) -> decisions.DecisionCost:
    shape = decisions.Shape(deployments=args.deployments, window=args.decision_window)
    note(
        "decision cost",
        f"{shape.deployments} deployments × {shape.replicas} replicas, {shape.window:g} s of "
        f"samples every {shape.interval:g} s in a LoadBoard",
    )
    return decisions.measure(shape)


def save_json(where: str, data: dict[str, object]) -> None:
    if where != "-":
        Path(where).parent.mkdir(parents=True, exist_ok=True)
    write_json(where, data)


def finish(args: argparse.Namespace, measured: dict[str, Any], load: str) -> None:
    from rich.console import Console

    grids, data = tables(args, measured), document(args, measured, load)
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)
    report.show(grids, console)
    print(f"({elapsed():.0f} s in all; load average now {os.getloadavg()[0]:.2f})")
    if "runs" in measured:
        try:
            plot.save(args.png, measured["runs"])
            print(f"PNG in {args.png} ({args.png.stat().st_size // 1024} KiB)")
        except plot.MissingMatplotlib as exc:
            print(f"no PNG: {exc}", file=sys.stderr)
    if args.markdown:
        args.markdown.write_text(report.markdown(grids))
        print(f"Markdown in {args.markdown}")
    save_json(args.json, data)


def tables(args: argparse.Namespace, measured: dict[str, Any]) -> list[report.Grid]:
    grids: list[report.Grid] = []
    if "cold" in measured:
        grids += report.cold(measured["cold"])
    if "runs" in measured:
        auto, fixed = measured["runs"]
        ours, baseline = figures.summarise(auto), figures.summarise(fixed)
        ratios = figures.ratios(ours, baseline)
        seconds = args.ramp_seconds
        found = [(r.spec.label, figures.ramps(r, seconds)) for r in (auto, fixed)]
        grids += [
            report.phases([ours, baseline]),
            report.ramps(found, seconds),
            report.totals(ours, baseline, ratios),
            report.ttft_ratios(ours, ratios),
            report.scaled(auto),
            report.placement([auto, fixed]),
        ]
    if "cost" in measured:
        grids.append(report.decision_cost(measured["cost"]))
    return grids


def document(args: argparse.Namespace, measured: dict[str, Any], load: str) -> dict[str, object]:
    data: dict[str, object] = {
        "command": sys.argv,
        "machine": {
            "cores": os.cpu_count(),
            "load_average_start": load,
            "load_average_end": f"{os.getloadavg()[0]:.2f}",
        },
        "config": {
            "steps": [asdict(s) for s in args.plan],
            "min_replicas": args.min_replicas,
            "max_replicas": args.max_replicas,
            "target": args.target,
            "baseline_replicas": args.baseline_replicas,
            "max_tokens": args.max_tokens,
            "planes": [asdict(p) for p in fleet.PLANES],
        },
    }
    if "cold" in measured:
        data["cold_start"] = asdict(measured["cold"])
    if "runs" in measured:
        auto, fixed = measured["runs"]
        ours, baseline = figures.summarise(auto), figures.summarise(fixed)
        data["runs"] = {r.spec.label: run_json(r) for r in (auto, fixed)}
        data["ratios"] = asdict(figures.ratios(ours, baseline))
        data["ramps"] = {
            r.spec.label: [asdict(ramp) for ramp in figures.ramps(r, args.ramp_seconds)]
            for r in (auto, fixed)
        }
    if "cost" in measured:
        data["decision_cost"] = asdict(measured["cost"])
    return data


def run_json(result: runs.RunResult) -> dict[str, Any]:
    origin = result.started
    return {
        "spec": asdict(result.spec),
        "started_epoch": origin,
        "seconds": result.elapsed,
        "ready_seconds": result.ready_seconds,
        "figures": asdict(figures.summarise(result)),
        "scaled": result.scaled,
        "replicas": [{**asdict(s), "time": round(s.time - origin, 3)} for s in result.samples],
        "load_steps": [
            stats.as_json(s)
            for s in stats.per_step(result.plan, result.outcomes, elapsed=result.elapsed)
        ],
        "load_series": stats.series(result.plan, result.outcomes, elapsed=result.elapsed),
        "ttft_bins_5s": figures.ttft_bins(result, 5.0),
        "requests": [
            [
                round(o.start, 3),
                round(o.end, 3),
                None if o.ttft is None else round(o.ttft, 4),
                o.error,
            ]
            for o in result.outcomes
        ],
    }


if __name__ == "__main__":
    main()
