"""What the kubernetes runtime renders for a replica: every object valid against Kubernetes'
own schemas (kubernetes-validate, strict: an unknown field is an error) and the
LeaderWorkerSet against our transcription of its CRD; devices by the device plugin or DRA; a
gang as a LeaderWorkerSet; and a tenant's strings kept literal and names kept bounded."""

from __future__ import annotations

import json
import re
from typing import Any

import kubernetes_validate
import pytest

from inferplane.agent import recipes, sources
from inferplane.agent.runtime import base
from inferplane.agent.runtime.kubernetes import discovery, launches, names, render
from inferplane.api import fleet, replicas
from tests.unit.agent.runtime import test_kubernetes_lws_schema as lws_schema
from tests.unit.agent.samples import bound_spec

KUBERNETES = "1.37"
"""The newest schemas kubernetes-validate ships; resource.k8s.io/v1 needs 1.34 or later."""
TOKEN = "s3cret-token-value"
H100 = {
    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    "nvidia.com/gpu.count": "8",
    "nvidia.com/gpu.memory": "81559",
}


def node(name: str, labels: dict[str, str], **capacity: str) -> dict[str, Any]:
    resources = {"cpu": "96", "memory": "1000Gi", **capacity}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "status": {"capacity": resources, "allocatable": resources},
    }


SHAPES = discovery.shapes([node(f"h{i}", H100, **{"nvidia.com/gpu": "8"}) for i in range(2)])
POOL = "eu-1-gpu-h100-8"


def replica(name: str = "default/chat-0", **fields: Any) -> base.Replica:
    engine = fields.pop("engine", {"image": "registry.example.com/inferplane/engine:0.1"})
    spec = bound_spec(pool=POOL, engine=engine, **fields)
    spec.setdefault(
        "resources",
        {"devices": [{"name": "gpu", "count": 2,
                      "selectors": ['device.attributes["gpu.nvidia.com"].productName == "H100"']}],
         "cpu": "8", "memory": "64Gi"},
    )  # fmt: skip
    return base.Replica(name, replicas.ReplicaSpec.model_validate(spec))


def model_of(source: str) -> dict[str, str]:
    return {"name": "m", "version": "v1", "source": source}


def launch_of(rep: base.Replica, *, token: bool = True) -> base.Launch:
    """The launch as the agent hands it over: the runtime's, told to require its token."""
    made = launches.launch_for(rep, shapes=SHAPES)
    if not token:
        return made
    return recipes.recipe_of(rep.spec.engine).with_api_key(made, TOKEN)


def settings(**fields: Any) -> fleet.KubernetesRuntimeSpec:
    return fleet.KubernetesRuntimeSpec.model_validate(fields)


def check(manifests: render.Manifests) -> None:
    """Every object valid: Kubernetes' schemas, and our LeaderWorkerSet schema with each of
    its pod templates checked as a PodTemplate."""
    for manifest in manifests.all():
        if manifest["kind"] == "LeaderWorkerSet":
            lws_schema.validate(manifest)
            template = manifest["spec"]["leaderWorkerTemplate"]
            for key in ("leaderTemplate", "workerTemplate"):
                wrapped = {"apiVersion": "v1", "kind": "PodTemplate",
                           "metadata": {"name": "t"}, "template": template[key]}  # fmt: skip
                kubernetes_validate.validate(wrapped, KUBERNETES, strict=True)
        else:
            kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def container(manifests: render.Manifests) -> dict[str, Any]:
    workload = manifests.workload
    if workload["kind"] == "LeaderWorkerSet":
        spec = workload["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]
    else:
        spec = workload["spec"]["template"]["spec"]
    return dict(spec["containers"][0])


def pod_spec(manifests: render.Manifests) -> dict[str, Any]:
    workload = manifests.workload
    if workload["kind"] == "LeaderWorkerSet":
        return dict(workload["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"])
    return dict(workload["spec"]["template"]["spec"])


def env_of(manifests: render.Manifests) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(manifests)["env"]}


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion of $(VAR) in command, args and env values, transcribed from
    k8s.io/kubernetes third_party/forked/golang/expansion Expand: `$$` is `$`, `$(NAME)` is
    the variable (kept as written when undefined), any other `$` is itself."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    var = text[i + 2 : end]
                    out.append(env.get(var, f"$({var})"))
                    i = end + 1
                    continue
                out.append("$(")
                i += 2
                continue
            out.append("$" + nxt)
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


