"""The control plane's fault and bad-input drills (issue 11, item 7), each as an operator ran it:
a huge scale held to the namespace's Quota and created at a bounded rate while the API keeps
answering; a bad body and a namespace mismatch answered on one keep-alive connection; a
replica's phase following its killed and restarted agent's cluster; lists paged by limit and
continue. Nothing here asserts how long anything took."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from inferplane import client as api_client
from tests.integration.fake_agent import FakeAgent, gpu_pool
from tests.integration.fleet import condition, fleet, phase, replicas_of, wait_for, workload
from tests.integration.manifests import apikey, model, path
from tests.support.control import ControlProcess

pytestmark = pytest.mark.integration
MERGE = {"Content-Type": "application/merge-patch+json"}
ANSWER_SECONDS = 20.0
"""How long one API call may take before it counts as not answered: the drill saw 20 s."""


def causes(response: httpx.Response) -> list[str]:
    return [c["field"] for c in response.json()["details"].get("causes", [])]


def _client(control: ControlProcess, namespace: str) -> api_client.Client:
    return api_client.Client(control.url, control.admin_token, namespace=namespace)


# -- a huge scale, held by the Quota ------------------------------------------------------------


@contextmanager
def probing(control: ControlProcess, namespace: str) -> Iterator[list[int]]:
    """Keep listing Deployments from another thread; the status code of each call."""
    codes: list[int] = []
    stop = threading.Event()

    def probe() -> None:
        with control.http() as http:
            while not stop.is_set():
                try:
                    answer = http.get(path("deployments", namespace), timeout=ANSWER_SECONDS)
                    codes.append(answer.status_code)
                except httpx.TimeoutException:
                    codes.append(0)

    thread = threading.Thread(target=probe, name="api-probe")
    thread.start()
    try:
        yield codes
    finally:
        stop.set()
        thread.join(timeout=ANSWER_SECONDS + 5)


def _quota(namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Quota",
        "metadata": {"name": "caps", "namespace": namespace},
        "spec": spec,
    }


def _held(client: api_client.Client, namespace: str, count: int, limit: str) -> dict[str, Any]:
    """The QuotaExceeded condition once exactly `count` replicas exist and `limit` holds."""

    def settled() -> dict[str, Any] | None:
        if len(replicas_of(client, namespace, "chat")) != count:
            return None
        held = condition(client.get("Deployment", "chat", namespace=namespace), "QuotaExceeded")
        return held if held and f"{limit} is" in held["message"] else None

    return wait_for(f"{count} replicas held by {limit}", settled)


def _quota_events(client: api_client.Client, message: str) -> list[dict[str, Any]] | None:
    """Every QuotaExceeded Event of the Deployment, once one says `message`: the controller
    records it after writing the condition that says it, so it may lag the status."""
    selector = "spec.involvedObject.name=chat,spec.reason=QuotaExceeded"
    events = client.list("Event", field_selector=selector).items
    return events if any(e["spec"]["message"] == message for e in events) else None


def test_a_huge_scale_is_created_at_a_bounded_rate_and_stops_at_the_quota(
    control: ControlProcess, namespace: str
) -> None:
    with _client(control, namespace) as client, control.http() as http:
        client.create(model("tiny", namespace))
        client.create(_quota(namespace, maxReplicas=40))
        client.create(workload(namespace, replicas=1))  # no cluster: every replica stays Pending
        wait_for("the first replica", lambda: replicas_of(client, namespace, "chat"))
        with probing(control, namespace) as codes:
            patch = {"spec": {"replicas": 1000}}
            patched = http.patch(path("deployments", namespace, "chat"), json=patch, headers=MERGE)
            assert patched.status_code == 200, patched.text
            held = _held(client, namespace, 40, "maxReplicas")
            assert held["message"].startswith(f"quota {namespace}/caps: maxReplicas is 40")

            client.patch("Quota", "caps", {"spec": {"maxReplicas": 100, "maxDevices": 64}})
            held = _held(client, namespace, 64, "maxDevices")  # one device a replica
        assert codes and set(codes) == {200}, "every call during creation was answered"

        def counted() -> dict[str, Any] | None:
            status: dict[str, Any] = client.get("Quota", "caps")["status"]
            return status if status.get("devices") == 64 else None

        assert wait_for("the Quota's status", counted)["replicas"] == 64
        events = wait_for("the Event of the hold", lambda: _quota_events(client, held["message"]))
        assert all(e["spec"]["type"] == "Warning" for e in events)

        client.delete("Quota", "caps")
        client.set_scale("Deployment", "chat", 70)
        wait_for("70 replicas", lambda: len(replicas_of(client, namespace, "chat")) == 70)

        def released() -> bool:
            return condition(client.get("Deployment", "chat"), "QuotaExceeded") is None

        # The controller writes the status after the replicas it creates: wait for it too.
        wait_for("nothing held any more", released)
        client.delete("Deployment", "chat")
        wait_for("the replicas to go", lambda: not replicas_of(client, namespace, "chat"))


# -- bad bodies on one keep-alive connection ----------------------------------------------------


def _local_port(response: httpx.Response) -> int:
    stream = response.extensions["network_stream"]
    port: int = stream.get_extra_info("client_addr")[1]
    return port


def test_a_namespace_mismatch_after_a_bad_key_is_a_400_on_the_same_connection(
    control: ControlProcess, namespace: str
) -> None:
    with control.http() as http:
        bad = {**apikey("ci", namespace, "viewer"), "spec": "viewer"}
        first = http.post(path("apikeys", namespace), json=bad)
        assert first.status_code == 422, first.text
        assert causes(first) == ["spec"]

        other = {**apikey("ci", namespace, "viewer")}
        other["metadata"] = {"name": "ci", "namespace": "other"}
        second = http.post(path("apikeys", namespace), json=other)
        assert second.status_code == 400, second.text
        assert causes(second) == ["metadata.namespace"]
        assert _local_port(second) == _local_port(first), "answered on the same connection"

        after = http.get(path("apikeys", namespace))
        assert after.status_code == 200 and after.json()["items"] == []


# -- a replica's phase follows its cluster ------------------------------------------------------


def test_a_replicas_phase_follows_its_killed_and_restarted_agents_cluster(
    control: ControlProcess, namespace: str
) -> None:
    agents = [{"cluster": "a", "pools": [gpu_pool("gpu")], "heartbeat_grace": 2.0}]
    with fleet(control, namespace, *agents) as started, _client(control, namespace) as client:
        (agent,) = started
        client.create(workload(namespace, replicas=1))

        def endpoint_ready(ready: bool) -> dict[str, Any] | None:
            found = client.list("Endpoint").items
            return found[0] if len(found) == 1 and found[0]["status"]["ready"] is ready else None

        wait_for("a ready endpoint", lambda: endpoint_ready(True))
        agent.stop()  # kill -9: no heartbeat, no replica reports

        def unknown() -> dict[str, Any] | None:
            (replica,) = replicas_of(client, namespace, "chat")
            return replica if phase(replica) == "Unknown" else None

        replica = wait_for("the replica to be Unknown", unknown)
        assert phase(client.get("Cluster", agent.cluster)) == "NotReady"
        marked = condition(replica, "ClusterReady")
        assert marked is not None
        assert (marked["status"], marked["reason"]) == ("False", "ClusterNotReady")
        wait_for("the endpoint to stop being ready", lambda: endpoint_ready(False))

        back = FakeAgent(
            control, agent.cluster, labels=agent.labels, pools=agent.pools, heartbeat_grace=2.0
        )
        started[0] = back.start()  # the fleet's teardown stops this one

        def reported() -> dict[str, Any] | None:
            (replica,) = replicas_of(client, namespace, "chat")
            cleared = condition(replica, "ClusterReady") is None
            return replica if phase(replica) == "Ready" and cleared else None

        again = wait_for("the agent's phase again", reported)
        assert again["metadata"]["name"] == replica["metadata"]["name"], "the same replica"
        wait_for("the endpoint to be ready again", lambda: endpoint_ready(True))


# -- limit and continue -------------------------------------------------------------------------


def test_limit_and_continue_page_a_list(control: ControlProcess, namespace: str) -> None:
    with _client(control, namespace) as client, control.http() as http:
        for name in ("m-a", "m-b", "m-c", "m-d", "m-e"):
            client.create({**model(name, namespace), "metadata": {"name": name, "labels": {}}})
        client.create(
            {**model("x-1", namespace), "metadata": {"name": "x-1", "labels": {"skip": "yes"}}}
        )
        url = path("models", namespace)
        seen: list[str] = []
        versions: set[str] = set()
        params: dict[str, str] = {"limit": "2", "labelSelector": "!skip"}
        while True:
            page = http.get(url, params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            assert len(body["items"]) <= 2
            seen += [obj["metadata"]["name"] for obj in body["items"]]
            versions.add(body["metadata"]["resourceVersion"])
            token = body["metadata"].get("continue")
            if token is None:
                break
            if len(seen) == 2:  # between pages: sorts before where the next page resumes
                client.create(model("m-0", namespace))
            params = {**params, "continue": token}
        assert seen == ["m-a", "m-b", "m-c", "m-d", "m-e"]
        assert len(versions) == 1, "every page reports the first page's resourceVersion"
        whole = http.get(url).json()
        assert "continue" not in whole["metadata"] and len(whole["items"]) == 7

        for bad in ("-1", "0", "abc", "1.5", "²"):
            refused = http.get(url, params={"limit": bad})
            assert refused.status_code == 400, (bad, refused.text)
            assert causes(refused) == ["limit"]
        refused = http.get(url, params={"limit": "2", "continue": "not-a-token"})
        assert refused.status_code == 400, refused.text
        assert causes(refused) == ["continue"]
