"""A real `inferplane engine` process on loopback, driven with the official openai client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support import tiny_model
from tests.support.engine_process import EngineProcess, running_engine

pytestmark = pytest.mark.integration
MODEL = "tiny"
CONTEXT = 2048


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    root = tmp_path_factory.mktemp("engine")
    folder = tiny_model.make_tiny_model(root / MODEL, max_position_embeddings=CONTEXT)
    with running_engine(str(folder), root / "engine.log", "--kv-cache-memory", "4MiB") as server:
        yield server


GREEDY = {"temperature": 0.0, "max_tokens": 12, "ignore_eos": True}


def test_completion_streamed_equals_unstreamed(engine: EngineProcess) -> None:
    client = engine.client()
    whole = client.completions.create(
        model=MODEL, prompt="hello world", temperature=0, max_tokens=12, extra_body=_extra()
    )
    assert whole.object == "text_completion"
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage is not None and whole.usage.completion_tokens == 12
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + 12
    chunks = list(
        client.completions.create(
            model=MODEL,
            prompt="hello world",
            temperature=0,
            max_tokens=12,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=_extra(),
        )
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage


def _extra() -> dict[str, object]:
    return {"ignore_eos": True}


def test_raw_stream_ends_with_done(engine: EngineProcess) -> None:
    body = {"model": MODEL, "prompt": [5, 6, 7], "stream": True, **GREEDY}
    lines = httpx.post(f"{engine.url}/v1/completions", json=body).text.split("\n\n")
    assert lines[-2:] == ["data: [DONE]", ""]
    assert all(line.startswith("data: {") for line in lines[:-2])
    assert json.loads(lines[-3].removeprefix("data: "))["choices"][0]["finish_reason"] == "length"


def test_chat_streamed_and_not(engine: EngineProcess) -> None:
    client = engine.client()
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "hello"}
    ]
    whole = client.chat.completions.create(
        model=MODEL, messages=messages, temperature=0, max_completion_tokens=8, extra_body=_extra()
    )
    assert whole.object == "chat.completion"
    assert whole.choices[0].message.role == "assistant"
    assert whole.usage is not None and whole.usage.completion_tokens == 8
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=messages,
            temperature=0,
            max_tokens=8,
            stream=True,
            extra_body=_extra(),
        )
    )
    assert chunks[0].object == "chat.completion.chunk"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "length"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == whole.choices[0].message.content


def test_n_and_logprobs(engine: EngineProcess) -> None:
    client = engine.client()
    result = client.completions.create(
        model=MODEL, prompt="hello", n=2, seed=3, max_tokens=5, logprobs=2, extra_body=_extra()
    )
    assert sorted(c.index for c in result.choices) == [0, 1]
    logprobs = result.choices[0].logprobs
    assert logprobs is not None and logprobs.token_logprobs is not None
    assert len(logprobs.token_logprobs) == 5
    assert logprobs.top_logprobs is not None and len(logprobs.top_logprobs[0]) == 2
    assert result.usage is not None and result.usage.completion_tokens == 10
    chat = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=4,
        logprobs=True,
        top_logprobs=3,
        extra_body=_extra(),
    )
    content = chat.choices[0].logprobs
    assert content is not None and content.content is not None and len(content.content) == 4
    assert len(content.content[0].top_logprobs) == 3 and content.content[0].logprob <= 0


def test_models_health_tokenize(engine: EngineProcess) -> None:
    assert [m.id for m in engine.client().models.list()] == [MODEL]
    ids = httpx.post(f"{engine.url}/tokenize", json={"prompt": "hello world"}).json()
    assert ids["count"] == len(ids["tokens"]) > 0
    text = httpx.post(f"{engine.url}/detokenize", json={"tokens": ids["tokens"]}).json()
    assert text == {"prompt": "hello world"}


def test_concurrent_requests_are_batched(engine: EngineProcess) -> None:
    async def main() -> float:
        async with openai.AsyncOpenAI(base_url=f"{engine.url}/v1", api_key="none") as client:
            return await watch(client)

    async def watch(client: openai.AsyncOpenAI) -> float:

        async def one(i: int) -> str:
            stream = await client.completions.create(
                model=MODEL, prompt=[i + 1] * 4, max_tokens=150, stream=True, extra_body=_extra()
            )
            return "".join([c.choices[0].text async for c in stream if c.choices])

        tasks = [asyncio.create_task(one(i)) for i in range(8)]
        peak = 0.0
        while not all(t.done() for t in tasks):
            peak = max(peak, await asyncio.to_thread(engine.metric, "vllm:num_requests_running"))
            await asyncio.sleep(0.02)
        await asyncio.gather(*tasks)
        return peak

    assert asyncio.run(main()) > 1


def test_disconnect_frees_blocks(engine: EngineProcess) -> None:
    body = {
        "model": MODEL,
        "prompt": [7] * 8,
        "max_tokens": 2000,
        "stream": True,
        "ignore_eos": True,
    }
    with httpx.stream("POST", f"{engine.url}/v1/completions", json=body) as response:
        lines = response.iter_lines()  # dropping this iterator would close the stream
        for _ in range(6):
            next(lines)
        assert engine.metric("vllm:kv_cache_usage_perc") > 0
    deadline = time.monotonic() + 3
    while engine.metric("vllm:kv_cache_usage_perc") > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.metric("vllm:kv_cache_usage_perc") == 0
    assert engine.metric("vllm:num_requests_running") == 0


BAD = [
    ({"prompt": "hi", "max_tokens": -1}, 400, "max_tokens"),
    ({"prompt": "hi", "top_p": 0}, 400, "top_p"),
    ({"prompt": "hi", "top_p": 1.5}, 400, "top_p"),
    ({"prompt": "hi", "n": 0}, 400, "n"),
    ({"prompt": "hi", "temperature": -0.5}, 400, "temperature"),
    ({"prompt": ""}, 400, "prompt"),
    ({"prompt": []}, 400, "prompt"),
    ({"prompt": [5] * (CONTEXT + 1)}, 400, "prompt"),
    ({"prompt": "hi", "max_tokens": "many"}, 400, "max_tokens"),
    ({"prompt": "hi", "model": "gpt-4"}, 404, "model"),
]


@pytest.mark.parametrize(("fields", "status", "param"), BAD)
def test_bad_completion_input(
    engine: EngineProcess, fields: dict[str, object], status: int, param: str
) -> None:
    response = httpx.post(f"{engine.url}/v1/completions", json={"model": MODEL, **fields})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param and error["message"]
    expected_type = "NotFoundError" if status == 404 else "invalid_request_error"
    assert error["type"] == expected_type


def test_bad_input_through_the_openai_client(engine: EngineProcess) -> None:
    client = engine.client()
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=MODEL, prompt="hi", top_p=2)
    assert caught.value.param == "top_p" and "top_p" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="hi")
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=[], max_tokens=2)
    assert caught.value.param == "messages"


def test_malformed_missing_and_oversized_bodies(engine: EngineProcess) -> None:
    url = f"{engine.url}/v1/chat/completions"
    headers = {"content-type": "application/json"}
    malformed = httpx.post(url, content=b'{"model": "tiny",', headers=headers)
    assert malformed.status_code == 400 and "JSON" in malformed.json()["error"]["message"]
    missing = httpx.post(url, json={"model": MODEL})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
    oversized = httpx.post(url, content=b" " * (5 << 20), headers=headers)
    assert oversized.status_code == 413 and oversized.json()["error"]["code"] == 413
    still = engine.client().completions.create(model=MODEL, prompt="hi", max_tokens=2)
    assert still.choices[0].text is not None
