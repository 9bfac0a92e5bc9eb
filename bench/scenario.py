"""One API scenario: a real control plane, W watchers in a child process, one writer."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tests.support import control

from bench import backends, checks, cpu, watchers, writer
from bench import objects as bench_objects

READY_TIMEOUT_S = 60.0
GRACE_S = 30.0
LOG_TAIL_CHARS = 2000


@dataclass
class Outcome:
    run: writer.WriteRun
    verdict: checks.Verdict
    cpu: cpu.CpuUse
    log_tail: str = ""
    """The end of the control plane's log, kept when something went wrong."""

    @property
    def writes_per_second(self) -> float:
        return len(self.run.writes) / self.run.seconds if self.run.seconds else 0.0

    @property
    def problems(self) -> list[str]:
        return self.run.errors + self.verdict.problems


class ScenarioFailed(RuntimeError):
    """The scenario could not run at all (the watchers never opened, the plane died...)."""


def run(place: backends.Place, *, n: int, watcher_count: int, concurrency: int) -> Outcome:
    """Start the control plane on `place`, watch, write, stop; answer what was measured."""
    plane = control.ControlProcess(place.data_dir, store_url=place.store_url)
    plane.start()
    try:
        outcome = _measure(plane, n=n, watcher_count=watcher_count, concurrency=concurrency)
    finally:
        plane.stop()
    if outcome.problems:
        outcome.log_tail = _log_tail(plane)
    return outcome


def _measure(
    plane: control.ControlProcess, *, n: int, watcher_count: int, concurrency: int
) -> Outcome:
    spec = watchers.WatchSpec(
        url=plane.url,
        token=plane.admin_token,
        start_version=_list_version(plane),
        watchers=watcher_count,
        grace_s=GRACE_S,
    )
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=watchers.serve, args=(spec, theirs), daemon=True)
    child.start()
    theirs.close()  # so that a dead child reads as EOF, not as silence
    try:
        _expect(ours, "ready", READY_TIMEOUT_S)
        plane_cpu, writer_cpu = _plane_cpu(plane), time.process_time()
        run = asyncio.run(writer.run(plane.url, plane.admin_token, n=n, concurrency=concurrency))
        writer_cpu = time.process_time() - writer_cpu
        ours.send("done")
        result: watchers.WatchResult = _expect(ours, "result", GRACE_S + READY_TIMEOUT_S)
        plane_cpu = _plane_cpu(plane) - plane_cpu
        child.join(timeout=10)
    finally:
        if child.is_alive():
            child.terminate()
            child.join()
    use = cpu.CpuUse(plane=plane_cpu, watchers=result.cpu_seconds, writer=writer_cpu)
    return Outcome(run, checks.judge(run.writes, result.logs), use)


def _plane_cpu(plane: control.ControlProcess) -> float:
    if plane.process is None:
        raise ScenarioFailed("the control plane was not started")
    return cpu.process_seconds(plane.process.pid)


def _list_version(plane: control.ControlProcess) -> int:
    with plane.http() as http:
        response = http.get(bench_objects.MODELS_PATH)
        response.raise_for_status()
        return int(response.json()["metadata"]["resourceVersion"])


def _expect(conn: Connection, tag: str, timeout: float) -> Any:
    """The payload of the child's next message, which must carry `tag`."""
    if not conn.poll(timeout):
        raise ScenarioFailed(f"the watcher process sent no {tag!r} within {timeout:.0f}s")
    try:
        got, payload = conn.recv()
    except EOFError as exc:
        raise ScenarioFailed("the watcher process died") from exc
    if got != tag:
        raise ScenarioFailed(f"the watcher process answered {got!r}: {payload}")
    return payload


def _log_tail(plane: control.ControlProcess) -> str:
    if not plane.log_path.exists():
        return "(no log)"
    return plane.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
