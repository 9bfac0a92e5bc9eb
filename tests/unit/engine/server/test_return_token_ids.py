"""vLLM's `return_token_ids` on /v1/completions and /v1/chat/completions, streamed and not:
the prompt's ids as fed to the model and each choice's generated ids, exact enough that a
stream can be resumed from them (prompt ids + ids streamed so far, sent back as a token-id
prompt). Without the field, responses carry no new key. The app runs in-process (ASGI)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from inferplane.engine.async_engine import AsyncEngine
from inferplane.engine.llm import EngineConfig, LLMEngine
from inferplane.engine.server.app import create_app
from tests.support import tiny_model

pytest.importorskip("transformers")
MODEL = "tiny"
COMPLETIONS = "/v1/completions"
CHAT = "/v1/chat/completions"
GREEDY = {"model": MODEL, "temperature": 0, "max_tokens": 8, "ignore_eos": True}
MESSAGES = [{"role": "user", "content": "hello"}]
IDS = {"return_token_ids": True}


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> LLMEngine:
    folder = tiny_model.make_tiny_model(tmp_path_factory.mktemp("tiny"))
    return LLMEngine(EngineConfig(model=folder, device="cpu", kv_cache_memory=1 << 20))


def post(llm: LLMEngine, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST `body` to the app around a started engine."""

    async def main() -> httpx.Response:
        engine = AsyncEngine(llm)
        engine.start()
        transport = httpx.ASGITransport(app=create_app(engine, MODEL))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://e") as client:
                return await client.post(path, json=body)
        finally:
            await engine.shutdown(0)

    return asyncio.run(main())


def ok(llm: LLMEngine, path: str, **body: Any) -> Any:
    """The JSON of a greedy request (`GREEDY`, overridden by `body`) that succeeded."""
    response = post(llm, path, {**GREEDY, **body})
    assert response.status_code == 200, response.text
    return response.json()


def chunks(llm: LLMEngine, path: str, **body: Any) -> list[Any]:
    """The JSON chunks of a stream, checked to end with `[DONE]`."""
    response = post(llm, path, {**GREEDY, **body, "stream": True})
    assert response.status_code == 200, response.text
    data = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    assert data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]]


def streamed_ids(events: list[Any]) -> dict[int, list[int]]:
    """Each choice's `token_ids`, concatenated over the chunks in order."""
    ids: dict[int, list[int]] = {}
    for event in events:
        for choice in event["choices"]:
            if "token_ids" in choice:
                ids.setdefault(choice["index"], []).extend(choice["token_ids"])
    return ids


def tokenize(llm: LLMEngine, **body: Any) -> list[int]:
    tokens: list[int] = post(llm, "/tokenize", body).json()["tokens"]
    return tokens


def test_completion_choices_carry_their_prompt_and_generated_ids(llm: LLMEngine) -> None:
    result = ok(llm, COMPLETIONS, prompt=["hello world", "world"], **IDS)
    first, second = result["choices"]
    assert first["prompt_token_ids"] == tokenize(llm, prompt="hello world")
    assert second["prompt_token_ids"] == tokenize(llm, prompt="world")
    assert len(first["token_ids"]) == len(second["token_ids"]) == 8
    assert result["usage"]["completion_tokens"] == 16
    assert "prompt_token_ids" not in result  # on the choices only, as vLLM puts them
    alone = ok(llm, COMPLETIONS, prompt=second["prompt_token_ids"], **IDS)["choices"][0]
    assert alone["prompt_token_ids"] == second["prompt_token_ids"]
    assert alone["token_ids"] == second["token_ids"]


def test_completion_stream_ids_concatenate_to_the_unstreamed_ones(llm: LLMEngine) -> None:
    whole = ok(llm, COMPLETIONS, prompt=[5, 6, 7], **IDS)["choices"][0]
    usage = {"stream_options": {"include_usage": True}}
    events = chunks(llm, COMPLETIONS, prompt=[5, 6, 7], **IDS, **usage)
    choices = [choice for event in events for choice in event["choices"]]
    assert choices[0]["prompt_token_ids"] == [5, 6, 7]
    assert all(c["prompt_token_ids"] is None for c in choices[1:])  # keyed, null: as vLLM
    assert all(len(c["token_ids"]) == 1 for c in choices)  # one step, one token, one chunk
    assert streamed_ids(events) == {0: whole["token_ids"]}
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 8


def test_chat_response_carries_the_templated_prompt_ids(llm: LLMEngine) -> None:
    result = ok(llm, CHAT, messages=MESSAGES, **IDS)
    prompt = tokenize(llm, messages=MESSAGES)
    assert result["prompt_token_ids"] == prompt
    assert result["usage"]["prompt_tokens"] == len(prompt)
    choice = result["choices"][0]
    assert len(choice["token_ids"]) == result["usage"]["completion_tokens"] == 8
    assert "prompt_token_ids" not in choice


def test_chat_stream_sends_prompt_ids_on_the_role_chunk_and_ids_on_every_other(
    llm: LLMEngine,
) -> None:
    whole = ok(llm, CHAT, messages=MESSAGES, **IDS)
    role, *rest = chunks(llm, CHAT, messages=MESSAGES, **IDS)
    assert role["choices"][0]["delta"]["role"] == "assistant"
    assert role["prompt_token_ids"] == whole["prompt_token_ids"]
    assert "token_ids" not in role["choices"][0]
    assert all("prompt_token_ids" not in event for event in rest)
    assert all("token_ids" in event["choices"][0] for event in rest)
    assert streamed_ids(rest) == {0: whole["choices"][0]["token_ids"]}
    text = "".join(event["choices"][0]["delta"].get("content", "") for event in rest)
    assert text == whole["choices"][0]["message"]["content"]


