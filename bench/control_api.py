"""Performance claim: the control plane's writes and watch fan-out, against plain SQLAlchemy.

For each backend (SQLite in a temporary directory; PostgreSQL from a throwaway server, a fresh
database per scenario) and each watcher count W (default 1, 10, 100):

1. Start a real control plane process (`tests.support.control.ControlProcess`) on the store.
2. List `models` in namespace `bench` for its resourceVersion, then open W watches from it
   (`GET …/namespaces/bench/models?watch=true&resourceVersion=RV`) in a child process, so that
   reading W streams does not compete with the writer's event loop.
3. A writer creates N Model objects, then merge-patches `spec.description` of each: 2N writes
   over HTTP keep-alive connections, `--concurrency` (8) in flight. writes/s = 2N / wall time.
4. Fan-out latency, "send to delivered": the writer stamps `time.monotonic()` just before it
   sends each request; each watcher stamps every chunk as it arrives; the event is matched to
   its write by (name, resourceVersion from the write's response). Latency = arrival - send,
   over every (watcher, write) pair; p50 and p99 are reported. It includes the write's own
   round trip, whose p50 is shown beside it ("write p50"), so the delivery share is roughly
   the difference. CLOCK_MONOTONIC is one clock for all processes on a machine. The
   watchers read with a minimal HTTP/1.1 client (`bench/ndjson.py`, ~20 us of CPU an
   event) rather than httpx (~55 us), since on a small machine the client's CPU competes
   with the control plane's and would show up as watch latency. The CPU columns show
   how much each side used.
5. Correctness: every watcher must see every write's event exactly once, with the right type
   (ADDED / MODIFIED), and every event in strictly increasing resourceVersion order. Any
   miss, duplicate, reordering, failed write or broken stream is printed and the exit status
   is 1.

Baseline, once per backend: the same N inserts + N updates of the same JSON straight through
SQLAlchemy Core (table name/data/rv, one transaction per write, the same concurrency as
threads; no HTTP, validation, change log or watch). ratio = API writes/s / baseline writes/s.

Run from the repository root:  .venv/bin/python bench/control_api.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console, JustifyMethod  # noqa: E402
from rich.table import Table  # noqa: E402

from bench import backends, baseline, checks, scenario  # noqa: E402

DEFAULT_N = 500
DEFAULT_WATCHERS: tuple[int, ...] = (1, 10, 100)
QUICK_N = 100
QUICK_WATCHERS: tuple[int, ...] = (1, 10)


@dataclass(frozen=True)
class Options:
    n: int
    watchers: tuple[int, ...]
    backends: tuple[str, ...]
    concurrency: int


@dataclass
class Row:
    backend: str
    watchers: int
    n: int
    baseline_wps: float
    api_wps: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    write_p50_ms: float = float("nan")
    write_p99_ms: float = float("nan")
    plane_cpu_s: float = float("nan")
    watchers_cpu_s: float = float("nan")
    checked: int = 0
    extra: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    log_tail: str = ""


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, help=f"objects per scenario (default {DEFAULT_N})")
    parser.add_argument("--watchers", help="comma-separated watcher counts (default 1,10,100)")
    parser.add_argument("--backends", default=",".join(backends.NAMES), help="sqlite,postgres")
    parser.add_argument("--concurrency", type=int, default=8, help="writes in flight")
    parser.add_argument(
        "--quick", action="store_true", help=f"n={QUICK_N}, watchers 1,10 unless given"
    )
    args = parser.parse_args(argv)
    n = args.n or (QUICK_N if args.quick else DEFAULT_N)
    counts = QUICK_WATCHERS if args.quick else DEFAULT_WATCHERS
    if args.watchers:
        counts = tuple(int(part) for part in args.watchers.split(","))
    names = tuple(part.strip() for part in args.backends.split(",") if part.strip())
    return Options(n=n, watchers=counts, backends=names, concurrency=args.concurrency)


def measure(options: Options, progress: Console) -> list[Row]:
    rows: list[Row] = []
    for name in options.backends:
        with backends.open_backend(name) as backend:
            with backend.fresh() as place:
                base = baseline.writes_per_second(
                    place.store_url, n=options.n, concurrency=options.concurrency
                )
            progress.print(f"{name}: baseline {base:,.0f} writes/s")
            for count in options.watchers:
                row = measure_one(backend, options, watchers=count, baseline_wps=base)
                progress.print(
                    f"{name}: {count} watchers: {row.api_wps:,.0f} writes/s,"
                    f" p99 {row.p99_ms:,.1f} ms, {len(row.problems)} problems"
                    f" ({row.seconds:.1f}s)"
                )
                rows.append(row)
    return rows


def measure_one(
    backend: backends.Backend, options: Options, *, watchers: int, baseline_wps: float
) -> Row:
    row = Row(backend.name, watchers, options.n, baseline_wps)
    started = time.monotonic()
    try:
        with backend.fresh() as place:
            outcome = scenario.run(
                place, n=options.n, watcher_count=watchers, concurrency=options.concurrency
            )
    except scenario.ScenarioFailed as exc:
        row.problems.append(f"scenario failed: {exc}")
        return row
    finally:
        row.seconds = time.monotonic() - started
    fill(row, outcome)
    return row


def fill(row: Row, outcome: scenario.Outcome) -> None:
    verdict = outcome.verdict
    row.api_wps = outcome.writes_per_second
    row.p50_ms = checks.percentile(verdict.latencies_ms, 50)
    row.p99_ms = checks.percentile(verdict.latencies_ms, 99)
    round_trips = [(w.done - w.sent) * 1000.0 for w in outcome.run.writes]
    row.write_p50_ms = checks.percentile(round_trips, 50)
    row.write_p99_ms = checks.percentile(round_trips, 99)
    row.plane_cpu_s = outcome.cpu.plane
    row.watchers_cpu_s = outcome.cpu.watchers
    row.checked = verdict.checked
    row.extra = verdict.extra
    row.problems = outcome.problems
    row.log_tail = outcome.log_tail


def table(rows: Sequence[Row]) -> Table:
    out = Table(title="control plane API: writes and watch fan-out (latencies in ms)")
    headers = ["backend", "watchers", "N", "API writes/s", "baseline writes/s", "ratio"]
    headers += ["fan-out p50", "fan-out p99", "write p50", "write p99", "events checked"]
    headers += ["CPU s plane", "CPU s watchers", "result"]
    for header in headers:
        justify: JustifyMethod = "left" if header == "backend" else "right"
        out.add_column(header, justify=justify, no_wrap=True)
    for row in rows:
        ratio = row.api_wps / row.baseline_wps if row.baseline_wps else float("nan")
        result = "ok" if not row.problems else f"[bold red]FAIL ({len(row.problems)})[/]"
        out.add_row(
            row.backend, str(row.watchers), str(row.n), f"{row.api_wps:,.0f}",
            f"{row.baseline_wps:,.0f}", f"{ratio:.3f}", f"{row.p50_ms:,.1f}",
            f"{row.p99_ms:,.1f}", f"{row.write_p50_ms:,.1f}", f"{row.write_p99_ms:,.1f}",
            f"{row.checked:,}", f"{row.plane_cpu_s:.1f}", f"{row.watchers_cpu_s:.1f}", result,
        )  # fmt: skip
    return out


def header(console: Console, options: Options) -> None:
    console.print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    cpus = len(os.sched_getaffinity(0))
    console.print(
        f"machine: {platform.node()}, {platform.machine()}, nproc={cpus},"
        f" {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )
    console.print(
        f"settings: N={options.n} (2N writes), watchers={list(options.watchers)},"
        f" backends={list(options.backends)}, {options.concurrency} writes in flight"
    )


def report_problems(console: Console, rows: Sequence[Row]) -> None:
    for row in rows:
        if not row.problems:
            continue
        console.rule(f"[bold red]FAILED: {row.backend}, {row.watchers} watchers[/]")
        for problem in row.problems:
            console.print(f"  {problem}", markup=False)
        if row.log_tail:
            console.print("  control plane log tail:")
            console.print(row.log_tail, markup=False)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    console = Console(width=200)
    header(console, options)
    started = time.monotonic()
    rows = measure(options, Console(stderr=True))
    console.print(table(rows))
    console.print(
        "fan-out = watcher receipt - write request sent, over every (watcher, write) pair;"
        " write = the write's own round trip; ratio = API / baseline writes/s;\nCPU s = CPU"
        " seconds the control plane / the watcher process used from the first write to the"
        " last event (a sum near 2 x wall time means the machine was saturated)."
    )
    extra = sum(row.extra for row in rows)
    if extra:
        console.print(f"events not caused by the benchmark (allowed, not timed): {extra}")
    report_problems(console, rows)
    failed = any(row.problems for row in rows)
    verdict = "[bold red]FAILED[/]" if failed else "all watchers saw every event once, in order"
    console.print(f"{verdict}; took {time.monotonic() - started:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
