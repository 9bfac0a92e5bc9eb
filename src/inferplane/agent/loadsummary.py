"""Which load a replica's status keeps: the stored one, until it is stale or wrong enough.

Every scrape's load goes to the autoscaler through the metrics channel (loadsender.py), not
the store. `status.load` is a summary for people and for the deployment controller (which
replica is least loaded): rewriting it on every scrape would make each Ready replica a store
write every few seconds, 10,000 replicas 10,000 writes. So the stored load is kept while it
is younger than SUMMARY_SECONDS and still says roughly what the engine does; a material
change (idle to busy or back, the queue or the batch moving by a quarter, the KV cache by a
tenth) is written at once.
"""

from __future__ import annotations

from typing import Any

from inferplane.api import replicas

SUMMARY_SECONDS = 30.0
"""Longest a stored load is kept when nothing material changed."""
MIN_STEP = 2
"""Smallest change in running + waiting requests that is material."""
RELATIVE_STEP = 0.25
"""Change in running + waiting, relative to the stored value, that is material."""
KV_STEP = 0.1
"""Change in KV-cache usage that is material."""


def persisted(
    stored: dict[str, Any] | None, fresh: replicas.ReplicaLoad | None
) -> dict[str, Any] | None:
    """The load to report: `stored` unchanged (so no write) or `fresh` (as JSON)."""
    if fresh is None:
        return None
    if stored is None or not _keeps(stored, fresh):
        return fresh.model_dump(mode="json")
    return stored


def _keeps(stored: dict[str, Any], fresh: replicas.ReplicaLoad) -> bool:
    try:
        old = replicas.ReplicaLoad.model_validate(stored)
    except ValueError:
        return False
    if old.observedTime is None or fresh.observedTime is None:
        return False
    age = (fresh.observedTime - old.observedTime).total_seconds()
    return 0 <= age < SUMMARY_SECONDS and not material(old, fresh)


def material(old: replicas.ReplicaLoad, new: replicas.ReplicaLoad) -> bool:
    """Whether `new` says something `old` does not, for a reader of the status."""
    before, after = old.running + old.waiting, new.running + new.waiting
    if (before == 0) != (after == 0):
        return True
    if abs(after - before) >= max(MIN_STEP, RELATIVE_STEP * before):
        return True
    return abs(new.kvCacheUsage - old.kvCacheUsage) >= KV_STEP