def test_n_2_streams_keep_the_ids_of_each_choice_apart(llm: LLMEngine) -> None:
    sampled = {"temperature": 1.0, "seed": 7, "n": 2, **IDS}
    prompts = [[5, 6, 7], [40, 41]]
    whole = ok(llm, COMPLETIONS, prompt=prompts, **sampled)["choices"]
    events = chunks(llm, COMPLETIONS, prompt=prompts, **sampled)
    assert streamed_ids(events) == {c["index"]: c["token_ids"] for c in whole}
    assert len({tuple(c["token_ids"]) for c in whole}) > 1  # the choices differ
    firsts: dict[int, Any] = {}
    for event in events:
        for choice in event["choices"]:
            firsts.setdefault(choice["index"], choice["prompt_token_ids"])
    assert firsts == {i: prompts[i // 2] for i in range(4)}
    chat_whole = ok(llm, CHAT, messages=MESSAGES, **sampled)
    chat_events = chunks(llm, CHAT, messages=MESSAGES, **sampled)
    roles = [e for e in chat_events if "role" in e["choices"][0]["delta"]]
    assert [e["choices"][0]["index"] for e in roles] == [0, 1]
    assert all(e["prompt_token_ids"] == chat_whole["prompt_token_ids"] for e in roles)
    assert streamed_ids(chat_events) == {c["index"]: c["token_ids"] for c in chat_whole["choices"]}


@pytest.mark.parametrize("streamed", [1, 4, 11])
def test_a_chat_stream_resumes_exactly_as_a_completion(llm: LLMEngine, streamed: int) -> None:
    """What a gateway does when a stream breaks after `streamed` tokens: send the prompt ids
    and the ids streamed so far as a token-id prompt, asking for the rest."""
    events = chunks(llm, CHAT, messages=MESSAGES, **{**IDS, "max_tokens": 12})
    prompt, generated = events[0]["prompt_token_ids"], streamed_ids(events)[0]
    assert len(generated) == 12
    resumed = ok(
        llm,
        COMPLETIONS,
        prompt=prompt + generated[:streamed],
        max_tokens=12 - streamed,
        **IDS,
    )["choices"][0]
    assert resumed["prompt_token_ids"] == prompt + generated[:streamed]
    assert resumed["token_ids"] == generated[streamed:]


def test_a_stop_token_ends_the_ids(llm: LLMEngine) -> None:
    """As in vLLM, the stop token is the last of the ids (its text is not in the output)."""
    generated = ok(llm, COMPLETIONS, prompt=[5, 6, 7], **IDS)["choices"][0]["token_ids"]
    at = next(i for i in range(1, 8) if generated[i] not in generated[:i])
    stopped = ok(llm, COMPLETIONS, prompt=[5, 6, 7], stop_token_ids=[generated[at]], **IDS)
    choice = stopped["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["token_ids"] == generated[: at + 1]
    assert stopped["usage"]["completion_tokens"] == at + 1


def test_a_stop_string_cuts_the_text_not_the_ids(llm: LLMEngine) -> None:
    """As in vLLM, the ids run to the token that completed the stop string; the text stops
    before it."""
    steps = [event["choices"][0] for event in chunks(llm, COMPLETIONS, prompt=[5, 6, 7], **IDS)]
    texts = [step["text"] for step in steps]
    at = next(i for i in range(1, 8) if texts[i] and texts[i][0] not in "".join(texts[:i]))
    stop = texts[at][0]
    choice = ok(llm, COMPLETIONS, prompt=[5, 6, 7], stop=[stop], **IDS)["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["text"] == "".join(texts[:at])
    assert choice["token_ids"] == [t for step in steps[: at + 1] for t in step["token_ids"]]


@pytest.mark.parametrize("value", ["absent", False, None])
@pytest.mark.parametrize(
    ("path", "fields"), [(COMPLETIONS, {"prompt": [5, 6, 7]}), (CHAT, {"messages": MESSAGES})]
)
@pytest.mark.parametrize("stream", [False, True])
def test_without_it_no_response_carries_token_ids(
    llm: LLMEngine, value: object, path: str, fields: dict[str, Any], stream: bool
) -> None:
    asked = {} if value == "absent" else {"return_token_ids": value}
    response = post(llm, path, {**GREEDY, **fields, **asked, "stream": stream})
    assert response.status_code == 200
    assert "token_ids" not in response.text


def test_a_chat_stream_without_it_sends_no_chunk_without_text(llm: LLMEngine) -> None:
    events = chunks(llm, CHAT, messages=MESSAGES)
    assert all(e["choices"][0]["delta"] or e["choices"][0]["finish_reason"] for e in events)


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, [True], {}])
@pytest.mark.parametrize(
    ("path", "fields"), [(COMPLETIONS, {"prompt": "hi"}), (CHAT, {"messages": MESSAGES})]
)
def test_a_non_boolean_is_refused_naming_the_field(
    llm: LLMEngine, value: object, path: str, fields: dict[str, Any]
) -> None:
    response = post(llm, path, {**GREEDY, **fields, "return_token_ids": value})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "return_token_ids" and "return_token_ids" in error["message"]
    assert error["type"] == "invalid_request_error"


def test_v2_refuses_it_rather_than_dropping_it(llm: LLMEngine) -> None:
    body = {"text_input": "hi", "parameters": {"return_token_ids": True}}
    response = post(llm, f"/v2/models/{MODEL}/generate", body)
    assert response.status_code == 400 and "return_token_ids" in response.json()["error"]
