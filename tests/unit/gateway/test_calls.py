"""Reading an OpenAI request body: errors that name the field, prompt text, resumability."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from inferplane.gateway import errors
from inferplane.gateway.calls import Api, Call, parse_openai


def parse(api: Api = Api.CHAT, **body: Any) -> Call:
    return parse_openai(api, orjson.dumps(body))


def refused(raw: bytes) -> errors.GatewayError:
    with pytest.raises(errors.GatewayError) as caught:
        parse_openai(Api.CHAT, raw)
    assert caught.value.status == 400
    return caught.value


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "model"),
        ({"model": ""}, "model"),
        ({"model": 3}, "model"),
        ({"model": "m", "stream": "yes"}, "stream"),
        ({"model": "m", "n": 0}, "n"),
        ({"model": "m", "n": True}, "n"),
        ({"model": "m", "n": "2"}, "n"),
        ({"model": "m", "stream_options": [True]}, "stream_options"),
    ],
)
def test_malformed_fields_are_named(body: dict[str, Any], param: str) -> None:
    error = refused(orjson.dumps(body))
    assert error.param == param
    assert orjson.loads(error.openai_body())["error"]["param"] == param


def test_a_body_that_is_not_a_json_object_is_a_400() -> None:
    assert "not valid JSON" in refused(b"{model").message
    assert "JSON object" in refused(b'["model"]').message


def test_fields_are_read() -> None:
    c = parse(
        model="m",
        stream=True,
        n=2,
        stream_options={"include_usage": True},
        return_token_ids=True,
        messages=[],
    )
    assert (c.api, c.model, c.stream, c.n) == (Api.CHAT, "m", True, 2)
    assert c.wants_usage and c.wants_token_ids


def test_defaults() -> None:
    c = parse(model="m", stream=None, stream_options={"include_usage": False})
    assert (c.stream, c.n, c.wants_usage, c.wants_token_ids) == (False, 1, False, False)


def test_return_token_ids_must_be_true_itself() -> None:
    assert not parse(model="m", return_token_ids="yes").wants_token_ids


def test_chat_prompt_text_joins_string_contents_and_text_parts() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "part one"}, {"text": "two"}]},
        {"role": "assistant", "content": None},
        "not a message",
    ]
    assert parse(model="m", messages=messages).prompt_text == "be brief\npart one\ntwo"


def test_content_parts_without_text_are_empty() -> None:
    parts = [{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "t"}]
    assert parse(model="m", messages=[{"content": parts}]).prompt_text == "\nt"


def test_a_content_part_whose_text_is_not_a_string_is_ignored() -> None:
    parts = [{"type": "text", "text": None}, {"type": "text", "text": "t"}]
    assert parse(model="m", messages=[{"content": parts}]).prompt_text == "t"


def test_completion_prompts_as_string_and_list() -> None:
    assert parse(Api.COMPLETIONS, model="m", prompt="hello").prompt_text == "hello"
    many = parse(Api.COMPLETIONS, model="m", prompt=["a", "b", 3])
    assert many.prompt_text == "a\nb"
    assert parse(Api.COMPLETIONS, model="m", prompt=[1, 2, 3]).prompt_text == ""
    assert parse(Api.COMPLETIONS, model="m").prompt_text == ""


def test_prompt_text_is_built_once() -> None:
    c = parse(model="m", messages=[{"content": "a"}])
    assert c.prompt_text == "a"
    c.body["messages"] = [{"content": "changed"}]
    assert c.prompt_text == "a"


@pytest.mark.parametrize(
    ("api", "body", "resumable"),
    [
        (Api.CHAT, {"stream": True}, True),
        (Api.COMPLETIONS, {"stream": True}, True),
        (Api.CHAT, {"stream": False}, False),
        (Api.EMBEDDINGS, {"stream": True}, False),
        (Api.CHAT, {"stream": True, "n": 2}, False),
        (Api.CHAT, {"stream": True, "logprobs": True}, False),
        (Api.COMPLETIONS, {"stream": True, "logprobs": 2}, False),
        (Api.COMPLETIONS, {"stream": True, "echo": True}, False),
    ],
)
def test_resumable_only_for_one_plain_generated_stream(
    api: Api, body: dict[str, Any], resumable: bool
) -> None:
    assert parse(api, model="m", **body).resumable is resumable
