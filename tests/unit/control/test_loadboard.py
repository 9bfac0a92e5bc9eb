"""The metrics channel's memory: arrival-stamped, bounded, counted only from the right agent."""

from __future__ import annotations

from inferplane.control import loadboard
from inferplane.control.loadboard import LoadBoard
from inferplane.policy.autoscaling import GatewaySample, Sample


def ReplicaReport(namespace: str, replica: str, **load: float) -> tuple[str, Sample]:
    return namespace, Sample(time=0.0, replica=replica, **load)


def test_a_request_in_flight_is_activity_and_instances_are_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    board = LoadBoard(clock)
    key = ("team", "chat")
    board.add_gateway("gw", "gw/a", [DeploymentReport("team", "chat", in_flight=1)])
    assert board.last_request(key) == 1000.0, "a long stream keeps the deployment busy"
    monkeypatch.setattr(loadboard, "PER_DEPLOYMENT", 2)
    for i in range(5):
        clock.now += 1
        board.add_gateway("gw", f"gw/{i}", [DeploymentReport("team", "chat")])
    gateways = {s.gateway for s in board.gateway_samples(key, since=0)}
    assert gateways == {"gw/3", "gw/4"}, "a gateway key cannot grow memory with instances"


def DeploymentReport(
    namespace: str, deployment: str, **traffic: int
) -> tuple[tuple[str, str], GatewaySample]:
    return (namespace, deployment), GatewaySample(time=0.0, gateway="", **traffic)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_samples_are_stamped_on_arrival_and_counted_only_from_the_bound_cluster() -> None:
    clock = Clock()
    board = LoadBoard(clock)
    board.add_replicas("plane-a", [ReplicaReport("team", "r1", running=3, waiting=1)])
    clock.now += 5
    board.add_replicas("plane-b", [ReplicaReport("team", "r1", running=99)])  # not its replica
    samples = board.replica_samples("team", {"r1": "plane-a"}, since=0)
    assert [(s.time, s.running, s.waiting) for s in samples] == [(1000.0, 3, 1)]
    assert board.replica_samples("team", {"r1": "plane-a"}, since=1001) == []
    assert board.replica_samples("other", {"r1": "plane-a"}, since=0) == []


def test_gateway_samples_mark_the_last_request_and_age_out() -> None:
    clock = Clock()
    board = LoadBoard(clock)
    key = ("team", "chat")
    board.add_gateway("gw", "gw/a", [DeploymentReport("team", "chat")])
    assert board.last_request(key) is None, "an all-zero report is not a request"
    clock.now += 1
    board.add_gateway("gw", "gw/a", [DeploymentReport("team", "chat", held=2)])
    assert board.last_request(key) == 1001.0
    assert [s.held for s in board.gateway_samples(key, since=1001)] == [2]
    board.saw_request(key, 500.0)
    assert board.last_request(key) == 1001.0, "an older sighting never moves it back"
    clock.now += loadboard.RETENTION_SECONDS + 1
    board.prune()
    assert board.gateway_samples(key, since=0) == []
    assert board.last_request(key) == 1001.0, "kept: an idle timeout may outlast the samples"


def test_memory_is_bounded_per_key_and_per_reporter(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(loadboard, "PER_REPORTER", 3)
    board = LoadBoard(Clock())
    for _ in range(loadboard.PER_KEY + 10):
        board.add_replicas("plane-a", [ReplicaReport("team", "r0")])
    assert len(board.replica_samples("team", {"r0": "plane-a"}, since=0)) == loadboard.PER_KEY
    board.add_replicas("plane-a", [ReplicaReport("team", f"r{i}") for i in range(1, 6)])
    kept = {f"r{i}": "plane-a" for i in range(6)}
    names = {s.replica for s in board.replica_samples("team", kept, since=0)}
    assert names == {"r3", "r4", "r5"}, "a reporter's oldest keys make room for its new ones"
    board.add_replicas("plane-b", [ReplicaReport("team", "b1")])
    assert board.replica_samples("team", {"b1": "plane-b"}, since=0), "others are not crowded out"


def test_samples_since_a_time_are_the_newer_ones_in_order() -> None:
    clock = Clock()
    board = LoadBoard(clock)
    for i in range(6):
        board.add_replicas("plane-a", [ReplicaReport("team", "r1", running=i)])
        board.add_replicas("plane-b", [ReplicaReport("team", "r1", running=50 + i)])
        clock.now += 1
    samples = board.replica_samples("team", {"r1": "plane-a"}, since=1003)
    assert [(s.time, s.running) for s in samples] == [(1003.0, 3), (1004.0, 4), (1005.0, 5)]