# --- a single-node replica -----------------------------------------------------------------


def test_a_single_node_replica_is_a_deployment_and_a_service() -> None:
    made = render.render(launch_of(replica()), settings(), token=TOKEN)
    check(made)
    assert [m["kind"] for m in made.all()] == ["Secret", "Service", "Deployment"]
    deployment, service = made.workload, made.service
    assert deployment["spec"]["replicas"] == 1
    assert deployment["metadata"]["namespace"] == "inferplane"
    name = deployment["metadata"]["name"]
    assert service["metadata"]["name"] == name
    assert service["spec"]["selector"] == {names.INSTANCE: name}
    assert service["spec"]["ports"][0]["port"] == launches.CONTAINER_PORT
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels[names.INSTANCE] == name and labels[names.MANAGED_BY] == names.MANAGER
    assert labels[names.DEPLOYMENT] == "chat" and labels[names.NAMESPACE] == "default"
    assert deployment["metadata"]["annotations"][names.REPLICA_NAME] == "default/chat-0"


def test_the_engine_runs_the_launch_in_its_image_as_nobody_in_particular() -> None:
    launch = launch_of(replica())
    made = render.render(launch, settings(), token=TOKEN)
    engine = container(made)
    assert engine["image"] == "registry.example.com/inferplane/engine:0.1"
    assert engine["command"] == [
        "python3", "-m", "inferplane", "engine", "--model", "demo",
        "--host", "0.0.0.0", "--port", "8000",
    ]  # fmt: skip
    assert engine["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert engine[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert engine["startupProbe"]["failureThreshold"] * 5 >= launch.startup_timeout
    assert engine["securityContext"] == {
        "allowPrivilegeEscalation": False, "privileged": False, "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }  # fmt: skip
    spec = pod_spec(made)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False


def test_the_token_is_in_the_secret_only() -> None:
    made = render.render(launch_of(replica()), settings(), token=TOKEN)
    assert made.secret is not None and made.secret["stringData"] == {"token": TOKEN}
    others = [m for m in made.all() if m is not made.secret]
    assert TOKEN not in json.dumps(others)
    name = made.workload["metadata"]["name"]
    assert env_of(made)["INFERPLANE_ENGINE_API_KEY"] == {
        "secretKeyRef": {"name": name, "key": "token"}
    }


def test_a_token_on_the_command_line_is_a_reference_to_the_secret() -> None:
    rep = replica(
        engine={"recipe": "sglang", "image": "lmsysorg/sglang:v0.5"},
        model=model_of("file:///models/qwen"),
    )
    made = render.render(launch_of(rep), settings(), token=TOKEN)
    check(made)
    command = container(made)["command"]
    assert command[-2:] == ["--api-key", "$(INFERPLANE_ENGINE_TOKEN)"]
    assert "secretKeyRef" in env_of(made)["INFERPLANE_ENGINE_TOKEN"]
    assert TOKEN not in json.dumps(made.workload)


def test_the_pod_facts_stay_out_of_the_engines_environment() -> None:
    made = render.render(launch_of(replica()), settings(), token=TOKEN)
    env = env_of(made)
    assert render.POD_ENV not in env
    assert "CUDA_VISIBLE_DEVICES" not in env  # the device plugin tells the container its GPUs


# --- devices -------------------------------------------------------------------------------


def test_device_plugin_asks_for_gpus_on_the_pools_nodes() -> None:
    made = render.render(launch_of(replica()), settings(devices="device-plugin"), token=TOKEN)
    resources = container(made)["resources"]
    # node 1, the leader, has indexes [0, 2] of group gpu
    assert resources["limits"] == {"memory": "64Gi", "nvidia.com/gpu": "2"}
    assert resources["requests"] == {"cpu": "8", "memory": "64Gi"}
    assert pod_spec(made)["nodeSelector"] == H100
    assert made.claim is None


def test_mig_groups_ask_for_their_mig_resource() -> None:
    rep = replica(devices=[{"request": "gpu", "group": "mig-1g-10gb", "node": 1, "indexes": [3]}])
    made = render.render(launch_of(rep), settings(), token=TOKEN)
    check(made)
    assert container(made)["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == "1"


def test_dra_asks_for_a_resource_claim_with_the_selectors() -> None:
    made = render.render(
        launch_of(replica()), settings(devices="dra", deviceClassName="gpu.example.com"),
        token=TOKEN,
    )  # fmt: skip
    check(made)
    claim = made.claim
    assert claim is not None and claim["kind"] == "ResourceClaim"
    request = claim["spec"]["devices"]["requests"][0]
    assert request == {
        "name": "gpu",
        "exactly": {
            "deviceClassName": "gpu.example.com", "allocationMode": "ExactCount", "count": 2,
            "selectors": [{"cel": {"expression":
                                   'device.attributes["gpu.nvidia.com"].productName == "H100"'}}],
        },
    }  # fmt: skip
    name = made.workload["metadata"]["name"]
    assert pod_spec(made)["resourceClaims"] == [{"name": "devices", "resourceClaimName": name}]
    resources = container(made)["resources"]
    assert resources["claims"] == [{"name": "devices"}]
    assert "nvidia.com/gpu" not in resources.get("limits", {})


def test_a_cpu_replica_asks_for_no_devices_in_either_mode() -> None:
    rep = replica(devices=[], resources={"cpu": "2"})
    for mode in ("device-plugin", "dra"):
        made = render.render(launch_of(rep), settings(devices=mode), token=TOKEN)
        check(made)
        assert made.claim is None
        assert container(made)["resources"] == {"requests": {"cpu": "2"}}


def test_a_changed_device_request_changes_the_fingerprint() -> None:
    one = launch_of(replica())
    other = launch_of(replica(devices=[{"request": "gpu", "group": "gpu", "node": 1,
                                        "indexes": [0]}]))  # fmt: skip
    assert one.fingerprint() != other.fingerprint()
    assert one.fingerprint() == launch_of(replica()).fingerprint()


# --- the model cache -----------------------------------------------------------------------


def test_the_model_cache_is_the_claim_when_set_else_an_empty_dir() -> None:
    launch = launch_of(replica())
    cached = render.render(launch, settings(modelCacheClaim="weights"), token=TOKEN)
    check(cached)
    assert pod_spec(cached)["volumes"][0] == {
        "name": "models",
        "persistentVolumeClaim": {"claimName": "weights"},
    }
    plain = render.render(launch, settings(), token=TOKEN)
    assert pod_spec(plain)["volumes"] == [
        {"name": "models", "emptyDir": {}},
        {"name": "scratch", "emptyDir": {}},
    ]
    assert container(plain)["volumeMounts"] == [
        {"name": "models", "mountPath": "/models"},
        {"name": "scratch", "mountPath": "/tmp"},
    ]
    assert env_of(plain)["HOME"] == "/tmp"  # a writable home for images written for root


def test_engines_that_download_get_a_hub_id_and_the_cache_as_hf_home() -> None:
    rep = replica(
        engine={"recipe": "vllm", "image": "vllm/vllm-openai:v0.11.0"},
        model=model_of("hf://Qwen/Qwen3-8B"),
    )
    made = render.render(launch_of(rep), settings(), token=TOKEN)
    check(made)
    command = container(made)["command"]
    assert command[command.index("--model") + 1] == "Qwen/Qwen3-8B"
    assert env_of(made)["HF_HOME"] == "/models/huggingface"


# --- a gang --------------------------------------------------------------------------------


def gang(**fields: Any) -> base.Replica:
    return replica(
        nodes=[0, 1],
        devices=[{"request": "gpu", "group": "gpu", "node": n, "indexes": [0, 1]} for n in (0, 1)],
        resources={"nodes": 2, "devices": [{"name": "gpu", "count": 2}]},
        **fields,
    )


def test_a_gang_is_a_leader_worker_set_and_a_service_of_its_leader() -> None:
    made = render.render(launch_of(gang()), settings(), token=TOKEN)
    check(made)
    lws = made.workload
    assert lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 2 and lws["spec"]["replicas"] == 1
    assert template["restartPolicy"] == "RecreateGroupOnPodRestart"
    name = lws["metadata"]["name"]
    assert made.service["metadata"]["name"] == f"{name}-leader"
    assert made.service["spec"]["selector"] == {
        names.INSTANCE: name,
        "leaderworkerset.sigs.k8s.io/worker-index": "0",
    }
    env = env_of(made)
    assert env["INFERPLANE_GANG_LEADER_URL"] == "http://$(LWS_LEADER_ADDRESS):8000"
    assert "LWS_WORKER_INDEX" not in env  # LeaderWorkerSet sets its own variables
    affinity = pod_spec(made)["affinity"]["podAntiAffinity"]
    assert affinity["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == (
        "kubernetes.io/hostname"
    )


def test_a_dra_gang_gets_a_claim_per_member_from_a_template() -> None:
    made = render.render(launch_of(gang()), settings(devices="dra"), token=TOKEN)
    check(made)
    assert made.claim is not None and made.claim["kind"] == "ResourceClaimTemplate"
    name = made.workload["metadata"]["name"]
    assert pod_spec(made)["resourceClaims"] == [
        {"name": "devices", "resourceClaimTemplateName": name}
    ]


def test_a_recipe_without_gangs_is_refused_for_a_gang() -> None:
    rep = gang(
        engine={"recipe": "vllm", "image": "vllm/vllm-openai:v0.11.0"},
        model=model_of("file:///models/x"),
    )
    with pytest.raises(recipes.LaunchError, match="single-node"):
        launches.launch_for(rep, shapes=SHAPES)


# --- refusals ------------------------------------------------------------------------------


def test_a_replica_without_an_image_is_refused_naming_the_field() -> None:
    with pytest.raises(recipes.LaunchError, match=r"spec\.engine\.image"):
        launches.launch_for(replica(engine={}), shapes=SHAPES)


@pytest.mark.parametrize(
    "image",
    ["bad image", "x:tag;rm -rf /", "UPPER/case", "a\nb", "registry:5000//x", "-x"],
)
def test_an_image_that_is_no_reference_is_refused(image: str) -> None:
    with pytest.raises(recipes.LaunchError, match="not an image reference"):
        launches.launch_for(replica(engine={"image": image}), shapes=SHAPES)


@pytest.mark.parametrize(
    "source",
    ["file:///models/../etc/shadow", "file://relative/x", "file:///models/a%00b",
     "s3://bucket/x", "hf://org/name"],  # hf:// is for engines that download: not reference
)  # fmt: skip
def test_model_sources_that_cannot_be_a_path_in_the_pod_are_refused(source: str) -> None:
    with pytest.raises(sources.SourceError):
        launches.launch_for(replica(model=model_of(source)), shapes=SHAPES)


def test_a_hostile_hub_id_is_refused() -> None:
    rep = replica(
        engine={"recipe": "vllm", "image": "vllm/vllm-openai:v0.11.0"},
        model=model_of("hf://org/name/../../x"),
    )
    with pytest.raises(sources.SourceError, match="repository id"):
        launches.launch_for(rep, shapes=SHAPES)


# --- hostile values ------------------------------------------------------------------------

HOSTILE = [
    "$(INFERPLANE_ENGINE_API_KEY)",
    "$$(HOME)",
    "--flag=$(LWS_LEADER_ADDRESS)",
    "$",
    "a$",
    "$(",
    "; rm -rf / #",
    "line\nbreak",
    "\"quoted\" 'and' `ticks`",
    "{engine_token}",
]


def test_a_tenants_args_and_env_reach_the_engine_literally() -> None:
    rep = replica(engine={"image": "registry.example.com/e:1", "args": HOSTILE,
                          "env": {f"V{i}": value for i, value in enumerate(HOSTILE)}})  # fmt: skip
    made = render.render(launch_of(rep), settings(), token=TOKEN)
    check(made)
    defined = {"INFERPLANE_ENGINE_API_KEY": TOKEN, "HOME": "/home", "LWS_LEADER_ADDRESS": "x"}
    command = container(made)["command"]
    assert [expand(item, defined) for item in command[-len(HOSTILE) :]] == HOSTILE
    env = env_of(made)
    for i, value in enumerate(HOSTILE):
        if value != base.TOKEN:
            assert expand(env[f"V{i}"], defined) == value
    # as in the process runtime, a value that is the placeholder is the replica's own token
    assert "secretKeyRef" in env[f"V{HOSTILE.index(base.TOKEN)}"]
    assert TOKEN not in json.dumps(made.workload)


def test_a_tenant_cannot_replace_the_runtimes_own_variables() -> None:
    env = {render.POD_ENV: '{"limits":{"nvidia.com/gpu":64}}', "INFERPLANE_ENGINE_TOKEN": "x",
           "INFERPLANE_GANG_LEADER_URL": "http://evil"}  # fmt: skip
    made = render.render(
        launch_of(gang(engine={"image": "registry.example.com/e:1", "env": env})),
        settings(), token=TOKEN,
    )  # fmt: skip
    rendered = env_of(made)
    assert rendered["INFERPLANE_GANG_LEADER_URL"] == "http://$(LWS_LEADER_ADDRESS):8000"
    assert container(made)["resources"]["limits"]["nvidia.com/gpu"] == "2"


def test_hostile_selectors_are_data_in_the_claim() -> None:
    selector = '"x" == "x" || device.driver != ""\n}]}}'
    rep = replica(resources={"devices": [{"name": "gpu", "count": 1, "selectors": [selector]}]})
    made = render.render(launch_of(rep), settings(devices="dra"), token=TOKEN)
    check(made)
    assert made.claim is not None
    exactly = made.claim["spec"]["devices"]["requests"][0]["exactly"]
    assert exactly["selectors"] == [{"cel": {"expression": selector}}]


# --- names ---------------------------------------------------------------------------------

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize(
    "name",
    ["default/chat-0", f"{'n' * 63}/{'r' * 63}", "0team/1replica", "a-b/c", "a/b-c"],
)
def test_object_names_are_bounded_dns_labels(name: str) -> None:
    made = render.render(launch_of(replica(name)), settings(), token=TOKEN)
    check(made)
    for manifest in made.all():
        object_name = manifest["metadata"]["name"]
        assert DNS_1035.match(object_name) and len(object_name) <= names.NAME_MAX + 7
        assert manifest["metadata"]["annotations"][names.REPLICA_NAME] == name
    assert len(made.workload["metadata"]["name"]) <= names.NAME_MAX


def test_names_that_slug_alike_do_not_share_objects() -> None:
    assert names.object_name("a-b/c") != names.object_name("a/b-c")


def test_label_values_are_sanitized_and_bounded() -> None:
    labels = names.labels(f"{'n' * 63}/{'r' * 63}", deployment="x" * 70)
    assert all(len(value) <= 63 for value in labels.values())
    assert names.label_value("..a/b_") == "a-b"
