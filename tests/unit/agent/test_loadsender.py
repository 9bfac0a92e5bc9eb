"""The agent's load reports: only loads measured since the last post are sent, in the
metrics channel's own schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inferplane.agent.loadsender import LoadSender, Offered
from inferplane.api import loadreports, replicas

T0 = datetime(2026, 12, 7, tzinfo=UTC)


def load(at: datetime, **numbers: float) -> replicas.ReplicaLoad:
    return replicas.ReplicaLoad(observedTime=at, **numbers)  # type: ignore[arg-type]


def test_a_load_is_sent_once_per_measurement() -> None:
    sender = LoadSender()
    assert sender.report() is None
    sender.offer([Offered("team", "r1", load(T0, running=2, ttftSeconds=0.5, tpotSeconds=0.02))])
    body = sender.report()
    assert body is not None
    report = loadreports.ReplicaLoadReport.model_validate(body)
    (entry,) = report.replicas
    assert (entry.name, entry.running, entry.ttftSeconds, entry.tpotSeconds) == ("r1", 2, 0.5, 0.02)
    sender.offer([Offered("team", "r1", load(T0, running=2))])
    assert sender.report() is None, "not measured again: not sent again"
    sender.offer([Offered("team", "r1", load(T0 + timedelta(seconds=5), running=1))])
    again = sender.report()
    assert again is not None and again["replicas"][0]["running"] == 1  # type: ignore[index]


def test_a_replica_never_measured_is_not_reported() -> None:
    sender = LoadSender()
    sender.offer([Offered("team", "r1", replicas.ReplicaLoad())])
    assert sender.report() is None
