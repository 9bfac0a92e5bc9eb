"""The engine actor: one per gang member, in its bundle of the replica's placement group, on
the Ray node that bundle is on. It runs the engine as a child process and does only what the
agent's runtime tells it (start, signal, report): the restart policy, the gang and the probes
live in the runtime, so there is one state machine, on the agent.

The actor's calls run one at a time on its main thread (a sync actor of concurrency 1), which
starts the engine: the kernel then SIGTERMs the engine when the actor's process ends, so a
killed actor or a lost node leaves no engine behind. The engine token comes in `spawn`'s
arguments and stays in the actor's memory for its restarts: it is never in the actor's name,
its creation arguments or its log. Of Ray it needs only the node's address and the GPUs Ray
gave the actor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ray
import ray.util

from inferplane.agent.runtime import base, enginelog, process, processes

NODE_HOST = "{ray_node_ip}"
"""In a launch's host and command: the address of the node the member runs on."""
DEVICES = "{ray_gpu_ids}"
"""An environment value standing for the IDs of the GPUs Ray gave the member's actor."""
RAY_ENV_PREFIX = "RAY_"
"""Variables of Ray's worker process that engines do not get."""
KILL_WAIT_S = 5.0


@dataclass(frozen=True)
class Setup:
    """What an engine actor is created with; nothing secret."""

    launch: dict[str, Any]
    """The launch (`base.Launch.to_dict`: no token)."""
    index: int
    """The member's index in its gang, 0 for the leader."""
    log_dir: str
    """Where the engine's log goes on the node, if the node can write there."""


@dataclass(frozen=True)
class Where:
    """Where a member's engine will listen."""

    node_ip: str
    port: int
    node_id: str
    gpu_ids: tuple[str, ...]


@dataclass(frozen=True)
class Observed:
    """A member's engine process, as its actor sees it."""

    generation: int
    """The `spawn` it belongs to (0: none yet)."""
    running: bool
    code: int | None
    """The exit code once it exited (negative: the signal); None while it runs, or when it
    could not start at all."""
    reason: str
    """Why it is not running: the exit, and the last line it logged."""
    pid: int | None


@dataclass(frozen=True)
class Description:
    """What an actor tells a new agent that adopts it."""

    launch: dict[str, Any]
    index: int
    generation: int
    running: bool
    stopping: bool
    node_ip: str
    node_id: str
    port: int | None
    started: str | None
    """When the engine last started, RFC 3339."""


