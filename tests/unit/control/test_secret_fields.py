"""What a client's Secret or Endpoint body may not carry is refused as a 422, whatever shape
its metadata has (`"metadata": 1.0` was a 500, found by fuzzing)."""

from __future__ import annotations

from typing import Any

import pytest

from inferplane.control import errors, secrets


@pytest.mark.parametrize("metadata", [1.0, "x", [], None, {"name": "db"}])
def test_a_secret_with_ciphertext_is_refused_naming_the_field(metadata: Any) -> None:
    body = {"metadata": metadata, "spec": {"encryptedData": {"k": []}}}
    with pytest.raises(errors.ApiProblem) as refused:
        secrets.refuse_client_fields(body)
    assert refused.value.code == 422
    assert [c.field for c in refused.value.causes] == ["spec.encryptedData"]
    assert refused.value.name == ("db" if isinstance(metadata, dict) else "")


@pytest.mark.parametrize("metadata", [1.0, [], {"name": "ext"}])
def test_an_endpoint_naming_an_engine_token_is_refused_naming_the_field(metadata: Any) -> None:
    body = {"metadata": metadata, "spec": {"engineTokenSecret": "engine-1"}}
    with pytest.raises(errors.ApiProblem) as refused:
        secrets.refuse_endpoint_fields(body)
    assert refused.value.code == 422
    assert [c.field for c in refused.value.causes] == ["spec.engineTokenSecret"]
