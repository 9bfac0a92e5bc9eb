"""Label, annotation and finalizer names the control plane, the agents and the CLI share.

They are part of the contract between the control plane and the workload planes, written down
in docs/workload-planes.md: change one here and every side changes with it.
"""

from __future__ import annotations

from typing import Final

DEPLOYMENT_LABEL: Final = "inferplane.dev/deployment"
"""On a Replica: the name of the Deployment it belongs to (select a deployment's replicas)."""

TEMPLATE_HASH_LABEL: Final = "inferplane.dev/template-hash"
"""On a Replica: a hash of the replica template it was made from; a spec change changes it."""

MOVE_ANNOTATION: Final = "inferplane.dev/move"
"""On a Replica: move it elsewhere. `true` is a planned move (a drain): the deployment
controller starts a replacement and deletes the replica once the replacement is Ready.
`evict` is a move away from a lost cluster: the replica is deleted as soon as its replacement
exists. `preempt` makes room for a higher-priority replica: a replacement is started first,
and the replica goes once the replacement is Ready or as soon as it cannot be placed or fails
(make-before-break where capacity allows)."""

MOVE_PLANNED: Final = "true"
"""MOVE_ANNOTATION value of a planned, make-before-break move."""

MOVE_EVICT: Final = "evict"
"""MOVE_ANNOTATION value of an eviction from a cluster that is NotReady or gone."""

MOVE_PREEMPT: Final = "preempt"
"""MOVE_ANNOTATION value of a replica preempted by a higher-priority one."""

PREEMPTED_BY_ANNOTATION: Final = "inferplane.dev/preempted-by"
"""On a Replica marked `preempt`: `namespace/name` of the replica it makes room for."""

REPLACES_ANNOTATION: Final = "inferplane.dev/replaces"
"""On a Replica: the name of the moving replica it was started to replace."""

DRAIN_ANNOTATION: Final = "inferplane.dev/drain"
"""On a Cluster: `true` moves every replica off it, make-before-break (`inferplane drain`)."""

AGENT_STOP_FINALIZER: Final = "inferplane.dev/agent-stop"
"""On a Replica: held until the cluster's agent has drained and stopped the engine; the
control plane removes it itself when the cluster has no live agent."""

RELEASE_DEVICES_FINALIZER: Final = "inferplane.dev/release-devices"
"""On a Replica: held until the scheduler has released its devices from the Pool, which it
does only once AGENT_STOP_FINALIZER is gone (the engine no longer holds them)."""

REPLICA_FINALIZERS: Final = (AGENT_STOP_FINALIZER, RELEASE_DEVICES_FINALIZER)
"""The finalizers every Replica is created with, in this order."""

DEMAND_AT_ANNOTATION: Final = "inferplane.dev/demand-at"
"""On a Deployment: when a gateway last held a request for it with no replica ready (scale
from zero); an autoscaler that sees it recent starts a replica."""

DEMAND_WAITING_ANNOTATION: Final = "inferplane.dev/demand-waiting"
"""On a Deployment: how many requests that gateway was holding when it wrote DEMAND_AT."""
