"""State's JSON form: a round trip, and tolerance of anything else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from inferplane.policy.autoscaling import State


def test_round_trip_through_json() -> None:
    state = State(
        panic_since=1.0,
        panic_last_over=2.0,
        max_panic_desired=7,
        recommendations=((1.0, 3), (2.0, 2)),
        history=((0.0, 1.5),),
        last_scale_time=3.0,
    )
    assert State.from_json(json.loads(json.dumps(state.to_json()))) == state


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"panic_since": "soon"},
        {"max_panic_desired": -1},
        {"max_panic_desired": 1.5},
        {"max_panic_desired": True},
        {"recommendations": [[1.0]]},
        {"history": "x"},
        {"history": [[0.0, float("nan")]]},
    ],
)
def test_bad_data_is_the_initial_state(data: Any) -> None:
    assert State.from_json(data) == State()


def test_missing_fields_take_their_defaults() -> None:
    assert State.from_json({"max_panic_desired": 3}) == State(max_panic_desired=3)
