"""What an agent asks of a runtime, and what a runtime reports back.

A runtime runs engines: it resolves a bound `Replica` into a `Launch` (command, environment,
devices, probes, as only it knows how on its machines), starts one, keeps it alive (probes,
restarts with backoff) and stops it gracefully. The agent only ever talks to the `Runtime`
interface, so the process runtime and a Kubernetes runtime are interchangeable; which one an
agent runs is its Cluster's `spec.runtime` (`registry`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from inferplane.api import replicas

Phase = Literal["Starting", "Ready", "Draining", "CrashLoopBackOff"]
"""An engine's phase as a runtime sees it; the Replica phases of the same names."""

CRASH_LOOP_AFTER = 3
"""Consecutive crashes after which a restarting engine shows CrashLoopBackOff."""

PORT = "{port}"
"""Placeholder in a launch command for the port the runtime picks."""

TOKEN = "{engine_token}"
"""Placeholder, as a whole command item or environment value, for the engine's token: the
launch keeps the placeholder (so the state file and the fingerprint never hold the token) and
the runtime puts `Launch.token` in its place when it starts the process."""


GANG_LEADER_ADDRESS = "LWS_LEADER_ADDRESS"
"""Environment of every gang member: the leader's host. The names are LeaderWorkerSet's, so
an engine written for LWS runs unchanged on every runtime that runs gangs."""
GANG_WORKER_INDEX = "LWS_WORKER_INDEX"
"""Environment of every gang member: its index, 0 for the leader."""
GANG_SIZE = "LWS_GROUP_SIZE"
"""Environment of every gang member: how many members the gang has."""
GANG_LEADER_URL = "INFERPLANE_GANG_LEADER_URL"
"""Environment of every gang member: the root URL of the leader's engine, which workers
follow (a worker exits when its leader is gone, so the runtime restarts the gang)."""


class RuntimeFailure(Exception):
    """Root of the errors a runtime raises."""


class UnknownEngine(RuntimeFailure):
    """The runtime runs no engine of that name (and keeps no log of one)."""


@dataclass(frozen=True)
class Replica:
    """A replica bound to this cluster, as the agent hands it to its runtime."""

    name: str
    """Unique within the agent: the replica's namespace/name."""
    spec: replicas.ReplicaSpec
    """What to run (model, engine, resources) and where the scheduler put it (pool, nodes,
    devices)."""
    device_ids: Mapping[str, list[str]] = field(default_factory=dict)
    """The IDs of the devices of the replica's pool, by device group, as the agent discovered
    them (GPU and MIG UUIDs): `device_ids[group][i]` is the device at index i."""


@dataclass(frozen=True)
class Launch:
    """One engine to run, resolved from its replica by a recipe."""

    name: str
    """Unique within the agent: the replica's namespace/name."""
    command: tuple[str, ...]
    """Program and arguments from the recipe; `{port}` in an item becomes the engine's port."""
    args: tuple[str, ...] = ()
    """The user's flags, appended after the command exactly as written."""
    env: dict[str, str] = field(default_factory=dict)
    """Variables added to the agent's environment: the engine's own, then the devices."""
    host: str = "127.0.0.1"
    """Address the engine listens on, and the host of its URL."""
    port: int | None = None
    """Port the engine must listen on; None lets the runtime pick a free one."""
    health_path: str = "/health"
    """HTTP path answering 200 once the engine serves; probed for liveness and readiness."""
    startup_timeout: float = 900.0
    """Seconds the engine may take to turn healthy before it counts as crashed."""
    image: str | None = None
    """Container image, for runtimes that run containers."""
    nodes: int = 1
    """Members of the gang, one per node: 1 for a single-node replica. Every member runs the
    same command, told its place by `member_env`; member 0, the leader, serves."""
    token: str | None = field(default=None, compare=False, repr=False)
    """The engine's token, in memory only: never in `to_dict` (the state file), the
    fingerprint or a repr. None in a launch read back from the state file, until the agent
    hands it over again."""

    @property
    def needs_token(self) -> bool:
        """The command or environment takes the token: the engine must not start without it."""
        return TOKEN in self.command or TOKEN in self.env.values()

    def argv(self, port: int) -> list[str]:
        command = [item.replace(PORT, str(port)) for item in self.command]
        return [self._filled(item) for item in command] + list(self.args)

    def environment(self) -> dict[str, str]:
        """`env` with the token in place of its placeholder."""
        return {key: self._filled(value) for key, value in self.env.items()}

    def member_env(self, index: int, *, leader_host: str, leader_port: int) -> dict[str, str]:
        """The gang variables of member `index` (0: the leader), added to `environment()` by
        runtimes that start the members themselves; a LeaderWorkerSet sets the first three."""
        if not 0 <= index < self.nodes:
            raise ValueError(f"member {index} of a gang of {self.nodes}")
        host = f"[{leader_host}]" if ":" in leader_host else leader_host
        return {
            GANG_LEADER_ADDRESS: leader_host,
            GANG_WORKER_INDEX: str(index),
            GANG_SIZE: str(self.nodes),
            GANG_LEADER_URL: f"http://{host}:{leader_port}",
        }

    def _filled(self, item: str) -> str:
        if item != TOKEN:
            return item
        if self.token is None:
            raise RuntimeFailure(f"{self.name} needs its engine token, which it was not given")
        return self.token

    def fingerprint(self) -> str:
        """Equal for equal launches: a changed fingerprint means the engine must be replaced."""
        encoded = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(encoded).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        del raw["token"]
        if raw["nodes"] == 1:  # as before gangs: a single-node engine keeps its fingerprint
            del raw["nodes"]
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Launch:
        return cls(
            name=str(raw["name"]),
            command=tuple(raw["command"]),
            args=tuple(raw.get("args") or ()),
            env=dict(raw.get("env") or {}),
            host=str(raw.get("host") or "127.0.0.1"),
            port=raw.get("port"),
            health_path=str(raw.get("health_path") or "/health"),
            startup_timeout=float(raw.get("startup_timeout") or 900.0),
            image=raw.get("image"),
            nodes=int(raw.get("nodes") or 1),
        )


