"""The process runtime: engines as child processes of the agent, on this machine.

Each engine gets a port (its own or a free one), its environment, a log file under the data
dir, a startup deadline, liveness and readiness probes on its health path, restarts with
exponential backoff (CrashLoopBackOff after repeated crashes), and a graceful stop: SIGTERM
to its process group, SIGKILL after the grace period. `sync()` does all the watching; the
agent calls it from its loop, tests call it with a clock of their own.

What a replica needs to run here is this runtime's to say (`launch_for`): one node only (this
machine), the model as a local path, and its devices named in the recipe's variable
(CUDA_VISIBLE_DEVICES) by the IDs the agent discovered on this host.
"""

from __future__ import annotations

import logging
import os
import platform
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from inferplane import logs
from inferplane.agent import recipes, sources
from inferplane.agent.runtime import base, enginelog, probes, processes, state
from inferplane.api import replicas
from inferplane.backoff import Backoff

log = logging.getLogger(__name__)

KIND = "process"
"""This runtime's name in the registry and in a Cluster's spec.runtime."""
HIDDEN_ENV = ("INFERPLANE_TOKEN",)
"""The agent's own secrets, never passed on to engines."""
WAITING_FOR_TOKEN = "waiting for the agent to hand over its engine token"
RESTART_BACKOFF = Backoff(base=1.0, cap=60.0)


@dataclass(frozen=True)
class ProcessSettings:
    data_dir: Path
    """Logs go to data_dir/logs, the state file is data_dir/engines.json."""
    backoff: Backoff = RESTART_BACKOFF
    """Delay before restarting after the n-th consecutive crash."""
    probe_period: float = 5.0
    """Seconds between probes of a Ready engine."""
    startup_probe_period: float = 0.5
    """Seconds between probes of an engine that has not turned Ready yet."""
    failure_threshold: int = 3
    """Consecutive failed probes of a Ready engine before it is taken out (and, if it does not
    answer at all, killed and restarted)."""
    stable_after: float = 30.0
    """Seconds Ready after which the crash count starts again from zero."""
    die_with_agent: bool = True
    """Have the kernel stop engines when the agent process dies (Linux)."""
    host: str = "127.0.0.1"
    """Address engines listen on, and the host of their URLs."""


