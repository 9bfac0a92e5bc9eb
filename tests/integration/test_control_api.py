"""The resource API against a real control plane process, over real HTTP."""

from __future__ import annotations

import time

import pytest

from tests.integration.manifests import deployment, model, path
from tests.support.control import ControlProcess

pytestmark = pytest.mark.integration


def test_create_get_list_delete_round_trip(control: ControlProcess, namespace: str) -> None:
    with control.http() as http:
        created = http.post(path("deployments", namespace), json=deployment("chat", namespace))
        assert created.status_code == 201, created.text
        meta = created.json()["metadata"]
        assert meta["uid"] and meta["generation"] == 1 and int(meta["resourceVersion"]) > 0
        got = http.get(path("deployments", namespace, "chat")).json()
        assert got["metadata"]["uid"] == meta["uid"]
        listed = http.get(path("deployments", namespace)).json()
        assert listed["kind"] == "DeploymentList"
        assert [i["metadata"]["name"] for i in listed["items"]] == ["chat"]
        assert http.delete(path("deployments", namespace, "chat")).status_code == 200
        gone = http.get(path("deployments", namespace, "chat"))
        assert gone.status_code == 404
        assert gone.json()["reason"] == "NotFound"
        assert 'deployments "chat" not found' in gone.json()["message"]


def test_defaults_are_stored_and_visible(control: ControlProcess, namespace: str) -> None:
    with control.http() as http:
        http.post(path("deployments", namespace), json=deployment("chat", namespace))
        spec = http.get(path("deployments", namespace, "chat")).json()["spec"]
    assert spec["replicas"] == 1
    assert spec["engine"]["recipe"] == "reference"
    assert spec["placement"]["strategy"] == "binpack"


def test_a_stale_update_is_refused_with_409(control: ControlProcess, namespace: str) -> None:
    # A Model: no controller writes to it, so the only writer in between is the test.
    with control.http() as http:
        first = http.post(path("models", namespace), json=model("tiny", namespace)).json()
        first["spec"]["description"] = "one"
        assert http.put(path("models", namespace, "tiny"), json=first).status_code == 200
        first["spec"]["description"] = "two"  # still carries the old resourceVersion
        stale = http.put(path("models", namespace, "tiny"), json=first)
    assert stale.status_code == 409
    assert stale.json()["reason"] == "Conflict"
    assert "the object has been modified" in stale.json()["message"]


def test_generation_moves_with_spec_only(control: ControlProcess, namespace: str) -> None:
    with control.http() as http:
        http.post(path("deployments", namespace), json=deployment("chat", namespace))
        labels = {"metadata": {"labels": {"team": "a"}}}
        after_labels = http.patch(
            path("deployments", namespace, "chat"),
            json=labels,
            headers={"Content-Type": "application/merge-patch+json"},
        ).json()
        assert after_labels["metadata"]["generation"] == 1
        assert after_labels["metadata"]["labels"] == {"app": "chat", "team": "a"}
        after_spec = http.patch(
            path("deployments", namespace, "chat"), json={"spec": {"replicas": 4}}
        ).json()
    assert after_spec["metadata"]["generation"] == 2
    assert after_spec["spec"]["replicas"] == 4


def test_status_subresource_changes_status_only(control: ControlProcess, namespace: str) -> None:
    with control.http() as http:
        http.post(path("deployments", namespace), json=deployment("chat", namespace))
        patch = {"spec": {"replicas": 9}, "status": {"readyReplicas": 1}}
        response = http.patch(path("deployments", namespace, "chat", "status"), json=patch)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["status"]["readyReplicas"] == 1
        assert result["spec"]["replicas"] == 1, "spec is not writable through /status"
        # A count no controller would write: the deployment controller owns readyReplicas.
        replaced = dict(result, status={"readyReplicas": 42})
        replaced["spec"] = {**result["spec"], "replicas": 5}
        # Unconditional (no resourceVersion): the controller may write status meanwhile.
        replaced["metadata"] = {
            k: v for k, v in result["metadata"].items() if k != "resourceVersion"
        }
        response = http.put(path("deployments", namespace, "chat"), json=replaced)
        assert response.status_code == 200, response.text
        back = response.json()
    assert back["spec"]["replicas"] == 5
    assert back["status"].get("readyReplicas") != 42, "status is not writable through the object"


def test_scale_subresource(control: ControlProcess, namespace: str) -> None:
    with control.http() as http:
        http.post(path("deployments", namespace), json=deployment("chat", namespace))
        scale = http.get(path("deployments", namespace, "chat", "scale")).json()
        assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1
        scale["spec"]["replicas"] = 3
        del scale["metadata"]["resourceVersion"]  # as `inferplane scale` does: last write wins
        assert (
            http.put(path("deployments", namespace, "chat", "scale"), json=scale).status_code == 200
        )
        assert http.get(path("deployments", namespace, "chat")).json()["spec"]["replicas"] == 3
        bad = http.patch(
            path("deployments", namespace, "chat", "scale"), json={"spec": {"replicas": -2}}
        )
        assert bad.status_code == 422
        assert bad.json()["details"]["causes"][0]["field"] == "spec.replicas"
        stale = {**scale, "metadata": {**scale["metadata"], "resourceVersion": "1"}}
        assert (
            http.put(path("deployments", namespace, "chat", "scale"), json=stale).status_code == 409
        )
        models = http.get(path("models", namespace, "x", "scale"))
        assert models.status_code == 404