@dataclass(frozen=True)
class Facts:
    """What a runtime observed of one engine: the inputs of its phase."""

    stopping: bool
    """A stop was asked for and the engine has not exited yet."""
    alive: bool
    """A process (or container) of the engine is running."""
    ready: bool
    """The last health probe answered 200."""
    crashes: int
    """Consecutive exits not asked for (reset once the engine has run healthy a while)."""


def phase_of(facts: Facts) -> Phase:
    """The engine's phase, derived from the facts alone."""
    if facts.stopping:
        return "Draining"
    if facts.alive:
        return "Ready" if facts.ready else "Starting"
    return "CrashLoopBackOff" if facts.crashes >= CRASH_LOOP_AFTER else "Starting"


@dataclass(frozen=True)
class EngineStatus:
    """One engine as the runtime last observed it."""

    name: str
    phase: Phase
    url: str | None
    """Root URL of the engine, e.g. http://127.0.0.1:8001."""
    pid: int | None
    """The engine's process id while one runs (process runtime only)."""
    restarts: int
    """How often the runtime restarted the engine after it exited or failed its probes."""
    started_at: datetime | None
    """When the current (or last) process started."""
    last_probe_at: datetime | None
    """When the engine was last probed."""
    message: str
    """Why it is not Ready, e.g. the last line the engine logged before it exited."""
    fingerprint: str
    """The fingerprint of the launch it runs."""


@dataclass(frozen=True)
class LogChunk:
    """Bytes of an engine's log from some offset."""

    data: bytes
    offset: int
    """Where the next read should start."""
    size: int
    """The log's size when it was read."""


class Runtime(Protocol):
    """Runs engines. Every method but `read_log` is called from one thread, the agent's loop."""

    @property
    def kind(self) -> str:
        """Its name in the registry and in a Cluster's `spec.runtime`, e.g. process."""

    def version(self) -> str | None:
        """The version of what runs the engines (the Kubernetes server, Slurm, Ray, the host's
        kernel), for the Cluster's status.runtimeVersion; None when it cannot tell."""

    def launch_for(self, replica: Replica) -> Launch:
        """The launch that runs `replica` here, without its engine token (the agent adds it).
        Raises recipes.LaunchError or sources.SourceError when the replica cannot run on this
        runtime: the message says why, and goes in the replica's status."""

    def adopt(self) -> list[str]:
        """Take over the engines an earlier agent left running; returns their names."""

    def start(self, launch: Launch) -> None:
        """Run the engine (again, if one of that name is running it is replaced)."""

    def stop(self, name: str, *, grace: float) -> None:
        """Ask the engine to drain and stop: SIGTERM, then SIGKILL after `grace` seconds.
        Its status reads Draining until it is gone, then None."""

    def status(self, name: str) -> EngineStatus | None:
        """The engine's status, or None when the runtime runs nothing of that name."""

    def names(self) -> list[str]:
        """Every engine the runtime runs or is stopping."""

    def sync(self) -> None:
        """Observe and act: reap exits, restart with backoff, probe, kill after grace."""

    def read_log(self, name: str, *, offset: int, limit: int) -> LogChunk:
        """Up to `limit` bytes of the engine's log from `offset`; safe from any thread."""

    def close(self, *, grace: float, stop_engines: bool) -> None:
        """The agent is exiting: stop every engine (waiting up to `grace`), or leave them
        running for the next agent to adopt."""
