"""The gateway in front of real reference engines: a replica killed mid-stream still yields
the complete, correct answer, continued on the other replica from the tokens already sent."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import openai
import pytest

from tests.support import tiny_model
from tests.support.engine_process import EngineProcess, running_engine
from tests.support.gateway_process import GatewayProcess, api_key, endpoint, service

pytestmark = pytest.mark.integration

KEY = "sk-engines"
LENGTH = 400
"""Tokens per answer: enough that the stream is still going when its engine is killed."""


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[list[EngineProcess]]:
    folder = tiny_model.make_tiny_model(tmp_path / "tiny", max_position_embeddings=2048)
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                running_engine(str(folder), tmp_path / f"e{i}.log", "--kv-cache-memory", "8MiB")
            )
            for i in range(2)
        ]


def test_killing_a_replica_mid_stream_yields_the_complete_greedy_answer(
    engines: list[EngineProcess], tmp_path: Path
) -> None:
    config = [
        service("tiny", [{"deployment": "t"}], strategy="round-robin"),
        endpoint("e0", engines[0].url, "t"),
        endpoint("e1", engines[1].url, "t"),
        api_key("k", KEY),
    ]
    gw = GatewayProcess(tmp_path, config=config).start()
    stack = ExitStack()
    try:
        request = {
            "model": "tiny",
            "messages": [{"role": "user", "content": "tell me"}],
            "max_tokens": LENGTH,
            "temperature": 0,
            "extra_body": {"ignore_eos": True},
        }
        with engines[1].client() as direct:
            served = direct.models.list().data[0].id
            expected = direct.chat.completions.create(**(request | {"model": served}))
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=KEY, max_retries=0)
        stack.callback(client.close)
        raw = client.chat.completions.with_raw_response.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
        victim = {"e0": engines[0], "e1": engines[1]}[raw.headers["x-inferplane-endpoint"]]
        pieces: list[str] = []
        finish, usage = None, None
        for chunk in raw.parse():
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                pieces.append(choice.delta.content or "")
                finish = choice.finish_reason or finish
            if len(pieces) == 20:
                victim.process.send_signal(signal.SIGKILL)
        assert "".join(pieces) == expected.choices[0].message.content
        assert finish == "length"
        assert usage is not None and usage.completion_tokens == LENGTH
        assert usage.prompt_tokens == expected.usage.prompt_tokens  # type: ignore[union-attr]
        assert gw.metric("inferplane_gateway_resumes_total") == 1
    finally:
        stack.close()
        gw.stop()


def test_kserve_v2_generate_and_infer_through_the_gateway(
    engines: list[EngineProcess], tmp_path: Path
) -> None:
    config = [
        service("tiny", [{"deployment": "t"}]),
        endpoint("e0", engines[0].url, "t"),
        api_key("k", KEY),
    ]
    gw = GatewayProcess(tmp_path, config=config).start()
    try:
        with gw.http(KEY) as http:
            generated = http.post(
                "/v2/models/tiny/generate",
                json={"text_input": "tell me", "parameters": {"max_tokens": 4, "temperature": 0}},
            )
            assert generated.status_code == 200, generated.text
            assert generated.json()["model_name"] and generated.json()["text_output"]
            inferred = http.post(
                "/v2/models/tiny/infer",
                json={
                    "inputs": [
                        {"name": "text_input", "shape": [1], "datatype": "BYTES", "data": ["hi"]}
                    ]
                },
            )
            assert inferred.status_code == 200, inferred.text
            assert inferred.json()["outputs"]
            unknown = http.post("/v2/models/nope/generate", json={"text_input": "x"})
            assert unknown.status_code == 404
            assert isinstance(unknown.json()["error"], str)
    finally:
        gw.stop()
