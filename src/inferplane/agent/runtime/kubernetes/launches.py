"""What a replica needs to run as pods: its image, its model inside the pod, its program, and
the pod facts render reads (`render.Pod`).

The engine runs in the replica's own image (spec.engine.image), so nothing of the agent's
machine goes in: the recipe's Python is the image's `python3`, the model is a path in the
pod (the model cache is mounted at /models) or, for engines that download their weights
themselves, a Hugging Face repository id. The engine listens on 0.0.0.0 and a fixed port
(spec.engine.port, else `CONTAINER_PORT`), which its Service serves.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from inferplane.agent import discovery as host_discovery
from inferplane.agent import recipes, sources
from inferplane.agent.runtime import base
from inferplane.agent.runtime.kubernetes import discovery, render
from inferplane.api import replicas

CONTAINER_PORT = 8000
HOST = "0.0.0.0"
CONTAINER_PYTHON = "python3"
"""What a recipe's `{python}` program is in an engine image."""
HUB_RECIPES = frozenset({"vllm", "sglang", "tgi"})
"""Engines that download a Hugging Face model id themselves (into HF_HOME)."""
HF_HOME = f"{render.MODELS_PATH}/huggingface"

_IMAGE = re.compile(
    r"^(?:(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|[A-Za-z0-9-]+(?=:))(?::[0-9]{1,5})?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # path
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"  # tag
    r"(?:@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-fA-F0-9]{32,})?$"  # digest
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def launch_for(replica: base.Replica, *, shapes: Sequence[discovery.Shape]) -> base.Launch:
    """The launch of `replica` as pods; LaunchError or SourceError naming what to change."""
    spec = replica.spec
    recipe = recipes.recipe_of(spec.engine)
    image = check_image(spec.engine.image, recipe.name)
    model = model_path(spec.model, recipe)
    if _CONTROL.search(spec.engine.healthPath) or " " in spec.engine.healthPath:
        raise recipes.LaunchError("spec.engine.healthPath must be a URL path without spaces")
    python = recipe.program == recipes.PYTHON and recipe.program_env is not None
    programs = {str(recipe.program_env): CONTAINER_PYTHON} if python else {}
    launch = recipes.launch_for(
        replica.name, spec, host=HOST, model_path=model, devices="", environ=programs
    )
    env = {key: value for key, value in launch.env.items() if key != recipe.devices_env}
    env.setdefault("HOME", render.SCRATCH_PATH)
    if urlsplit(spec.model.source).scheme == "hf":
        env.setdefault("HF_HOME", HF_HOME)
    env[render.POD_ENV] = pod_of(spec, shapes).encode()
    return dataclasses.replace(
        launch, env=env, image=image, port=launch.port or CONTAINER_PORT, host=HOST
    )


def check_image(image: str | None, recipe: str) -> str:
    if not image:
        raise recipes.LaunchError(
            f"the kubernetes runtime runs engines as containers: set spec.engine.image to an"
            f" image with the {recipe} engine in it"
        )
    if len(image) > 512 or not _IMAGE.match(image):
        raise recipes.LaunchError(
            f"spec.engine.image {image[:100]!r} is not an image reference such as"
            " registry.example.com/team/engine:1.2"
        )
    return image


def model_path(model: replicas.ResolvedModel, recipe: recipes.Recipe) -> str:
    """Where the engine finds the weights in its pod; SourceError when it cannot."""
    parts = urlsplit(model.source)
    if parts.scheme == "file":
        return _file_path(model.source, parts.netloc, parts.path, recipe)
    if parts.scheme == "hf" and recipe.name in HUB_RECIPES:
        repo = (parts.netloc + parts.path).strip("/")
        if not _HUB_ID.match(repo) or ".." in repo:
            raise sources.SourceError(f"{model.source}: not a Hugging Face repository id")
        if model.revision:
            raise sources.SourceError(
                f"{model.source} pins revision {model.revision}, which the kubernetes runtime"
                " does not pass on yet: stage the weights in the model cache (file:///models/...)"
            )
        return repo
    hub = ", ".join(sorted(HUB_RECIPES))
    raise sources.SourceError(
        f"{parts.scheme}:// model sources are not fetched by the kubernetes runtime: stage the"
        f" weights in the model cache and give the model version a file:///models/... source"
        f" (the {hub} recipes also download hf:// models themselves)"
    )


def _file_path(source: str, netloc: str, raw_path: str, recipe: recipes.Recipe) -> str:
    if netloc in sources.BUILTIN_MODELS and raw_path in ("", "/"):
        if not recipe.builtin_models:
            raise sources.SourceError(
                f"{source} is built into the reference engine only; this recipe needs a model"
                " folder: file:///models/..."
            )
        return netloc
    if netloc not in ("", "localhost"):
        raise sources.SourceError(f"{source}: a file:// source names a folder in the pod")
    path = unquote(raw_path)
    parts = PurePosixPath(path).parts
    if not path.startswith("/") or ".." in parts or _CONTROL.search(path):
        raise sources.SourceError(f"{source}: the model folder must be an absolute path")
    return str(PurePosixPath(path))


def pod_of(spec: replicas.ReplicaSpec, shapes: Sequence[discovery.Shape]) -> render.Pod:
    """The pod facts of a bound replica: its leader node's devices, its pool's labels."""
    leader = spec.nodes[0] if spec.nodes else 0
    limits: dict[str, int] = {}
    for allocation in spec.devices:
        if allocation.node == leader and allocation.indexes:
            resource = discovery.resource_of(allocation.group)
            limits[resource] = limits.get(resource, 0) + len(allocation.indexes)
    requests = tuple(
        render.DeviceRequest(r.name, r.count, tuple(r.selectors)) for r in spec.resources.devices
    )
    if not limits:  # not placed on devices: ask for the requests, as whole GPUs
        for request in requests:
            limits[discovery.GPU] = limits.get(discovery.GPU, 0) + request.count
    return render.Pod(
        deployment=spec.deployment,
        cpu=spec.resources.cpu,
        memory=spec.resources.memory,
        limits=limits,
        requests=requests,
        node_selector=_pool_labels(spec, shapes),
    )


def _pool_labels(spec: replicas.ReplicaSpec, shapes: Sequence[discovery.Shape]) -> dict[str, str]:
    for shape in shapes:
        if spec.cluster and host_discovery.object_name(spec.cluster, shape.plan.name) == spec.pool:
            return dict(shape.node_selector)
    return {}
