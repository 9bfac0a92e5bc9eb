"""SamplingParams: OpenAI/vLLM defaults, and every bad value names its parameter."""

from __future__ import annotations

import math
from typing import Any

import pytest

from inferplane.engine import sampling_params
from inferplane.engine.sampling_params import SamplingParamError, SamplingParams

BAD_VALUES: list[tuple[str, Any]] = [
    ("n", 0),
    ("n", -1),
    ("n", 1.5),
    ("n", True),
    ("max_tokens", 0),
    ("max_tokens", -5),
    ("temperature", -0.1),
    ("temperature", math.nan),
    ("temperature", math.inf),
    ("temperature", "1"),
    ("top_p", 0.0),
    ("top_p", 1.01),
    ("top_p", -0.5),
    ("top_k", -2),
    ("top_k", 2.0),
    ("min_p", -0.01),
    ("min_p", 1.5),
    ("seed", 1.0),
    ("seed", "42"),
    ("stop", [""]),
    ("stop", ["ok", 3]),
    ("stop_token_ids", [-1]),
    ("stop_token_ids", ["2"]),
    ("ignore_eos", "false"),
    ("presence_penalty", 2.5),
    ("presence_penalty", -2.01),
    ("frequency_penalty", 3),
    ("frequency_penalty", -3),
    ("repetition_penalty", 0.0),
    ("repetition_penalty", -1.0),
    ("logprobs", 1),
    ("top_logprobs", -1),
    ("top_logprobs", sampling_params.MAX_TOP_LOGPROBS + 1),
    ("include_stop_str_in_output", None),
]


@pytest.mark.parametrize(("param", "value"), BAD_VALUES)
def test_a_bad_value_names_its_parameter(param: str, value: Any) -> None:
    extra = {"logprobs": True} if param == "top_logprobs" else {}
    with pytest.raises(SamplingParamError) as caught:
        SamplingParams(**{param: value, **extra})
    assert caught.value.param == param
    assert str(caught.value).startswith(f"{param}: ")


def test_top_logprobs_needs_logprobs() -> None:
    with pytest.raises(SamplingParamError) as caught:
        SamplingParams(top_logprobs=3)
    assert caught.value.param == "top_logprobs"


def test_the_error_is_a_value_error_with_a_message() -> None:
    with pytest.raises(ValueError, match=r"top_p: must be in \(0.0, 1.0\]"):
        SamplingParams(top_p=0.0)


def test_defaults_are_openai_s() -> None:
    params = SamplingParams()
    assert (params.n, params.max_tokens, params.temperature, params.top_p) == (1, None, 1.0, 1.0)
    assert (params.top_k, params.min_p, params.seed, params.stop) == (-1, 0.0, None, ())
    assert not params.greedy
    assert not params.top_k_enabled
    assert not params.has_penalties


@pytest.mark.parametrize(
    "values",
    [
        {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "min_p": 1.0},
        {"top_p": 1e-9, "top_k": 1, "min_p": 0.0, "seed": -7},
        {"presence_penalty": -2.0, "frequency_penalty": 2, "repetition_penalty": 1e-3},
        {"logprobs": True, "top_logprobs": sampling_params.MAX_TOP_LOGPROBS, "max_tokens": 1},
        {"stop": ["a", "bc"], "stop_token_ids": [0, 5], "ignore_eos": True, "n": 4},
    ],
)
def test_boundary_values_are_accepted(values: dict[str, Any]) -> None:
    params = SamplingParams(**values)
    for name, value in values.items():
        kept = getattr(params, name)
        assert (tuple(kept) if isinstance(value, list) else kept) == (
            tuple(value) if isinstance(value, list) else value
        ), name


def test_a_bare_stop_string_is_one_stop_and_params_are_hashable() -> None:
    params = SamplingParams(stop="\n\n", stop_token_ids=[7])
    assert params.stop == ("\n\n",)
    assert params.stop_token_ids == (7,)
    assert hash(params) == hash(SamplingParams(stop=["\n\n"], stop_token_ids=(7,)))


def test_greedy_below_the_threshold_and_penalty_flags() -> None:
    assert SamplingParams(temperature=sampling_params.GREEDY_TEMPERATURE / 2).greedy
    assert not SamplingParams(temperature=sampling_params.GREEDY_TEMPERATURE).greedy
    assert SamplingParams(repetition_penalty=1.1).has_penalties
    assert SamplingParams(top_k=3).top_k_enabled


def test_params_are_frozen() -> None:
    params = SamplingParams()
    with pytest.raises(AttributeError):
        params.n = 2  # type: ignore[misc]
