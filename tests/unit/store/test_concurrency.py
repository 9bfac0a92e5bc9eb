"""Writers in several threads: no lost update, commits in resourceVersion order, snapshots."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from inferplane.store import ConflictError, Store
from tests.unit.store.helpers import obj

THREADS = 4


def _in_threads(count: int, work: Callable[[int], str]) -> list[str]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(work, range(count)))


def _race(store: Store, base: dict[str, Any], replicas: list[int]) -> list[str]:
    """Update `base` to each replica count at once, one thread each; say who won."""
    barrier = threading.Barrier(len(replicas))

    def attempt(i: int) -> str:
        barrier.wait()
        try:
            store.update({**base, "spec": {"replicas": replicas[i]}})
        except ConflictError:
            return "conflict"
        return "won"

    return _in_threads(len(replicas), attempt)


def test_racing_updates_from_one_version_let_exactly_one_win(store: Store) -> None:
    current = store.create(obj("Deployment", "chat", spec={"replicas": 0}))
    for round_ in range(5):
        outcomes = _race(store, current, [10 * round_ + i + 1 for i in range(THREADS)])
        assert sorted(outcomes) == ["conflict"] * (THREADS - 1) + ["won"]
        current = store.get("Deployment", "team-a", "chat")
        assert current["metadata"]["generation"] == round_ + 2


def test_concurrent_writers_commit_in_resource_version_order(store: Store) -> None:
    per_writer = 15
    finished = threading.Event()

    def write(writer: int) -> str:
        for i in range(per_writer):
            created = store.create(obj("Replica", f"w{writer}-{i}"))
            store.update({**created, "status": {"phase": "Ready"}})
            store.delete("Replica", "team-a", f"w{writer}-{i}")
        return "done"

    def watch() -> list[int]:
        """Read the log as a watcher would; a commit out of order shows up as a gap."""
        seen: list[int] = []
        while True:
            last_round = finished.is_set()
            for event in store.events_since(seen[-1] if seen else 0):
                assert event.resource_version == (seen[-1] if seen else 0) + 1, "gap in the log"
                seen.append(event.resource_version)
            if last_round:
                return seen

    with ThreadPoolExecutor(1) as watcher:
        seen = watcher.submit(watch)
        _in_threads(THREADS, write)
        finished.set()
        assert seen.result() == list(range(1, THREADS * per_writer * 3 + 1))


def test_a_list_and_its_version_come_from_one_snapshot(store: Store) -> None:
    """Only creates happen, one per version: a consistent list has `version` items."""
    count = 60
    finished = threading.Event()

    def write() -> None:
        for i in range(count):
            store.create(obj("Replica", f"r{i}"))
        finished.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while not finished.is_set():
            items, version = store.list("Replica")
            assert len(items) == version
    finally:
        writer.join()
    assert store.list("Replica")[1] == count
