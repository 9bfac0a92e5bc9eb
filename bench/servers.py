"""A benchmarked server as a child process: started in its own process group, waited for on
/health, stopped with its whole group, and the CPU it and the machine used meanwhile."""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server: its command line, environment and log file."""

    who: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    startup_timeout: float
    health: str = "/health"
    """The path that answers 200 once the server is ready."""
    verify: ssl.SSLContext | bool = True
    """How the health check verifies a server on https:// (a context trusting its CA)."""


@contextmanager
def running(spec: ServerSpec, url: str) -> Iterator[subprocess.Popen[bytes]]:
    """The server started in its own process group, healthy; stopped (the group) on exit."""
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    print(f"starting {spec.who}: {' '.join(spec.argv)}\n  log: {spec.log}", flush=True)
    with spec.log.open("w") as log:
        process = subprocess.Popen(
            spec.argv, stdout=log, stderr=subprocess.STDOUT, env=spec.env, start_new_session=True
        )
        try:
            wait_healthy(process, url, spec)
            yield process
        finally:
            stop(process, spec.who)


def wait_healthy(process: subprocess.Popen[bytes], url: str, spec: ServerSpec) -> None:
    start = time.monotonic()
    next_note = start + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{spec.who} exited with {process.returncode}:\n{tail(spec.log)}")
        try:
            answer = httpx.get(
                f"{url}{spec.health}", timeout=2, trust_env=False, verify=spec.verify
            )
            if answer.status_code == 200:
                print(f"{spec.who} is up after {time.monotonic() - start:.1f} s", flush=True)
                return
        except httpx.HTTPError:
            pass
        now = time.monotonic()
        if now - start > spec.startup_timeout:
            raise RuntimeError(f"{spec.who} not healthy after {spec.startup_timeout:.0f} s")
        if now >= next_note:
            print(f"  waiting for {spec.who}: {now - start:.0f} s", flush=True)
            next_note = now + 15
        time.sleep(0.5)


def stop(process: subprocess.Popen[bytes], who: str) -> None:
    """SIGTERM to the server's process group (vLLM runs three processes), SIGKILL after 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError):  # children that outlived their parent
        os.killpg(process.pid, signal.SIGKILL)
    print(f"{who} stopped", flush=True)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes in a process group (from /proc)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid:  # state, ppid, pgrp, ..., utime (11), stime (12)
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine have been busy (user, system, irq, steal)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuMark:
    """CPU counters at one moment: the server's group, this process, the whole machine."""

    server: float
    client: float
    machine: float

    @classmethod
    def now(cls, pgid: int) -> CpuMark:
        return cls(group_cpu_seconds(pgid), time.process_time(), machine_busy_seconds())


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
