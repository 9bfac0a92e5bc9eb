"""`inferplane up`: start the system's processes as children, wait for them, stop them together.

Each child runs in a session of its own, so a Ctrl-C in the terminal reaches only `up`, which
then stops the children one by one in reverse order (the agents, which stop their engines,
then the control plane last). On Linux each child is also told to die with `up`
(`PR_SET_PDEATHSIG`), so a killed `up` leaves nothing behind either.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from inferplane import lifeline

Readiness = Callable[[], bool]
"""Answers whether a started child is ready; called repeatedly until it says yes."""


def http_ready(url: str) -> Readiness:
    """Ready when GET `url` answers 200."""

    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return check


@dataclass
class Child:
    name: str
    args: list[str]
    ready: Readiness | None = None
    """None: ready as soon as it runs."""
    env: dict[str, str] = field(default_factory=dict)
    """Added to the supervisor's environment."""
    log_path: Path | None = None
    """Where stdout and stderr go; None: the supervisor's own."""
    stop_grace: float = 10.0
    """Seconds between SIGTERM and SIGKILL."""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "inferplane", *self.args]
        log: IO[bytes] | None = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                command,
                env={**env, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT if log is not None else None,
                start_new_session=True,
                preexec_fn=lifeline.die_with(os.getpid()),
            )
        finally:
            if log is not None:
                log.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                return False
            if self.ready is None or self.ready():
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after stop_grace; the exit status as `up` reports it (0 for a
        child that had already exited: `Supervisor.wait` reported it then)."""
        if self.process is None or self.process.poll() is not None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=self.stop_grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return _exit_code(self.process.returncode)


@dataclass
class Supervisor:
    children: list[Child]
    data_dir: Path
    started: list[Child] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        return {**os.environ, "INFERPLANE_DATA_DIR": str(self.data_dir)}

    def start(self, *, timeout: float = 30.0) -> list[Child]:
        """Start every child in order; return those that did not become ready."""
        return [child for child in self.children if not self.start_one(child, timeout=timeout)]

    def start_one(self, child: Child, *, timeout: float = 30.0) -> bool:
        """Start one child (it joins those stopped by `stop`); whether it became ready."""
        if child not in self.children:
            self.children.append(child)
        child.start(self.environment())
        self.started.append(child)
        return child.wait_ready(timeout)

    def wait(self, *, on_exit: Callable[[Child], None] = lambda _: None) -> None:
        """Block until SIGINT or SIGTERM (raised as KeyboardInterrupt) or until every child has
        exited. A child that exits is reported to `on_exit`; the others keep running (a lost
        agent's replicas move to the other plane; without the control plane, replicas keep
        serving)."""
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        reported: set[int] = set()
        try:
            while True:
                for child in self.started:
                    if not child.running and id(child) not in reported:
                        reported.add(id(child))
                        on_exit(child)
                if len(reported) == len(self.started):
                    return
                time.sleep(0.2)
        except KeyboardInterrupt:
            return

    def stop(self) -> int:
        """Stop the children in reverse order, each fully before the next; the first failure."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        code = 0
        for child in reversed(self.started):
            code = code or child.stop()
        return code


def _exit_code(returncode: int | None) -> int:
    """A child that ended on the SIGTERM/SIGINT we sent stopped cleanly: the control plane
    exits of the signal once shut down (uvicorn raises it again), the engine exits 0."""
    if returncode in (None, 0, -signal.SIGTERM, -signal.SIGINT):
        return 0
    return abs(returncode)
