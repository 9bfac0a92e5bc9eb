"""The one wrapper around Ray the runtime and its discovery use: connecting, placement groups,
engine actors and calls to them, nodes. Ray is partly untyped; what crosses this module's
edge is typed, and Ray's errors become the runtime's (`ActorGone`, `RayUnavailable`).

Every call here returns at once or within the timeout it is given: `sync()` must not block
the agent's loop on a busy Ray cluster.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
import ray.exceptions
import ray.util
from ray.util.placement_group import (
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from inferplane.agent.runtime import base
from inferplane.agent.runtime.rayruntime import actor, placement

log = logging.getLogger(__name__)

_ENGINE_ACTOR = ray.remote(actor.EngineActor)
REACH_TIMEOUT_S = 5.0


class RayUnavailable(base.RuntimeFailure):
    """The Ray cluster cannot be reached, or refused a request; the message says why."""


class ActorGone(base.RuntimeFailure):
    """An engine actor died (its process, or its node) or cannot be reached."""


def connect(address: str, namespace: str) -> None:
    """Join the Ray cluster at `address` as a driver in `namespace` (again: nothing)."""
    if ray.is_initialized():
        current = ray.get_runtime_context().namespace
        if current == namespace:
            return
        ray.shutdown()  # one process, one namespace: the last runtime built wins
    _check_reachable(address)
    try:
        ray.init(
            address=address,
            namespace=namespace,
            ignore_reinit_error=True,
            log_to_driver=False,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayUnavailable(f"cannot join the Ray cluster at {address}: {exc}") from exc


def _check_reachable(address: str) -> None:
    """Refuse a GCS address nothing answers at: Ray's own client aborts the whole process
    when it cannot reach the GCS within a minute, so the agent looks first."""
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S).close()
    except (OSError, ValueError) as exc:
        raise RayUnavailable(f"no Ray cluster answers at {address}: {exc}") from exc


def version() -> str:
    """The Ray this process runs: a driver only joins a cluster of the same version."""
    return str(ray.__version__)


def disconnect() -> None:
    """Leave the Ray cluster; detached actors and placement groups stay."""
    if ray.is_initialized():
        ray.shutdown()


# -- placement groups -----------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """A placement group this runtime created (or found by its name)."""

    name: str
    handle: Any = field(repr=False, compare=False)

    def bundle(self, index: int) -> Mapping[str, float]:
        specs: list[dict[str, float]] = self.handle.bundle_specs
        return specs[index]

    @property
    def size(self) -> int:
        return int(self.handle.bundle_count)


def create_group(name: str, wanted: placement.Placement) -> Group:
    """Ask for the placement group (Ray places it when it can); detached, so it outlives the
    agent's connection."""
    _require_connection()
    bundles = [dict(bundle) for bundle in wanted.bundles]
    try:
        handle = placement_group(bundles, strategy=wanted.strategy, name=name, lifetime="detached")
    except (ValueError, ray.exceptions.RayError) as exc:
        raise RayUnavailable(f"Ray refused placement group {name}: {exc}") from exc
    return Group(name, handle)


def find_group(name: str) -> Group | None:
    _require_connection()
    try:
        return Group(name, get_placement_group(name))
    except ValueError:
        return None


def group_state(group: Group) -> str:
    """PENDING, CREATED, REMOVED or RESCHEDULING (a node of it died), as Ray says."""
    _require_connection()
    try:
        table = placement_group_table(group.handle)
    except ray.exceptions.RayError as exc:
        raise RayUnavailable(str(exc)) from exc
    return str(table.get("state") or "UNKNOWN")


def remove_group(group: Group) -> None:
    _require_connection()
    try:
        remove_placement_group(group.handle)
    except (ValueError, ray.exceptions.RayError) as exc:
        log.debug("placement group %s already gone: %s", group.name, exc)


# -- engine actors --------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """A handle on one engine actor: gang member `index` of its replica."""

    name: str
    handle: Any = field(repr=False, compare=False)


