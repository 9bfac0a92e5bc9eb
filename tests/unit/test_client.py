"""The resource API client against fakes of the server (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from inferplane import client as api_client
from tests.unit import fake_resource_api as fake

Handler = Callable[[httpx.Request], httpx.Response]


def client_with(handler: Handler, *, token: str | None = "t0k") -> api_client.Client:
    return api_client.Client(fake.SERVER, token, transport=httpx.MockTransport(handler))


def answering(body: Any, seen: list[httpx.Request], status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body)

    return handler


@pytest.fixture
def api() -> fake.FakeResourceApi:
    return fake.FakeResourceApi()


@pytest.fixture
def client(api: fake.FakeResourceApi) -> api_client.Client:
    return api_client.Client(fake.SERVER, fake.TOKEN, transport=api.transport)


# -- addressing ----------------------------------------------------------------------------------


def test_get_uses_the_default_namespace_and_bearer_token() -> None:
    seen: list[httpx.Request] = []
    client_with(answering({"kind": "Deployment"}, seen)).get("deploy", "chat")
    assert seen[0].url.path == "/apis/inferplane.dev/v1/namespaces/default/deployments/chat"
    assert seen[0].headers["authorization"] == "Bearer t0k"


def test_fleet_scoped_kinds_never_get_a_namespace() -> None:
    seen: list[httpx.Request] = []
    client_with(answering({}, seen)).get("Cluster", "eu-1", namespace="team-a")
    assert seen[0].url.path == "/apis/inferplane.dev/v1/clusters/eu-1"


def test_list_without_namespace_reads_every_namespace_with_selectors() -> None:
    seen: list[httpx.Request] = []
    body = {"metadata": {"resourceVersion": "42"}, "items": [{"kind": "Replica"}]}
    result = client_with(answering(body, seen)).list(
        "replicas", label_selector="app=chat", field_selector="spec.cluster=eu-1"
    )
    assert seen[0].url.path == "/apis/inferplane.dev/v1/replicas"
    assert seen[0].url.params["labelSelector"] == "app=chat"
    assert seen[0].url.params["fieldSelector"] == "spec.cluster=eu-1"
    assert result == api_client.ObjectList(items=[{"kind": "Replica"}], resource_version="42")


def test_no_token_sends_no_authorization_header() -> None:
    seen: list[httpx.Request] = []
    client_with(answering({}, seen), token=None).get("cluster", "eu-1")
    assert "authorization" not in seen[0].headers


def test_create_fills_the_namespace_and_passes_dry_run() -> None:
    seen: list[httpx.Request] = []
    client = client_with(answering({}, seen, status=201))
    client.create(fake.deployment("chat"), dry_run=True)
    assert seen[0].url.path == "/apis/inferplane.dev/v1/namespaces/default/deployments"
    assert seen[0].url.params["dryRun"] == "All"
    assert json.loads(seen[0].content)["metadata"]["namespace"] == "default"


def test_object_namespace_wins_over_the_default() -> None:
    seen: list[httpx.Request] = []
    client_with(answering({}, seen)).replace(fake.deployment("chat", namespace="team-a"))
    assert seen[0].method == "PUT"
    assert seen[0].url.path == "/apis/inferplane.dev/v1/namespaces/team-a/deployments/chat"


def test_an_object_without_kind_or_name_is_refused_before_sending() -> None:
    with pytest.raises(api_client.BadObject):
        client_with(answering({}, [])).create({"metadata": {"name": "x"}})


def test_patch_is_a_merge_patch_on_the_subresource() -> None:
    seen: list[httpx.Request] = []
    client = client_with(answering({}, seen))
    client.patch("Replica", "r1", {"status": {"phase": "Ready"}}, subresource="status")
    assert seen[0].method == "PATCH"
    assert seen[0].url.path.endswith("/namespaces/default/replicas/r1/status")
    assert seen[0].headers["content-type"] == "application/merge-patch+json"
    assert json.loads(seen[0].content) == {"status": {"phase": "Ready"}}


def test_replace_status_puts_to_the_status_subresource() -> None:
    seen: list[httpx.Request] = []
    client_with(answering({}, seen)).replace_status(fake.deployment("chat"))
    assert (seen[0].method, seen[0].url.path.rsplit("/", 2)[-2:]) == ("PUT", ["chat", "status"])


def test_scale_reads_and_sets_replicas(
    api: fake.FakeResourceApi, client: api_client.Client
) -> None:
    api.add(fake.deployment("chat", replicas=1))
    assert client.get_scale("deploy", "chat")["spec"]["replicas"] == 1
    assert client.set_scale("deploy", "chat", 4)["spec"]["replicas"] == 4
    assert client.get("deploy", "chat")["spec"]["replicas"] == 4


def test_delete_answers_the_object(api: fake.FakeResourceApi, client: api_client.Client) -> None:
    api.add(fake.deployment("chat"))
    assert client.delete("deploy", "chat", dry_run=True)["metadata"]["name"] == "chat"
    assert api.find("deploy", "chat") is not None
    client.delete("deploy", "chat")
    assert api.find("deploy", "chat") is None


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "error_type"),
    [
        (400, "BadRequest", api_client.BadRequest),
        (401, "Unauthorized", api_client.Unauthorized),
        (403, "Forbidden", api_client.Forbidden),
        (404, "NotFound", api_client.NotFound),
        (409, "AlreadyExists", api_client.AlreadyExists),
        (409, "Conflict", api_client.Conflict),
        (410, "Gone", api_client.Gone),
        (422, "Invalid", api_client.Invalid),
        (500, "InternalError", api_client.ApiError),
    ],
)
def test_status_bodies_become_typed_errors(
    code: int, reason: str, error_type: type[api_client.ApiError]
) -> None:
    body = fake.status_body(code, reason, "it went wrong")
    with pytest.raises(error_type) as caught:
        client_with(answering(body, [], status=code)).get("deploy", "chat")
    assert (caught.value.status, caught.value.reason, caught.value.message) == (
        code,
        reason,
        "it went wrong",
    )


def test_invalid_carries_the_field_causes(client: api_client.Client) -> None:
    with pytest.raises(api_client.Invalid) as caught:
        client.create(fake.deployment("chat", replicas=-1))
    assert caught.value.causes == [
        api_client.Cause("spec.replicas", "Input should be greater than or equal to 0")
    ]


def test_an_error_that_is_not_a_status_keeps_its_text() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="bad gateway from the proxy")

    with pytest.raises(api_client.ApiError) as caught:
        client_with(handler).get("deploy", "chat")
    assert caught.value.status == 502
    assert "bad gateway from the proxy" in caught.value.message


def test_an_unreachable_server_says_which_server() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(api_client.ConnectionFailed) as caught:
        client_with(handler).get("deploy", "chat")
    assert fake.SERVER in str(caught.value)
    assert "connection refused" in str(caught.value)


# -- watch ---------------------------------------------------------------------------------------


def event(kind: str, name: str, version: str) -> dict[str, object]:
    return {"type": kind, "object": {"metadata": {"name": name, "resourceVersion": version}}}


def test_watch_streams_events_and_remembers_bookmarks(
    api: fake.FakeResourceApi, client: api_client.Client
) -> None:
    api.watch_lines = [event("ADDED", "a", "5"), event("BOOKMARK", "", "9")]
    with client.watch("deploy", namespace="default", resource_version="4") as stream:
        events = list(stream)
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [("ADDED", "a")]
    assert stream.resource_version == "9"
    params = api.requests[-1].url.params
    assert (params["watch"], params["resourceVersion"]) == ("true", "4")


def test_watch_yields_bookmarks_when_asked(
    api: fake.FakeResourceApi, client: api_client.Client
) -> None:
    api.watch_lines = [event("BOOKMARK", "", "9")]
    assert [e.type for e in client.watch("deploy", bookmarks=True)] == ["BOOKMARK"]


def test_watch_from_a_compacted_version_is_gone() -> None:
    body = fake.status_body(410, "Gone", "too old resource version")
    with pytest.raises(api_client.Gone):
        list(client_with(answering(body, [], status=410)).watch("deploy", resource_version="1"))


def test_an_error_event_in_the_stream_raises() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        line = {"type": "ERROR", "object": fake.status_body(410, "Gone", "compacted")}
        return httpx.Response(200, content=json.dumps(line).encode() + b"\n")

    with pytest.raises(api_client.Gone):
        list(client_with(handler).watch("deploy"))


def test_a_watch_opens_nothing_until_iterated_and_closes_cleanly() -> None:
    seen: list[httpx.Request] = []
    stream = client_with(answering({}, seen)).watch("deploy", timeout_seconds=5)
    stream.close()
    assert seen == []
    assert list(stream) == []


# -- apply ---------------------------------------------------------------------------------------


def test_apply_creates_then_reports_unchanged_then_configured(client: api_client.Client) -> None:
    first = client.apply(fake.deployment("chat"))
    assert (first.action, first.object["metadata"]["generation"]) == ("created", 1)
    assert client.apply(fake.deployment("chat")).action == "unchanged"
    changed = client.apply(fake.deployment("chat", replicas=3))
    assert (changed.action, changed.object["spec"]["replicas"]) == ("configured", 3)


def test_apply_of_new_labels_is_configured(client: api_client.Client) -> None:
    client.apply(fake.deployment("chat"))
    assert client.apply(fake.deployment("chat", labels={"app": "chat"})).action == "configured"


def test_apply_dry_run_stores_nothing(api: fake.FakeResourceApi, client: api_client.Client) -> None:
    assert client.apply(fake.deployment("chat"), dry_run=True).action == "created"
    assert api.find("deploy", "chat") is None


def test_apply_keeps_finalizers_and_owners_the_manifest_does_not_mention(
    api: fake.FakeResourceApi, client: api_client.Client
) -> None:
    owner = {"kind": "Deployment", "name": "x", "uid": "u1"}
    api.add(fake.deployment("chat", finalizers=["inferplane.dev/cleanup"], ownerReferences=[owner]))
    client.apply(fake.deployment("chat", replicas=2))
    put = json.loads(api.requests[-1].content)
    assert put["metadata"]["finalizers"] == ["inferplane.dev/cleanup"]
    assert put["metadata"]["ownerReferences"] == [owner]


def test_apply_retries_when_someone_wrote_in_between(
    api: fake.FakeResourceApi, client: api_client.Client
) -> None:
    api.add(fake.deployment("chat"))
    conflicts = iter([True, False])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and next(conflicts):
            return httpx.Response(409, json=fake.status_body(409, "Conflict", "modified"))
        return api.handle(request)

    racing = api_client.Client(fake.SERVER, fake.TOKEN, transport=httpx.MockTransport(handler))
    assert racing.apply(fake.deployment("chat", replicas=5)).action == "configured"


def test_apply_gives_up_after_repeated_conflicts() -> None:
    live = fake.FakeResourceApi().add(fake.deployment("chat"))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=live)
        return httpx.Response(409, json=fake.status_body(409, "Conflict", "modified"))

    with pytest.raises(api_client.Conflict):
        client_with(handler).apply(fake.deployment("chat"))


def test_an_answer_that_is_not_an_object_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>")

    with pytest.raises(api_client.ApiError, match="something other than an object"):
        client_with(handler).get("deploy", "chat")


def test_a_garbled_watch_line_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"not json\n")

    with pytest.raises(api_client.ApiError, match="not an event"):
        list(client_with(handler).watch("deploy"))
