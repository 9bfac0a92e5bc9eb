"""A Flow drives a handler's coroutine as a Task would: at once, through futures, cancelled."""

from __future__ import annotations

import asyncio

import pytest

from inferplane.gateway.wire.flow import Flow


def _in_loop(body: object) -> None:
    async def main() -> None:
        await body()  # type: ignore[operator]

    asyncio.run(main())


def test_the_first_step_runs_at_once_and_a_handler_that_never_waits_is_done() -> None:
    async def body() -> None:
        seen: list[str] = []

        async def handler() -> None:
            seen.append("ran")

        flow = Flow(handler(), asyncio.get_running_loop())
        assert seen == [] and not flow.done(), "nothing runs before start"
        flow.start()
        assert seen == ["ran"] and flow.done()

    _in_loop(body)


def test_a_handler_resumes_when_the_future_it_awaits_is_done() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        got: list[int] = []

        async def handler() -> None:
            got.append(await future)
            await asyncio.sleep(0)  # a bare yield
            got.append(await asyncio.wait_for(asyncio.sleep(0.01, 7), 5))

        flow = Flow(handler(), loop)
        flow.start()
        assert not flow.done()
        future.set_result(3)
        for _ in range(50):
            if flow.done():
                break
            await asyncio.sleep(0.01)
        assert got == [3, 7] and flow.done()

    _in_loop(body)


def test_cancel_throws_into_the_handler_and_cancels_what_it_awaits() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        cleaned: list[str] = []

        async def handler() -> None:
            try:
                await future
            except asyncio.CancelledError:
                cleaned.append("cancelled")
                raise

        flow = Flow(handler(), loop)
        flow.start()
        flow.cancel()
        assert future.cancelled()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert cleaned == ["cancelled"] and flow.done()

    _in_loop(body)


def test_a_flow_cancelled_before_it_starts_never_runs() -> None:
    async def body() -> None:
        ran: list[str] = []

        async def handler() -> None:
            ran.append("ran")

        flow = Flow(handler(), asyncio.get_running_loop())
        flow.cancel()
        flow.start()
        assert ran == [] and flow.done()

    _in_loop(body)


def test_an_escaping_exception_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async def handler() -> None:
            raise ValueError("a bug")

        flow = Flow(handler(), asyncio.get_running_loop())
        flow.start()
        assert flow.done()

    _in_loop(body)
    assert "request handler failed" in caplog.text and "a bug" in caplog.text


def test_yielding_something_that_is_not_a_future_is_an_error_in_the_handler() -> None:
    class Odd:
        def __await__(self):  # type: ignore[no-untyped-def]
            yield "odd"

    async def body() -> None:
        errors: list[str] = []

        async def handler() -> None:
            try:
                await Odd()
            except RuntimeError as error:
                errors.append(str(error))

        flow = Flow(handler(), asyncio.get_running_loop())
        flow.start()
        await asyncio.sleep(0)
        assert errors and "not a future" in errors[0] and flow.done()

    _in_loop(body)
