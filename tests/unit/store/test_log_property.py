"""Property: replaying the change log from the start rebuilds exactly what the store holds.

Whatever sequence of creates, updates (with and without finalizers), deletes and owner
cascades a client makes, a watcher that saw every event from version 0 ends with the same
objects, at the same versions, as a fresh list, and saw versions strictly increasing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferplane import store as store_pkg
from tests.unit.store.helpers import obj, owned_by

NAMES = st.sampled_from(["a", "b", "c", "d"])
Op = tuple[str, str, str]
OPS = st.lists(
    st.tuples(
        st.sampled_from(["create", "touch", "hold", "release", "delete", "adopt"]),
        NAMES,
        NAMES,
    ),
    max_size=40,
)


def apply(store: store_pkg.Store, op: Op) -> None:
    """Carry out one op; refusals (missing, existing) are part of the sequence too."""
    verb, name, other = op
    try:
        if verb == "create":
            store.create(obj("Model", name, spec={"n": 0}))
        elif verb == "delete":
            store.delete("Model", "team-a", name)
        else:
            live = store.get("Model", "team-a", name)
            store.update(_changed(store, verb, live, other))
    except (store_pkg.NotFoundError, store_pkg.AlreadyExistsError):
        pass


def _changed(store: store_pkg.Store, verb: str, live: dict[str, Any], other: str) -> dict[str, Any]:
    meta = dict(live["metadata"])
    spec = dict(live.get("spec", {}))
    if verb == "touch":
        spec["n"] = int(spec.get("n", 0)) + 1
    elif verb == "hold":
        meta["finalizers"] = ["test/hold"]
    elif verb == "release":
        meta["finalizers"] = []
    elif verb == "adopt" and other != meta["name"]:
        meta.update(owned_by(store.get("Model", "team-a", other)))
    return {**live, "metadata": meta, "spec": spec}


def replay(store: store_pkg.Store) -> tuple[dict[str, int], list[int]]:
    state: dict[str, int] = {}
    versions: list[int] = []
    for event in store.events_since(0, limit=100_000):
        versions.append(event.resource_version)
        name = event.object["metadata"]["name"]
        if event.type == "DELETED":
            state.pop(name, None)
        else:
            state[name] = event.resource_version
    return state, versions


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_replaying_the_log_rebuilds_the_store(ops: list[Op]) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        store = store_pkg.open_store(store_pkg.sqlite_url(Path(data_dir)))
        try:
            for op in ops:
                apply(store, op)
            state, versions = replay(store)
            items, current = store.list("Model", "team-a")
        finally:
            store.close()
    listed = {i["metadata"]["name"]: int(i["metadata"]["resourceVersion"]) for i in items}
    assert state == listed
    assert versions == sorted(set(versions)), "strictly increasing, none repeated"
    assert not versions or versions[-1] == current