@dataclass(eq=False)
class _Engine:
    launch: base.Launch
    port: int
    handle: processes.Handle | None = None
    restarts: int = 0
    crashes: int = 0
    ever_started: bool = False
    next_start: float = 0.0
    started: float = 0.0
    started_wall: datetime | None = None
    ready: bool = False
    ready_since: float = 0.0
    probe_failures: int = 0
    next_probe: float = 0.0
    last_probe_wall: datetime | None = None
    stop_deadline: float | None = None
    kill_reason: str = ""
    message: str = ""
    ticks: int | None = field(default=None)

    @property
    def stopping(self) -> bool:
        return self.stop_deadline is not None

    @property
    def url(self) -> str:
        return f"http://{_url_host(self.launch.host)}:{self.port}"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ProcessRuntime:
    """Runs engines as local processes; see the module docstring."""

    def __init__(
        self,
        settings: ProcessSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _utcnow,
        probe: probes.Probe = probes.http_probe,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        """`environ`: the agent's environment, where a recipe's program may be overridden
        (e.g. INFERPLANE_VLLM_PYTHON)."""
        self.settings = settings
        self._clock = clock
        self._wall = wall
        self._probe = probe
        self._environ = environ
        self._engines: dict[str, _Engine] = {}

    @property
    def kind(self) -> str:
        return KIND

    def version(self) -> str | None:
        """The host's kernel: what runs this runtime's engines."""
        return f"{platform.system()} {platform.release()}".strip() or None

    # -- paths ------------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.settings.data_dir / "engines.json"

    def log_path(self, name: str) -> Path:
        return self.settings.data_dir / "logs" / (name.replace("/", "_") + ".log")

    # -- the Runtime interface --------------------------------------------------------------

    def launch_for(self, replica: base.Replica) -> base.Launch:
        """The replica's engine as a process on this machine: refused (LaunchError) when it
        spans several nodes; SourceError when its model is not a path here."""
        spec = replica.spec
        if spec.resources.nodes > 1:
            raise recipes.LaunchError(
                f"the process runtime runs single-node replicas; this one needs"
                f" {spec.resources.nodes} nodes"
            )
        recipe = recipes.recipe_of(spec.engine)
        model = sources.model_path(spec.model.source, builtin_ok=recipe.builtin_models)
        return recipes.launch_for(
            replica.name,
            spec,
            host=self.settings.host,
            model_path=model,
            devices=visible_devices(spec, replica.device_ids),
            environ=self._environ,
        )

    def adopt(self) -> list[str]:
        """Take over the engines an earlier agent on this data dir left behind: running ones
        are adopted as they are, dead ones are restarted. Returns the names adopted."""
        now = self._clock()
        for name, record in state.load(self.state_path).items():
            if record.stopping:
                continue
            engine = _Engine(record.launch, record.port, restarts=record.restarts)
            engine.ever_started = True
            engine.started = now
            engine.started_wall = _parse_time(record.started)
            alive = record.pid is not None and processes.is_running(record.pid, record.ticks)
            if alive and record.pid is not None:
                engine.handle = processes.Adopted(record.pid, record.ticks)
                engine.ticks = record.ticks
            self._engines[name] = engine
            logs.event(log, "engine adopted", replica=name, pid=record.pid, alive=alive)
        self._save()
        return list(self._engines)

    def start(self, launch: base.Launch) -> None:
        existing = self._engines.get(launch.name)
        if existing is not None:
            if existing.launch.fingerprint() != launch.fingerprint():
                raise base.RuntimeFailure(
                    f"{launch.name} runs another launch; stop it before starting this one"
                )
            if launch.token is not None:
                existing.launch = launch  # an adopted engine gets its token back
            return
        if launch.needs_token and launch.token is None:
            raise base.RuntimeFailure(f"{launch.name} needs its engine token to start")
        port = launch.port or processes.free_port(launch.host)
        engine = _Engine(launch, port)
        self._engines[launch.name] = engine
        self._spawn(engine, self._clock())
        self._save()

    def stop(self, name: str, *, grace: float) -> None:
        engine = self._engines.get(name)
        if engine is None or engine.stopping:
            return
        engine.stop_deadline = self._clock() + grace
        if engine.handle is not None:
            engine.handle.signal_group(signal.SIGTERM)
        logs.event(log, "engine stopping", replica=name, grace=grace)
        self._save()

    def status(self, name: str) -> base.EngineStatus | None:
        engine = self._engines.get(name)
        if engine is None:
            return None
        facts = base.Facts(
            stopping=engine.stopping,
            alive=engine.handle is not None,
            ready=engine.ready,
            crashes=engine.crashes,
        )
        phase = base.phase_of(facts)
        return base.EngineStatus(
            name=name,
            phase=phase,
            url=engine.url,
            pid=engine.handle.pid if engine.handle is not None else None,
            restarts=engine.restarts,
            started_at=engine.started_wall,
            last_probe_at=engine.last_probe_wall,
            message=self._message(engine, phase),
            fingerprint=engine.launch.fingerprint(),
        )

    def names(self) -> list[str]:
        return list(self._engines)

    def sync(self) -> None:
        now = self._clock()
        due: list[_Engine] = []
        changed = False
        for name, engine in list(self._engines.items()):
            changed |= self._observe(name, engine, now, due)
        self._probe_all(due, now)
        if changed:
            self._save()

    def read_log(self, name: str, *, offset: int, limit: int) -> base.LogChunk:
        try:
            with self.log_path(name).open("rb") as file:
                size = os.fstat(file.fileno()).st_size
                start = min(max(offset, 0), size)
                file.seek(start)
                data = file.read(limit)
        except FileNotFoundError as exc:
            raise base.UnknownEngine(f"no log for {name} on this agent") from exc
        return base.LogChunk(data=data, offset=start + len(data), size=size)

    def close(self, *, grace: float, stop_engines: bool) -> None:
        if not stop_engines:
            self._save()
            return
        for name in list(self._engines):
            self.stop(name, grace=grace)
        deadline = time.monotonic() + grace + 2.0
        while self._engines and time.monotonic() < deadline:
            self.sync()
            time.sleep(0.05)
        for engine in self._engines.values():
            if engine.handle is not None:
                engine.handle.signal_group(signal.SIGKILL)
        self._engines.clear()
        self._save()

    # -- watching one engine ----------------------------------------------------------------

    def _observe(self, name: str, engine: _Engine, now: float, due: list[_Engine]) -> bool:
        """Act on one engine's state; returns whether the state file needs writing."""
        handle = engine.handle
        if handle is None:
            if engine.stopping:
                del self._engines[name]
                return True
            if now >= engine.next_start and self._may_spawn(engine):
                self._spawn(engine, now)
                return True
            return False
        code = handle.poll()
        if code is not None:
            self._exited(name, engine, code, now)
            return True
        if engine.stopping:
            if engine.stop_deadline is not None and now >= engine.stop_deadline:
                handle.signal_group(signal.SIGKILL)
            return False
        if not engine.ready and now - engine.started >= engine.launch.startup_timeout:
            seconds = engine.launch.startup_timeout
            self._kill(engine, f"not healthy within its startup timeout of {seconds:g}s")
        elif now >= engine.next_probe:
            due.append(engine)
        if (
            engine.ready
            and engine.crashes
            and now - engine.ready_since >= self.settings.stable_after
        ):
            engine.crashes = 0
        return False

    def _may_spawn(self, engine: _Engine) -> bool:
        """An engine read back from the state file waits for the agent to hand its token over
        again: started without it, it would answer anyone."""
        if not engine.launch.needs_token or engine.launch.token is not None:
            return True
        if not engine.message.startswith(WAITING_FOR_TOKEN):
            engine.message = WAITING_FOR_TOKEN
            logs.event(log, "engine waits for its token", replica=engine.launch.name)
        return False

    def _spawn(self, engine: _Engine, now: float) -> None:
        launch = engine.launch
        if launch.port is None and not processes.port_is_free(launch.host, engine.port):
            engine.port = processes.free_port(launch.host)
        argv = launch.argv(engine.port)
        path = self.log_path(launch.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        attempt = "restart" if engine.ever_started else "start"
        with path.open("ab") as out:
            stamp = self._wall().isoformat(timespec="seconds")
            out.write(f"{enginelog.AGENT_MARK} engine {attempt} at {stamp} ---\n".encode())
            out.flush()
            try:
                engine.handle = processes.spawn(
                    argv,
                    env=_environment(launch),
                    log=out,
                    cwd=self.settings.data_dir,
                    die_with_agent=self.settings.die_with_agent,
                )
            except OSError as exc:
                engine.message = f"cannot run {argv[0]}: {exc.strerror or exc}"
                out.write(f"{engine.message}\n".encode())
                self._crashed(engine, now)
                return
        if engine.ever_started:
            engine.restarts += 1
        engine.ever_started = True
        engine.ticks = processes.start_ticks(engine.handle.pid)
        engine.started, engine.started_wall = now, self._wall()
        engine.ready, engine.probe_failures, engine.next_probe = False, 0, now
        engine.kill_reason = ""
        logs.event(
            log, "engine started", replica=launch.name, pid=engine.handle.pid, port=engine.port
        )

    def _exited(self, name: str, engine: _Engine, code: int, now: float) -> None:
        engine.handle = None
        engine.ready = False
        if engine.stopping:
            del self._engines[name]
            logs.event(log, "engine stopped", replica=name, code=code)
            return
        reason = engine.kill_reason or enginelog.describe_exit(code)
        last = enginelog.last_line(self.log_path(name))
        engine.message = f"{reason}: {last}" if last and not engine.kill_reason else reason
        self._crashed(engine, now)
        logs.event(log, "engine exited", level=logging.WARNING, replica=name, code=code)

    def _crashed(self, engine: _Engine, now: float) -> None:
        engine.handle = None
        engine.crashes += 1
        engine.next_start = now + self.settings.backoff.delay(engine.crashes)

    def _kill(self, engine: _Engine, reason: str) -> None:
        engine.kill_reason = reason
        if engine.handle is not None:
            engine.handle.signal_group(signal.SIGKILL)
        name = engine.launch.name
        logs.event(log, "engine killed", level=logging.WARNING, replica=name, reason=reason)

    # -- probes -----------------------------------------------------------------------------

    def _probe_all(self, due: list[_Engine], now: float) -> None:
        if not due:
            return
        urls = [engine.url + engine.launch.health_path for engine in due]
        for engine, result in zip(due, probes.probe_all(self._probe, urls), strict=True):
            self._probed(engine, result, now)

    def _probed(self, engine: _Engine, result: probes.ProbeResult, now: float) -> None:
        engine.last_probe_wall = self._wall()
        settings = self.settings
        engine.next_probe = now + (
            settings.probe_period if engine.ready else settings.startup_probe_period
        )
        if result == "ok":
            if not engine.ready:
                engine.ready, engine.ready_since = True, now
                logs.event(log, "engine ready", replica=engine.launch.name, url=engine.url)
            engine.probe_failures, engine.message = 0, ""
            return
        if not engine.ready:
            return  # still starting: the startup timeout decides
        engine.probe_failures += 1
        if engine.probe_failures < settings.failure_threshold:
            return
        failures = engine.probe_failures
        if result == "unreachable":
            self._kill(engine, f"failed {failures} liveness probes of {engine.launch.health_path}")
        else:
            engine.ready = False
            engine.message = f"{engine.launch.health_path} stopped answering 200"

    # -- reporting and persistence ----------------------------------------------------------

    def _message(self, engine: _Engine, phase: base.Phase) -> str:
        if phase == "CrashLoopBackOff":
            wait = max(engine.next_start - self._clock(), 0.0)
            return f"back-off {wait:.0f}s restarting failed engine: {engine.message}"
        return engine.message

    def _save(self) -> None:
        records = {
            name: state.Record(
                launch=engine.launch,
                port=engine.port,
                pid=engine.handle.pid if engine.handle is not None else None,
                ticks=engine.ticks if engine.handle is not None else None,
                restarts=engine.restarts,
                started=engine.started_wall.isoformat() if engine.started_wall else None,
                stopping=engine.stopping,
            )
            for name, engine in self._engines.items()
        }
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        state.save(self.state_path, records)


def visible_devices(spec: replicas.ReplicaSpec, device_ids: Mapping[str, list[str]]) -> str:
    """CUDA_VISIBLE_DEVICES for the replica: its devices on its (leader) node, by their IDs
    where discovery found them, else by index."""
    leader = spec.nodes[0] if spec.nodes else 0
    found = []
    for allocation in spec.devices:
        if allocation.node != leader:
            continue
        known = device_ids.get(allocation.group) or []
        found += [known[i] if i < len(known) else str(i) for i in allocation.indexes]
    return ",".join(found)


def _environment(launch: base.Launch) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in HIDDEN_ENV}
    env.update(launch.environment())
    return env


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
