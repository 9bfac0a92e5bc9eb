"""Every kind of bad input gets a 4xx Status naming the field, and the server keeps serving."""

from __future__ import annotations

import pytest

from tests.integration.manifests import deployment, path
from tests.support.control import ControlProcess

pytestmark = pytest.mark.integration


def causes(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [c["field"] for c in response.json()["details"].get("causes", [])]


def test_malformed_json_is_400(control: ControlProcess) -> None:
    with control.http() as http:
        response = http.post(
            path("deployments", "bad"),
            content=b'{"metadata": ',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["kind"] == "Status"
    assert "malformed JSON" in response.json()["message"]


def test_unknown_resource_is_404(control: ControlProcess) -> None:
    with control.http("") as anonymous:
        assert anonymous.get(path("widgets", "bad")).status_code == 401, "no token: 401 first"
    with control.http() as http:
        response = http.get(path("widgets", "bad"))
    assert response.status_code == 404
    assert "no resource 'widgets'" in response.json()["message"]


def test_kind_not_matching_the_path_is_400(control: ControlProcess) -> None:
    body = deployment("chat", "bad")
    body["kind"] = "Widget"
    with control.http() as http:
        response = http.post(path("deployments", "bad"), json=body)
    assert response.status_code == 400
    assert causes(response) == ["kind"]


def test_unknown_field_is_named(control: ControlProcess) -> None:
    body = deployment("chat", "bad", replicaz=3)
    with control.http() as http:
        response = http.post(path("deployments", "bad"), json=body)
    assert response.status_code == 422
    assert causes(response) == ["spec.replicaz"]
    assert "spec.replicaz" in response.json()["message"]


def test_wrong_type_is_named_with_its_full_path(control: ControlProcess) -> None:
    body = deployment("chat", "bad", resources={"devices": [{"count": "many"}]})
    with control.http() as http:
        response = http.post(path("deployments", "bad"), json=body)
    assert response.status_code == 422
    assert causes(response) == ["spec.resources.devices[0].count"]


@pytest.mark.parametrize("name", ["Chat", "chat_1", "-chat", "a" * 64])
def test_names_must_be_dns_labels(control: ControlProcess, name: str) -> None:
    body = deployment(name, "bad")
    body["metadata"]["labels"] = {}
    with control.http() as http:
        response = http.post(path("deployments", "bad"), json=body)
    assert response.status_code == 422
    assert causes(response) == ["metadata.name"]
    assert "DNS label" in response.json()["message"]


def test_a_bad_namespace_in_the_path_is_refused(control: ControlProcess) -> None:
    with control.http() as http:
        response = http.post(path("deployments", "Bad_NS"), json=deployment("chat", "Bad_NS"))
    assert response.status_code == 422
    assert causes(response) == ["metadata.namespace"]


def test_oversized_body_is_413(control: ControlProcess) -> None:
    body = deployment("chat", "bad")
    body["metadata"]["annotations"] = {"blob": "x" * (2 << 20)}
    with control.http() as http:
        response = http.post(path("deployments", "bad"), json=body)
    assert response.status_code == 413
    assert response.json()["reason"] == "RequestEntityTooLarge"


def test_json_patch_is_415(control: ControlProcess) -> None:
    with control.http() as http:
        http.post(path("deployments", "bad"), json=deployment("p", "bad"))
        response = http.patch(
            path("deployments", "bad", "p"),
            content=b"[]",
            headers={"Content-Type": "application/json-patch+json"},
        )
    assert response.status_code == 415


def test_nothing_half_written_and_the_server_keeps_serving(control: ControlProcess) -> None:
    with control.http() as http:
        good = deployment("good", "bad")
        assert http.post(path("deployments", "bad"), json=good).status_code == 201
        broken = http.get(path("deployments", "bad", "good")).json()
        broken["spec"]["replicas"] = -1
        assert http.put(path("deployments", "bad", "good"), json=broken).status_code == 422
        after = http.get(path("deployments", "bad", "good")).json()
        assert after["spec"]["replicas"] == 1
        assert http.get("/readyz").status_code == 200


def test_a_device_selector_that_does_not_compile_is_named_with_the_cel_error(
    control: ControlProcess,
) -> None:
    good = 'device.attributes["gpu.nvidia.com"].productName == "H100"'
    devices = [{"name": "gpu", "count": 1, "selectors": ['device.attributes["gpu.nvidia.com"] ==']}]
    devices.append({"name": "draft", "selectors": [good, "nvml(device)"]})
    body = deployment("chat", "bad", resources={"devices": devices})
    with control.http() as http:
        response = http.post(path("deployments", "bad"), json=body)
        assert http.get(path("deployments", "bad", "chat")).status_code == 404
    assert response.status_code == 422
    assert causes(response) == [
        "spec.resources.devices[0].selectors[0]",
        "spec.resources.devices[1].selectors[1]",
    ]
    messages = [c["message"] for c in response.json()["details"]["causes"]]
    assert messages == [
        "invalid CEL: syntax error at column 37: unexpected end of expression",
        "invalid CEL: undeclared reference to function nvml()",
    ]
