"""A request handler's coroutine, driven without an asyncio.Task.

A Task per request costs about 4.5 µs here (creation, registration in asyncio's set of all
tasks, a loop turn before its first step, its done callbacks): a twentieth of what a whole
proxied request costs the gateway. A `Flow` runs the coroutine's first step at once, inside
the protocol callback that parsed the request, and resumes it from the done callback of each
future it awaits, as a Task does. What a flow does not offer, the handlers do not use:
`asyncio.current_task()` (and so `asyncio.timeout`), a result, done callbacks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("inferplane.gateway.wire")


class Flow:
    """Drives one coroutine to its end once started; `cancel` throws CancelledError into
    it, as Task.cancel does."""

    __slots__ = ("_coro", "_done", "_loop", "_must_cancel", "_waiting")

    def __init__(self, coro: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop) -> None:
        self._coro = coro
        self._loop = loop
        self._waiting: asyncio.Future[Any] | None = None
        self._must_cancel = False
        self._done = False

    def start(self) -> None:
        """Run the first step now (the caller has stored the flow: the coroutine may finish
        within this call, and what it does at its end may read where the flow is kept)."""
        self._step(None)

    def done(self) -> bool:
        return self._done

    def cancel(self) -> None:
        if self._done:
            return
        waiting = self._waiting
        if waiting is not None and waiting.cancel():
            return  # its done callback resumes the coroutine, which sees CancelledError
        self._must_cancel = True

    def _step(self, error: BaseException | None) -> None:
        if self._must_cancel:
            self._must_cancel = False
            error = asyncio.CancelledError()
        try:
            yielded = self._coro.send(None) if error is None else self._coro.throw(error)
        except StopIteration:
            self._done = True
            return
        except BaseException as unexpected:  # the handler catches its own: this is a bug
            self._done = True
            if isinstance(unexpected, KeyboardInterrupt | SystemExit):
                raise
            if not isinstance(unexpected, asyncio.CancelledError):
                log.error("request handler failed", exc_info=unexpected)
            return
        self._wait_on(yielded)

    def _wait_on(self, yielded: Any) -> None:
        """What the coroutine yielded: a future to wait for, or None (a bare yield, as
        `asyncio.sleep(0)` makes): run again on the next loop turn."""
        if yielded is None:
            self._loop.call_soon(self._step, None)
            return
        if getattr(yielded, "_asyncio_future_blocking", None) is None:
            error = RuntimeError(f"a request handler yielded {yielded!r}, not a future")
            self._loop.call_soon(self._step, error)
            return
        yielded._asyncio_future_blocking = False
        self._waiting = yielded
        yielded.add_done_callback(self._wakeup)
        if self._must_cancel and yielded.cancel():
            self._must_cancel = False

    def _wakeup(self, future: asyncio.Future[Any]) -> None:
        # The coroutine reads the future's result (or its exception) itself when resumed.
        self._waiting = None
        self._step(None)
