"""A real `inferplane engine` process on loopback, driven with the official openai client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support import tiny_model
from tests.support.engine_process import EngineProcess, running_engine, wait_for

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


def test_return_token_ids_resume_a_chat_stream_as_a_completion(engine: EngineProcess) -> None:
    """vLLM's `return_token_ids` through the openai client (as extra fields): a gateway that
    lost a stream after 4 tokens resumes it from the prompt's ids and the ids streamed."""
    client = engine.client()
    extra = {"return_token_ids": True, "ignore_eos": True}
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hello"}],
        temperature=0,
        max_tokens=10,
        stream=True,
        extra_body=extra,
    )
    prompt: list[int] = []
    generated: list[int] = []
    for chunk in stream:
        prompt += (chunk.model_extra or {}).get("prompt_token_ids") or []
        for choice in chunk.choices:
            generated += (choice.model_extra or {}).get("token_ids") or []
    assert len(generated) == 10 and prompt
    resumed = client.completions.create(
        model=MODEL, prompt=prompt + generated[:4], max_tokens=6, temperature=0, extra_body=extra
    )
    assert (resumed.choices[0].model_extra or {})["token_ids"] == generated[4:]


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


STREAMS = {
    "completion": ("/v1/completions", {"prompt": [7] * 8}),
    "several prompts": ("/v1/completions", {"prompt": [[7] * 8, [8] * 8], "n": 2}),
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hello"}]}),
}


@pytest.mark.parametrize("kind", list(STREAMS))
def test_disconnect_frees_blocks(engine: EngineProcess, kind: str) -> None:
    path, fields = STREAMS[kind]
    body = {"model": MODEL, "max_tokens": 1500, "stream": True, "ignore_eos": True, **fields}
    with httpx.stream("POST", f"{engine.url}{path}", json=body) as response:
        lines = response.iter_lines()  # dropping this iterator would close the stream
        for _ in range(12):
            next(lines)
        assert engine.metric("vllm:kv_cache_usage_perc") > 0
        assert engine.metric("vllm:num_requests_running") > 0
    wait_for(lambda: engine.metric("vllm:kv_cache_usage_perc") == 0, what="blocks freed")
    wait_for(lambda: engine.metric("vllm:num_requests_running") == 0, what="nothing running")
    assert engine.metric("vllm:num_requests_waiting") == 0


def test_several_prompts_get_n_choices_each(engine: EngineProcess) -> None:
    client = engine.client()
    prompts = ["hello", "hello world", "world hello world"]
    kwargs: dict[str, Any] = {"model": MODEL, "temperature": 0, "max_tokens": 3}
    whole = client.completions.create(prompt=prompts, n=2, extra_body=_extra(), **kwargs)
    singles = [client.completions.create(prompt=p, extra_body=_extra(), **kwargs) for p in prompts]
    texts = {choice.index: choice.text for choice in whole.choices}
    assert sorted(texts) == list(range(6))
    for i, single in enumerate(singles):
        assert texts[2 * i] == texts[2 * i + 1] == single.choices[0].text
    assert len({single.choices[0].text for single in singles}) > 1  # the order is visible
    assert whole.usage is not None
    assert whole.usage.prompt_tokens == sum(s.usage.prompt_tokens for s in singles if s.usage)
    assert whole.usage.completion_tokens == 6 * 3


def test_several_token_id_prompts_streamed(engine: EngineProcess) -> None:
    client = engine.client()
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "prompt": [[5, 6, 7], [40, 41], [9]],
        "n": 2,
        "temperature": 0,
        "max_tokens": 4,
        "extra_body": _extra(),
    }
    whole = client.completions.create(**kwargs)
    chunks = list(
        client.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs)
    )
    texts: dict[int, str] = {}
    finished: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
            if choice.finish_reason:
                finished[choice.index] = choice.finish_reason
    assert finished == dict.fromkeys(range(6), "length")
    assert texts == {choice.index: choice.text for choice in whole.choices}
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert whole.usage is not None and whole.usage.prompt_tokens == 6


def test_fields_the_engine_lacks_are_refused_through_the_client(engine: EngineProcess) -> None:
    client = engine.client()
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "hi"}
    ]
    tool: openai.types.chat.ChatCompletionToolParam = {
        "type": "function",
        "function": {"name": "weather", "parameters": {"type": "object"}},
    }
    refusals: list[tuple[str, Callable[[], object]]] = [
        (
            "tools",
            lambda: client.chat.completions.create(model=MODEL, messages=messages, tools=[tool]),
        ),
        (
            "response_format",
            lambda: client.chat.completions.create(
                model=MODEL, messages=messages, response_format={"type": "json_object"}
            ),
        ),
        (
            "logit_bias",
            lambda: client.completions.create(model=MODEL, prompt="hi", logit_bias={"5": 3}),
        ),
        ("echo", lambda: client.completions.create(model=MODEL, prompt="hi", echo=True)),
        ("best_of", lambda: client.completions.create(model=MODEL, prompt="hi", best_of=3)),
    ]
    for param, call in refusals:
        with pytest.raises(openai.BadRequestError) as caught:
            call()
        assert caught.value.param == param, param
        assert param in caught.value.message
    answered = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=2,
        user="u",
        store=False,
        metadata={"team": "a"},
        response_format={"type": "text"},
        tool_choice="none",
    )
    assert answered.choices[0].finish_reason is not None


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
    ({"prompt": [[]]}, 400, "prompt"),
    ({"prompt": ["hi", ""]}, 400, "prompt"),
    ({"prompt": [5, 300]}, 400, "prompt"),
    ({"prompt": [[5], [-1]]}, 400, "prompt"),
    ({"prompt": ["hi", [5]]}, 400, "prompt"),
    ({"prompt": ["hi", "x" * 3000]}, 400, "prompt"),
    ({"prompt": "hi", "echo": True}, 400, "echo"),
    ({"prompt": "hi", "suffix": "!"}, 400, "suffix"),
    ({"prompt": "hi", "best_of": 2}, 400, "best_of"),
    ({"prompt": "hi", "logit_bias": {"5": 1}}, 400, "logit_bias"),
    ({"prompt": "hi", "min_tokens": 3}, 400, "min_tokens"),
    ({"prompt": "hi", "frobnicate": 1}, 400, "frobnicate"),
    ({"prompt": "hi", "stream_options": {"include_usage": True}}, 400, "stream_options"),
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


def test_an_unknown_route_is_a_404_in_openai_shape(engine: EngineProcess) -> None:
    response = httpx.post(f"{engine.url}/v1/nope", json={})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (POST /v1/nope)"
    wrong_method = httpx.get(f"{engine.url}/v1/completions")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == 405


def test_one_refused_prompt_refuses_the_request_and_aborts_the_others(
    engine: EngineProcess,
) -> None:
    prompts = ["hi", "hello " * 3000]  # the second does not fit the context
    body = {"model": MODEL, "prompt": prompts, "max_tokens": 500, "ignore_eos": True}
    response = httpx.post(f"{engine.url}/v1/completions", json=body)
    assert response.status_code == 400 and response.json()["error"]["param"] == "prompt"
    wait_for(lambda: engine.metric("vllm:num_requests_running") == 0, what="nothing running")
    assert engine.metric("vllm:kv_cache_usage_perc") == 0
