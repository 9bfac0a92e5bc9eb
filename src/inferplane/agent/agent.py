"""The agent: one workload plane's link to the control plane, and the loop that keeps its
replicas running.

Threads, each with its own connection (all outbound): membership (join, then heartbeat),
the replica watch, the reporter (statuses, finalizers), the metrics scraper and the log
shipper. The main thread owns the runtime (the one the Cluster's spec.runtime names, built
before the agent by `runtime.registry`): it adopts what an earlier agent left running,
then every half second (or at once on a watch event) syncs the runtime, decides what to do
(`reconcile.decide`), does it, and publishes statuses, scrape targets and releases. None of
this needs the control plane: when it is away, engines keep running and serving, and on its
return the watch resumes where it stopped and the reporter catches up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from inferplane import client as api_client
from inferplane import logs, tls
from inferplane.agent import (
    discovery,
    loadsender,
    loadsummary,
    logship,
    membership,
    recipes,
    reconcile,
    reporter,
    scraper,
    sources,
    tokens,
    watcher,
)
from inferplane.agent.runtime import base
from inferplane.api import replicas

log = logging.getLogger(__name__)

LOOP_SECONDS = 0.5
Object = dict[str, Any]


@dataclass(frozen=True)
class AgentSettings:
    control: str
    """URL of the control plane."""
    token: str | None
    """Bearer token of its agent key (docs/security.md) or of a fleet admin."""
    cluster: str
    labels: dict[str, str] = field(default_factory=dict)
    data_dir: Path = Path(".")
    """The agent's files: its credential, its runtime's name, the runtime's logs and state."""
    heartbeat_seconds: float = 5.0
    load_seconds: float = 5.0
    drain_grace_seconds: float = 30.0
    """How long a stopping engine may drain before it is killed."""
    deregistration_seconds: float = 2.0
    """How long an engine the agent is to stop keeps serving first: its Endpoint is gone from
    the control plane already, and gateways that have not heard yet still send it requests
    (a replacement's Endpoint may not be routable yet either)."""
    stop_engines_on_exit: bool = True
    """False leaves engines running when the agent exits, for the next agent to adopt."""
    tls: tls.ClientTLS | None = None
    """The CA bundle the control plane's certificate is verified against, and the client
    certificate the agent presents (mutual TLS)."""


def client_of(settings: AgentSettings) -> api_client.Client:
    """A client of the control plane as the agent's own identity."""
    return api_client.Client(settings.control, settings.token, timeout=10.0, tls=settings.tls)


