"""StreamTracker: events as the client sees them, whatever the upstream's byte boundaries."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.gateway.sse import StreamTracker


def data(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def parsed(event: bytes) -> dict[str, Any]:
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    obj = orjson.loads(event[6:])
    assert isinstance(obj, dict)
    return obj


def tracker(*, strip_ids: bool = True, strip_usage: bool = True) -> StreamTracker:
    return StreamTracker(
        "client-model", strip_ids=strip_ids, strip_usage=strip_usage, track_ids=True
    )


def chat(content: str | None, ids: list[int], finish: str | None = None) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    choice = {"index": 0, "delta": delta, "finish_reason": finish, "token_ids": ids}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "engine-model",
        "choices": [choice],
    }


def text(piece: str, ids: list[int], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "text": piece, "finish_reason": finish, "token_ids": ids}
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 7,
        "model": "engine-model",
        "choices": [choice],
    }


USAGE = {
    **{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "engine"},
    "choices": [],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}

FIRST = {**chat("", []), "prompt_token_ids": [1, 2, 3]}
FIRST["choices"][0]["delta"] = {"role": "assistant", "content": ""}
del FIRST["choices"][0]["token_ids"]

STREAM_EVENTS = [
    data(FIRST),
    b": keep-alive comment\n\n",
    data(chat("Hel", [10])),
    data(chat(None, [11])),
    data(chat("lo", [12], "stop")),
    b"data: {not json\n\n",
    data(USAGE),
    b"data: [DONE]\n\n",
]
STREAM = b"".join(STREAM_EVENTS)


def feed_whole(stream: bytes) -> tuple[list[bytes], StreamTracker]:
    t = tracker()
    return t.feed(stream), t


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_split_of_the_stream_forwards_the_same_events(draw: st.DataObject) -> None:
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(STREAM)), max_size=40)))
    pieces = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
    whole, expected = feed_whole(STREAM)
    t = tracker()
    split = [event for piece in pieces for event in t.feed(piece)]
    assert split == whole
    assert (t.ids, t.prompt_ids, t.done, t.finished) == (
        expected.ids,
        expected.prompt_ids,
        expected.done,
        expected.finished,
    )


def test_whole_stream_is_forwarded_as_a_client_without_extras_expects() -> None:
    out, t = feed_whole(STREAM)
    assert out[1] == b": keep-alive comment\n\n", "comments pass untouched"
    assert out[4] == b"data: {not json\n\n", "malformed JSON passes untouched"
    assert out[5] == b"data: [DONE]\n\n"
    assert len(out) == 6, "the id-only chunk and the usage chunk were dropped"
    chunks = [parsed(out[i]) for i in (0, 2, 3)]
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "Hel", "lo"]
    assert all(c["model"] == "client-model" for c in chunks)
    assert all("prompt_token_ids" not in c for c in chunks)
    assert all("token_ids" not in c["choices"][0] for c in chunks)
    assert (t.done, t.finished, t.ids, t.prompt_ids) == (True, True, [10, 11, 12], [1, 2, 3])
    assert (t.prompt_tokens, t.completion_tokens) == (3, 2), "counted from the dropped usage"
    assert (t.id, t.created, t.object) == ("chatcmpl-1", 7, "chat.completion.chunk")


def test_done_only_on_the_sentinel() -> None:
    t = tracker()
    t.feed(data(chat("x", [1], "stop")))
    assert t.finished and not t.done
    assert t.feed(b"data:[DONE]\n\n") == [b"data:[DONE]\n\n"]
    assert t.done


def test_an_incomplete_event_waits_for_its_end() -> None:
    t = tracker()
    event = data(chat("Hel", [10]))
    assert t.feed(event[:-1]) == []
    assert t.ids == []
    assert len(t.feed(b"\n")) == 1
    assert t.ids == [10]


def test_token_ids_are_kept_when_the_client_asked_for_them() -> None:
    t = tracker(strip_ids=False)
    out = t.feed(data(FIRST) + data(chat(None, [11])))
    assert parsed(out[0])["prompt_token_ids"] == [1, 2, 3]
    assert parsed(out[1])["choices"][0]["token_ids"] == [11], "id-only chunk kept"
    assert t.prompt_ids == [1, 2, 3] and t.ids == [11]


def test_per_choice_prompt_token_ids_are_stripped_and_noted() -> None:
    obj = text("a", [5])
    obj["choices"][0]["prompt_token_ids"] = [4, 4]
    t = tracker()
    (out,) = t.feed(data(obj))
    choice = parsed(out)["choices"][0]
    assert "prompt_token_ids" not in choice and "token_ids" not in choice
    assert choice["text"] == "a"
    assert t.prompt_ids == [4, 4] and t.ids == [5]


def test_id_only_completion_chunks_are_dropped_when_stripping() -> None:
    t = tracker()
    assert t.feed(data(text("", [9]))) == []
    assert t.ids == [9]
    assert len(t.feed(data(text("", [10], "length")))) == 1, "a finishing chunk is kept"


def test_usage_chunk_is_kept_when_the_client_asked() -> None:
    t = tracker(strip_usage=False)
    (out,) = t.feed(data(USAGE))
    assert parsed(out)["usage"] == USAGE["usage"]
    assert parsed(out)["model"] == "client-model"


def test_usage_is_stripped_from_chunks_that_also_carry_choices() -> None:
    obj = {**chat("x", [1]), "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    (out,) = tracker().feed(data(obj))
    assert "usage" not in parsed(out)
    assert parsed(out)["choices"][0]["delta"] == {"content": "x"}


def test_without_usage_tokens_are_counted_from_ids() -> None:
    t = tracker()
    t.feed(data(FIRST) + data(chat("a", [1, 2])))
    assert (t.prompt_tokens, t.completion_tokens) == (3, 2)


def test_a_json_value_that_is_not_an_object_passes_untouched() -> None:
    t = tracker()
    assert t.feed(b"data: [1, 2]\n\n") == [b"data: [1, 2]\n\n"]
    assert t.events == 0


def test_reshape_runs_before_the_chunk_is_noted() -> None:
    t = tracker()
    t.reshape = lambda obj: {**obj, "id": "reshaped"}
    (out,) = t.feed(data(chat("a", [1])))
    assert parsed(out)["id"] == "reshaped" and t.id == "reshaped"


def test_events_ending_in_crlf_are_forwarded() -> None:
    tracker = StreamTracker("m", strip_ids=False, strip_usage=False, track_ids=False)
    event = b'data: {"id": "x", "choices": [{"index": 0, "text": "a"}]}\r\n\r\n'
    out = tracker.feed(event[:20]) + tracker.feed(event[20:] + b"data: [DONE]\r\n\r\n")
    assert len(out) == 2 and tracker.done
