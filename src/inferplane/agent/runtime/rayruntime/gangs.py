"""The Ray runtime's record of one replica: its gang of members, each an engine actor in one
bundle of the replica's placement group, and the stage the runtime has it in. Plain data: the
runtime (runtime.py) moves it from stage to stage.

    placing  actors being created (again, where one died) and telling where they listen
    running  the members' engines started; polled, probed
    backoff  the gang failed: every engine killed, waiting to be placed again
    stopping SIGTERM sent, then SIGKILL after the grace; actors and group removed once done
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from inferplane.agent.runtime import base, probes
from inferplane.agent.runtime.rayruntime import actor, cluster, placement

PREFIX = "engine:"
"""Names of this runtime's actors (engine:<replica>:<member>) and groups (engine:<replica>)."""

Stage = Literal["placing", "running", "backoff", "stopping"]


@dataclass(eq=False)
class Member:
    """One member: its actor, where its engine listens, what it last said."""

    index: int
    handle: cluster.Actor | None = None
    where: actor.Where | None = None
    observed: actor.Observed | None = None
    pending: cluster.Call | None = None
    """The one call whose answer is awaited (prepare or poll)."""
    spawned: int = 0
    """The generation this member was last told to run."""
    probe: probes.ProbeResult | None = None

    @property
    def url(self) -> str | None:
        if self.where is None:
            return None
        host = self.where.node_ip
        return f"http://{f'[{host}]' if ':' in host else host}:{self.where.port}"

    @property
    def exited(self) -> bool:
        """Nothing of it runs: never started, its process exited, or its actor is gone."""
        if self.handle is None or self.spawned == 0:
            return True
        return self.observed is not None and not self.observed.running


@dataclass(eq=False)
class Gang:
    """One replica: its launch, placement group, members and stage."""

    launch: base.Launch
    wanted: placement.Placement
    group: cluster.Group
    members: list[Member]
    stage: Stage = "placing"
    generation: int = 0
    crashes: int = 0
    next_start: float = 0.0
    started: float = 0.0
    started_wall: datetime | None = None
    ready: bool = False
    ready_since: float = 0.0
    probe_failures: int = 0
    next_probe: float = 0.0
    last_probe_wall: datetime | None = None
    next_group_check: float = 0.0
    stop_deadline: float = 0.0
    killed: bool = False
    message: str = ""
    url: str | None = field(default=None)

    @property
    def name(self) -> str:
        return self.launch.name


def actor_name(replica: str, index: int) -> str:
    return f"{PREFIX}{replica}:{index}"


def group_name(replica: str) -> str:
    return f"{PREFIX}{replica}"


def placement_of(launch: base.Launch) -> placement.Placement:
    """The launch's placement group: as `launch_for` wrote it, else the least one."""
    text = launch.env.get(placement.ENV)
    if text is not None:
        return placement.Placement.from_json(text)
    bundle = {"CPU": placement.UNACCOUNTED_CPU}
    strategy = placement.SINGLE_NODE if launch.nodes == 1 else placement.GANG
    return placement.Placement(tuple(dict(bundle) for _ in range(launch.nodes)), strategy)


def parse_actor_name(name: str) -> tuple[str | None, int]:
    """(replica, member index) of one of this runtime's actor names; (None, 0) for another."""
    if not name.startswith(PREFIX):
        return None, 0
    replica, _, index = name[len(PREFIX) :].rpartition(":")
    if not replica or not index.isdigit():
        return None, 0
    return replica, int(index)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
