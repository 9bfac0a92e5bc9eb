"""A replica's resources as a Ray placement group: one bundle per node, STRICT_PACK for one
node, STRICT_SPREAD for a gang; hostile values refused with the field named."""

from __future__ import annotations

from typing import Any

import pytest

from inferplane.agent.runtime.rayruntime import placement
from inferplane.api import deployments


def resources(**fields: Any) -> deployments.ResourcesSpec:
    return deployments.ResourcesSpec.model_validate(fields)


def test_a_single_node_replica_is_one_strictly_packed_bundle_of_its_requests() -> None:
    made = placement.placement_for(
        resources(devices=[{"name": "gpu", "count": 2}, {"name": "nvme", "count": 1}],
                  cpu="4", memory="16Gi"),
        accelerator="H100",
    )  # fmt: skip
    assert made.strategy == "STRICT_PACK"
    assert made.bundles == (
        {"CPU": 4.0, "GPU": 3.0, "memory": 16 * 2**30, "accelerator_type:H100": 0.001},
    )


def test_a_gang_is_one_bundle_per_node_spread_strictly_over_distinct_nodes() -> None:
    made = placement.placement_for(resources(nodes=3, cpu="500m"))
    assert made.strategy == "STRICT_SPREAD"
    assert made.nodes == 3
    assert all(bundle == {"CPU": 0.5} for bundle in made.bundles)


def test_a_replica_that_requests_nothing_still_holds_a_sliver_of_cpu() -> None:
    for unaccounted in (resources(), resources(cpu="0")):
        assert placement.placement_for(unaccounted).bundles == ({"CPU": 0.01},)


def test_cpu_is_rounded_up_to_what_ray_counts() -> None:
    assert placement.bundle_for(resources(cpu="1234567u")) == {"CPU": 1.2346}
    assert placement.bundle_for(resources(cpu="1n")) == {"CPU": 0.0001}


def test_an_accelerator_pins_only_a_replica_with_devices() -> None:
    assert placement.bundle_for(resources(cpu="1"), accelerator="A100") == {"CPU": 1.0}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cpu": "-4"}, "spec.resources.cpu"),
        ({"cpu": "1e300"}, "spec.resources.cpu"),
        ({"memory": "-1Gi"}, "spec.resources.memory"),
        ({"memory": "2Ei"}, "spec.resources.memory"),
        ({"nodes": 100_000}, "spec.resources.nodes"),
        ({"devices": [{"name": "gpu", "count": 100_000}]}, "spec.resources.devices"),
    ],
)
def test_hostile_requests_are_refused_with_their_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(placement.PlacementError, match=field):
        placement.placement_for(resources(**fields))


def test_a_hostile_accelerator_name_is_not_a_resource() -> None:
    gpu = resources(devices=[{"name": "gpu", "count": 1}])
    with pytest.raises(placement.PlacementError, match="not a Ray resource"):
        placement.placement_for(gpu, accelerator='A100", "CPU": -1')


def test_the_placement_reads_back_from_the_launch_and_junk_is_refused() -> None:
    made = placement.placement_for(resources(nodes=2, cpu="2", memory="1Gi"))
    assert placement.Placement.from_json(made.to_json()) == made
    for junk in (
        "not json",
        "[]",
        '{"strategy": "PACK", "bundles": [{"CPU": 1}]}',
        '{"strategy": "STRICT_PACK", "bundles": []}',
        '{"strategy": "STRICT_PACK", "bundles": [{"CPU": -1}]}',
        '{"strategy": "STRICT_PACK", "bundles": [{"CPU": 0}]}',
        '{"strategy": "STRICT_PACK", "bundles": [{"CPU": true}]}',
        '{"strategy": "STRICT_PACK", "bundles": [{"bad name!": 1}]}',
        '{"strategy": "STRICT_PACK", "bundles": [{"CPU": NaN}]}',
    ):
        with pytest.raises(placement.PlacementError):
            placement.Placement.from_json(junk)


def test_an_engine_actor_claims_its_whole_bundle() -> None:
    bundle = {"CPU": 2.0, "GPU": 1.0, "memory": 1024.0, "accelerator_type:L4": 0.001}
    assert placement.actor_options(bundle) == {
        "num_cpus": 2.0,
        "num_gpus": 1.0,
        "memory": 1024,
        "resources": {"accelerator_type:L4": 0.001},
    }
    assert placement.actor_options({"CPU": 0.01}) == {"num_cpus": 0.01, "num_gpus": 0.0}
