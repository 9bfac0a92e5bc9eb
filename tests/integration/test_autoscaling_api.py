"""Who owns spec.replicas of an autoscaled Deployment (issue 13, item 4), against a real control
plane without controllers (so nothing but the test writes): a person's scale is refused with
how to take the replicas back; an update or apply keeps the autoscaler's value."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.manifests import deployment, path
from tests.support.control import ControlProcess

pytestmark = pytest.mark.integration

NS = "team-a"
AUTOSCALED = {"replicas": 3, "autoscaling": {"minReplicas": 1, "maxReplicas": 8}}


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlProcess]:
    process = ControlProcess(
        tmp_path_factory.mktemp("autoscaling"), extra_args=["--no-controllers"]
    )
    process.start()
    yield process
    process.stop()


def test_a_manual_scale_of_an_autoscaled_deployment_is_refused(control: ControlProcess) -> None:
    with control.http() as http:
        assert http.post(
            path("deployments", NS), json=deployment("auto", NS, **AUTOSCALED)
        ).is_success
        scale = path("deployments", NS, "auto") + "/scale"
        refused = http.put(scale, json={"spec": {"replicas": 5}})
        assert refused.status_code == 409
        assert refused.json()["reason"] == "Conflict"
        assert "spec.autoscaling.enabled to false" in refused.json()["message"]
        assert http.patch(scale, json={"spec": {"replicas": 5}}).status_code == 409
        assert http.get(scale).json()["spec"]["replicas"] == 3, "reading the scale still works"


def test_an_update_keeps_the_autoscalers_replicas_until_autoscaling_is_disabled(
    control: ControlProcess,
) -> None:
    with control.http() as http:
        http.post(path("deployments", NS), json=deployment("kept", NS, **AUTOSCALED))
        url = path("deployments", NS, "kept")
        live = http.get(url).json()
        live["spec"]["replicas"] = 1  # a manifest re-applied as first written
        live["metadata"]["labels"]["touched"] = "yes"
        updated = http.put(url, json=live)
        assert updated.status_code == 200, updated.text
        assert updated.json()["spec"]["replicas"] == 3
        assert updated.json()["metadata"]["labels"]["touched"] == "yes"
        patched = http.patch(
            url,
            json={"spec": {"replicas": 1, "autoscaling": {"enabled": False}}},
            headers={"content-type": "application/merge-patch+json"},
        )
        assert patched.json()["spec"]["replicas"] == 1, "disabling hands the replicas back"
        scale = http.put(url + "/scale", json={"spec": {"replicas": 2}})
        assert scale.status_code == 200 and scale.json()["spec"]["replicas"] == 2
