"""What the autoscaling policy carries from one decision to the next, and its JSON form.

The controller stores `State.to_json()` with the deployment and hands `State.from_json(...)`
back; anything it cannot read becomes the initial State(), which only forgets a panic, the
scale-down delay and the forecast history: the next decisions rebuild them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class State:
    """The policy's memory; State() is the initial one."""

    panic_since: float | None = None
    """When the current panic began; None when not panicking."""
    panic_last_over: float | None = None
    """The last time the panic window was over the threshold: a panic lasts a stable window
    past it (Knative)."""
    max_panic_desired: int = 0
    """The most replicas asked for during this panic: a panic never scales down."""
    recommendations: tuple[tuple[float, int], ...] = ()
    """(time, replicas) recommended within the last scaleDownDelaySeconds."""
    history: tuple[tuple[float, float], ...] = ()
    """(bucket start, total metric) for the forecaster, oldest first."""
    last_scale_time: float | None = None
    """When a decision last changed the replicas."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["recommendations"] = [list(pair) for pair in self.recommendations]
        data["history"] = [list(pair) for pair in self.history]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> State:
        """The state `to_json` wrote; State() for missing or malformed data."""
        if not isinstance(data, Mapping):
            return cls()
        try:
            return cls(
                panic_since=_optional_number(data.get("panic_since")),
                panic_last_over=_optional_number(data.get("panic_last_over")),
                max_panic_desired=_count(data.get("max_panic_desired", 0)),
                recommendations=tuple(
                    (_number(t), _count(n)) for t, n in _pairs(data.get("recommendations"))
                ),
                history=tuple((_number(t), _number(v)) for t, v in _pairs(data.get("history"))),
                last_scale_time=_optional_number(data.get("last_scale_time")),
            )
        except (TypeError, ValueError):
            return cls()


def _number(value: Any) -> float:
    # bool is an int to Python; in stored state it is a corruption, not a number.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def _optional_number(value: Any) -> float | None:
    return None if value is None else _number(value)


def _count(value: Any) -> int:
    number = _number(value)
    if number < 0 or number != int(number):
        raise ValueError(f"not a count: {value!r}")
    return int(number)


def _pairs(value: Any) -> list[tuple[Any, Any]]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValueError("not a list")
    pairs = []
    for item in value:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise ValueError("not a pair")
        pairs.append((item[0], item[1]))
    return pairs
