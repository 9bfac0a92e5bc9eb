"""Pools from the host (nvidia-smi's output, captured here) and from pool files."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferplane.agent import discovery
from inferplane.api import fleet

# `nvidia-smi --query-gpu=index,uuid,name,memory.total,compute_cap,mig.mode.current,
# driver_version --format=csv,noheader,nounits` on an 8x H100 node.
H100_QUERY = "\n".join(
    f"{i}, GPU-1d4e0a8a-0c7f-4b6f-9a1e-00000000000{i}, NVIDIA H100 80GB HBM3, 81559, 9.0,"
    " Disabled, 550.54.15"
    for i in range(8)
)

# An A100 node with GPU 1 split into MIG slices, and a GPU that cannot do MIG at all.
MIXED_QUERY = """\
0, GPU-aaaaaaaa-0000-0000-0000-000000000000, NVIDIA A100-SXM4-40GB, 40960, 8.0, Disabled, 535.129.03
1, GPU-bbbbbbbb-0000-0000-0000-000000000000, NVIDIA A100-SXM4-40GB, 40960, 8.0, Enabled, 535.129.03
2, GPU-cccccccc-0000-0000-0000-000000000000, NVIDIA A100-SXM4-40GB, 40960, 8.0, [N/A], 535.129.03
"""

MIXED_LIST = """\
GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-aaaaaaaa-0000-0000-0000-000000000000)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-bbbbbbbb-0000-0000-0000-000000000000)
  MIG 3g.20gb     Device  0: (UUID: MIG-11111111-1111-5111-8111-111111111111)
  MIG 1g.5gb      Device  1: (UUID: MIG-22222222-2222-5222-8222-222222222222)
  MIG 1g.5gb      Device  2: (UUID: MIG-33333333-3333-5333-8333-333333333333)
