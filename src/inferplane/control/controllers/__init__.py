"""The control plane's controllers, one module per kind of work, and the set that runs.

autoscaling (a Deployment's replicas from its load), deployments (Deployment → Replicas,
rollouts; the plan itself in rollouts, the replica template in templates), scheduling
(binding replicas to pools and releasing them; the Pool writes in allocations), clusters
(heartbeat health, eviction, drain), endpoints (one Endpoint per Ready replica), quotas (each
Quota's replicas and devices in use) and enginetokens (each replica's engine token, and its
removal with the replica).
"""

from __future__ import annotations

from inferplane.control.controllers import (
    autoscaling,
    clusters,
    deployments,
    endpoints,
    enginetokens,
    quotas,
    scheduling,
)
from inferplane.control.loadboard import LoadBoard
from inferplane.control.runtime.controller import Reconciler
from inferplane.control.runtime.events import EventRecorder
from inferplane.control.runtime.objects import Clock, Objects, utcnow
from inferplane.control.secretbox import SecretBox


def build(
    objects: Objects,
    recorder: EventRecorder,
    *,
    box: SecretBox,
    board: LoadBoard | None = None,
    clock: Clock = utcnow,
) -> list[Reconciler]:
    """Every controller the leader runs, sharing one store access and one event recorder;
    the autoscaler reads load from `board` (the metrics channel's memory)."""
    return [
        deployments.DeploymentController(objects, recorder, clock=clock),
        autoscaling.AutoscalingController(objects, recorder, board or LoadBoard(), clock=clock),
        scheduling.SchedulingController(objects, recorder, clock=clock),
        clusters.ClusterController(objects, recorder, clock=clock),
        endpoints.EndpointController(objects),
        quotas.QuotaController(objects),
        *build_credentials(objects, box=box),
    ]


def build_credentials(objects: Objects, *, box: SecretBox) -> list[Reconciler]:
    """The controllers that issue credentials rather than decide anything: they run even on a
    control plane started without controllers, so a replica written by hand gets the engine
    token its agent waits for."""
    return [
        enginetokens.EngineTokenController(objects, box),
        enginetokens.EngineTokenCollector(objects),
    ]
