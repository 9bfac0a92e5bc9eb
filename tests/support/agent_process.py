"""Start a real `inferplane agent` process on loopback, for integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class AgentProcess:
    control: str
    token: str
    cluster: str
    data_dir: Path
    pool_file: Path | None = None
    labels: str = "region=eu-west,tier=prod"
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    """Added to the test's environment (and so passed on to the engines)."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def start(self, *extra: str) -> None:
        args = [sys.executable, "-m", "inferplane", "agent", "--control", self.control]
        args += ["--token", self.token, "--cluster", self.cluster, "--labels", self.labels]
        args += ["--data-dir", str(self.data_dir), "--heartbeat", "1", "--load-interval", "1"]
        args += ["--drain-grace", "20", *self.extra_args, *extra]
        if self.pool_file is not None:
            args += ["--pool-file", str(self.pool_file)]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def engine_pid(self, replica: str) -> int | None:
        """The pid the agent's state file records for namespace/name."""
        try:
            state = json.loads((self.data_dir / "engines.json").read_text())
        except (OSError, ValueError):
            return None
        pid: int | None = (state["engines"].get(replica) or {}).get("pid")
        return pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
