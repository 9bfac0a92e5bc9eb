"""The Model kind: a registered model and its versions, as a model registry keeps them."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from inferplane.api import errors, meta, values

ModelFormat = Literal["safetensors", "gguf", "pytorch", "onnx", "tensorrt", "openvino", "other"]
Stage = Literal["staging", "production", "archived"]
Task = Literal["generate", "embed"]


def check_version_name(name: str) -> str:
    if not name:
        raise ValueError("a version name cannot be empty")
    return meta.check_label_value(name)


VersionName = Annotated[str, AfterValidator(check_version_name)]
"""A version name: up to 63 letters, digits, '-', '_' and '.', e.g. v1 or 2024.06.01."""


class ModelVersion(meta.Model):
    """One version of a model: where its weights are and how far it has been promoted."""

    name: VersionName
    """Version name, unique within the model, e.g. v1; up to 63 letters, digits, '-', '_', '.'."""
    source: values.ModelUri
    """Where the weights are: hf://org/name, file:///path, s3://bucket/prefix, gs://, https://..."""
    format: ModelFormat = "safetensors"
    """How the weights are stored: safetensors, gguf, pytorch, onnx, tensorrt, openvino, other."""
    revision: str | None = None
    """Git revision (branch, tag or commit) for hf:// sources; unset means the default branch."""
    stage: Stage = "staging"
    """Lifecycle stage: staging, production or archived. Archived versions are never deployed."""
    metadata: dict[str, values.Scalar] = Field(default_factory=dict)
    """Free-form facts, e.g. parameters: 8B, contextLength: 8192, quantization: awq."""


class ModelSpec(meta.Model):
    """A model as the ML team registers it: what it does, and its versions."""

    displayName: str | None = None
    """Human-readable name for dashboards; defaults to metadata.name."""
    description: str = ""
    """What the model is for, for people."""
    task: Task = "generate"
    """What the model does: generate (chat and completions) or embed (embeddings)."""
    versions: list[ModelVersion] = Field(min_length=1)
    """The versions, oldest first; at least one, names unique."""

    @model_validator(mode="after")
    def _unique_version_names(self) -> ModelSpec:
        seen: set[str] = set()
        for i, version in enumerate(self.versions):
            if version.name in seen:
                raise errors.field_error(
                    "versions", i, "name", message=f"version {version.name!r} is listed twice"
                )
            seen.add(version.name)
        return self

    def version(self, name: str) -> ModelVersion | None:
        return next((v for v in self.versions if v.name == name), None)

    def resolve_version(self, wanted: str | None = None) -> ModelVersion | None:
        """The version a deployment runs: `wanted` if given and not archived; otherwise the
        newest production version, else the newest staging one. None when nothing fits."""
        if wanted is not None:
            found = self.version(wanted)
            return found if found is not None and found.stage != "archived" else None
        for stage in ("production", "staging"):
            newest = [v for v in self.versions if v.stage == stage]
            if newest:
                return newest[-1]
        return None


class ModelStatus(meta.Status):
    """Which versions deployments resolve to."""

    defaultVersion: str | None = None
    """The version a deployment without spec.modelVersion runs."""
    productionVersions: list[str] = Field(default_factory=list)
    """Names of the versions in stage production."""


class Model(meta.Resource[ModelSpec, ModelStatus]):
    """A registered model and its versions: source URI, format, metadata and stage."""

    KIND: ClassVar[str] = "Model"
    NAMESPACED: ClassVar[bool] = True

    kind: Literal["Model"] = "Model"
    """Always Model."""
    spec: ModelSpec
    """The model's task and versions."""
    status: ModelStatus = Field(default_factory=ModelStatus)
    """Resolved versions, written by the control plane."""
