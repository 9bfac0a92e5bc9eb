"""Reading an OpenAI request body: errors that name the field, prompt text, resumability."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from inferplane.gateway import errors
from inferplane.gateway.calls import Api, Call, parse_openai

HI = [{"role": "user", "content": "hi"}]


def parse(api: Api = Api.CHAT, **body: Any) -> Call:
    if api is Api.CHAT:
        body.setdefault("messages", HI)
    return parse_openai(api, orjson.dumps(body))


def refused(
    raw: bytes, api: Api = Api.CHAT, content_type: bytes | None = None
) -> errors.GatewayError:
    with pytest.raises(errors.GatewayError) as caught:
        parse_openai(api, raw, content_type)
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
        ({"model": "m", "n": 129}, "n"),
        ({"model": "m", "n": 1000}, "n"),
        ({"model": "m", "n": None}, "n"),
        ({"model": "m", "n": 2.0}, "n"),
        ({"model": "m", "max_tokens": "32"}, "max_tokens"),
        ({"model": "m", "max_tokens": True}, "max_tokens"),
        ({"model": "m", "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "max_tokens": -5}, "max_tokens"),
        ({"model": "m", "max_tokens": 3.5}, "max_tokens"),
        ({"model": "m", "max_completion_tokens": "32"}, "max_completion_tokens"),
        ({"model": "m", "max_completion_tokens": False}, "max_completion_tokens"),
        ({"model": "m", "max_completion_tokens": 0}, "max_completion_tokens"),
    ],
)
def test_malformed_fields_are_named(body: dict[str, Any], param: str) -> None:
    error = refused(orjson.dumps({"messages": HI} | body))
    assert error.param == param
    assert orjson.loads(error.openai_body())["error"]["param"] == param


def test_a_body_that_is_not_a_json_object_is_a_400() -> None:
    assert "not valid JSON" in refused(b"{model").message
    assert "JSON object" in refused(b'["model"]').message


def test_the_bounds_themselves_are_accepted() -> None:
    assert parse(model="m", n=128, max_tokens=1, max_completion_tokens=1).n == 128
    assert parse(model="m", n=1, max_tokens=None, max_completion_tokens=None).n == 1
    assert parse(Api.COMPLETIONS, model="m", prompt="x", max_tokens=100000).n == 1


def test_token_bounds_of_embeddings_are_not_read() -> None:
    """Only a generation has output tokens: an embedding request's fields pass as they are."""
    assert parse(Api.EMBEDDINGS, model="m", input="x", max_tokens="x").n == 1


def test_the_messages_of_a_completion_are_not_read() -> None:
    assert parse(Api.COMPLETIONS, model="m", prompt="x", messages=None).n == 1


@pytest.mark.parametrize(
    ("messages", "param", "words"),
    [
        (None, "messages", "got null"),
        ("hi", "messages", "expected an array, but got a string"),
        ([], "messages", "empty array"),
        (["hi"], "messages.[0]", "expected an object"),
        ([{"content": "hi"}], "messages.[0].role", "Missing required parameter"),
        ([{"role": 3, "content": "hi"}], "messages.[0].role", "got an integer"),
        ([{"role": "user", "content": None}], "messages.[0].content", "got null"),
        ([{"role": "user"}], "messages.[0].content", "Missing required parameter"),
        ([{"role": "user", "content": {"text": "x"}}], "messages.[0].content", "got an object"),
        ([*HI, {"role": "assistant", "content": None}], "messages.[1].content", "got null"),
        (
            [*HI, {"role": "assistant", "content": None, "tool_calls": []}],
            "messages.[1].content",
            "got null",
        ),
        (
            [{"role": "tool", "content": None, "tool_calls": [{"id": "x"}]}],
            "messages.[0].content",
            "got null",
        ),
    ],
)
def test_malformed_messages_are_named(messages: Any, param: str, words: str) -> None:
    error = refused(orjson.dumps({"model": "m", "messages": messages}))
    assert error.param == param
    assert words in error.message


def test_missing_messages_are_named() -> None:
    error = refused(b'{"model": "m"}')
    assert (error.param, error.message) == ("messages", "Missing required parameter: 'messages'.")


def test_an_assistant_turn_that_only_called_tools_has_no_content() -> None:
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    messages = [
        *HI,
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "assistant", "tool_calls": calls},
        {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    assert parse(model="m", messages=messages).model == "m"


@pytest.mark.parametrize(
    "content_type",
    [b"application/json", b"application/json; charset=utf-8", b"Application/JSON ; x=1"],
)
def test_a_json_content_type_is_accepted(content_type: bytes) -> None:
    raw = orjson.dumps({"model": "m", "messages": HI})
    assert parse_openai(Api.CHAT, raw, content_type).model == "m"


def test_no_content_type_is_read_as_json() -> None:
    assert parse_openai(Api.CHAT, orjson.dumps({"model": "m", "messages": HI}), None).model == "m"


@pytest.mark.parametrize(
    "content_type",
    [b"text/plain", b"application/x-www-form-urlencoded", b"", b"application/jsonx", b"json"],
)
def test_another_content_type_is_a_400(content_type: bytes) -> None:
    raw = orjson.dumps({"model": "m", "messages": HI})
    for api in (Api.CHAT, Api.COMPLETIONS, Api.EMBEDDINGS):
        error = refused(raw, api, content_type)
        assert error.param == "Content-Type"
        assert "expected application/json" in error.message


def test_a_huge_content_type_is_not_echoed_whole() -> None:
    error = refused(b"{}", content_type=b"text/" + b"x" * 10_000)
    assert len(error.message) < 200


def test_fields_are_read() -> None:
    c = parse(
        model="m",
        stream=True,
        n=2,
        stream_options={"include_usage": True},
        return_token_ids=True,
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
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
    ]
    assert parse(model="m", messages=messages).prompt_text == "be brief\npart one\ntwo"


def test_content_parts_without_text_are_empty() -> None:
    parts = [{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "t"}]
    assert parse(model="m", messages=[{"role": "user", "content": parts}]).prompt_text == "\nt"


def test_a_content_part_whose_text_is_not_a_string_is_ignored() -> None:
    parts = [{"type": "text", "text": None}, {"type": "text", "text": "t"}]
    assert parse(model="m", messages=[{"role": "user", "content": parts}]).prompt_text == "t"


def test_completion_prompts_as_string_and_list() -> None:
    assert parse(Api.COMPLETIONS, model="m", prompt="hello").prompt_text == "hello"
    many = parse(Api.COMPLETIONS, model="m", prompt=["a", "b", 3])
    assert many.prompt_text == "a\nb"
    assert parse(Api.COMPLETIONS, model="m", prompt=[1, 2, 3]).prompt_text == ""
    assert parse(Api.COMPLETIONS, model="m").prompt_text == ""


def test_prompt_text_is_built_once() -> None:
    c = parse(model="m", messages=[{"role": "user", "content": "a"}])
    assert c.prompt_text == "a"
    c.body["messages"] = [{"role": "user", "content": "changed"}]
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
