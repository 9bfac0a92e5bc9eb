"""The upstream request body: the client's own bytes unless something must change."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from inferplane.gateway import errors
from inferplane.gateway.bodies import account_whole, clamp_hints, upstream_body
from inferplane.gateway.calls import Api, Call, parse_openai, parse_v2
from inferplane.gateway.table import EndpointEntry, KeyEntry
from inferplane.gateway.wire.upstream import Origin
from inferplane.policy import quotas


@dataclasses.dataclass
class Counted:
    """Where account_whole writes an answer's usage (a RequestRun on the gateway)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


def make_endpoint(*, external: bool = False) -> EndpointEntry:
    return EndpointEntry(
        namespace="default",
        name="e",
        origin=Origin("10.0.0.1", 8000),
        deployment=None if external else "d",
        external=external,
        region="",
        ready=True,
        upstream_model=None,
        auth=None,
    )


ENGINE = make_endpoint()
EXTERNAL = make_endpoint(external=True)
HI = [{"role": "user", "content": "hi"}]


def call(api: Api = Api.CHAT, **body: Any) -> Call:
    return parse_openai(api, orjson.dumps({"model": "m", "messages": HI} | body))


def sent(c: Call, endpoint: EndpointEntry = ENGINE, served: str | None = "m") -> dict[str, Any]:
    body = orjson.loads(upstream_body(c, endpoint, served))
    assert isinstance(body, dict)
    return body


def test_the_same_bytes_when_nothing_must_change() -> None:
    for c in (call(), call(Api.EMBEDDINGS, input="x"), call(stream=False)):
        assert upstream_body(c, ENGINE, "m") is c.raw
        assert upstream_body(c, ENGINE, None) is c.raw, "no served name: the client's is kept"


def test_a_stream_that_asked_for_everything_is_sent_unchanged() -> None:
    c = call(stream=True, stream_options={"include_usage": True}, return_token_ids=True)
    assert upstream_body(c, ENGINE, "m") is c.raw


def test_the_model_is_replaced_by_the_served_name() -> None:
    c = call(temperature=0.5)
    body = sent(c, served="org/engine-model")
    assert body == {"model": "org/engine-model", "messages": HI, "temperature": 0.5}
    assert c.body["model"] == "m", "the call itself is not changed"


def test_v2_bodies_keep_their_model() -> None:
    c = parse_v2(Api.V2_GENERATE, "m", b'{"text_input": "hi"}')
    assert upstream_body(c, ENGINE, "engine-model") is c.raw


def test_a_stream_asks_for_usage_and_token_ids() -> None:
    body = sent(call(stream=True))
    assert body["stream_options"] == {"include_usage": True}
    assert body["return_token_ids"] is True


def test_other_stream_options_are_kept() -> None:
    body = sent(call(stream=True, stream_options={"continuous_usage_stats": True}))
    assert body["stream_options"] == {"continuous_usage_stats": True, "include_usage": True}


def test_what_the_client_already_asked_for_is_not_added() -> None:
    body = sent(call(stream=True, stream_options={"include_usage": True}))
    assert body["stream_options"] == {"include_usage": True}
    assert body["return_token_ids"] is True
    body = sent(call(stream=True, return_token_ids=True))
    assert body["stream_options"] == {"include_usage": True}


def test_an_external_endpoint_is_not_asked_for_token_ids() -> None:
    body = sent(call(stream=True), EXTERNAL, None)
    assert "return_token_ids" not in body
    assert body["stream_options"] == {"include_usage": True}, "usage is still counted"
    assert body["model"] == "m"


def test_token_ids_only_for_resumable_streams() -> None:
    for c in (call(stream=True, n=2), call(stream=True, logprobs=True)):
        body = sent(c)
        assert "return_token_ids" not in body
        assert body["stream_options"] == {"include_usage": True}


def test_embeddings_never_get_stream_fields() -> None:
    c = call(Api.EMBEDDINGS, input="x", stream=True)
    assert upstream_body(c, ENGINE, "m") is c.raw


def test_completions_streams_are_treated_like_chat() -> None:
    c = parse_openai(Api.COMPLETIONS, b'{"model": "m", "prompt": "hi", "stream": true}')
    body = sent(c, served="engine")
    assert body["model"] == "engine" and body["prompt"] == "hi"
    assert body["return_token_ids"] is True
    assert body["stream_options"] == {"include_usage": True}


def deep_call(depth: int, fields: bytes = b"") -> Call:
    """A chat call with a field `x` nested `depth` arrays deep (too deep for orjson.dumps)."""
    raw = b'{"model":"m","messages":[{"role":"user","content":"hi"}],%s"x":%s}' % (
        fields,
        b"[" * depth + b"]" * depth,
    )
    return parse_openai(Api.CHAT, raw)


@pytest.mark.parametrize("depth", [255, 300, 1000])
def test_a_body_nested_too_deep_to_re_encode_is_a_400(depth: int) -> None:
    """orjson reads 1024 levels but writes only 254: a body that must change on its way
    upstream was a 500 (found by tests/integration/test_gateway_fuzz.py)."""
    c = deep_call(depth, b'"stream":true,')
    with pytest.raises(errors.GatewayError) as caught:
        upstream_body(c, ENGINE, "m")
    assert caught.value.status == 400 and "nested" in caught.value.message


def test_a_deep_body_that_goes_up_unchanged_is_sent_as_it_came() -> None:
    c = deep_call(1000)
    assert upstream_body(c, ENGINE, "m") is c.raw


def test_hints_in_a_body_nested_too_deep_are_a_400() -> None:
    c = deep_call(300, b'"priority":1,')
    key = KeyEntry("default", "k", quotas.Limits(), None)
    with pytest.raises(errors.GatewayError) as caught:
        clamp_hints(c, key)
    assert caught.value.status == 400


def test_an_answer_nested_too_deep_to_rename_is_passed_on_as_it_came() -> None:
    deep = b"[" * 300 + b"]" * 300
    answer = b'{"model":"served","usage":{"prompt_tokens":1},"x":%s,"n":1}' % deep
    assert account_whole(call(), Counted(), answer) is answer
