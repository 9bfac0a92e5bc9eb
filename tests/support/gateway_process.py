"""Start real `inferplane gateway` and stub-upstream processes on loopback, for tests."""

from __future__ import annotations

import hashlib
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support import pki
from tests.support.control import free_port

FLEET_NAMESPACE = "inferplane-system"
FLEET_VIEWER_TOKEN = "sk-test-fleet-viewer"
"""A viewer key of the fleet's namespace that start() adds to every static config: it sees
every namespace's series on /metrics, as an operator's Prometheus does."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _wait_http(
    url: str,
    process: subprocess.Popen[bytes],
    log: Path,
    timeout: float,
    verify: ssl.SSLContext | bool = True,
) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=0.5, verify=verify).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not up in {timeout}s: {log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class StubProcess:
    """tests/support/upstream_stub.py as a process."""

    workdir: Path
    name: str = "a"
    mode: str = "ok"
    extra: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    tls: pki.ServerFiles | None = None
    """Serve HTTPS with these files (a private upstream); its probe verifies against its CA."""

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return pki.client_context(self.tls.ca) if self.tls is not None else True

    def start(self) -> StubProcess:
        args = [
            sys.executable,
            "-m",
            "tests.support.upstream_stub",
            "--port",
            str(self.port),
            "--name",
            self.name,
            "--mode",
            self.mode,
            *self.extra,
        ]
        if self.tls is not None:
            args += ["--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)]
        log = self.workdir / f"stub-{self.name}.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        _wait_http(f"{self.url}/stats", self.process, log, 20.0, self.verify)
        return self

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/stats", verify=self.verify).json()  # type: ignore[no-any-return]

    def stop(self) -> None:
        _stop(self.process)


@dataclass
class GatewayProcess:
    workdir: Path
    config: list[dict[str, Any]] | None = None
    control: str | None = None
    token: str | None = None
    extra: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    tls: pki.ServerFiles | None = None
    """Serve HTTPS with these files; the test's probes and http() verify against its CA."""
    metrics_token: str | None = None
    """The key metric() reads /metrics with (anonymous, it shows no tenant's series): unset,
    FLEET_VIEWER_TOKEN with a static config, else `token` (tests give the fleet admin's)."""

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx verifies this gateway with: its CA."""
        return pki.client_context(self.tls.ca) if self.tls is not None else True

    @property
    def log_path(self) -> Path:
        return self.workdir / "gateway.log"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "gateway-state"

    def start(self, *, wait_ready: bool = True) -> GatewayProcess:
        args = [
            sys.executable,
            "-m",
            "inferplane",
            "gateway",
            "--port",
            str(self.port),
            "--state-dir",
            str(self.state_dir),
            "--drain",
            "5",
            *self.extra,
        ]
        if self.tls is not None:
            args += ["--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)]
        if self.config is not None:
            path = self.workdir / "gateway.yaml"
            viewer = api_key("fleet-viewer", FLEET_VIEWER_TOKEN, role="viewer")
            viewer["metadata"]["namespace"] = FLEET_NAMESPACE
            path.write_text(yaml.safe_dump_all([*self.config, viewer]))
            args += ["--config", str(path)]
            self.metrics_token = self.metrics_token or FLEET_VIEWER_TOKEN
        else:
            assert self.control is not None and self.token is not None
            args += ["--control", self.control, "--token", self.token]
            self.metrics_token = self.metrics_token or self.token
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        probe = "/readyz" if wait_ready else "/healthz"
        started = time.monotonic()
        verify = self.verify
        while time.monotonic() - started < 20:
            _wait_http(f"{self.url}{probe}", self.process, self.log_path, 20.0, verify)
            if httpx.get(f"{self.url}{probe}", verify=verify).status_code == 200:
                return self
            time.sleep(0.05)
        raise RuntimeError(f"gateway not ready: {self.log_path.read_text()[-3000:]}")

    def http(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, verify=self.verify)

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include `labels`, read with `metrics_token`."""
        headers = {"Authorization": f"Bearer {self.metrics_token}"} if self.metrics_token else {}
        page = httpx.get(f"{self.url}/metrics", headers=headers, verify=self.verify)
        page.raise_for_status()
        total = 0.0
        for line in page.text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def stop(self, sig: int = signal.SIGTERM) -> None:
        _stop(self.process, sig)


def service(name: str, routes: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"routes": routes, **spec},
    }


def endpoint(name: str, url: str, deployment: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, **spec}
    if deployment is not None:
        body |= {"deployment": deployment, "replica": name}
    return {
        "kind": "Endpoint",
        "metadata": {"name": name, "namespace": "default"},
        "spec": body,
        "status": {"ready": True},
    }


def api_key(name: str, token: str, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "ApiKey",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"tokenHash": token_hash(token), **spec},
    }
