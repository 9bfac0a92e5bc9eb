"""What the server tells of the model it serves, from the facts the engine hands it at load
(`EngineInfo`): the context length on /v1/models and /tokenize, the KV cache's shape on
/metrics, token ids checked against the vocabulary, readiness on /health and V2. The app runs
in-process (ASGI)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest

from inferplane.engine.async_engine import AsyncEngine
from inferplane.engine.llm import EngineConfig, LLMEngine
from inferplane.engine.server.app import create_app
from tests.support import tiny_model

pytest.importorskip("transformers")
T = TypeVar("T")
MODEL = "tiny"
CONTEXT = 128
VOCABULARY = 300
"""tiny_model's vocabulary size."""


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> LLMEngine:
    folder = tiny_model.make_tiny_model(tmp_path_factory.mktemp("tiny"))
    config = EngineConfig(
        model=folder, device="cpu", kv_cache_memory=1 << 20, max_model_len=CONTEXT
    )
    return LLMEngine(config)


def run(llm: LLMEngine, scenario: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = AsyncEngine(llm)
        engine.start()
        transport = httpx.ASGITransport(app=create_app(engine, MODEL))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://e") as client:
                return await scenario(client)
        finally:
            await engine.shutdown(0)

    return asyncio.run(main())


def test_the_engine_hands_over_its_facts_once(llm: LLMEngine) -> None:
    info = AsyncEngine(llm).info
    assert (info.max_model_len, info.vocab_size) == (CONTEXT, VOCABULARY)
    assert info.tokenizer is llm.tokenizer
    assert info.num_blocks == llm.blocks.num_blocks


def test_models_and_tokenize_say_the_context_length(llm: LLMEngine) -> None:
    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        models = await client.get("/v1/models")
        tokens = await client.post("/tokenize", json={"prompt": "hello world"})
        return models, tokens

    models, tokens = run(llm, scenario)
    assert models.json()["data"][0]["max_model_len"] == CONTEXT
    body = tokens.json()
    assert body["max_model_len"] == CONTEXT
    assert body["count"] == len(body["tokens"]) > 0


def test_metrics_describe_the_kv_cache(llm: LLMEngine) -> None:
    async def scenario(client: httpx.AsyncClient) -> str:
        return (await client.get("/metrics")).text

    text = run(llm, scenario)
    (line,) = [x for x in text.splitlines() if x.startswith("vllm:cache_config_info{")]
    assert f'num_gpu_blocks="{llm.blocks.num_blocks}"' in line
    assert 'block_size="16"' in line
    assert 'enable_prefix_caching="True"' in line


def test_a_token_id_outside_the_vocabulary_is_refused(llm: LLMEngine) -> None:
    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        body = {"model": MODEL, "prompt": [1, VOCABULARY], "max_tokens": 1}
        return await client.post("/v1/completions", json=body)

    response = run(llm, scenario)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "prompt"


def test_health_and_v2_ready_while_accepting(llm: LLMEngine) -> None:
    async def scenario(client: httpx.AsyncClient) -> tuple[int, int]:
        health = await client.get("/health")
        ready = await client.get(f"/v2/models/{MODEL}/ready")
        return health.status_code, ready.status_code

    assert run(llm, scenario) == (200, 200)
