"""Preemption on `inferplane up` with real agents and reference engines (issue 13, item 8):
the example of docs/placement.md. A low-priority deployment takes all of both planes' CPU; a
high-priority one then preempts one of its replicas, is served, and the Events say so on
both deployments; the low one's replacement waits, Pending."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferplane import client as api_client
from inferplane.api import wellknown
from tests.support.engine_process import wait_for
from tests.support.up_process import UpProcess

pytestmark = pytest.mark.integration


def _deployment(name: str, priority: int, replicas: int, cpu: str) -> dict[str, Any]:
    return {
        "apiVersion": "inferplane.dev/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "model": "demo",
            "replicas": replicas,
            "priority": priority,
            "resources": {"cpu": cpu},
            "engine": {"recipe": "reference", "args": ["--kv-cache-memory", "64MiB"]},
        },
    }


def _of(client: api_client.Client, name: str) -> list[dict[str, Any]]:
    selector = f"{wellknown.DEPLOYMENT_LABEL}={name}"
    found = client.list("Replica", namespace="default", label_selector=selector).items
    return [r for r in found if not r["metadata"].get("deletionTimestamp")]


def _ready(client: api_client.Client, name: str) -> int:
    return sum((r.get("status") or {}).get("phase") == "Ready" for r in _of(client, name))


def _events(client: api_client.Client, name: str, reason: str) -> list[dict[str, Any]]:
    selector = f"spec.involvedObject.name={name},spec.reason={reason}"
    return client.list("Event", namespace="default", field_selector=selector).items


@pytest.mark.timeout(300)
def test_a_high_priority_deployment_preempts_a_low_one_on_full_planes(tmp_path: Path) -> None:
    up = UpProcess(tmp_path)
    up.start()
    pids: set[int] = set()
    try:
        up.endpoint()
        pids = up.descendants()
        with up.client() as client:
            pools = client.list("Pool").items
            cpus = {p["spec"]["cpu"] for p in pools}
            assert len(pools) == 2 and len(cpus) == 1, pools  # two like planes: one host
            whole = cpus.pop()  # a replica asking for a plane's every CPU fills it
            client.create(_deployment("batch", 0, 2, whole))
            wait_for(lambda: _ready(client, "batch") == 2, timeout=120, what="batch on both")
            client.create(_deployment("urgent", 100, 1, whole))
            wait_for(lambda: _ready(client, "urgent") == 1, timeout=120, what="urgent served")
            assert _ready(client, "batch") == 1
            (preempted,) = _events(client, "batch", "Preempted")
            (preempting,) = _events(client, "urgent", "Preempting")
            assert preempted["spec"]["type"] == "Warning"
            assert "(priority 0) preempted on" in preempted["spec"]["message"]
            assert "(priority 100)" in preempting["spec"]["message"]
            waiting = [r for r in _of(client, "batch") if not r["spec"].get("cluster")]
            assert len(waiting) == 1, "the replacement waits for room"
            deleted = [e["spec"]["message"] for e in _events(client, "batch", "SuccessfulDelete")]
            assert deleted and all("(preempted by a higher priority)" in m for m in deleted)
            refused = _events(client, waiting[0]["metadata"]["name"], "FailedScheduling")
            assert any("held for higher-priority replicas" in e["spec"]["message"] for e in refused)
        assert up.interrupt() == 0, up.output()
    finally:
        up.kill_all(
            pids | (up.descendants() if up.process and up.process.poll() is None else set())
        )
