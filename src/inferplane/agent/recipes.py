"""Engine recipes: how to start each engine and where it answers, as data.

A recipe is a command template plus a few facts (health and metrics paths, whose metric names
carry the load: api/enginemetrics.py holds every engine's, shared with the gateway).
inferplane fills in only the port, the model path and the devices; the user's
`spec.engine.args` are appended untouched, so every flag an engine has (tensor parallelism,
quantization, KV transfer) is available without a line of code here. Adding an
engine is adding an entry to `RECIPES`.

Placeholders in a command: `{program}` (the recipe's program, which an environment variable
may override, e.g. INFERPLANE_VLLM_PYTHON for a vLLM in its own virtual environment),
`{model_path}`, `{host}` and `{port}`.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from inferplane.agent.runtime import base
from inferplane.api import enginemetrics, engines, replicas

PYTHON = "{python}"
"""A program default meaning: the Python interpreter the agent runs on."""


class LaunchError(Exception):
    """The replica cannot be started as specified; the message says why (shown in status)."""


@dataclass(frozen=True)
class ApiKeyIntake:
    """How an engine takes the per-replica token that it then requires as `Authorization:
    Bearer` on its inference routes (vLLM's `--api-key` convention)."""

    env: str | None
    """The variable the engine reads the token from; None: only the flag carries it (and
    then the token shows in `ps`)."""
    flag: str = "--api-key"
    """The engine's flag for the token. A replica whose own args give it is refused: the
    engine would take that key instead of the replica's token, or beside it."""
    metrics_need_key: bool = False
    """The engine's /metrics answers 401 without the token (llama.cpp's server), so a
    scraper must send it; the others keep /health and /metrics open."""


@dataclass(frozen=True)
class Recipe:
    """One engine: its command template, program, probe paths and metric names."""

    name: str
    command: tuple[str, ...]
    """The command template; empty for `custom`, whose command the replica gives."""
    program: str = PYTHON
    """What `{program}` stands for by default."""
    program_env: str | None = None
    """An environment variable of the agent that, when set, replaces the program."""
    health_path: str = "/health"
    metrics_path: str = "/metrics"
    metrics: enginemetrics.MetricNames = enginemetrics.VLLM
    """The names its load is read under (api/enginemetrics.py); vLLM's unless it says."""
    devices_env: str = "CUDA_VISIBLE_DEVICES"
    """The variable that tells the engine which devices are its own."""
    builtin_models: bool = False
    """Serves the built-in models (file://demo, file://minilm) by name."""
    api_key: ApiKeyIntake | None = None
    """How the engine takes a per-replica token; None: it cannot require one."""
    gangs: bool = False
    """Runs as a multi-node gang: every member runs the command, told its place by the
    LeaderWorkerSet variables (base.Launch.member_env)."""

    def with_api_key(self, launch: base.Launch, token: str) -> base.Launch:
        """`launch` with the engine told to require `token`: through its variable where it
        reads one, else its flag. The launch names the token by a placeholder (base.TOKEN)
        and carries it beside, in memory only. LaunchError where the engine takes no token,
        or the replica's own args already give one."""
        intake = self.api_key
        if intake is None:
            raise LaunchError(f"the {self.name} engine cannot require an API key")
        if any(arg == intake.flag or arg.startswith(intake.flag + "=") for arg in launch.args):
            raise LaunchError(
                f"spec.engine.args sets {intake.flag}: the agent gives each replica a token"
                f" of its own, so remove {intake.flag} from the args"
            )
        if intake.env is not None:
            env = {**launch.env, intake.env: base.TOKEN}
            return dataclasses.replace(launch, env=env, token=token)
        command = (*launch.command, intake.flag, base.TOKEN)
        return dataclasses.replace(launch, command=command, token=token)


RECIPES: dict[str, Recipe] = {
    "reference": Recipe(
        name="reference",
        command=("{program}", "-m", "inferplane", "engine", "--model", "{model_path}",
                 "--host", "{host}", "--port", "{port}"),
        program_env="INFERPLANE_ENGINE_PYTHON",
        builtin_models=True,
        api_key=ApiKeyIntake(env="INFERPLANE_ENGINE_API_KEY"),
        gangs=True,
    ),
    "vllm": Recipe(
        name="vllm",
        command=("{program}", "-m", "vllm.entrypoints.openai.api_server",
                 "--model", "{model_path}", "--host", "{host}", "--port", "{port}"),
        program_env="INFERPLANE_VLLM_PYTHON",
        api_key=ApiKeyIntake(env="VLLM_API_KEY"),
    ),
    "sglang": Recipe(
        name="sglang",
        command=("{program}", "-m", "sglang.launch_server", "--model-path", "{model_path}",
                 "--host", "{host}", "--port", "{port}"),
        program_env="INFERPLANE_SGLANG_PYTHON",
        metrics=enginemetrics.SGLANG,
        api_key=ApiKeyIntake(env=None),  # SGLang reads no variable for it
    ),
    "llamacpp": Recipe(
        name="llamacpp",
        command=("{program}", "--model", "{model_path}", "--host", "{host}", "--port", "{port}"),
        program="llama-server",
        program_env="INFERPLANE_LLAMACPP_SERVER",
        metrics=enginemetrics.LLAMACPP,
        api_key=ApiKeyIntake(env="LLAMA_API_KEY", metrics_need_key=True),
    ),
    "tgi": Recipe(
        name="tgi",
        command=("{program}", "--model-id", "{model_path}", "--hostname", "{host}",
                 "--port", "{port}"),
        program="text-generation-launcher",
        program_env="INFERPLANE_TGI_LAUNCHER",
        metrics=enginemetrics.TGI,
        api_key=ApiKeyIntake(env="API_KEY"),  # the launcher's --api-key, env API_KEY
    ),
    "custom": Recipe(name="custom", command=(), gangs=True),
}  # fmt: skip

_DEFAULT_HEALTH = engines.EngineSpec.model_fields["healthPath"].default
_DEFAULT_METRICS = engines.EngineSpec.model_fields["metricsPath"].default


def recipe_of(spec: engines.EngineSpec) -> Recipe:
    return RECIPES[spec.recipe]


def health_path(spec: engines.EngineSpec) -> str:
    """The spec's path where the user changed it, else the recipe's."""
    return spec.healthPath if spec.healthPath != _DEFAULT_HEALTH else recipe_of(spec).health_path


def metrics_path(spec: engines.EngineSpec) -> str:
    if spec.metricsPath != _DEFAULT_METRICS:
        return spec.metricsPath
    return recipe_of(spec).metrics_path


def program(recipe: Recipe, environ: Mapping[str, str]) -> str:
    chosen = environ.get(recipe.program_env, "") if recipe.program_env else ""
    if chosen:
        return chosen
    return sys.executable if recipe.program == PYTHON else recipe.program


def launch_for(
    name: str,
    spec: replicas.ReplicaSpec,
    *,
    host: str,
    model_path: str,
    devices: str,
    environ: Mapping[str, str],
) -> base.Launch:
    """The launch of a replica's engine; raises LaunchError when it cannot be built."""
    engine = spec.engine
    recipe = recipe_of(engine)
    if spec.resources.nodes > 1 and not recipe.gangs:
        raise LaunchError(
            f"the {recipe.name} recipe runs single-node replicas; this one needs"
            f" {spec.resources.nodes} nodes (a gang runs the reference engine, or a command"
            " of your own that reads LWS_WORKER_INDEX, as recipe custom)"
        )
    template = tuple(engine.command) or recipe.command
    values = {"{program}": program(recipe, environ), "{model_path}": model_path, "{host}": host}
    command = tuple(_fill(item, values) for item in template)
    if engine.port is None and not any(base.PORT in item for item in command):
        raise LaunchError(
            "the engine command has no {port} and spec.engine.port is unset, so there is no"
            " telling where the engine listens: add {port} to the command or set the port"
        )
    return base.Launch(
        name=name,
        command=command,
        args=tuple(engine.args),
        env={**engine.env, recipe.devices_env: devices},
        host=host,
        port=engine.port,
        health_path=health_path(engine),
        startup_timeout=engine.startupTimeoutSeconds,
        image=engine.image,
        nodes=spec.resources.nodes,
    )


def _fill(item: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        item = item.replace(placeholder, value)
    return item