GPU 2: NVIDIA A100-SXM4-40GB (UUID: GPU-cccccccc-0000-0000-0000-000000000000)
"""


def test_the_gpu_query_parses() -> None:
    gpus = discovery.parse_gpu_query(H100_QUERY)
    assert [g.index for g in gpus] == list(range(8))
    assert gpus[0] == discovery.Gpu(
        index=0,
        uuid="GPU-1d4e0a8a-0c7f-4b6f-9a1e-000000000000",
        name="NVIDIA H100 80GB HBM3",
        memory_mib=81559,
        compute_cap="9.0",
        mig_enabled=False,
        driver_version="550.54.15",
    )
    assert discovery.parse_gpu_query(MIXED_QUERY)[1].mig_enabled
    assert discovery.parse_gpu_query("No devices were found\n") == []


def test_mig_devices_are_read_under_their_gpu() -> None:
    migs = discovery.parse_gpu_list(MIXED_LIST)
    assert [(m.gpu, m.profile) for m in migs] == [(1, "3g.20gb"), (1, "1g.5gb"), (1, "1g.5gb")]
    assert migs[0].uuid == "MIG-11111111-1111-5111-8111-111111111111"


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA A100-SXM4-40GB", "A100"),
        ("Tesla V100-SXM2-16GB", "V100"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
    ],
)
def test_product_names_shorten_to_what_selectors_compare(name: str, short: str) -> None:
    assert discovery.short_product(name) == short


def test_eight_h100s_make_one_group_with_dra_attributes() -> None:
    plan = discovery.gpu_pool(discovery.parse_gpu_query(H100_QUERY), [])
    assert plan is not None and plan.name == "gpu"
    (group,) = plan.spec["devicesPerNode"]
    assert group["name"] == "gpu" and group["count"] == 8
    assert group["driver"] == "gpu.nvidia.com"
    assert group["attributes"]["productName"] == "H100"
    assert group["attributes"]["architecture"] == "Hopper"
    assert group["capacity"] == {"memory": "81559Mi"}
    assert plan.device_ids["gpu"][3] == "GPU-1d4e0a8a-0c7f-4b6f-9a1e-000000000003"
    fleet.PoolSpec.model_validate({**plan.spec, "cluster": "eu-1"})  # a valid Pool spec


def test_mig_slices_are_devices_grouped_by_profile() -> None:
    gpus = discovery.parse_gpu_query(MIXED_QUERY)
    plan = discovery.gpu_pool(gpus, discovery.parse_gpu_list(MIXED_LIST))
    assert plan is not None
    groups = {g["name"]: g for g in plan.spec["devicesPerNode"]}
    assert {name: g["count"] for name, g in groups.items()} == {
        "gpu": 2,  # GPU 0 and GPU 2; GPU 1 is given as its slices
        "mig-3g20gb": 1,
        "mig-1g5gb": 2,
    }
    assert groups["mig-1g5gb"]["attributes"]["migProfile"] == "1g.5gb"
    assert groups["mig-1g5gb"]["capacity"] == {"memory": "5Gi"}
    assert plan.device_ids["mig-1g5gb"] == [
        "MIG-22222222-2222-5222-8222-222222222222",
        "MIG-33333333-3333-5333-8333-333333333333",
    ]
    fleet.PoolSpec.model_validate({**plan.spec, "cluster": "eu-1"})


def test_host_pools_without_nvidia_smi_are_the_cpu_alone() -> None:
    pools = discovery.host_pools(lambda argv: None)
    assert [p.name for p in pools] == ["cpu"]
    assert int(pools[0].spec["cpu"]) >= 1 and pools[0].spec["memory"].endswith("Mi")


def test_host_pools_with_gpus() -> None:
    outputs = {"--query-gpu": H100_QUERY, "-L": ""}

    def run(argv: list[str]) -> str | None:
        return next(out for flag, out in outputs.items() if argv[1].startswith(flag))

    assert [p.name for p in discovery.host_pools(run)] == ["cpu", "gpu"]


POOL_FILE = """\
pools:
  - name: h100
    nodeCount: 2
    cpu: "192"
    memory: 2Ti
    pricePerHour: 98.32
    devicesPerNode:
      - name: gpu
        count: 8
        driver: gpu.nvidia.com
        attributes: {productName: H100}
        capacity: {memory: 80Gi}
        deviceIds: [GPU-a, GPU-b, GPU-c, GPU-d, GPU-e, GPU-f, GPU-g, GPU-h]
"""


def test_a_pool_file_describes_pools_and_their_device_ids(tmp_path: Path) -> None:
    path = tmp_path / "pools.yaml"
    path.write_text(POOL_FILE)
    (plan,) = discovery.plans(path, cluster="eu-1", run=lambda argv: None)
    assert plan.name == "h100"
    assert plan.spec["nodeCount"] == 2 and plan.spec["pricePerHour"] == 98.32
    assert "deviceIds" not in plan.spec["devicesPerNode"][0]
    assert plan.device_ids == {"gpu": ["GPU-a", "GPU-b", "GPU-c", "GPU-d", "GPU-e", "GPU-f",
                                       "GPU-g", "GPU-h"]}  # fmt: skip
    path.write_text(POOL_FILE + "discover: true\n")
    names = [p.name for p in discovery.plans(path, cluster="eu-1", run=lambda argv: None)]
    assert names == ["h100", "cpu"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("pools: nope", "a list under 'pools'"),
        ("pools:\n  - nodeCount: 1", "needs a name"),
        ("pools:\n  - name: Bad_Name", "pools[0].name"),
        ("pools:\n  - {name: a, nodeCount: -1}", "pools[0]: nodeCount"),
        ("pools:\n  - {name: a}\n  - {name: a}", "listed twice"),
        (
            "pools:\n  - name: a\n    devicesPerNode: [{name: gpu, attributes: {productName: x}}]",
            "names no domain",
        ),
    ],
)
def test_a_bad_pool_file_says_where(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "pools.yaml"
    path.write_text(text)
    with pytest.raises(discovery.PoolFileError, match=problem.replace("[", r"\[")):
        discovery.read_pool_file(path, cluster="eu-1")