class Agent:
    def __init__(
        self,
        settings: AgentSettings,
        runtime: base.Runtime,
        pools: list[discovery.PoolPlan],
        *,
        make_client: Callable[[], api_client.Client] | None = None,
        rediscover: Callable[[], list[discovery.PoolPlan]] | None = None,
    ) -> None:
        """`rediscover`: the runtime's pool discovery, asked again every minute (None when
        the pools are fixed: a pool file, the host)."""
        self.settings = settings
        self.runtime = runtime
        self.pools = pools
        self._make_client = make_client or (lambda: client_of(settings))
        self.cache = watcher.ReplicaCache()
        self.reporter = reporter.Reporter()
        self.scraper = scraper.Scraper()
        self.load_sender = loadsender.LoadSender()
        # The join writes spec.runtime: the runtime this agent runs, never a fixed one.
        self.membership = membership.Membership(
            settings.cluster,
            dict(settings.labels),
            pools,
            runtime=runtime.kind,
            runtime_version=runtime.version(),
            rediscover=rediscover,
        )
        self.tokens = tokens.EngineTokens(self._make_client)
        self._deregistering: dict[str, float] = {}
        """Engines to stop once their deregistration delay is over (monotonic deadline)."""
        self._waiting: dict[str, str] = {}
        """Replicas whose engine waits for its token, and why (logged once per reason)."""
        self._launched: dict[str, int | None] = {}
        self._failed: dict[str, tuple[int | None, str]] = {}
        self._targets: dict[str, scraper.Target] = {}
        self.settled = threading.Event()
        """Set after the first pass that saw the full list of replicas and acted on it."""

    # -- running ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set; then stop the engines (or leave them, as configured)."""
        adopted = self.runtime.adopt()
        logs.event(log, "agent starting", cluster=self.settings.cluster, adopted=len(adopted))
        self._start_threads(stop)
        try:
            while not stop.is_set():
                try:
                    self.step()
                except Exception:  # the loop keeps the engines alive: it never stops on a bug
                    log.exception("agent loop failed", extra={"cluster": self.settings.cluster})
                self.cache.changed.wait(LOOP_SECONDS)
                self.cache.changed.clear()
        finally:
            keep = not self.settings.stop_engines_on_exit
            logs.event(log, "agent stopping", cluster=self.settings.cluster, keep_engines=keep)
            grace = self.settings.drain_grace_seconds
            self.runtime.close(grace=grace, stop_engines=not keep)
            self.tokens.close()

    def _start_threads(self, stop: threading.Event) -> None:
        cluster = self.settings.cluster
        shipper = logship.LogShipper(cluster, self.runtime.read_log)
        make = self._make_client
        heartbeat = self.settings.heartbeat_seconds
        loops: list[tuple[str, Callable[..., None], tuple[Any, ...]]] = [
            ("membership", self.membership.run, (make, stop, heartbeat, self.settled)),
            ("watch", watcher.follow_replicas, (make, cluster, self.cache, stop)),
            ("reporter", self.reporter.run, (make, stop)),
            ("scraper", self.scraper.run, (stop, self.settings.load_seconds)),
            ("load", self.load_sender.run, (make, stop, self.settings.load_seconds)),
            ("logs", shipper.run, (make, stop)),
        ]
        for name, target, args in loops:
            threading.Thread(target=target, args=args, name=name, daemon=True).start()

    def step(self) -> None:
        """One pass of the loop: sync the runtime, act on the decisions, publish."""
        self.runtime.sync()
        objects, synced = self.cache.snapshot()
        view = reconcile.View(
            replicas=objects,
            synced=synced,
            engines=self._engines(),
            launched=self._launched,
            failed={name: generation for name, (generation, _) in self._failed.items()},
            releasing=self.reporter.releasing(),
        )
        actions = reconcile.decide(view, cluster=self.settings.cluster)
        stopping = {a.name for a in actions if isinstance(a, reconcile.Stop)}
        for name in [n for n in self._deregistering if n not in stopping]:
            del self._deregistering[name]  # no longer to stop: its delay starts over if it is
        for action in actions:
            try:
                self._carry_out(action, objects)
            except Exception:
                log.exception("action failed", extra={"replica": action.name})
        self._publish(objects)
        if synced:
            self.settled.set()

    def _engines(self) -> dict[str, base.EngineStatus]:
        found = {}
        for name in self.runtime.names():
            status = self.runtime.status(name)
            if status is not None:
                found[name] = status
        return found

    # -- actions ----------------------------------------------------------------------------

    def _carry_out(self, action: reconcile.Action, objects: dict[str, Object]) -> None:
        name = action.name
        if isinstance(action, reconcile.Start):
            self._start(name, objects[name])
        elif isinstance(action, reconcile.Stop):
            if not self._deregistered(name, action.reason):
                return
            logs.event(log, "stopping replica", replica=name, reason=action.reason)
            self.runtime.stop(name, grace=self.settings.drain_grace_seconds)
            self._launched.pop(name, None)
        elif isinstance(action, reconcile.Recheck):
            self._recheck(name, objects[name])
        elif isinstance(action, reconcile.Release):
            self.reporter.release(name, objects[name])

    def _deregistered(self, name: str, reason: str) -> bool:
        """Whether the engine has served out its deregistration delay and may be stopped; the
        first time it is asked, the delay starts (the loop asks again every pass)."""
        delay = self.settings.deregistration_seconds
        if delay <= 0:
            return True
        now = time.monotonic()
        deadline = self._deregistering.get(name)
        if deadline is None:
            self._deregistering[name] = now + delay
            logs.event(log, "replica deregistering", replica=name, reason=reason, delay=delay)
            return False
        if now < deadline:
            return False
        del self._deregistering[name]
        return True

    def _start(self, name: str, obj: Object) -> None:
        generation = obj["metadata"].get("generation")
        try:
            launch = self.launch_for(name, obj)
            self.runtime.start(launch)
        except tokens.TokenUnavailable as exc:
            self._wait(name, str(exc))
            return
        except (recipes.LaunchError, sources.SourceError, base.RuntimeFailure) as exc:
            self._failed[name] = (generation, str(exc))
            logs.event(log, "replica failed", level=logging.WARNING, replica=name, error=exc)
            return
        self._failed.pop(name, None)
        self._waiting.pop(name, None)
        self._launched[name] = generation
        logs.event(log, "replica starting", replica=name)

    def _wait(self, name: str, why: str) -> None:
        """The engine cannot start yet (no token): say so once, and try again next pass."""
        if self._waiting.get(name) != why:
            self._waiting[name] = why
            logs.event(log, "replica waits", replica=name, reason=why)

    def _recheck(self, name: str, obj: Object) -> None:
        """The replica changed: replace the engine only if what it would run changed."""
        generation = obj["metadata"].get("generation")
        engine = self.runtime.status(name)
        try:
            launch = self.launch_for(name, obj)
        except tokens.TokenUnavailable as exc:
            self._wait(name, str(exc))  # asked again next pass: an adopted engine needs it
            return
        except (recipes.LaunchError, sources.SourceError) as exc:
            logs.event(log, "keeping the running engine", replica=name, error=exc)
            self._launched[name] = generation
            return
        if engine is not None and engine.fingerprint != launch.fingerprint():
            logs.event(log, "replacing engine: its launch changed", replica=name)
            self.runtime.stop(name, grace=self.settings.drain_grace_seconds)
            self._launched.pop(name, None)
            return
        if engine is not None:
            self.runtime.start(launch)  # the same launch: hands an adopted engine its token
        self._waiting.pop(name, None)
        self._launched[name] = generation

    def launch_for(self, name: str, obj: Object) -> base.Launch:
        """The engine launch of a replica object, as the runtime resolves it, with its engine
        token; raises LaunchError, SourceError or TokenUnavailable."""
        try:
            spec = replicas.ReplicaSpec.model_validate(obj.get("spec") or {})
        except pydantic.ValidationError as exc:
            raise recipes.LaunchError(f"the replica's spec is not valid: {exc}") from exc
        replica = base.Replica(name, spec, device_ids=self._device_ids(spec.pool))
        launch = self.runtime.launch_for(replica)
        recipe = recipes.recipe_of(spec.engine)
        if recipe.api_key is None:
            return launch  # a custom command: there is no telling it to require a token
        return recipe.with_api_key(launch, self.tokens.token_for(obj))

    def _device_ids(self, pool: str | None) -> dict[str, list[str]]:
        for plan in self.pools:
            if discovery.object_name(self.settings.cluster, plan.name) == pool:
                return plan.device_ids
        return {}

    # -- publishing -------------------------------------------------------------------------

    def _publish(self, objects: dict[str, Object]) -> None:
        engines = self._engines()
        loads = self.scraper.loads()
        reports = {}
        offered = []
        for name, obj in objects.items():
            failure = self._failed.get(name)
            status = reconcile.desired_status(
                obj,
                engines.get(name),
                failure=failure[1] if failure else None,
                load=loadsummary.persisted((obj.get("status") or {}).get("load"), loads.get(name)),
            )
            if status is not None:
                meta = obj["metadata"]
                reports[name] = reporter.Report(meta.get("namespace") or "", meta["name"], status)
            if name in loads and status is not None and status.get("phase") == "Ready":
                meta = obj["metadata"]
                offered.append(
                    loadsender.Offered(meta.get("namespace") or "", meta["name"], loads[name])
                )
        self.load_sender.offer(offered)
        stored = {name: obj.get("status") or {} for name, obj in objects.items()}
        self.reporter.publish(reports, stored)
        self._set_targets(objects, engines)
        gone = {n for n in self._failed if n not in objects} | {
            n for n in self._launched if n not in objects and n not in engines
        }
        for name in gone:
            self._failed.pop(name, None)
            self._launched.pop(name, None)
        for name in [n for n in self._waiting if n not in objects]:
            del self._waiting[name]
        self.tokens.keep_only(list(objects.values()))
        self.reporter.forget({n for n in self.reporter.releasing() if n not in objects})

    def _set_targets(self, objects: dict[str, Object], engines: dict[str, Any]) -> None:
        targets = {}
        for name, engine in engines.items():
            obj = objects.get(name)
            if engine.phase != "Ready" or engine.url is None or obj is None:
                continue
            try:
                spec = replicas.ReplicaSpec.model_validate(obj.get("spec") or {})
            except pydantic.ValidationError:
                continue
            path = recipes.metrics_path(spec.engine)
            recipe = recipes.recipe_of(spec.engine)
            guarded = recipe.api_key is not None and recipe.api_key.metrics_need_key
            token = self.tokens.held(obj) if guarded else None
            targets[name] = scraper.Target(engine.url + path, recipe.metrics, token=token)
        if targets != self._targets:
            self._targets = targets
            self.scraper.set_targets(targets)
