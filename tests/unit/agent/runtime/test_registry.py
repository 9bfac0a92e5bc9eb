"""The agent runs the runtime its Cluster's spec.runtime names, and no other."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferplane.agent.runtime import process, registry


def test_the_kinds_are_the_implemented_runtimes() -> None:
    assert registry.kinds() == ["kubernetes", "process", "ray", "slurm"]
    assert registry.DEFAULT == "process"  # the Cluster schema's default


def test_the_kind_is_read_from_spec_runtime() -> None:
    assert registry.kind_of({"spec": {"runtime": "kubernetes"}}) == "kubernetes"
    assert registry.kind_of({"spec": {"region": "eu"}}) == "process"
    assert registry.kind_of({}) == "process"


def test_process_builds_the_process_runtime_from_the_options(tmp_path: Path) -> None:
    options = registry.RuntimeOptions(tmp_path, host="10.0.0.5", keep_engines_on_exit=True)
    built = registry.build("process", options, cluster="eu-1")
    assert isinstance(built, process.ProcessRuntime)
    assert built.kind == "process"
    assert built.settings.data_dir == tmp_path
    assert built.settings.host == "10.0.0.5"
    assert built.settings.die_with_agent is False  # kept engines must outlive the agent
    default = registry.build("process", registry.RuntimeOptions(tmp_path), cluster="eu-1")
    assert isinstance(default, process.ProcessRuntime)
    assert default.settings.die_with_agent is True and default.settings.host == "127.0.0.1"


def test_a_runtime_this_agent_lacks_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(registry.UnknownRuntime) as refused:
        registry.build("nomad", registry.RuntimeOptions(tmp_path), cluster="eu-1")
    assert str(refused.value) == (
        "Cluster 'eu-1' has spec.runtime 'nomad', which this agent cannot run;"
        f" the runtimes it has: {', '.join(registry.kinds())}"
    )


def test_every_runtime_the_schema_admits_is_one_this_agent_has() -> None:
    from typing import get_args

    from inferplane.api import fleet

    assert sorted(get_args(fleet.RuntimeKind)) == registry.kinds()
