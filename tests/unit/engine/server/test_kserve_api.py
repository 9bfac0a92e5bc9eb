"""The pure parts of the V2 API: reading tensors and parameters, with errors naming them."""

from __future__ import annotations

import json

import pytest

from inferplane.engine.server import errors, kserve_api
from inferplane.engine.server.embeddings_api import encode


def _tensor(name: str, data: list[object], datatype: str = "BYTES") -> kserve_api.Tensor:
    return kserve_api.Tensor(name=name, datatype=datatype, shape=[len(data)], data=data)


def test_text_input_is_flattened() -> None:
    tensor = _tensor("text_input", [["a"], ["b"]])
    assert kserve_api.text_input([tensor]) == ["a", "b"]


@pytest.mark.parametrize(
    "inputs",
    [
        [],
        [_tensor("other", ["a"])],
        [_tensor("text_input", [1.0], "FP32")],
        [_tensor("text_input", [""])],
        [_tensor("text_input", [3])],
    ],
)
def test_bad_text_input_names_it(inputs: list[kserve_api.Tensor]) -> None:
    with pytest.raises(errors.APIError, match="text_input") as caught:
        kserve_api.text_input(inputs)
    assert caught.value.status == 400


def test_scalar_inputs_and_packed_sampling_parameters() -> None:
    packed = _tensor("sampling_parameters", [json.dumps({"top_k": 5})])
    inputs = [_tensor("text_input", ["a"]), _tensor("max_tokens", [[7]], "INT32"), packed]
    assert kserve_api.scalar_inputs(inputs) == {"max_tokens": 7, "top_k": 5}
    with pytest.raises(errors.APIError, match="sampling_parameters"):
        kserve_api.scalar_inputs([_tensor("sampling_parameters", ["{not json"])])


def test_sampling_params_from_parameters() -> None:
    params = kserve_api.sampling_params({"max_tokens": 4, "temperature": 0, "stream": True})
    assert params.max_tokens == 4 and params.greedy
    assert kserve_api.sampling_params({}).max_tokens == 16


@pytest.mark.parametrize(
    ("parameters", "named"),
    [({"temperature": -1}, "temperature"), ({"top_p": "x"}, "top_p"), ({"n": 3}, "n")],
)
def test_bad_parameters_name_the_field(parameters: dict[str, object], named: str) -> None:
    with pytest.raises(errors.APIError) as caught:
        kserve_api.sampling_params(parameters)
    assert caught.value.param == named and f"parameters.{named}" in caught.value.message


def test_base64_is_little_endian_float32() -> None:
    assert encode([1.0], "base64") == "AACAPw=="
    assert encode([1.0, 2.0], "float") == [1.0, 2.0]
