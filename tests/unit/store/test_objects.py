"""The pure metadata bookkeeping behind every write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferplane.store import objects

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


def _stored(spec: Any) -> dict[str, Any]:
    meta = {"name": "n", "uid": "u", "generation": 3, "creationTimestamp": "2024-01-01T00:00:00Z"}
    return {"kind": "Deployment", "metadata": {**meta, "resourceVersion": "9"}, "spec": spec}


def test_timestamps_are_utc_seconds_with_z() -> None:
    moment = datetime(2024, 5, 1, 14, 30, 15, 999, tzinfo=timezone(timedelta(hours=2)))
    assert objects.rfc3339(moment) == "2024-05-01T12:30:15Z"


def test_created_sets_identity_and_drops_what_callers_cannot_set() -> None:
    now = datetime(2024, 1, 2, tzinfo=UTC)
    given_obj: dict[str, Any] = {
        "kind": "X",
        "metadata": {"name": "n", "resourceVersion": "5", "uid": "mine"},
    }
    new = objects.created(given_obj, uid="u-1", now=now)
    assert new["metadata"] == {
        "name": "n", "uid": "u-1", "generation": 1, "creationTimestamp": "2024-01-02T00:00:00Z"
    }  # fmt: skip
    assert given_obj["metadata"]["uid"] == "mine"  # the argument is left alone


@given(json_values)
def test_replacing_with_the_same_object_changes_nothing(spec: Any) -> None:
    old = _stored(spec)
    assert objects.same_content(objects.replaced(old, old=old), old)


@given(json_values, json_values)
def test_generation_bumps_exactly_when_spec_json_differs(old_spec: Any, new_spec: Any) -> None:
    new = objects.replaced({"kind": "Deployment", "metadata": {"name": "n"}, "spec": new_spec},
                           old=_stored(old_spec))  # fmt: skip
    differs = objects.dumps(old_spec) != objects.dumps(new_spec)
    assert new["metadata"]["generation"] == 3 + differs
    assert new["metadata"]["uid"] == "u"


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"metadata": {"name": "n"}}, "kind"),
        ({"kind": "X"}, "metadata.name"),
        ({"kind": "X", "metadata": {"name": ""}}, "metadata.name"),
        ({"kind": "X", "metadata": {"name": "n", "namespace": 3}}, "metadata.namespace"),
    ],
)
def test_key_of_names_the_missing_field(value: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        objects.key_of(value)


def test_values_json_cannot_hold_are_refused() -> None:
    with pytest.raises(ValueError, match="JSON"):
        objects.dumps({"spec": {"replicas": 2**64}})


def test_a_non_integer_resource_version_is_refused() -> None:
    with pytest.raises(ValueError, match="resourceVersion"):
        objects.resource_version({"metadata": {"resourceVersion": "abc"}})
