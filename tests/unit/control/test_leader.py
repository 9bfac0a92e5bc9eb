"""Leader election over a real SQLite store, with the clock passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from inferplane import store as store_pkg
from inferplane.control.leader import LeaderElector, LeaseTerms

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def electors(tmp_path: Path) -> tuple[store_pkg.Store, LeaderElector, LeaderElector]:
    store = store_pkg.open_store(store_pkg.sqlite_url(tmp_path))
    terms = LeaseTerms(duration=15, renew_every=5)
    return (
        store,
        LeaderElector(store, identity="a", terms=terms),
        LeaderElector(store, identity="b", terms=terms),
    )


def test_one_holder_at_a_time_and_takeover_after_expiry(tmp_path: Path) -> None:
    store, a, b = electors(tmp_path)
    assert a.try_acquire(T0)
    assert not b.try_acquire(T0 + timedelta(seconds=1)), "a holds an unexpired lease"
    assert a.try_acquire(T0 + timedelta(seconds=10)), "the holder renews"
    assert not b.try_acquire(T0 + timedelta(seconds=24)), "renewed at 10 s: valid until 25 s"
    assert b.try_acquire(T0 + timedelta(seconds=26)), "a stopped renewing: b takes over"
    assert not a.try_acquire(T0 + timedelta(seconds=27)), "a finds it lost the lease"
    store.close()


def test_release_hands_over_at_once(tmp_path: Path) -> None:
    store, a, b = electors(tmp_path)
    assert a.try_acquire(T0)
    b.release()  # not the holder: changes nothing
    assert not b.try_acquire(T0 + timedelta(seconds=1))
    a.release()
    assert b.try_acquire(T0 + timedelta(seconds=1))
    store.close()


def test_racing_for_an_expired_lease_has_one_winner(tmp_path: Path) -> None:
    store, a, b = electors(tmp_path)
    assert a.try_acquire(T0)
    lease = store.get("Lease", "inferplane-system", "controllers")
    later = T0 + timedelta(minutes=1)
    assert b.try_acquire(later)
    # A third replica that read the lease before b wrote it loses on resourceVersion.
    with pytest.raises(store_pkg.ConflictError):
        store.update({**lease, "spec": {**lease["spec"], "holderIdentity": "c"}})
    store.close()
