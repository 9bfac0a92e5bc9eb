"""A real `inferplane engine` process on loopback, started and stopped by a context manager."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai

from tests.support.control import free_port


@dataclass
class EngineProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="none", max_retries=0)

    def metric(self, name: str, labels: str = "") -> float:
        """The value of `name` in /metrics; `labels` must appear inside its braces."""
        text = httpx.get(f"{self.url}/metrics").text
        pattern = rf"^{re.escape(name)}\{{[^}}]*{re.escape(labels)}[^}}]*\}} (\S+)$"
        match = re.search(pattern, text, re.MULTILINE)
        assert match, f"{name}{{{labels}}} not in /metrics"
        return float(match.group(1))

    def health(self) -> int | None:
        """The status of GET /health; None when no connection could be made."""
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code
        except httpx.TransportError:
            return None

    def sigterm(self) -> None:
        self.process.send_signal(signal.SIGTERM)


def wait_for(condition: Callable[[], bool], *, timeout: float = 10.0, what: str = "") -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds (a limit, not a claim
    about speed)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)


@contextmanager
def running_engine(model: str, log: Path, *extra: str) -> Iterator[EngineProcess]:
    """`inferplane engine --model MODEL --port <free> EXTRA...`, healthy, SIGTERMed after."""
    port = free_port()
    args = [sys.executable, "-m", "inferplane", "engine", "--model", model]
    args += ["--port", str(port), "--log-level", "warning", *extra]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
    server = EngineProcess(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_healthy(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_healthy(server: EngineProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"engine exited: {server.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/health", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"engine not healthy in {timeout}s: {server.log.read_text()[-3000:]}")
