"""Watch over HTTP: order, resumption across a restart, and 410 after compaction."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from inferplane import client as api_client
from inferplane import informer
from inferplane.backoff import Backoff
from tests.integration.manifests import model, path
from tests.support.control import ControlProcess

pytestmark = pytest.mark.integration


def read_events(http: httpx.Client, url: str, *, count: int, **params: Any) -> list[dict[str, Any]]:
    """The first `count` non-bookmark events of a watch (bounded by timeoutSeconds)."""
    events: list[dict[str, Any]] = []
    query = {"watch": "true", "timeoutSeconds": "10", **params}
    with http.stream("GET", url, params=query) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "application/x-ndjson"
        for line in response.iter_lines():
            event = json.loads(line)
            if event["type"] != "BOOKMARK":
                events.append(event)
            if len(events) == count:
                break
    return events


def versions(events: list[dict[str, Any]]) -> list[int]:
    return [int(e["object"]["metadata"]["resourceVersion"]) for e in events]


def test_watch_opens_with_current_objects_then_streams_changes(
    control: ControlProcess, namespace: str
) -> None:
    with control.http() as http:
        http.post(path("models", namespace), json=model("a", namespace))
        listed = http.get(path("models", namespace)).json()
        http.post(path("models", namespace), json=model("b", namespace))
        http.patch(path("models", namespace, "a"), json={"spec": {"description": "x"}})
        http.delete(path("models", namespace, "b"))
        initial = read_events(http, path("models", namespace), count=1)
        assert [e["type"] for e in initial] == ["ADDED"]
        since = read_events(
            http,
            path("models", namespace),
            count=3,
            resourceVersion=listed["metadata"]["resourceVersion"],
        )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in since] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
    ]
    assert versions(since) == sorted(versions(since))


def test_watch_filters_by_label_selector(control: ControlProcess, namespace: str) -> None:
    with control.http() as http:
        start = http.get(path("models", namespace)).json()["metadata"]["resourceVersion"]
        for name, tier in (("a", "dev"), ("b", "prod")):
            obj = model(name, namespace)
            obj["metadata"]["labels"] = {"tier": tier}
            http.post(path("models", namespace), json=obj)
        events = read_events(
            http,
            path("models", namespace),
            count=1,
            resourceVersion=start,
            labelSelector="tier=prod",
        )
    assert [e["object"]["metadata"]["name"] for e in events] == ["b"]


def test_a_watch_resumed_after_a_restart_misses_and_repeats_nothing(
    fresh_control: ControlProcess,
) -> None:
    control = fresh_control
    control.start()
    with control.http() as http:
        start = http.get(path("models", "w")).json()["metadata"]["resourceVersion"]
        for i in range(3):
            http.post(path("models", "w"), json=model(f"m{i}", "w"))
        seen = read_events(http, path("models", "w"), count=3, resourceVersion=start)
    control.stop()
    control.start()
    with control.http() as http:
        for i in range(3, 6):
            http.post(path("models", "w"), json=model(f"m{i}", "w"))
        resumed = read_events(
            http, path("models", "w"), count=3, resourceVersion=str(versions(seen)[-1])
        )
    names = [e["object"]["metadata"]["name"] for e in seen + resumed]
    assert names == [f"m{i}" for i in range(6)], "every change once, in order"
    assert versions(seen + resumed) == sorted(set(versions(seen + resumed)))


def test_a_compacted_version_answers_410(fresh_control: ControlProcess) -> None:
    control = fresh_control
    control.extra_args = ["--watch-history", "5"]
    control.start()
    with control.http() as http:
        for i in range(20):
            http.post(path("models", "w"), json=model(f"m{i}", "w"))
    control.stop()
    control.start()  # compaction runs at start
    with control.http() as http:
        gone = http.get(path("models", "w"), params={"watch": "true", "resourceVersion": "1"})
        assert gone.status_code == 410
        assert gone.json()["reason"] == "Gone"
        relist = http.get(path("models", "w")).json()
        resumed = (
            read_events(
                http,
                path("models", "w"),
                count=1,
                resourceVersion=relist["metadata"]["resourceVersion"],
            )
            if http.post(path("models", "w"), json=model("late", "w")).status_code == 201
            else []
        )
    assert [e["object"]["metadata"]["name"] for e in resumed] == ["late"]


def test_the_client_follows_a_kind_across_a_restart(fresh_control: ControlProcess) -> None:
    control = fresh_control
    control.start()
    client = api_client.Client(control.url, control.admin_token, namespace="f")
    start = client.list("models").resource_version
    received: list[api_client.WatchEvent] = []

    def consume() -> None:
        retry = Backoff(base=0.05, cap=0.5)
        for event in informer.follow(client, "models", resource_version=start, retry=retry):
            if event.type != "BOOKMARK":
                received.append(event)
            if len(received) == 6:
                return

    follower = threading.Thread(target=consume, daemon=True)
    follower.start()
    with control.http() as http:
        for i in range(3):
            http.post(path("models", "f"), json=model(f"m{i}", "f"))
    _wait(lambda: len(received) == 3)
    control.stop()
    log = control.log_path.read_text()
    assert "graceful shutdown exceeded" not in log, "an open watch held up shutdown"
    control.start()
    with control.http() as http:
        for i in range(3, 6):
            http.post(path("models", "f"), json=model(f"m{i}", "f"))
    follower.join(timeout=30)
    client.close()
    names = [e.object["metadata"]["name"] for e in received]
    assert names == [f"m{i}" for i in range(6)], "every change once, in order, across the restart"


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_filtered_watch_sees_objects_enter_and_leave_its_selection(
    control: ControlProcess, namespace: str
) -> None:
    with control.http() as http:
        start = http.get(path("models", namespace)).json()["metadata"]["resourceVersion"]
        http.post(path("models", namespace), json=model("m", namespace))
        for tier in ("prod", "dev"):
            http.patch(
                path("models", namespace, "m"), json={"metadata": {"labels": {"tier": tier}}}
            )
        events = read_events(
            http,
            path("models", namespace),
            count=2,
            resourceVersion=start,
            labelSelector="tier=prod",
        )
    assert [(e["type"], e["object"]["metadata"]["labels"]["tier"]) for e in events] == [
        ("ADDED", "prod"),
        ("DELETED", "dev"),
    ]
