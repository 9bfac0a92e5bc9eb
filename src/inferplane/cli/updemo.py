"""What `inferplane up` puts on the fleet it starts: the two local planes, their Clusters, and
the demo model, built once and applied as a Model, Deployment and Service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from inferplane.api.meta import API_VERSION
from inferplane.cli.upview import DEMO, NAMESPACE


@dataclass(frozen=True)
class LocalPlane:
    cluster: str
    region: str


DEMO_MAX_REPLICAS = 4
DEMO_TARGET = 4
"""Concurrent requests per demo replica the autoscaler aims at: about where the reference
engine's latency starts to climb on two cores."""

LOCAL_PLANES = (LocalPlane("local-a", "local-east"), LocalPlane("local-b", "local-west"))


def demo_objects(replicas: int) -> list[dict[str, Any]]:
    """The demo Model, Deployment and Service `up` applies."""
    meta = {"name": DEMO, "namespace": NAMESPACE}
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "Model",
            "metadata": meta,
            "spec": {
                "displayName": "inferplane demo Llama",
                "description": "A small Llama trained offline on Python's documentation.",
                "versions": [{"name": "v1", "source": "file://demo", "stage": "production"}],
            },
        },
        {
            "apiVersion": API_VERSION,
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "model": DEMO,
                "replicas": replicas,
                "engine": {
                    "recipe": "reference",
                    "args": ["--served-model-name", DEMO, "--kv-cache-memory", "64MiB"],
                },
                "placement": {"strategy": "spread", "spreadLabel": "region"},
                # Scales with load (docs/autoscaling.md): try `inferplane load -m demo`.
                "autoscaling": {
                    "minReplicas": replicas,
                    "maxReplicas": max(replicas, DEMO_MAX_REPLICAS),
                    "metric": "concurrency",
                    "target": DEMO_TARGET,
                },
            },
        },
        {
            "apiVersion": API_VERSION,
            "kind": "Service",
            "metadata": meta,
            "spec": {"modelName": DEMO, "routes": [{"deployment": DEMO}]},
        },
    ]


def apply_demo(client: Any, replicas: int) -> None:
    """Apply the demo objects (idempotent: a second `up` finds them as they are)."""
    for obj in demo_objects(replicas):
        client.apply(obj)


def build_demo(data_dir: Path, console: Console) -> Path:
    """Build the demo model into DATA_DIR/models once, where the engines look for it (they
    inherit INFERPLANE_DATA_DIR): here, with a progress bar, before any engine starts, so
    that none of them waits on it without a word. `ensure_demo` builds under a lock and
    renames a whole folder into place, so a second `up` or an engine asking at the same time
    never trains it twice nor sees it half-written."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from inferplane.engine import demo

    spec = demo.DemoSpec()
    final = demo.demo_path(data_dir, spec)
    if (final / demo.DONE_MARKER).exists():
        return final
    columns = (
        TextColumn("building the demo model (once; cached in {task.description})"),
        BarColumn(),
        TextColumn("step {task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(str(final.parent), total=spec.steps)
        demo.ensure_demo(
            data_dir, spec, progress=lambda step, total, loss: progress.update(task, completed=step)
        )
    console.print(f"built the demo model in {final}")
    return final


def apply_cluster(
    client: Any, plane: LocalPlane, heartbeat_grace: float | None, eviction_grace: float | None
) -> None:
    """Create the plane's Cluster ahead of its agent, or set the graces on it; the agent then
    owns its labels and region, the graces stay as set here."""
    from inferplane import client as api_client

    spec: dict[str, Any] = {}
    if heartbeat_grace is not None:
        spec["heartbeatGraceSeconds"] = heartbeat_grace
    if eviction_grace is not None:
        spec["evictionGraceSeconds"] = eviction_grace
    try:
        client.get("Cluster", plane.cluster)
    except api_client.NotFound:
        labels = {"region": plane.region}
        client.create(
            {
                "apiVersion": API_VERSION,
                "kind": "Cluster",
                "metadata": {"name": plane.cluster, "labels": labels},
                "spec": {"region": plane.region, "provider": "local", **spec},
            }
        )
        return
    if spec:
        client.patch("Cluster", plane.cluster, {"spec": spec})
