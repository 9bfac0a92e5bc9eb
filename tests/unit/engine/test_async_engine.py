"""AsyncEngine on the tiny random Llama: batching across concurrent callers, aborts that free
blocks, n > 1, errors raised to the caller, and the drain on shutdown.

Each test runs one AsyncEngine (and its thread) around a module-wide LLMEngine and shuts it
down at the end, which leaves that LLMEngine empty for the next test. Waiting for the engine
thread never sleeps: its commands are applied in order, so a later request finishing proves
an earlier abort was applied, and stats are published before the outputs of a step go out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest

from inferplane.engine.async_engine import AsyncEngine, EngineStepFailed, EngineUnavailable
from inferplane.engine.llm import EngineConfig, LLMEngine, RequestError
from inferplane.engine.outputs import SequenceOutput
from inferplane.engine.sampling_params import SamplingParams
from tests.support import tiny_model

pytest.importorskip("transformers")
T = TypeVar("T")
LONG = SamplingParams(max_tokens=200, ignore_eos=True)
"""Longer than any test waits for: such a request only ends by abort."""


class RecordingEngine(LLMEngine):
    """An LLMEngine that records how many requests each step advanced, and can be told to
    fail its next step."""

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self.batches: list[int] = []
        self.fail_next_step = False

    def step(self) -> list[SequenceOutput]:
        if self.fail_next_step:
            self.fail_next_step = False
            raise RuntimeError("injected failure")
        outputs = super().step()
        self.batches.append(len({output.request_id for output in outputs}))
        return outputs


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> RecordingEngine:
    folder = tiny_model.make_tiny_model(tmp_path_factory.mktemp("tiny"))
    return RecordingEngine(EngineConfig(model=folder, device="cpu", kv_cache_memory=1 << 20))


def run(llm: LLMEngine, scenario: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """`scenario` against a started AsyncEngine, shut down afterwards whatever happened."""

    async def main() -> T:
        engine = AsyncEngine(llm)
        engine.start()
        try:
            return await scenario(engine)
        finally:
            await engine.shutdown(0)

    return asyncio.run(main())


async def collect(
    engine: AsyncEngine, request_id: str, prompt: list[int], params: SamplingParams
) -> list[SequenceOutput]:
    return [output async for output in engine.generate(request_id, prompt, params)]


async def settle(engine: AsyncEngine) -> None:
    """Run one short request to its end: every command posted before it has been applied."""
    await collect(engine, "probe", [3, 4], SamplingParams(max_tokens=1))


def finish_reasons(outputs: list[SequenceOutput]) -> dict[int, str]:
    return {o.index: o.finish_reason for o in outputs if o.finish_reason is not None}


def test_concurrent_requests_share_steps(llm: RecordingEngine) -> None:
    params = SamplingParams(max_tokens=8, ignore_eos=True)

    async def scenario(engine: AsyncEngine) -> list[list[SequenceOutput]]:
        requests = [collect(engine, f"r{i}", [i + 5] * 4, params) for i in range(4)]
        return await asyncio.gather(*requests)

    before = len(llm.batches)
    results = run(llm, scenario)
    for outputs in results:
        assert sum(len(o.token_ids) for o in outputs) == 8
        assert finish_reasons(outputs) == {0: "length"}
    assert max(llm.batches[before:]) > 1


@pytest.mark.parametrize("how", ["cancel", "aclose"])
def test_a_consumer_that_stops_frees_its_blocks(llm: RecordingEngine, how: str) -> None:
    async def scenario(engine: AsyncEngine) -> tuple[float, float, int]:
        outputs = engine.generate("long", [7] * 20, LONG)
        started = asyncio.Event()

        async def consume() -> None:
            async for output in outputs:
                if output.completion_tokens >= 2:
                    started.set()
                    if how == "aclose":
                        return

        task = asyncio.create_task(consume())
        await started.wait()
        busy = engine.stats.kv_cache_usage
        if how == "cancel":  # what a client disconnect does to a streaming response
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await outputs.aclose()  # a no-op once cancelled; the abort when the consumer quit
        await settle(engine)
        return busy, engine.stats.kv_cache_usage, engine.stats.num_running

    busy, after, running = run(llm, scenario)
    assert busy > 0
    assert after == 0 and running == 0


def test_n_returns_n_finished_sequences(llm: RecordingEngine) -> None:
    params = SamplingParams(n=3, max_tokens=4, seed=1, ignore_eos=True)
    outputs = run(llm, lambda engine: collect(engine, "n3", [9, 10, 11], params))
    assert finish_reasons(outputs) == {0: "length", 1: "length", 2: "length"}
    assert sum(o.finish_reason is not None for o in outputs) == 3
    for index in range(3):
        assert sum(len(o.token_ids) for o in outputs if o.index == index) == 4


def test_request_errors_reach_the_caller_and_the_engine_serves_on(llm: RecordingEngine) -> None:
    async def scenario(engine: AsyncEngine) -> list[SequenceOutput]:
        with pytest.raises(RequestError) as empty:
            await collect(engine, "empty", [], SamplingParams())
        assert empty.value.param == "prompt"
        with pytest.raises(RequestError) as long:
            await collect(engine, "long", [5] * (llm.max_model_len + 1), SamplingParams())
        assert long.value.param == "prompt"
        running = engine.generate("twice", [5, 6], LONG)
        await anext(running)
        with pytest.raises(ValueError, match="already running"):
            await collect(engine, "twice", [5, 6], SamplingParams())
        await running.aclose()
        return await collect(engine, "fine", [5, 6], SamplingParams(max_tokens=2))

    assert finish_reasons(run(llm, scenario)) == {0: "length"}


def test_a_failed_step_fails_its_requests_and_the_engine_serves_on(
    llm: RecordingEngine,
) -> None:
    async def scenario(engine: AsyncEngine) -> list[SequenceOutput]:
        outputs = engine.generate("doomed", [5, 6], LONG)
        await anext(outputs)
        llm.fail_next_step = True
        with pytest.raises(EngineStepFailed, match="injected failure"):
            async for _ in outputs:
                pass
        return await collect(engine, "after", [5, 6], SamplingParams(max_tokens=2))

    assert finish_reasons(run(llm, scenario)) == {0: "length"}


def test_drain_lets_in_flight_requests_finish_then_refuses(llm: RecordingEngine) -> None:
    params = SamplingParams(max_tokens=6, ignore_eos=True)

    async def scenario(engine: AsyncEngine) -> list[SequenceOutput]:
        outputs = engine.generate("short", [5, 6], params)
        first = await anext(outputs)
        drain = asyncio.create_task(engine.drain(grace=60))
        rest = [output async for output in outputs]
        await drain
        assert not engine.accepting and engine.num_in_flight == 0
        with pytest.raises(EngineUnavailable):
            await collect(engine, "late", [5, 6], params)
        return [first, *rest]

    outputs = run(llm, scenario)
    assert finish_reasons(outputs) == {0: "length"}
    assert sum(len(o.token_ids) for o in outputs) == 6


def test_drain_ends_what_outlives_the_grace_with_abort(llm: RecordingEngine) -> None:
    params = SamplingParams(n=2, max_tokens=200, ignore_eos=True, seed=0)

    async def scenario(engine: AsyncEngine) -> tuple[list[SequenceOutput], float]:
        outputs = engine.generate("cut", [5, 6, 7], params)
        first = await anext(outputs)
        consumer = asyncio.create_task(_rest(outputs))
        await engine.drain(grace=0)
        seen = [first, *await consumer]
        return seen, engine.stats.kv_cache_usage

    outputs, usage = run(llm, scenario)
    assert finish_reasons(outputs) == {0: "abort", 1: "abort"}
    assert usage == 0


async def _rest(outputs: AsyncIterator[SequenceOutput]) -> list[SequenceOutput]:
    return [output async for output in outputs]


def test_shutdown_stops_the_engine_thread(llm: RecordingEngine) -> None:
    async def scenario() -> bool:
        engine = AsyncEngine(llm)
        engine.start()
        await collect(engine, "one", [5], SamplingParams(max_tokens=1))
        await engine.shutdown(grace=5)
        with pytest.raises(EngineUnavailable):
            await collect(engine, "two", [5], SamplingParams(max_tokens=1))
        return llm.has_unfinished()

    assert asyncio.run(scenario()) is False
