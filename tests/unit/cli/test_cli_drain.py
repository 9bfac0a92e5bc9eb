"""``cordon``, ``uncordon`` and ``drain`` against the fake resource API (no controllers:
the moves themselves are tested against a real control plane in tests/integration)."""

from __future__ import annotations

from typing import Any

from inferplane.api import wellknown
from tests.unit.cli.conftest import Cli


def cluster(name: str = "gpu-east") -> dict[str, Any]:
    return {"kind": "Cluster", "metadata": {"name": name}, "spec": {}}


def replica(name: str, cluster: str) -> dict[str, Any]:
    return {
        "kind": "Replica",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"deployment": "chat", "cluster": cluster},
    }


def test_cordon_and_uncordon(cli: Cli) -> None:
    cli.api.add(cluster())
    assert cli("cordon", "gpu-east").output == "cluster/gpu-east cordoned\n"
    assert cli.api.find("Cluster", "gpu-east")["spec"]["cordoned"] is True  # type: ignore[index]
    cli("drain", "gpu-east", "--no-wait")
    result = cli("uncordon", "gpu-east")
    assert result.exit_code == 0 and result.output == "cluster/gpu-east uncordoned\n"
    found = cli.api.find("Cluster", "gpu-east")
    assert found is not None and found["spec"]["cordoned"] is False
    assert wellknown.DRAIN_ANNOTATION not in found["metadata"].get("annotations", {})


def test_drain_no_wait_marks_the_cluster_and_returns(cli: Cli) -> None:
    cli.api.add(cluster())
    cli.api.add(replica("chat-aaaaa", "gpu-east"))
    cli.api.add(replica("chat-bbbbb", "gpu-west"))
    result = cli("drain", "gpu-east", "--no-wait")
    assert result.exit_code == 0
    assert result.output == "cluster/gpu-east cordoned; draining 1 replicas\n"
    found = cli.api.find("Cluster", "gpu-east")
    assert found is not None and found["spec"]["cordoned"] is True
    assert found["metadata"]["annotations"][wellknown.DRAIN_ANNOTATION] == "true"


def test_drain_of_an_empty_cluster_is_done_at_once(cli: Cli) -> None:
    cli.api.add(cluster())
    result = cli("drain", "gpu-east")
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "cluster/gpu-east drained"


def test_drain_that_outlasts_its_timeout_says_what_is_left(cli: Cli) -> None:
    cli.api.add(cluster())
    cli.api.add(replica("chat-aaaaa", "gpu-east"))
    result = cli("drain", "gpu-east", "--timeout", "0.1")
    assert result.exit_code == 1
    assert "1 replicas still on cluster/gpu-east" in result.output
    assert "team-a/chat-aaaaa" in result.output


def test_cordon_of_a_missing_cluster_is_an_error(cli: Cli) -> None:
    result = cli("cordon", "nowhere")
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
