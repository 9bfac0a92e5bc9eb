"""The engine behind an asyncio server: one background thread runs `LLMEngine.step()`.

The event loop never touches the engine. It posts commands (add, abort) to a queue under a
condition; the engine thread applies them between steps, steps while anything is unfinished,
sleeps on the condition when idle, and hands each SequenceOutput to its request's asyncio
queue with `loop.call_soon_threadsafe`. A consumer that stops listening (a client
disconnect cancels it) aborts its request at once, so its blocks are freed in the next
iteration of the loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from inferplane.engine.llm import EngineInfo, LLMEngine
from inferplane.engine.outputs import SequenceOutput
from inferplane.engine.sampling_params import SamplingParams

log = logging.getLogger(__name__)


class EngineUnavailable(RuntimeError):
    """The engine is shutting down (or its loop died) and takes no new requests: a 503."""


class EngineStepFailed(RuntimeError):
    """A step of the engine failed; every request in it was aborted (a 500, or an error
    event in a stream)."""


ABORT_DELIVERY_S = 5.0
"""After aborting what outlived the grace period, how long `drain` waits for the consumers
to take their final `abort` outputs."""


@dataclass(frozen=True)
class EngineStats:
    """A snapshot of the engine's state, published by the engine thread after every step."""

    num_running: int = 0
    num_waiting: int = 0
    kv_cache_usage: float = 0.0
    """Fraction of KV blocks in use, 0..1."""
    prefix_cache_queries: int = 0
    """Prompt tokens looked up in the prefix cache, cumulative."""
    prefix_cache_hits: int = 0
    """Of those, tokens found, cumulative."""


Item = SequenceOutput | BaseException


