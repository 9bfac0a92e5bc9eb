"""Start a real `inferplane control` process on a loopback port, for integration tests."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support import pki


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ControlProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    store_url: str | None = None
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    tls: pki.ServerFiles | None = None
    """Serve HTTPS with these files; the readiness probe and http() verify against its CA."""
    client: pki.ClientFiles | None = None
    """The certificate the probe and http() present (a control plane that asks for one)."""

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx verifies this control plane with: its CA (and our certificate)."""
        return pki.client_context(self.tls.ca, self.client) if self.tls is not None else True

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    @property
    def log_path(self) -> Path:
        return self.data_dir / "control.log"

    def start(self, *, timeout: float = 20.0) -> float:
        """Start and wait for /readyz; returns the seconds it took."""
        args = [sys.executable, "-m", "inferplane", "control", "--port", str(self.port)]
        args += ["--data-dir", str(self.data_dir), *self.extra_args]
        if self.store_url:
            args += ["--store", self.store_url]
        if self.tls is not None:
            args += ["--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        verify = self.verify
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=os.environ
            )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"control plane exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=0.5, verify=verify).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"control plane not ready in {timeout}s: {self.log_path.read_text()}")

    def stop(self, *, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def http(self, token: str | None = None) -> httpx.Client:
        bearer = token if token is not None else self.admin_token
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, verify=self.verify)