class EngineActor:
    """Runs one gang member's engine; see the module docstring."""

    def __init__(self, setup: Setup) -> None:
        self._launch = base.Launch.from_dict(setup.launch)
        self._index = setup.index
        self._log = _log_path(Path(setup.log_dir), self._launch.name, setup.index)
        self._child: processes.Child | None = None
        self._generation = 0
        self._port: int | None = None
        self._stopping = False
        self._started: str | None = None
        self._failed = ""

    def prepare(self) -> Where:
        """Where the engine will listen: the node's address and a port free there (the
        launch's own, or the one used before while it is still free)."""
        node_ip = _node_ip()
        port = self._launch.port
        if port is None:
            free = self._port is not None and processes.port_is_free(node_ip, self._port)
            port = self._port if free and self._port is not None else processes.free_port(node_ip)
        self._port = port
        return Where(node_ip, port, _node_id(), _gpu_ids())

    def spawn(self, generation: int, token: str | None, member_env: dict[str, str]) -> None:
        """Start the engine (killing one still running): run `generation`, with the token in
        the launch's placeholders and the member's gang variables."""
        self._kill_child()
        self._generation, self._failed, self._stopping = generation, "", False
        launch = dataclasses.replace(self._launch, token=token)
        port = self._port if self._port is not None else self.prepare().port
        node_ip = _node_ip()
        self._log.parent.mkdir(parents=True, exist_ok=True)
        with self._log.open("ab") as out:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            out.write(f"{enginelog.AGENT_MARK} engine start {generation} at {stamp} ---\n".encode())
            out.flush()
            try:
                argv = [item.replace(NODE_HOST, node_ip) for item in launch.argv(port)]
                env = _environment(launch, member_env)
                self._child = processes.spawn(
                    argv, env=env, log=out, cwd=self._log.parent, die_with_agent=True
                )
            except (OSError, base.RuntimeFailure) as exc:
                detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                program = launch.command[0] if launch.command else "?"
                self._failed = f"cannot run {program}: {detail}"
                out.write(f"{self._failed}\n".encode())
                return
        self._started = datetime.now(UTC).isoformat()

    def poll(self) -> Observed:
        child = self._child
        if child is None:
            return Observed(self._generation, False, None, self._failed or "not started", None)
        code = child.poll()
        if code is None:
            return Observed(self._generation, True, None, "", child.pid)
        reason = enginelog.describe_exit(code)
        last = enginelog.last_line(self._log)
        why = f"{reason}: {last}" if last else reason
        return Observed(self._generation, False, code, why, None)

    def send_signal(self, sig: int, stopping: bool = False) -> None:
        """Send `sig` to the engine's process group; `stopping` marks a stop, so that an agent
        adopting this actor finishes it instead of restarting the engine."""
        self._stopping = self._stopping or stopping
        if self._child is not None and self._child.poll() is None:
            self._child.signal_group(sig)

    def describe(self) -> Description:
        running = self._child is not None and self._child.poll() is None
        return Description(
            launch=self._launch.to_dict(),
            index=self._index,
            generation=self._generation,
            running=running,
            stopping=self._stopping,
            node_ip=_node_ip(),
            node_id=_node_id(),
            port=self._port,
            started=self._started,
        )

    def read_log(self, offset: int, limit: int) -> base.LogChunk:
        """Up to `limit` bytes of the engine's log from `offset`, for an agent on another
        host."""
        return read_log(self._log, offset=offset, limit=limit)

    def _kill_child(self) -> None:
        child = self._child
        if child is None:
            return
        child.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=KILL_WAIT_S)
        self._child = None


def log_path(log_dir: Path, name: str, index: int) -> Path:
    """The log of member `index` of engine `name` under `log_dir` (the leader's is
    <name>.log, as the process runtime names it)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name.replace("/", "_")).lstrip(".") or "engine"
    suffix = ".log" if index == 0 else f".member-{index}.log"
    return log_dir / (safe[:200] + suffix)


def read_log(path: Path, *, offset: int, limit: int) -> base.LogChunk:
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        start = min(max(offset, 0), size)
        file.seek(start)
        data = file.read(max(limit, 0))
    return base.LogChunk(data=data, offset=start + len(data), size=size)


def _log_path(log_dir: Path, name: str, index: int) -> Path:
    """The log path on this node: under `log_dir` if it can be written here, else under the
    node's temporary directory."""
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        if os.access(log_dir, os.W_OK):
            return log_path(log_dir, name, index)
    except OSError:
        pass
    return log_path(Path(tempfile.gettempdir()) / "inferplane" / "logs", name, index)


def _environment(launch: base.Launch, member_env: dict[str, str]) -> dict[str, str]:
    """The node's environment less the agent's secrets and Ray's own variables (a worker's
    RAY_*, which may carry the cluster's auth token), then the launch's (with the GPUs Ray
    gave this actor where the launch asks for them), then the gang's variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in process.HIDDEN_ENV and not k.startswith(RAY_ENV_PREFIX)
    }
    gpus = ",".join(_gpu_ids())
    env.update({k: gpus if v == DEVICES else v for k, v in launch.environment().items()})
    env.update(member_env)
    return env


def _node_ip() -> str:
    return str(ray.util.get_node_ip_address())


def _node_id() -> str:
    return str(ray.get_runtime_context().get_node_id())


def _gpu_ids() -> tuple[str, ...]:
    return tuple(str(i) for i in ray.get_gpu_ids())
