"""status.load is a summary: kept while recent and roughly right, rewritten on a material
change, so a steady replica is not a store write per scrape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from inferplane.agent import loadsummary
from inferplane.api import replicas

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def load(
    seconds: float, running: int = 4, waiting: int = 0, kv: float = 0.2
) -> replicas.ReplicaLoad:
    return replicas.ReplicaLoad(
        running=running,
        waiting=waiting,
        kvCacheUsage=kv,
        observedTime=T0 + timedelta(seconds=seconds),
    )


def stored(seconds: float, **numbers: Any) -> dict[str, Any]:
    return load(seconds, **numbers).model_dump(mode="json")


def test_a_steady_load_is_kept_until_the_summary_is_due() -> None:
    first = stored(0)
    assert loadsummary.persisted(first, load(5, running=5)) is first  # 4 → 5: not material
    assert loadsummary.persisted(first, load(29.9)) is first
    due = loadsummary.persisted(first, load(30))
    assert (
        due is not None and due["observedTime"] == load(30).model_dump(mode="json")["observedTime"]
    )


def test_a_material_change_is_written_at_once() -> None:
    first = stored(0, running=8)
    for changed in (
        load(1, running=0),  # busy to idle
        load(1, running=10),  # a quarter more
        load(1, running=8, waiting=2),
        load(1, running=8, kv=0.35),
    ):
        assert loadsummary.persisted(first, changed) == changed.model_dump(mode="json")
    idle = stored(0, running=0)
    assert loadsummary.persisted(idle, load(1, running=1)) != idle  # idle to busy
    small = stored(0, running=1)
    assert loadsummary.persisted(small, load(1, running=2)) is small  # under MIN_STEP


def test_nothing_stored_or_unreadable_takes_the_fresh_load() -> None:
    fresh = load(3)
    assert loadsummary.persisted(None, fresh) == fresh.model_dump(mode="json")
    assert loadsummary.persisted({"running": -1}, fresh) == fresh.model_dump(mode="json")
    assert loadsummary.persisted({}, fresh) == fresh.model_dump(mode="json")  # no time stored
    assert loadsummary.persisted(stored(0), None) is None
    assert loadsummary.persisted(stored(10), load(3)) == fresh.model_dump(
        mode="json"
    )  # clock went back
