"""Run `inferplane up` as `make run` does, in a temp HOME and data dir, for end-to-end tests.

The demo model is put in place beforehand as a tiny one (`prebuilt_demo`), so the test does
not spend minutes training the real one; `up` finds it cached and uses it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import openai

from inferplane import client as api_client
from tests.support.control import free_port
from tests.support.tiny_model import prebuilt_demo

ENDPOINT = re.compile(r"^endpoint\s+(http://\S+)/v1", re.MULTILINE)
API_KEY = re.compile(r"^API key\s+(\S+)", re.MULTILINE)


@dataclass
class UpProcess:
    root: Path
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    gateway_port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None
    readers: list[threading.Thread] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        home = self.root / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HOME": str(home), "INFERPLANE_DATA_DIR": str(self.data_dir)}
        for key in ("INFERPLANE_TOKEN", "INFERPLANE_SERVER", "INFERPLANE_CONFIG"):
            env.pop(key, None)
        return env

    def start(self) -> None:
        prebuilt_demo(self.data_dir)
        command = [sys.executable, "-m", "inferplane", "up", "--port", str(self.port)]
        command += ["--gateway-port", str(self.gateway_port)]
        self.process = subprocess.Popen(
            [*command, *self.args],
            env=self.env,
            # As a shell without job control starts it in the background: SIGINT ignored.
            # `up` must still stop on the SIGINT that interrupt() sends.
            preexec_fn=ignore_sigint,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        streams = ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))
        for stream, lines in streams:
            reader = threading.Thread(target=_collect, args=(stream, lines), daemon=True)
            reader.start()
            self.readers.append(reader)

    def endpoint(self, timeout: float = 240.0) -> str:
        """The endpoint `up` prints once the replicas are Ready."""
        deadline = time.monotonic() + timeout
        while True:
            found = ENDPOINT.search("".join(self.stdout))
            if found:
                return found.group(1)
            assert self.process is not None
            assert self.process.poll() is None, f"up exited: {self.output()}"
            assert time.monotonic() < deadline, f"no endpoint printed: {self.output()}"
            time.sleep(0.2)

    def api_key(self) -> str:
        """The API key `up` printed with the endpoint."""
        found = API_KEY.search("".join(self.stdout))
        assert found, f"no API key printed: {self.output()}"
        return found.group(1)

    def output(self) -> str:
        return "".join(self.stdout) + "\n--- stderr ---\n" + "".join(self.stderr)

    def client(self) -> api_client.Client:
        token = (self.data_dir / "admin-token").read_text().strip()
        return api_client.Client(self.url, token)

    def descendants(self) -> set[int]:
        """Every process below `up` now (control plane, agents, engines)."""
        assert self.process is not None
        return descendants(self.process.pid)

    def interrupt(self, timeout: float = 120.0) -> int:
        """Ctrl-C, as a terminal sends it to `up`; the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        finally:
            self.close()

    def close(self) -> None:
        """Read the rest of the output and close the pipes."""
        assert self.process is not None
        if self.process.poll() is None:
            return
        for reader in self.readers:
            reader.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def kill_all(self, pids: set[int]) -> None:
        """Clean-up after a failed test: nothing of ours may outlive it."""
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.close()


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (zombies count as gone)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def complete(endpoint: str, key: str) -> str:
    """A completion through the official openai client, with the model the endpoint lists:
    the gateway with an API key, or a replica's engine with its engine token."""
    headers = {"Authorization": f"Bearer {key}"}
    models = httpx.get(f"{endpoint}/v1/models", headers=headers, timeout=10).json()["data"]
    assert [m["id"] for m in models] == ["demo"]
    client = openai.OpenAI(base_url=f"{endpoint}/v1", api_key=key, max_retries=0, timeout=60)
    with client:
        answer = client.completions.create(
            model="demo", prompt="The Python language", max_tokens=4, temperature=0
        )
    return answer.choices[0].text


def replicas(client: api_client.Client) -> list[dict[str, Any]]:
    found = client.list(
        "Replica", namespace="default", label_selector="inferplane.dev/deployment=demo"
    ).items
    return sorted(found, key=lambda r: r["metadata"]["name"])


def ready_replicas(client: api_client.Client) -> list[dict[str, Any]]:
    return [r for r in replicas(client) if (r.get("status") or {}).get("phase") == "Ready"]


def _collect(stream: IO[str] | None, lines: list[str]) -> None:
    if stream is None:
        return
    for line in stream:
        lines.append(line)
