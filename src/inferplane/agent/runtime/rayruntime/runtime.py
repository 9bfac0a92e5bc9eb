"""The Ray runtime: each replica a placement group on a Ray cluster, each of its nodes an
engine actor that runs the engine as its child process.

One state machine per replica, on the agent (`gangs.Gang.stage`):

    placing  the actors are created (again, where one died) and tell where their engine
             will listen; once all have, the gang starts: `spawn` on every member, the
             leader's address in every member's LeaderWorkerSet variables.
    running  each sync polls every member's process (`poll`); any member's exit, or its
             actor's death (its node's), fails the whole gang. Probes of every member's
             health path turn it Ready.
    backoff  a failed gang waits, every member's engine killed, then is placed again; after
             base.CRASH_LOOP_AFTER consecutive failures it reads CrashLoopBackOff.
    stopping SIGTERM to every engine, SIGKILL after the grace; once all exited the actors
             are killed and the placement group removed.

Ray is only ever called from `start`, `stop`, `sync`, `adopt`, `close`, `launch_for` and
`read_log`; `status` and `names` read what `sync` saw. `sync` waits at most
`call_timeout` for the actors' answers: an answer that comes later counts at the next sync.
Actors and placement groups are named and detached in the agent's namespace, so an agent
that exits leaving its engines running (`close(stop_engines=False)`) is followed by one that
adopts them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from inferplane import logs
from inferplane.agent import discovery, recipes, sources
from inferplane.agent.runtime import base, probes
from inferplane.agent.runtime.rayruntime import actor, cluster, gangs, placement, pools
from inferplane.agent.runtime.rayruntime.settings import RaySettings

log = logging.getLogger(__name__)

KIND = "ray"
WAITING_FOR_TOKEN = "waiting for the agent to hand over its engine token"
KILL_AFTER_S = 5.0
"""How long after SIGKILL a stopping engine whose actors do not answer is torn down anyway."""
ADOPTED_STOP_GRACE_S = 10.0
"""Grace of a stop an earlier agent began, which the adopting agent finishes."""
GROUP_CHECK_S = 1.0
POOLS_TTL_S = 30.0
LOG_CALL_TIMEOUT_S = 5.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RayRuntime:
    """Runs engines as Ray actors in placement groups; see the module docstring."""

    def __init__(
        self,
        settings: RaySettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _utcnow,
        probe: probes.Probe = probes.http_probe,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._wall = wall
        self._probe = probe
        self._environ = environ
        self._engines: dict[str, gangs.Gang] = {}
        self._connected = False
        self._pools: list[discovery.PoolPlan] = []
        self._pools_at: float | None = None

    @property
    def kind(self) -> str:
        return KIND

    def version(self) -> str | None:
        """Ray's version (the agent's, which Ray requires its cluster to match)."""
        return f"Ray {cluster.version()}"

    # -- the Runtime interface --------------------------------------------------------------

    def launch_for(self, replica: base.Replica) -> base.Launch:
        """The replica's engine on Ray nodes: a placement group of its resources (refused,
        PlacementError, when it cannot be one), the model as a path on the nodes."""
        spec = replica.spec
        recipe = recipes.recipe_of(spec.engine)
        accelerator = self._accelerator(spec.pool) if spec.resources.devices else None
        wanted = placement.placement_for(spec.resources, accelerator=accelerator)
        model = sources.model_path(spec.model.source, builtin_ok=recipe.builtin_models)
        launch = recipes.launch_for(
            replica.name,
            spec,
            host=actor.NODE_HOST,
            model_path=model,
            devices=actor.DEVICES,
            environ=self._environ,
        )
        return dataclasses.replace(launch, env={**launch.env, placement.ENV: wanted.to_json()})

    def adopt(self) -> list[str]:
        """Take over the actors an earlier agent left in this namespace: running gangs as
        they are, broken ones restarted (once the agent hands over their token), stops it had
        begun finished."""
        self._connect()
        found: dict[str, dict[int, cluster.Actor]] = {}
        for name in cluster.actor_names():
            replica, index = gangs.parse_actor_name(name)
            if replica is not None and replica not in self._engines:
                target = cluster.find_actor(name)
                if target is not None:
                    found.setdefault(replica, {})[index] = target
        calls = {
            (replica, index): cluster.call(target, "describe")
            for replica, members in found.items()
            for index, target in members.items()
        }
        answers = cluster.wait_all(calls.values(), timeout=self.settings.adopt_timeout)
        for replica, members in found.items():
            described = {
                i: answer
                for i in members
                if isinstance(answer := answers[calls[(replica, i)]], actor.Description)
            }
            self._adopt_one(replica, members, described)
        return [name for name in found if name in self._engines]

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
        wanted = gangs.placement_of(launch)
        if wanted.nodes != launch.nodes:
            raise base.RuntimeFailure(
                f"{launch.name}: a placement of {wanted.nodes} bundles for {launch.nodes} nodes"
            )
        self._connect()
        for index in range(launch.nodes):  # left by an agent that did not adopt them
            stale = cluster.find_actor(gangs.actor_name(launch.name, index))
            if stale is not None:
                cluster.kill(stale)
        group = self._group_for(launch.name, wanted)
        members = [gangs.Member(i) for i in range(launch.nodes)]
        engine = gangs.Gang(launch, wanted, group, members)
        self._engines[launch.name] = engine
        logs.event(log, "engine placing", replica=launch.name, strategy=wanted.strategy,
                   bundles=list(wanted.bundles))  # fmt: skip
        self._place(engine, self._clock())

    def stop(self, name: str, *, grace: float) -> None:
        engine = self._engines.get(name)
        if engine is None or engine.stage == "stopping":
            return
        engine.stage = "stopping"
        engine.stop_deadline = self._clock() + grace
        engine.ready = False
        for member in engine.members:
            if member.handle is not None:
                cluster.call(member.handle, "send_signal", signal.SIGTERM, True)
        logs.event(log, "engine stopping", replica=name, grace=grace)

    def status(self, name: str) -> base.EngineStatus | None:
        engine = self._engines.get(name)
        if engine is None:
            return None
        facts = base.Facts(
            stopping=engine.stage == "stopping",
            alive=engine.stage == "running",
            ready=engine.ready,
            crashes=engine.crashes,
        )
        phase = base.phase_of(facts)
        return base.EngineStatus(
            name=name,
            phase=phase,
            url=engine.url,
            pid=None,
            restarts=max(engine.generation - 1, 0),
            started_at=engine.started_wall,
            last_probe_at=engine.last_probe_wall,
            message=self._message(engine, phase),
            fingerprint=engine.launch.fingerprint(),
        )

    def names(self) -> list[str]:
        return list(self._engines)

    def sync(self) -> None:
        if not self._engines:
            return
        now = self._clock()
        for engine in list(self._engines.values()):
            self._advance(engine, now)
        self._collect(now)
        for engine in list(self._engines.values()):
            if engine.stage == "placing":
                self._start_if_placed(engine, now)
            elif engine.stage == "stopping" and self._stopped(engine, now):
                self._tear_down(engine)
        self._probe_due(now)

    def read_log(self, name: str, *, offset: int, limit: int) -> base.LogChunk:
        """The leader's log: read by its actor (on whichever node it runs), else, once the
        actor is gone, from this host's log dir (where a node on this host wrote it)."""
        engine = self._engines.get(name)
        leader = engine.members[0].handle if engine is not None else None
        if leader is not None:
            try:
                call = cluster.call(leader, "read_log", offset, limit)
                answer = cluster.wait_all([call], timeout=LOG_CALL_TIMEOUT_S)[call]
            except base.RuntimeFailure as exc:
                answer = exc
            if isinstance(answer, base.LogChunk):
                return answer
        path = actor.log_path(self.settings.log_dir, name, 0)
        try:
            return actor.read_log(path, offset=offset, limit=limit)
        except FileNotFoundError as exc:
            raise base.UnknownEngine(f"no log for {name} on this agent") from exc

    def close(self, *, grace: float, stop_engines: bool) -> None:
        if stop_engines and self._engines:
            for name in list(self._engines):
                self.stop(name, grace=grace)
            deadline = time.monotonic() + grace + KILL_AFTER_S
            while self._engines and time.monotonic() < deadline:
                self.sync()
                time.sleep(0.05)
            for engine in list(self._engines.values()):
                self._tear_down(engine)
        self._engines.clear()
        if self._connected:
            cluster.disconnect()
            self._connected = False

    # -- the stages -------------------------------------------------------------------------

    def _advance(self, engine: gangs.Gang, now: float) -> None:
        """Issue what the engine's stage needs: actors, prepare and poll calls, kills."""
        if engine.stage == "backoff" and now >= engine.next_start:
            engine.stage = "placing"
            for member in engine.members:
                member.where = None
        if engine.stage == "placing":
            self._place(engine, now)
        elif engine.stage == "running":
            self._poll(engine)
            if not engine.ready and now - engine.started >= engine.launch.startup_timeout:
                seconds = engine.launch.startup_timeout
                self._fail(engine, f"not healthy within its startup timeout of {seconds:g}s", now)
            elif engine.ready and now - engine.ready_since >= self.settings.stable_after:
                engine.crashes = 0  # ran healthy a while: crashes count from zero again
        elif engine.stage == "stopping":
            self._poll(engine)
            if not engine.killed and now >= engine.stop_deadline:
                engine.killed = True
                self._signal(engine, signal.SIGKILL)

    def _place(self, engine: gangs.Gang, now: float) -> None:
        for member in engine.members:
            if member.handle is None and not self._create_actor(engine, member):
                return
        for member in engine.members:
            if member.handle is not None and member.where is None and member.pending is None:
                member.pending = cluster.call(member.handle, "prepare")
        if any(m.where is None for m in engine.members) and now >= engine.next_group_check:
            engine.next_group_check = now + GROUP_CHECK_S
            self._check_group(engine)

    def _create_actor(self, engine: gangs.Gang, member: gangs.Member) -> bool:
        setup = actor.Setup(
            launch=engine.launch.to_dict(),
            index=member.index,
            log_dir=str(self.settings.log_dir),
        )
        name = gangs.actor_name(engine.name, member.index)
        try:
            member.handle = cluster.create_actor(name, engine.group, member.index, setup=setup)
        except cluster.RayUnavailable as exc:
            engine.message = str(exc)  # e.g. the name of an actor just killed is not free yet
            return False
        member.spawned, member.observed = 0, None
        return True

    def _check_group(self, engine: gangs.Gang) -> None:
        """Say why the actors are not up yet; replace a group someone removed."""
        try:
            state = cluster.group_state(engine.group)
        except cluster.RayUnavailable as exc:
            engine.message = f"cannot read placement group {engine.group.name}: {exc}"
            return
        wanted = engine.wanted
        if state == "REMOVED":
            engine.group = cluster.create_group(engine.group.name, wanted)
            for member in engine.members:
                member.handle, member.where, member.pending = None, None, None
            engine.message = "its placement group was removed: asked for it again"
        elif state in ("PENDING", "RESCHEDULING"):
            how = "on one node" if wanted.nodes == 1 else f"over {wanted.nodes} distinct nodes"
            why = " (a node of it is gone)" if state == "RESCHEDULING" else ""
            engine.message = (
                f"waiting for Ray to place its placement group{why}: {wanted.strategy}"
                f" {_describe_bundle(wanted.bundles[0])} {how}"
            )
        elif not engine.message.startswith(WAITING_FOR_TOKEN):
            engine.message = "starting the engine actors"

    def _start_if_placed(self, engine: gangs.Gang, now: float) -> None:
        """Once every member knows where it listens: start the gang (with its token)."""
        if any(m.where is None or m.handle is None for m in engine.members):
            return
        launch = engine.launch
        if launch.needs_token and launch.token is None:
            if not engine.message.startswith(WAITING_FOR_TOKEN):
                engine.message = WAITING_FOR_TOKEN
                logs.event(log, "engine waits for its token", replica=engine.name)
            return
        engine.generation += 1
        leader = engine.members[0].where
        assert leader is not None
        for member in engine.members:
            assert member.handle is not None
            env = {}
            if launch.nodes > 1:
                env = launch.member_env(
                    member.index, leader_host=leader.node_ip, leader_port=leader.port
                )
            cluster.call(member.handle, "spawn", engine.generation, launch.token, env)
            member.spawned, member.observed, member.probe = engine.generation, None, None
        engine.stage = "running"
        engine.started, engine.started_wall = now, self._wall()
        engine.ready, engine.probe_failures, engine.next_probe = False, 0, now
        engine.url, engine.message = engine.members[0].url, ""
        logs.event(log, "engine started", replica=engine.name, url=engine.url,
                   generation=engine.generation)  # fmt: skip

    def _poll(self, engine: gangs.Gang) -> None:
        for member in engine.members:
            if member.handle is not None and member.pending is None and member.spawned:
                member.pending = cluster.call(member.handle, "poll")

    def _fail(self, engine: gangs.Gang, reason: str, now: float) -> None:
        """The gang failed: kill every member's engine, count the crash, back off."""
        self._signal(engine, signal.SIGKILL)
        engine.stage = "backoff"
        engine.ready = False
        engine.crashes += 1
        engine.next_start = now + self.settings.backoff.delay(engine.crashes)
        engine.message = reason
        logs.event(log, "engine failed", level=logging.WARNING, replica=engine.name,
                   reason=reason, crashes=engine.crashes)  # fmt: skip

    def _signal(self, engine: gangs.Gang, sig: int) -> None:
        for member in engine.members:
            if member.handle is not None and member.spawned:
                cluster.call(member.handle, "send_signal", sig, engine.stage == "stopping")

    def _stopped(self, engine: gangs.Gang, now: float) -> bool:
        if all(member.exited for member in engine.members):
            return True
        return engine.killed and now >= engine.stop_deadline + KILL_AFTER_S

    def _tear_down(self, engine: gangs.Gang) -> None:
        for member in engine.members:
            if member.handle is not None:
                cluster.kill(member.handle)
        cluster.remove_group(engine.group)
        self._engines.pop(engine.name, None)
        logs.event(log, "engine stopped", replica=engine.name)

    # -- answers ----------------------------------------------------------------------------

    def _collect(self, now: float) -> None:
        waiting = {
            member.pending: (engine, member)
            for engine in self._engines.values()
            for member in engine.members
            if member.pending is not None
        }
        for done in cluster.answered(list(waiting), timeout=self.settings.call_timeout):
            engine, member = waiting[done]
            member.pending = None
            try:
                answer = cluster.result(done)
            except cluster.ActorGone as exc:
                self._actor_gone(engine, member, str(exc), now)
                continue
            if isinstance(answer, actor.Where):
                member.where = answer
            elif isinstance(answer, actor.Observed):
                self._observed(engine, member, answer, now)

    def _actor_gone(self, engine: gangs.Gang, member: gangs.Member, why: str, now: float) -> None:
        member.handle, member.where, member.observed = None, None, None
        logs.event(log, "engine actor gone", level=logging.WARNING, replica=engine.name,
                   member=member.index, reason=why)  # fmt: skip
        if engine.stage in ("placing", "running"):
            self._fail(engine, f"the Ray actor of member {member.index} is gone: {why}", now)

    def _observed(
        self, engine: gangs.Gang, member: gangs.Member, observed: actor.Observed, now: float
    ) -> None:
        if observed.generation != member.spawned:
            return  # an answer about an earlier run
        member.observed = observed
        if engine.stage == "running" and not observed.running:
            who = f"member {member.index}: " if engine.launch.nodes > 1 else ""
            self._fail(engine, who + observed.reason, now)

    # -- probes -----------------------------------------------------------------------------

    def _probe_due(self, now: float) -> None:
        due = [e for e in self._engines.values() if e.stage == "running" and now >= e.next_probe]
        targets = [(e, m) for e in due for m in e.members if m.url is not None]
        if not targets:
            return
        urls = [f"{m.url}{e.launch.health_path}" for e, m in targets]
        results = probes.probe_all(self._probe, urls)
        for (_, member), result in zip(targets, results, strict=True):
            member.probe = result
        for engine in due:
            self._probed(engine, now)

    def _probed(self, engine: gangs.Gang, now: float) -> None:
        engine.last_probe_wall = self._wall()
        settings = self.settings
        period = settings.probe_period if engine.ready else settings.startup_probe_period
        engine.next_probe = now + period
        results = [member.probe for member in engine.members]
        if all(result == "ok" for result in results):
            if not engine.ready:
                engine.ready, engine.ready_since = True, now
                logs.event(log, "engine ready", replica=engine.name, url=engine.url)
            engine.probe_failures, engine.message = 0, ""
            return
        if not engine.ready:
            return  # still starting: the startup timeout decides
        engine.probe_failures += 1
        if engine.probe_failures < settings.failure_threshold:
            return
        path, failures = engine.launch.health_path, engine.probe_failures
        if "unreachable" in results:
            self._fail(engine, f"failed {failures} liveness probes of {path}", now)
        else:
            engine.ready = False
            engine.message = f"{path} stopped answering 200"

    # -- adopting ---------------------------------------------------------------------------

    def _adopt_one(
        self,
        replica: str,
        members: dict[int, cluster.Actor],
        described: dict[int, actor.Description],
    ) -> None:
        if not described:
            for target in members.values():
                cluster.kill(target)  # cannot tell what it runs: nothing to adopt
            return
        launch = base.Launch.from_dict(next(iter(described.values())).launch)
        try:
            wanted = gangs.placement_of(launch)
        except placement.PlacementError:
            wanted = gangs.placement_of(dataclasses.replace(launch, env={}))
        now = self._clock()
        engine = gangs.Gang(launch, wanted, self._group_for(replica, wanted, reuse_any=True), [])
        for index in range(launch.nodes):
            member = gangs.Member(index, handle=members.get(index) if index in described else None)
            seen = described.get(index)
            if seen is not None and seen.port is not None:
                member.where = actor.Where(seen.node_ip, seen.port, seen.node_id, ())
                member.spawned = seen.generation
            engine.members.append(member)
        for index, target in members.items():
            if index not in described or index >= launch.nodes:
                cluster.kill(target)
        generations = {d.generation for d in described.values()}
        engine.generation = max(generations)
        engine.url, engine.started = engine.members[0].url, now
        engine.started_wall = gangs.parse_time(
            described.get(0, next(iter(described.values()))).started
        )
        self._engines[replica] = engine
        whole = len(described) == launch.nodes and len(generations) == 1
        if any(d.stopping for d in described.values()):
            engine.stage, engine.stop_deadline = "stopping", now + ADOPTED_STOP_GRACE_S
            self._signal(engine, signal.SIGTERM)
        elif whole and all(d.running for d in described.values()) and engine.generation:
            engine.stage, engine.next_probe = "running", now
        else:
            engine.stage, engine.next_start = "backoff", now  # restarted as a whole
            engine.message = "adopted a gang that was not running whole: restarting it"
        logs.event(log, "engine adopted", replica=replica, stage=engine.stage,
                   members=len(described))  # fmt: skip

    def _group_for(
        self, replica: str, wanted: placement.Placement, *, reuse_any: bool = False
    ) -> cluster.Group:
        """The replica's placement group: the one of its name when it fits, else a new one."""
        name = gangs.group_name(replica)
        found = cluster.find_group(name)
        if found is not None:
            try:
                fits = reuse_any or [dict(found.bundle(i)) for i in range(found.size)] == [
                    dict(b) for b in wanted.bundles
                ]
            except (IndexError, base.RuntimeFailure, ValueError):
                fits = False
            if fits:
                return found
            cluster.remove_group(found)
        return cluster.create_group(name, wanted)

    # -- helpers ----------------------------------------------------------------------------

    def _connect(self) -> None:
        if not self._connected:
            cluster.connect(self.settings.address, self.settings.namespace)
            self._connected = True

    def _accelerator(self, pool: str | None) -> str | None:
        """The Ray accelerator type of the replica's pool, from the cluster's nodes (read at
        most every POOLS_TTL_S)."""
        now = self._clock()
        if self._pools_at is None or now - self._pools_at >= POOLS_TTL_S:
            self._connect()
            self._pools, self._pools_at = pools.plans_of(cluster.nodes()), now
        return pools.accelerator_of(pool, self._pools)

    def _message(self, engine: gangs.Gang, phase: base.Phase) -> str:
        if phase == "CrashLoopBackOff":
            wait = max(engine.next_start - self._clock(), 0.0)
            return f"back-off {wait:.0f}s restarting failed engine: {engine.message}"
        return engine.message


def _describe_bundle(bundle: Mapping[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(bundle.items())) + "}"
