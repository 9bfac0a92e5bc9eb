"""An engine step that fails mid-request: an unstreamed request gets a 500 in OpenAI's
shape, a stream ends with an error event then `[DONE]` (vLLM's convention), a V2 stream
with `{"error": ...}`; and the server serves on. The app runs in-process (ASGI)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from inferplane.engine.async_engine import AsyncEngine
from inferplane.engine.llm import EngineConfig, LLMEngine
from inferplane.engine.outputs import SequenceOutput
from inferplane.engine.server.app import create_app
from tests.support import tiny_model

pytest.importorskip("transformers")
T = TypeVar("T")
MODEL = "tiny"
LONG = {"max_tokens": 100, "ignore_eos": True}


class FailingEngine(LLMEngine):
    """Fails its step once `steps_left` reaches 0 (None: never)."""

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.steps_left: int | None = None

    def step(self) -> list[SequenceOutput]:
        if self.steps_left is not None:
            if self.steps_left == 0:
                self.steps_left = None
                raise RuntimeError("injected failure")
            self.steps_left -= 1
        return super().step()


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> FailingEngine:
    folder = tiny_model.make_tiny_model(tmp_path_factory.mktemp("tiny"))
    return FailingEngine(EngineConfig(model=folder, device="cpu", kv_cache_memory=1 << 20))


def run(llm: FailingEngine, scenario: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    """`scenario` with a client of the app around a started engine that fails its third
    step from now."""

    async def main() -> T:
        engine = AsyncEngine(llm)
        engine.start()
        transport = httpx.ASGITransport(app=create_app(engine, MODEL))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://e") as client:
                llm.steps_left = 2
                return await scenario(client)
        finally:
            llm.steps_left = None
            await engine.shutdown(0)

    return asyncio.run(main())


def _events(body: str) -> list[Any]:
    data = [line.removeprefix("data: ") for line in body.split("\n\n") if line]
    return [item if item == "[DONE]" else json.loads(item) for item in data]


def test_an_unstreamed_request_gets_a_500(llm: FailingEngine) -> None:
    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        body = {"model": MODEL, "prompt": [5, 6], **LONG}
        failed = await client.post("/v1/completions", json=body)
        again = await client.post("/v1/completions", json={**body, "max_tokens": 2})
        return failed, again

    failed, again = run(llm, scenario)
    assert failed.status_code == 500
    error = failed.json()["error"]
    assert error["type"] == "internal_server_error" and "injected failure" in error["message"]
    assert again.status_code == 200


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/v1/completions", {"prompt": [[5, 6], [7]]}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
    ],
)
def test_a_stream_ends_with_an_error_event_then_done(
    llm: FailingEngine, path: str, fields: dict[str, Any]
) -> None:
    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        body = {"model": MODEL, "stream": True, **LONG, **fields}
        return await client.post(path, json=body)

    response = run(llm, scenario)
    assert response.status_code == 200
    assert response.text.endswith("data: [DONE]\n\n")
    *chunks, error, done = _events(response.text)
    assert done == "[DONE]" and error["error"]["code"] == 500
    assert all("error" not in chunk for chunk in chunks)


def test_a_v2_stream_ends_with_an_error_event(llm: FailingEngine) -> None:
    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        body = {"text_input": "hello", "parameters": LONG}
        return await client.post(f"/v2/models/{MODEL}/generate_stream", json=body)

    events = _events(run(llm, scenario).text)
    assert "injected failure" in events[-1]["error"]
    assert all("finish_reason" not in event for event in events[:-1])
