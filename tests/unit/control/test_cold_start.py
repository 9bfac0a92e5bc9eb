"""The autoscaler's cold-start measurement (status.autoscaling.coldStartSeconds): creation to
Ready, dated finer than the whole-second creationTimestamp when the controller saw the
replica being made."""

from __future__ import annotations

from inferplane.control.controllers.autoscaling import _Fleet, _Memory, measure_cold_start

CREATED = "2026-12-08T01:00:00Z"
BORN = 1796691600.0  # CREATED as epoch seconds


def _fleet(*, ready: bool) -> _Fleet:
    ready_map = {"r1": "a"} if ready else {}
    return _Fleet(
        ready=ready_map, bound={"r1": "a"}, starting=0 if ready else 1, created={"r1": CREATED}
    )


def _measure(memory: _Memory, fleet: _Fleet, now: float) -> None:
    measure_cold_start(memory, fleet, now)


def test_a_sub_second_start_late_in_its_creation_second_measures_sub_second() -> None:
    """Made at :00.9, Ready at :01.2: 0.3 s, not the 1.2 s the timestamp alone would say."""
    memory = _Memory()
    _measure(memory, _fleet(ready=False), BORN + 0.9)
    _measure(memory, _fleet(ready=True), BORN + 1.2)
    assert memory.cold_start is not None
    assert abs(memory.cold_start - 0.3) < 1e-6


def test_a_replica_first_seen_ready_is_dated_by_its_timestamp() -> None:
    memory = _Memory(watching_since=BORN - 1)
    _measure(memory, _fleet(ready=True), BORN + 1.2)
    assert memory.cold_start is not None
    assert abs(memory.cold_start - 1.2) < 1e-6


def test_a_replica_seen_long_after_its_creation_is_dated_by_its_timestamp() -> None:
    """A sighting seconds after creation (a busy controller) is no date of creation."""
    memory = _Memory(watching_since=BORN - 10)
    _measure(memory, _fleet(ready=False), BORN + 3.0)
    _measure(memory, _fleet(ready=True), BORN + 4.0)
    assert memory.cold_start is not None
    assert abs(memory.cold_start - 4.0) < 1e-6


def test_a_replica_made_before_the_controller_watched_is_not_measured() -> None:
    memory = _Memory(watching_since=BORN + 60)
    _measure(memory, _fleet(ready=True), BORN + 61)
    assert memory.cold_start is None


def test_gone_replicas_are_forgotten() -> None:
    memory = _Memory()
    _measure(memory, _fleet(ready=False), BORN + 0.5)
    assert "r1" in memory.first_seen
    _measure(memory, _Fleet(ready={}, bound={}, starting=0, created={}), BORN + 2)
    assert memory.first_seen == {} and memory.ready_seen == set()
