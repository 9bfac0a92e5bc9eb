"""Joining, heartbeats, status reports and finalizers against the fake resource API; and one
agent loop driven with a fake runtime in place of processes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from inferplane import client as api_client
from inferplane.agent import agent, discovery, membership, reconcile, reporter
from inferplane.agent.runtime import base
from tests.unit import fake_resource_api as fake
from tests.unit.agent.samples import bound_spec

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def client_of(api: fake.FakeResourceApi) -> api_client.Client:
    return api_client.Client(fake.SERVER, fake.TOKEN, transport=api.transport)


def member(pools: list[discovery.PoolPlan] | None = None) -> membership.Membership:
    plans = pools if pools is not None else [discovery.PoolPlan("cpu", {"nodeCount": 1})]
    labels = {"region": "eu-west", "tier": "prod"}
    return membership.Membership("eu-1", labels, plans, clock=lambda: NOW)


def test_joining_creates_the_cluster_and_its_pools() -> None:
    api = fake.FakeResourceApi()
    h100 = discovery.PoolPlan("h100", {"nodeCount": 2, "pricePerHour": 98.0})
    member([discovery.PoolPlan("cpu", {"nodeCount": 1}), h100]).heartbeat(client_of(api))
    cluster = api.find("Cluster", "eu-1")
    assert cluster is not None
    assert cluster["metadata"]["labels"] == {"region": "eu-west", "tier": "prod"}
    assert cluster["spec"] == {"region": "eu-west", "runtime": "process"}
    assert "phase" not in cluster["status"], "the phase is the cluster controller's to write"
    assert cluster["status"]["lastHeartbeatTime"] == NOW.isoformat()
    assert cluster["status"]["agentVersion"]
    assert "runtimeVersion" not in cluster["status"], "a runtime that cannot tell says nothing"
    pool = api.find("Pool", "eu-1-h100")
    assert pool is not None
    assert pool["spec"] == {"nodeCount": 2, "pricePerHour": 98.0, "cluster": "eu-1"}
    assert pool["metadata"]["labels"] == {membership.CLUSTER_LABEL: "eu-1"}
    assert pool["status"] == {"readyNodes": 2}
    assert api.find("Pool", "eu-1-cpu") is not None


def test_the_heartbeat_reports_the_runtimes_version() -> None:
    api = fake.FakeResourceApi()
    told = membership.Membership("eu-1", {}, [], runtime_version="Slurm 23.11.4", clock=lambda: NOW)
    told.heartbeat(client_of(api))
    cluster = api.find("Cluster", "eu-1")
    assert cluster is not None and cluster["status"]["runtimeVersion"] == "Slurm 23.11.4"


def test_pools_discovered_anew_are_reported_and_a_vanished_one_has_no_ready_nodes() -> None:
    api = fake.FakeResourceApi()
    client = client_of(api)
    found = [
        discovery.PoolPlan("gpu", {"nodeCount": 2}),
        discovery.PoolPlan("cpu", {"nodeCount": 1}),
    ]
    plane = membership.Membership(
        "eu-1", {}, list(found), rediscover=lambda: found, refresh_seconds=0, clock=lambda: NOW
    )
    plane.heartbeat(client)
    found = [discovery.PoolPlan("gpu", {"nodeCount": 3})]  # a node joined, the cpu ones left
    plane.heartbeat(client)
    plane._maybe_refresh(client)
    gpu, cpu = api.find("Pool", "eu-1-gpu"), api.find("Pool", "eu-1-cpu")
    assert gpu is not None and gpu["spec"]["nodeCount"] == 3 and gpu["status"]["readyNodes"] == 3
    assert cpu is not None and cpu["status"]["readyNodes"] == 0, "kept, with no ready node"
    assert plane.pools == found


def test_a_discovery_that_fails_keeps_the_pools() -> None:
    api = fake.FakeResourceApi()

    def broken() -> list[discovery.PoolPlan]:
        raise OSError("sinfo: cannot reach slurmctld")

    plans = [discovery.PoolPlan("gpu", {"nodeCount": 2})]
    plane = membership.Membership("eu-1", {}, list(plans), rediscover=broken, refresh_seconds=0)
    plane.heartbeat(client_of(api))
    plane._maybe_refresh(client_of(api))
    assert plane.pools == plans


def test_joining_keeps_what_the_platform_team_set_and_leaves_the_phase_alone() -> None:
    api = fake.FakeResourceApi()
    api.add(
        {
            "kind": "Cluster",
            "metadata": {"name": "eu-1", "labels": {"owner": "platform"}},
            "spec": {"cordoned": True, "heartbeatGraceSeconds": 60},
            "status": {"phase": "NotReady"},
        }
    )
    api.add({"kind": "Pool", "metadata": {"name": "eu-1-cpu"}, "spec": {"pricePerHour": 3.5}})
    member().heartbeat(client_of(api))
    cluster = api.find("Cluster", "eu-1")
    assert cluster is not None
    assert cluster["metadata"]["labels"] == {"owner": "platform", "region": "eu-west",
                                             "tier": "prod"}  # fmt: skip
    assert cluster["spec"]["cordoned"] is True
    assert cluster["spec"]["heartbeatGraceSeconds"] == 60
    assert cluster["status"]["phase"] == "NotReady", "only the cluster controller sets it"
    assert cluster["status"]["lastHeartbeatTime"] == NOW.isoformat()
    pool = api.find("Pool", "eu-1-cpu")
    assert pool is not None and pool["spec"]["pricePerHour"] == 3.5  # not the agent's to set


def test_a_heartbeat_joins_again_when_the_cluster_was_deleted() -> None:
    api = fake.FakeResourceApi()
    joined = member()
    joined.heartbeat(client_of(api))
    del api.objects[("Cluster", "", "eu-1")]
    joined.heartbeat(client_of(api))
    assert api.find("Cluster", "eu-1") is not None


def bound(name: str = "chat-0", **meta: Any) -> dict[str, Any]:
    return {
        "kind": "Replica",
        "metadata": {"name": name, "namespace": "default", **meta},
        "spec": bound_spec(),
        "status": {"phase": "Scheduled"},
    }


def test_reports_send_changed_statuses_only() -> None:
    api = fake.FakeResourceApi()
    api.add(bound())
    reports = reporter.Reporter(clock=lambda: NOW)
    status = {"phase": "Starting", "url": "http://127.0.0.1:9000", "restarts": 0}
    reports.publish({"default/chat-0": reporter.Report("default", "chat-0", status)})
    client = client_of(api)
    reports.flush(client)
    stored = api.find("Replica", "chat-0")
    assert stored is not None
    assert stored["status"]["phase"] == "Starting"
    assert stored["status"]["lastProbeTime"] == NOW.isoformat()
    sent = len(api.requests)
    reports.flush(client)
    assert len(api.requests) == sent  # unchanged: nothing sent
    gone = {"default/gone": reporter.Report("default", "gone", status)}
    reports.publish(gone)
    reports.flush(client)  # a replica deleted meanwhile is no error


def test_a_status_someone_else_overwrote_is_sent_again() -> None:
    api = fake.FakeResourceApi()
    api.add(bound())
    ticks = [0.0]
    reports = reporter.Reporter(clock=lambda: NOW, ticks=lambda: ticks[0])
    ready = {"phase": "Ready", "url": "http://127.0.0.1:9000", "restarts": 0}
    wanted = {"default/chat-0": reporter.Report("default", "chat-0", ready)}
    client = client_of(api)
    reports.publish(wanted)
    reports.flush(client)
    overwritten = {"default/chat-0": {**ready, "phase": "Pending"}}
    ticks[0] = 5.0
    reports.publish(wanted, overwritten)
    reports.flush(client)
    sent = len(api.requests)
    assert sent == 1  # too soon to tell a stale view from a drift
    ticks[0] = 11.0
    reports.publish(wanted, overwritten)
    reports.flush(client)
    assert len(api.requests) == 2
    stored = api.find("Replica", "chat-0")
    assert stored is not None and stored["status"]["phase"] == "Ready"


def test_finalizer_removal_survives_a_concurrent_write() -> None:
    api = fake.FakeResourceApi()
    stale = api.add(bound(finalizers=[reconcile.AGENT_STOP, "inferplane.dev/release-devices"]))
    stale = {**stale, "metadata": dict(stale["metadata"])}
    api.add(bound(finalizers=[reconcile.AGENT_STOP, "inferplane.dev/release-devices"]))
    reporter.remove_finalizer(client_of(api), stale, reconcile.AGENT_STOP)  # 409, re-read, retry
    stored = api.find("Replica", "chat-0")
    assert stored is not None
    assert stored["metadata"]["finalizers"] == ["inferplane.dev/release-devices"]


class FakeRuntime:
    """A runtime that runs nothing: it records what it is asked, as the Runtime seam allows."""

    kind = "fake"

    def version(self) -> str | None:
        return "fake 1.0"

    def __init__(self) -> None:
        self.replicas: dict[str, base.Replica] = {}
        self.started: dict[str, base.Launch] = {}
        self.stopping: set[str] = set()

    def launch_for(self, replica: base.Replica) -> base.Launch:
        self.replicas[replica.name] = replica
        return base.Launch(name=replica.name, command=("engine", "--port", base.PORT))

    def adopt(self) -> list[str]:
        return []

    def start(self, launch: base.Launch) -> None:
        self.started[launch.name] = launch

    def stop(self, name: str, *, grace: float) -> None:
        self.stopping.add(name)

    def status(self, name: str) -> base.EngineStatus | None:
        if name not in self.started:
            return None
        phase: base.Phase = "Draining" if name in self.stopping else "Starting"
        return base.EngineStatus(name, phase, "http://127.0.0.1:9000", 1, 0, NOW, None, "",
                                 self.started[name].fingerprint())  # fmt: skip

    def names(self) -> list[str]:
        return list(self.started)

    def sync(self) -> None:
        for name in self.stopping:
            self.started.pop(name, None)
        self.stopping.clear()

    def read_log(self, name: str, *, offset: int, limit: int) -> base.LogChunk:
        raise base.UnknownEngine(name)

    def close(self, *, grace: float, stop_engines: bool) -> None:
        pass


UID = "0b6f2a4e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
ENGINE_TOKEN = f"engine-{UID}"


def test_one_agent_loop_starts_reports_drains_and_releases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = FakeRuntime()
    h100 = discovery.PoolPlan(
        "h100", {"nodeCount": 2}, {"gpu": ["GPU-a", "GPU-b", "GPU-c", "GPU-d"]}
    )
    api = fake.FakeResourceApi()
    api.revealed[("inferplane-system", ENGINE_TOKEN)] = {"token": "tok-loop"}
    settings = agent.AgentSettings(control=fake.SERVER, token=fake.TOKEN, cluster="eu-1",
                                   data_dir=tmp_path)  # fmt: skip
    plane = agent.Agent(settings, runtime, [h100], make_client=lambda: client_of(api))
    obj = bound(finalizers=[reconcile.AGENT_STOP], generation=1, uid=UID)
    plane.cache.apply(api_client.WatchEvent("RESYNC", {"items": [obj]}))
    plane.step()
    assert runtime.started == {}  # no engine token issued yet: the engine waits for one
    obj["status"]["engineTokenSecret"] = ENGINE_TOKEN
    plane.cache.apply(api_client.WatchEvent("MODIFIED", obj))
    plane.step()
    # The runtime is handed the replica and its pool's devices; what it runs is its to say.
    handed = runtime.replicas["default/chat-0"]
    assert handed.spec.nodes == [1] and handed.spec.pool == "eu-1-h100"
    assert handed.device_ids == {"gpu": ["GPU-a", "GPU-b", "GPU-c", "GPU-d"]}
    launch = runtime.started["default/chat-0"]
    assert launch.command == ("engine", "--port", "{port}")
    assert launch.token == "tok-loop"
    assert launch.environment()["INFERPLANE_ENGINE_API_KEY"] == "tok-loop"
    assert "tok-loop" not in repr(launch.to_dict())

    api.add(obj)
    client = client_of(api)
    plane.reporter.flush(client)
    stored = api.find("Replica", "chat-0")
    assert stored is not None and stored["status"]["phase"] == "Starting"

    deleting = {**obj, "metadata": {**obj["metadata"], "deletionTimestamp": NOW.isoformat()}}
    plane.cache.apply(api_client.WatchEvent("MODIFIED", deleting))
    clock = [1000.0]
    monkeypatch.setattr(agent.time, "monotonic", lambda: clock[0])
    plane.step()  # deregistering: the engine serves on while gateways learn it is gone
    assert runtime.stopping == set()
    clock[0] += settings.deregistration_seconds - 0.1
    plane.step()
    assert runtime.stopping == set()
    clock[0] += 0.2
    plane.step()  # its delay is over: stop asked, Draining
    assert runtime.stopping == {"default/chat-0"}
    plane.step()  # the engine is gone: release
    assert plane.reporter.releasing() == {"default/chat-0"}
    plane.reporter.flush(client)
    stored = api.find("Replica", "chat-0")
    assert stored is not None and stored["metadata"]["finalizers"] == []


def test_the_agent_joins_with_the_runtime_it_runs(tmp_path: Path) -> None:
    api = fake.FakeResourceApi()
    settings = agent.AgentSettings(control=fake.SERVER, token=fake.TOKEN, cluster="eu-1",
                                   data_dir=tmp_path)  # fmt: skip
    plane = agent.Agent(settings, FakeRuntime(), [], make_client=lambda: client_of(api))
    plane.membership.join(client_of(api))
    cluster = api.find("Cluster", "eu-1")
    assert cluster is not None and cluster["spec"]["runtime"] == "fake"


def test_joining_leaves_the_runtime_of_an_existing_cluster_to_the_platform_team() -> None:
    api = fake.FakeResourceApi()
    api.add({"kind": "Cluster", "metadata": {"name": "eu-1"}, "spec": {"runtime": "kubernetes"}})
    member().heartbeat(client_of(api))
    cluster = api.find("Cluster", "eu-1")
    assert cluster is not None and cluster["spec"]["runtime"] == "kubernetes"
    assert cluster["spec"]["region"] == "eu-west", "what the agent owns is still written"
