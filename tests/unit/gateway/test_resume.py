"""Continuing a broken stream: the continuation request, and its chunks re-shaped."""

from __future__ import annotations

from typing import Any

import orjson

from inferplane.gateway import resume
from inferplane.gateway.calls import Api, Call, parse_openai
from inferplane.gateway.sse import StreamTracker


def call(api: Api = Api.CHAT, **body: Any) -> Call:
    fields: dict[str, Any] = {"model": "m", "stream": True}
    if api is Api.CHAT:
        fields["messages"] = [{"role": "user", "content": "hi"}]
    else:
        fields["prompt"] = "hi"
    return parse_openai(api, orjson.dumps(fields | body))


def broken_after(ids: list[int], *, prompt: list[int] | None = None) -> StreamTracker:
    """A tracker that saw the prompt's ids and `ids` generated before the break."""
    t = StreamTracker("m", strip_ids=True, strip_usage=True, track_ids=True)
    first: dict[str, Any] = {
        "id": "chatcmpl-orig",
        "object": "chat.completion.chunk",
        "created": 111,
        "model": "engine",
        "choices": [],
    }
    if prompt is not None:
        first["prompt_token_ids"] = prompt
    events = [first] + [
        {"model": "engine", "choices": [{"index": 0, "delta": {"content": "t"}, "token_ids": [i]}]}
        for i in ids
    ]
    t.feed(b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events))
    assert t.ids == ids
    return t


def test_the_prompt_is_the_prompt_ids_then_the_ids_already_sent() -> None:
    body = resume.continuation(call(), broken_after([7, 8], prompt=[1, 2, 3]), "served")
    assert body is not None
    assert body["prompt"] == [1, 2, 3, 7, 8]
    assert body["model"] == "served"
    assert body["stream"] is True and body["return_token_ids"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_without_a_served_name_the_model_is_left_out() -> None:
    body = resume.continuation(call(), broken_after([7], prompt=[1]), None)
    assert body is not None and "model" not in body


def test_max_tokens_is_reduced_by_what_was_already_generated() -> None:
    body = resume.continuation(call(max_tokens=10), broken_after([7, 8, 9], prompt=[1]), "s")
    assert body is not None and body["max_tokens"] == 7


def test_max_completion_tokens_is_reduced_too() -> None:
    c = call(max_completion_tokens=5)
    body = resume.continuation(c, broken_after([7, 8], prompt=[1]), "s")
    assert body is not None and body["max_tokens"] == 3
    assert "max_completion_tokens" not in body, "the completions API knows only max_tokens"


def test_no_limit_means_no_max_tokens() -> None:
    body = resume.continuation(call(), broken_after([7], prompt=[1]), "s")
    assert body is not None and "max_tokens" not in body


def test_nothing_to_resume_when_the_budget_is_used_up() -> None:
    assert resume.continuation(call(max_tokens=2), broken_after([7, 8], prompt=[1]), "s") is None
    assert resume.continuation(call(max_tokens=1), broken_after([7, 8], prompt=[1]), "s") is None


def test_nothing_to_resume_without_the_prompt_ids() -> None:
    assert resume.continuation(call(), broken_after([7, 8]), "s") is None


def test_sampling_fields_are_carried_over_and_others_are_not() -> None:
    sampling: dict[str, Any] = {
        **{"temperature": 0.0, "top_p": 0.9, "top_k": 5, "min_p": 0.1, "seed": 42},
        **{"presence_penalty": 0.1, "frequency_penalty": 0.2, "repetition_penalty": 1.1},
        **{"stop": ["\n"], "stop_token_ids": [2], "ignore_eos": True},
        "skip_special_tokens": False,
    }
    c = call(user="someone", tools=[], **sampling)
    body = resume.continuation(c, broken_after([7], prompt=[1]), "s")
    assert body is not None
    assert {k: body[k] for k in sampling} == sampling
    assert "user" not in body and "tools" not in body and "messages" not in body


def reshaper(api: Api) -> resume.Reshaper:
    return resume.Reshaper(call(api), broken_after([7, 8], prompt=[1, 2, 3]))


def continuation_chunk(text: str, ids: list[int], finish: str | None = None) -> dict[str, Any]:
    choice = {
        "index": 0,
        "text": text,
        "logprobs": None,
        "finish_reason": finish,
        "token_ids": ids,
        "prompt_token_ids": [1, 2, 3, 7, 8],
    }
    return {
        "id": "cmpl-new",
        "object": "text_completion",
        "created": 999,
        "model": "served",
        "choices": [choice],
        "prompt_token_ids": [1, 2, 3, 7, 8],
    }


def test_chat_chunks_become_chat_deltas_of_the_original_stream() -> None:
    out = reshaper(Api.CHAT).chunk(continuation_chunk("lo", [9], "stop"))
    assert out == {
        "id": "chatcmpl-orig",
        "object": "chat.completion.chunk",
        "created": 111,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "delta": {"content": "lo"},
                "logprobs": None,
                "finish_reason": "stop",
                "token_ids": [9],
            }
        ],
    }


def test_completion_chunks_keep_their_shape_with_the_original_id() -> None:
    out = reshaper(Api.COMPLETIONS).chunk(continuation_chunk("lo", [9]))
    assert (out["id"], out["created"], out["model"]) == ("chatcmpl-orig", 111, "m")
    assert out["object"] == "text_completion"
    assert "prompt_token_ids" not in out
    assert out["choices"][0]["text"] == "lo"
    assert "prompt_token_ids" not in out["choices"][0]


def test_usage_counts_the_original_prompt_and_both_parts_of_the_completion() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
    chunk = {
        "id": "cmpl-new",
        "object": "text_completion",
        "created": 999,
        "model": "served",
        "choices": [],
        "usage": usage,
    }
    out = reshaper(Api.CHAT).chunk(chunk)
    assert out["usage"] == {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}
    assert out["choices"] == []


def test_a_tracker_with_a_reshaper_forwards_the_continuation_as_the_original() -> None:
    t = broken_after([7, 8], prompt=[1, 2, 3])
    t.reshape = resume.Reshaper(call(Api.CHAT), t).chunk
    stream = b"".join(
        b"data: " + orjson.dumps(c) + b"\n\n"
        for c in (continuation_chunk("lo", [9]), continuation_chunk("", [10], "stop"))
    )
    out = [orjson.loads(e[6:]) for e in t.feed(stream + b"data: [DONE]\n\n")[:-1]]
    assert [c["choices"][0]["delta"] for c in out] == [{"content": "lo"}, {"content": ""}]
    assert all(c["id"] == "chatcmpl-orig" and "token_ids" not in c["choices"][0] for c in out)
    assert t.ids == [7, 8, 9, 10]
    assert t.prompt_ids == [1, 2, 3], "the continuation's longer prompt is not taken as ours"
    assert t.done and t.finished


def test_a_continuation_is_a_completions_request_even_for_a_chat() -> None:
    """Its prompt is token ids, chat template applied: only the completions API takes it."""
    assert resume.API is Api.COMPLETIONS and resume.PATH == b"/v1/completions"
