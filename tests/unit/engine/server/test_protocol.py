"""Request bodies: fields the engine does not implement are refused naming them (harmless
values and bookkeeping fields pass), and completion prompts in all of OpenAI's forms."""

from __future__ import annotations

from typing import Any

import pytest

from inferplane.engine.server.protocol import ChatRequest, CompletionRequest
from inferplane.engine.server.unsupported import IGNORED, FieldError

MESSAGES = [{"role": "user", "content": "hi"}]


def completion(**fields: Any) -> CompletionRequest:
    return CompletionRequest.model_validate({"model": "m", "prompt": "hi", **fields})


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest.model_validate({"model": "m", "messages": MESSAGES, **fields})


REFUSED_COMPLETION = [
    ("echo", True),
    ("best_of", 3),
    ("logit_bias", {"50256": -100}),
    ("suffix", "!"),
    ("min_tokens", 4),
    ("use_beam_search", True),
    ("guided_json", {"type": "object"}),
    ("skip_special_tokens", False),
    ("add_special_tokens", False),
    ("frobnicate", 1),
]

REFUSED_CHAT = [
    ("tools", [{"type": "function", "function": {"name": "f"}}]),
    ("tool_choice", "auto"),
    ("tool_choice", {"type": "function", "function": {"name": "f"}}),
    ("functions", [{"name": "f"}]),
    ("function_call", "auto"),
    ("parallel_tool_calls", False),
    ("response_format", {"type": "json_object"}),
    ("response_format", {"type": "json_schema", "json_schema": {"name": "x"}}),
    ("logit_bias", {"1": 5}),
    ("audio", {"voice": "alloy", "format": "wav"}),
    ("modalities", ["text", "audio"]),
    ("prediction", {"type": "content", "content": "x"}),
    ("reasoning_effort", "high"),
    ("echo", True),
    ("continue_final_message", True),
    ("chat_template", "{{ messages }}"),
    ("suffix", "!"),
]


@pytest.mark.parametrize(("field", "value"), REFUSED_COMPLETION)
def test_completions_refuse_what_they_do_not_implement(field: str, value: object) -> None:
    with pytest.raises(FieldError) as caught:
        completion(**{field: value}).check_supported()
    assert caught.value.param == field and field in str(caught.value)


@pytest.mark.parametrize(("field", "value"), REFUSED_CHAT)
def test_chat_refuses_what_it_does_not_implement(field: str, value: object) -> None:
    with pytest.raises(FieldError) as caught:
        chat(**{field: value}).check_supported()
    assert caught.value.param == field and field in str(caught.value)


def test_unknown_fields_are_refused_as_openai_does() -> None:
    with pytest.raises(FieldError, match="Unrecognized request argument supplied: frobnicate"):
        chat(frobnicate=True).check_supported()


@pytest.mark.parametrize(
    "fields",
    [
        {"echo": False, "best_of": 1, "logit_bias": {}, "suffix": None, "min_tokens": 0},
        {"best_of": 3, "n": 3, "skip_special_tokens": True, "add_special_tokens": True},
        {name: "x" for name in IGNORED},
    ],
)
def test_harmless_completion_values_pass(fields: dict[str, object]) -> None:
    completion(**fields).check_supported()


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": [], "tool_choice": "none", "functions": None, "function_call": "none"},
        {"response_format": {"type": "text"}, "modalities": ["text"], "logit_bias": None},
        {"store": True, "metadata": {"k": "v"}, "service_tier": "auto", "user": "u"},
        {"stream": True, "stream_options": {"include_usage": True, "include_obfuscation": True}},
    ],
)
def test_harmless_chat_values_pass(fields: dict[str, object]) -> None:
    chat(**fields).check_supported()


def test_false_is_not_taken_for_zero() -> None:
    with pytest.raises(FieldError, match="min_tokens"):
        completion(min_tokens=False).check_supported()


def test_stream_options_need_stream() -> None:
    with pytest.raises(FieldError) as caught:
        completion(stream_options={"include_usage": True}).check_supported()
    assert caught.value.param == "stream_options"


def test_chat_refuses_image_parts_and_tool_calls_in_messages() -> None:
    image = {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
    parts = [{"type": "text", "text": "what is this?"}, image]
    with pytest.raises(FieldError) as caught:
        ChatRequest.model_validate(
            {"model": "m", "messages": [{"role": "user", "content": parts}]}
        ).check_supported()
    assert caught.value.param == "messages.0.content.1.type"
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    history = [*MESSAGES, {"role": "assistant", "content": None, "tool_calls": [call]}]
    with pytest.raises(FieldError) as caught:
        ChatRequest.model_validate({"model": "m", "messages": history}).check_supported()
    assert caught.value.param == "messages.1.tool_calls"


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("hi", ["hi"]),
        ([5, 6], [[5, 6]]),
        (["a", "b"], ["a", "b"]),
        ([[5], [6, 7]], [[5], [6, 7]]),
    ],
)
def test_prompts_in_every_form(prompt: object, expected: list[object]) -> None:
    assert completion(prompt=prompt).prompts() == expected


@pytest.mark.parametrize("prompt", ["", [], [""], ["a", ""], [[5], []], [[]]])
def test_empty_prompts_are_refused_naming_prompt(prompt: object) -> None:
    with pytest.raises(FieldError) as caught:
        completion(prompt=prompt).prompts()
    assert caught.value.param == "prompt"
