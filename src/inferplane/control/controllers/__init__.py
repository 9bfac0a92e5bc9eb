"""The control plane's controllers, one module per kind of work, and the set that runs.

deployments (Deployment → Replicas, rollouts; the plan itself in rollouts, the replica
template in templates), scheduling (binding replicas to pools and releasing them; the Pool
writes in allocations), clusters (heartbeat health, eviction, drain), endpoints (one
Endpoint per Ready replica) and quotas (each Quota's replicas and devices in use).
"""

from __future__ import annotations

from inferplane.control.controllers import clusters, deployments, endpoints, quotas, scheduling
from inferplane.control.runtime.controller import Reconciler
from inferplane.control.runtime.events import EventRecorder
from inferplane.control.runtime.objects import Clock, Objects, utcnow


def build(objects: Objects, recorder: EventRecorder, *, clock: Clock = utcnow) -> list[Reconciler]:
    """Every controller the leader runs, sharing one store access and one event recorder."""
    return [
        deployments.DeploymentController(objects, recorder, clock=clock),
        scheduling.SchedulingController(objects, recorder, clock=clock),
        clusters.ClusterController(objects, recorder, clock=clock),
        endpoints.EndpointController(objects),
        quotas.QuotaController(objects),
    ]
