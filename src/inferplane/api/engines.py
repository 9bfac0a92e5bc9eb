"""How a replica runs its engine: a recipe, the user's flags, and for custom engines the command.

inferplane injects almost nothing: the flags that carry parallelism, quantization or KV
transfer are the user's `args`. Recipes only know how to start an engine and where it answers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from inferplane.api import errors, meta, values

Recipe = Literal["reference", "vllm", "sglang", "llamacpp", "tgi", "custom"]


class EngineSpec(meta.Model):
    """The engine a replica runs and the flags it is started with."""

    recipe: Recipe = "reference"
    """Which engine: reference (inferplane's own, runs on a CPU), vllm, sglang, llamacpp, tgi,
    or custom (you give command and port)."""
    args: list[str] = Field(default_factory=list)
    """Extra command-line flags appended to the recipe's command, e.g. --tensor-parallel-size=2."""
    env: values.Env = Field(default_factory=dict)
    """Environment variables for the engine process."""
    image: str | None = None
    """Container image, for the kubernetes runtime; unset uses the recipe's default image."""
    command: list[str] = Field(default_factory=list)
    """Command of a custom engine, program first. The agent replaces {port}, {host} and
    {model_path} in each item. Recipes provide their own; setting it overrides theirs."""
    port: int | None = Field(None, ge=1, le=65535)
    """Port the engine listens on; unset lets the agent pick a free one and pass it as {port}."""
    healthPath: str = "/health"
    """HTTP path that answers 200 once the engine can serve."""
    metricsPath: str = "/metrics"
    """HTTP path of the engine's Prometheus metrics (vLLM metric names are understood)."""
    startupTimeoutSeconds: values.Seconds = 900.0
    """Seconds to wait for the first healthy probe (weights loading) before the start fails."""

    @model_validator(mode="after")
    def _custom_needs_command(self) -> EngineSpec:
        if self.recipe == "custom" and not self.command:
            raise errors.field_error("command", message="a custom engine needs a command")
        for name in ("healthPath", "metricsPath"):
            if not getattr(self, name).startswith("/"):
                raise errors.field_error(name, message="an HTTP path must start with '/'")
        return self
