"""`inferplane up`: start the system's processes as children, wait for them, stop them together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Child:
    name: str
    args: list[str]
    ready_url: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "inferplane", *self.args]
        self.process = subprocess.Popen(command, env=env)

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            try:
                if httpx.get(self.ready_url, timeout=1.0).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False


@dataclass
class Supervisor:
    children: list[Child]
    data_dir: Path

    def start(self, *, timeout: float = 30.0) -> list[Child]:
        """Start every child in order; return those that did not become ready."""
        env = {**os.environ, "INFERPLANE_DATA_DIR": str(self.data_dir)}
        failed = []
        for child in self.children:
            child.start(env)
            if not child.wait_ready(timeout):
                failed.append(child)
        return failed

    def wait(self) -> int:
        """Block until a child exits or we are told to stop; then stop the rest."""
        stop = False

        def on_signal(signum: int, frame: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        while not stop:
            for child in self.children:
                if child.process is not None and child.process.poll() is not None:
                    stop = True
            time.sleep(0.2)
        return self.stop()

    def stop(self, *, grace: float = 10.0) -> int:
        for child in reversed(self.children):
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        code = 0
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            code = code or _exit_code(child.process.returncode)
        return code


def _exit_code(returncode: int | None) -> int:
    """A child that ended on the SIGTERM/SIGINT we sent stopped cleanly: the control plane
    exits of the signal once shut down (uvicorn raises it again), the engine exits 0."""
    if returncode in (None, 0, -signal.SIGTERM, -signal.SIGINT):
        return 0
    return abs(returncode)