def create_actor(name: str, group: Group, index: int, *, setup: actor.Setup) -> Actor:
    """Start the engine actor of member `index` in bundle `index` of `group`: detached and
    named, so a later agent finds it; it claims the whole bundle. `setup` holds no token."""
    _require_connection()
    strategy = PlacementGroupSchedulingStrategy(
        placement_group=group.handle,
        placement_group_bundle_index=index,
        placement_group_capture_child_tasks=False,
    )
    options = placement.actor_options(group.bundle(index))
    try:
        handle = _ENGINE_ACTOR.options(
            name=name,
            lifetime="detached",
            max_restarts=0,
            max_concurrency=1,
            scheduling_strategy=strategy,
            **options,
        ).remote(setup)
    except (ValueError, ray.exceptions.RayError) as exc:
        raise RayUnavailable(f"Ray refused actor {name}: {exc}") from exc
    return Actor(name, handle)


def find_actor(name: str) -> Actor | None:
    _require_connection()
    try:
        return Actor(name, ray.get_actor(name))
    except ValueError:
        return None


def actor_names() -> list[str]:
    """The named actors of this namespace (alive or being created)."""
    _require_connection()
    return list(ray.util.list_named_actors())


def kill(target: Actor) -> None:
    """End the actor's process at once (its engine, if any, gets SIGTERM from the kernel)."""
    _require_connection()
    try:
        ray.kill(target.handle, no_restart=True)
    except (ValueError, ray.exceptions.RayError) as exc:
        log.debug("actor %s already gone: %s", target.name, exc)


# -- calls ----------------------------------------------------------------------------------


@dataclass(eq=False)
class Call:
    """An actor method's answer to come."""

    method: str
    ref: Any = field(repr=False)


def call(target: Actor, method: str, *args: Any) -> Call:
    """Call `method` of the actor; its calls run in the order they were made. A dead actor's
    call still returns: its answer is the error."""
    _require_connection()
    try:
        return Call(method, getattr(target.handle, method).remote(*args))
    except (ray.exceptions.RayError, RuntimeError) as exc:  # not connected, shutting down
        raise RayUnavailable(f"cannot call {target.name}.{method}: {exc}") from exc


def answered(calls: Sequence[Call], *, timeout: float) -> list[Call]:
    """The calls answered within `timeout` seconds (0: those answered already)."""
    if not calls:
        return []
    _require_connection()
    by_ref = {call_.ref: call_ for call_ in calls}
    ready, _ = ray.wait(list(by_ref), num_returns=len(by_ref), timeout=timeout)
    return [by_ref[ref] for ref in ready]


def result(done: Call) -> Any:
    """The answer of an answered call; ActorGone when its actor died."""
    _require_connection()
    try:
        return ray.get(done.ref, timeout=0)
    except ray.exceptions.RayActorError as exc:
        raise ActorGone(_first_line(exc)) from exc
    except ray.exceptions.RayError as exc:
        raise ActorGone(f"{done.method} failed: {_first_line(exc)}") from exc


def wait_all(calls: Iterable[Call], *, timeout: float) -> dict[Call, Any | ActorGone]:
    """Each call's answer (or why there is none) within `timeout` seconds in all."""
    pending = list(calls)
    done = set(answered(pending, timeout=timeout))
    found: dict[Call, Any | ActorGone] = {}
    for each in pending:
        if each not in done:
            found[each] = ActorGone(f"no answer to {each.method} within {timeout:g}s")
            continue
        try:
            found[each] = result(each)
        except ActorGone as exc:
            found[each] = exc
    return found


# -- nodes ----------------------------------------------------------------------------------


def nodes() -> list[dict[str, Any]]:
    """Ray's nodes, as `ray.nodes()` gives them (Alive, Resources, NodeManagerAddress...)."""
    _require_connection()
    try:
        return [dict(node) for node in ray.nodes()]
    except ray.exceptions.RayError as exc:
        raise RayUnavailable(f"cannot list the Ray cluster's nodes: {exc}") from exc


def _require_connection() -> None:
    """Refuse to call Ray unconnected: Ray's API would start a Ray cluster of its own here."""
    if not ray.is_initialized():
        raise RayUnavailable("not connected to the Ray cluster")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