@dataclass
class _Sink:
    """Where the outputs of one request go: an asyncio queue on its event loop."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Item]
    n: int
    finished: set[int] = field(default_factory=set)
    """Indexes of finished sequences, as the engine thread saw them (only it touches this)."""

    def put(self, item: Item) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


@dataclass(frozen=True)
class _Add:
    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    priority: int
    sink: _Sink


@dataclass(frozen=True)
class _Abort:
    request_id: str


@dataclass(frozen=True)
class _AbortAll:
    """Abort every request and tell each consumer `finish_reason="abort"`."""


Command = _Add | _Abort | _AbortAll


class AsyncEngine:
    """Owns an LLMEngine and its one stepping thread; `generate` streams a request's outputs."""

    def __init__(self, engine: LLMEngine, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        # Read here, before the engine thread starts, and never changed after: the server
        # reads the tokenizer and limits from the event loop, which never touches the engine.
        self.info: EngineInfo = engine.info()
        self.clock = clock
        self.stats = EngineStats()
        self._cond = threading.Condition()
        self._commands: list[Command] = []
        self._sinks: dict[str, _Sink] = {}
        self._in_flight: set[str] = set()
        self._accepting = True
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- lifecycle (event loop side) -----------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="engine-loop", daemon=True)
        self._thread.start()

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def num_in_flight(self) -> int:
        return len(self._in_flight)

    def stop_admitting(self) -> None:
        """New requests get EngineUnavailable from now on; in-flight ones go on."""
        self._accepting = False

    async def drain(self, grace: float) -> None:
        """Stop admitting; let in-flight requests finish for up to `grace` seconds; then
        abort the rest, each of their sequences ending with `finish_reason="abort"` (so a
        stream gets a final chunk rather than breaking off), and wait a little for their
        consumers to take those outputs."""
        self.stop_admitting()
        if await self._wait_idle(grace):
            return
        log.warning("aborting %d requests still running after %.1fs", len(self._in_flight), grace)
        self._post(_AbortAll())
        await self._wait_idle(ABORT_DELIVERY_S)

    async def _wait_idle(self, timeout: float) -> bool:
        """Whether every request's consumer finished within `timeout` seconds."""
        deadline = self.clock() + timeout
        while self._in_flight and self.clock() < deadline:
            await asyncio.sleep(0.02)
        return not self._in_flight

    async def shutdown(self, grace: float) -> None:
        """Drain (see `drain`), then stop the engine thread."""
        await self.drain(grace)
        self._post(_AbortAll())  # leave the LLMEngine empty whatever the consumers did
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    # -- requests (event loop side) ------------------------------------------------------

    async def generate(
        self,
        request_id: str,
        prompt_ids: list[int],
        params: SamplingParams,
        *,
        priority: int = 0,
    ) -> AsyncGenerator[SequenceOutput]:
        """The request's outputs as the engine makes them, until all `n` sequences finish.

        Raises the engine's RequestError (bad prompt) on the first iteration,
        EngineUnavailable when shutting down, and EngineStepFailed when a step fails.
        Stopping early aborts the request.
        """
        if not self._accepting:
            raise EngineUnavailable("the engine is shutting down")
        if request_id in self._in_flight:
            raise ValueError(f"request {request_id!r} is already running")
        sink = _Sink(asyncio.get_running_loop(), asyncio.Queue(), params.n)
        self._in_flight.add(request_id)
        self._post(_Add(request_id, prompt_ids, params, priority, sink))
        finished: set[int] = set()
        done = False
        try:
            while len(finished) < params.n:
                item = await sink.queue.get()
                if isinstance(item, BaseException):
                    done = True
                    raise item
                if item.finish_reason is not None:
                    finished.add(item.index)
                yield item
            done = True
        finally:
            self._in_flight.discard(request_id)
            if not done:
                self.abort(request_id)

    def abort(self, request_id: str) -> None:
        self._post(_Abort(request_id))

    def _post(self, command: Command) -> None:
        with self._cond:
            self._commands.append(command)
            self._cond.notify()

    # -- the engine thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._commands or self._stopping or self.engine.has_unfinished()):
                    self._cond.wait()
                commands, self._commands = self._commands, []
                stopping = self._stopping
            for command in commands:
                self._apply(command)
            if stopping and not commands:
                return
            self._step()

    def _apply(self, command: Command) -> None:
        if isinstance(command, _Add):
            try:
                self.engine.add_request(
                    command.request_id,
                    command.prompt_ids,
                    command.params,
                    priority=command.priority,
                )
            except ValueError as exc:
                command.sink.put(exc)
                return
            self._sinks[command.request_id] = command.sink
        elif isinstance(command, _Abort):
            self.engine.abort(command.request_id)
            self._sinks.pop(command.request_id, None)
        else:
            self._abort_all()
        self._publish_stats()

    def _abort_all(self) -> None:
        sinks, self._sinks = self._sinks, {}
        for request_id in sinks:
            self.engine.abort(request_id)
        self._publish_stats()  # before the consumers hear of it, as in _step
        for request_id, sink in sinks.items():
            for index in sorted(set(range(sink.n)) - sink.finished):
                sink.put(SequenceOutput(request_id, index, "", finish_reason="abort"))

    def _step(self) -> None:
        if not self.engine.has_unfinished():
            return
        try:
            outputs = self.engine.step()
        except Exception as exc:  # the top of the control loop: fail the batch, keep serving
            log.exception("engine step failed; failing %d requests", len(self._sinks))
            self._fail_all(exc)
            return
        # Stats first: a consumer holding an output then reads stats at least as new as it
        # (a finished request's blocks already show as free).
        self._publish_stats()
        for output in outputs:
            self._dispatch(output)

    def _dispatch(self, output: SequenceOutput) -> None:
        sink = self._sinks.get(output.request_id)
        if sink is None:
            return
        sink.put(output)
        if output.finish_reason is not None:
            sink.finished.add(output.index)
            if len(sink.finished) >= sink.n:
                del self._sinks[output.request_id]

    def _fail_all(self, exc: Exception) -> None:
        sinks, self._sinks = self._sinks, {}
        for request_id in sinks:
            self.engine.abort(request_id)
        self._publish_stats()
        for sink in sinks.values():
            sink.put(EngineStepFailed(f"engine step failed: {exc}"))

    def _publish_stats(self) -> None:
        blocks = self.engine.blocks
        self.stats = EngineStats(
            num_running=self.engine.scheduler.num_running,
            num_waiting=self.engine.scheduler.num_waiting,
            kv_cache_usage=blocks.usage,
            prefix_cache_queries=blocks.prefix_cache_queries,
            prefix_cache_hits=blocks.prefix_cache_hits,
        )