def test_dry_run_writes_nothing(control: ControlProcess, namespace: str) -> None:
    with control.http() as http:
        dry = http.post(
            path("deployments", namespace),
            params={"dryRun": "All"},
            json=deployment("d", namespace),
        )
        assert dry.status_code == 201
        assert dry.json()["spec"]["replicas"] == 1, "the answer shows the defaulted object"
        assert http.get(path("deployments", namespace, "d")).status_code == 404
        http.post(path("deployments", namespace), json=deployment("d", namespace))
        http.delete(path("deployments", namespace, "d"), params={"dryRun": "All"})
        assert http.get(path("deployments", namespace, "d")).status_code == 200


def test_label_and_field_selectors(control: ControlProcess, namespace: str) -> None:
    with control.http() as http:
        for name, tier in (("a", "prod"), ("b", "dev"), ("c", "prod")):
            obj = deployment(name, namespace)
            obj["metadata"]["labels"]["tier"] = tier
            http.post(path("deployments", namespace), json=obj)
        prod = http.get(path("deployments", namespace), params={"labelSelector": "tier=prod"})
        assert [i["metadata"]["name"] for i in prod.json()["items"]] == ["a", "c"]
        not_a = http.get(
            path("deployments", namespace),
            params={"labelSelector": "tier in (prod,dev)", "fieldSelector": "metadata.name!=a"},
        )
        assert [i["metadata"]["name"] for i in not_a.json()["items"]] == ["b", "c"]
        bad = http.get(path("deployments", namespace), params={"labelSelector": "tier in prod"})
    assert bad.status_code == 400
    assert bad.json()["details"]["causes"][0]["field"] == "labelSelector"


def test_finalizers_hold_deletion_until_removed(control: ControlProcess, namespace: str) -> None:
    with control.http() as http:
        obj = deployment("held", namespace)
        obj["metadata"]["finalizers"] = ["example.com/cleanup"]
        http.post(path("deployments", namespace), json=obj)
        deleted = http.delete(path("deployments", namespace, "held")).json()
        assert deleted["metadata"]["deletionTimestamp"]
        assert http.get(path("deployments", namespace, "held")).status_code == 200
        http.patch(path("deployments", namespace, "held"), json={"metadata": {"finalizers": []}})
        assert http.get(path("deployments", namespace, "held")).status_code == 404


def test_deleting_an_owner_cascades(control: ControlProcess, namespace: str) -> None:
    with control.http() as http:
        owner = http.post(path("models", namespace), json=model("tiny", namespace)).json()
        child = deployment("child", namespace)
        child["metadata"]["ownerReferences"] = [
            {"kind": "Model", "name": "tiny", "uid": owner["metadata"]["uid"]}
        ]
        http.post(path("deployments", namespace), json=child)
        http.delete(path("models", namespace, "tiny"))
        assert http.get(path("deployments", namespace, "child")).status_code == 404


def test_controller_writes_conditions_and_events(control: ControlProcess, namespace: str) -> None:
    with control.http() as http:
        http.post(path("deployments", namespace), json=deployment("chat", namespace, model="tiny"))
        missing = _wait_condition(http, namespace, "chat", "False")
        assert missing["reason"] == "ModelNotFound"
        selector = {"fieldSelector": "spec.involvedObject.name=chat,spec.reason=ModelNotFound"}
        deadline = time.monotonic() + 10
        while not (events := http.get(path("events", namespace), params=selector).json()["items"]):
            assert time.monotonic() < deadline, "no ModelNotFound event recorded"
            time.sleep(0.05)
        assert events[0]["spec"]["type"] == "Warning"
        assert events[0]["spec"]["involvedObject"]["kind"] == "Deployment"
        http.post(path("models", namespace), json=model("tiny", namespace))
        resolved = _wait_condition(http, namespace, "chat", "True")
    assert 'version "v1"' in resolved["message"]


def _wait_condition(http, namespace: str, name: str, status: str) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        obj = http.get(path("deployments", namespace, name)).json()
        for condition in obj["status"].get("conditions", []):
            if condition["type"] == "ModelResolved" and condition["status"] == status:
                assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
                return condition
        time.sleep(0.05)
    raise AssertionError(f"ModelResolved never became {status}: {obj['status']}")


def test_health_metrics_and_openapi(control: ControlProcess) -> None:
    with control.http(token="") as anonymous:
        assert anonymous.get("/healthz").text == "ok"
        assert anonymous.get("/readyz").status_code == 200
        metrics = anonymous.get("/metrics").text
        assert "inferplane_api_requests_total" in metrics
        assert anonymous.get("/openapi.json").json()["info"]["title"] == "inferplane control plane"
        assert anonymous.get(path("deployments", "default")).status_code == 401
