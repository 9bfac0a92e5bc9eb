"""The Ray runtime's settings: spec.ray validated by its schema, one Ray namespace per
cluster, and a runtime built from the agent's options without touching Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferplane.agent.runtime import registry
from inferplane.agent.runtime.rayruntime import settings


def options(tmp_path: Path, **spec_ray: object) -> registry.RuntimeOptions:
    return registry.RuntimeOptions(tmp_path / "agents" / "ray-1", settings=dict(spec_ray))


def test_spec_ray_is_read_with_its_defaults_and_the_cluster_names_the_namespace(
    tmp_path: Path,
) -> None:
    chosen = settings.settings_of(options(tmp_path))
    assert chosen.address == "auto"
    assert chosen.namespace == "inferplane-ray-1", "the data dir is agents/<cluster>"
    assert chosen.log_dir == tmp_path / "agents" / "ray-1" / "logs"
    named = settings.settings_of(options(tmp_path, address="10.0.0.5:6379"), cluster="eu-1")
    assert (named.address, named.namespace) == ("10.0.0.5:6379", "inferplane-eu-1")


@pytest.mark.parametrize(
    "spec_ray",
    [
        {"address": "10.0.0.5:6379; rm -rf /"},
        {"address": "http://10.0.0.5:6379"},
        {"address": ""},
        {"adress": "auto"},
    ],
)
def test_a_bad_spec_ray_is_refused_naming_its_field(
    tmp_path: Path, spec_ray: dict[str, object]
) -> None:
    with pytest.raises(settings.SettingsError, match=r"spec\.ray\."):
        settings.settings_of(options(tmp_path, **spec_ray))


def test_a_namespace_keeps_to_the_characters_ray_takes() -> None:
    assert settings.namespace_of("eu-1") == "inferplane-eu-1"
    assert settings.namespace_of("a b/../c") == "inferplane-a-b-..-c"
    assert settings.namespace_of("///") == "inferplane-default"
    assert len(settings.namespace_of("x" * 1000)) == len("inferplane-") + 200


def test_the_runtime_is_built_without_joining_ray(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed")
    from inferplane.agent.runtime import rayruntime

    runtime = rayruntime.build(options(tmp_path, address="10.255.255.1:1"))
    assert runtime.kind == rayruntime.KIND == "ray"
    assert runtime.names() == []
    assert runtime.status("ns/none") is None
