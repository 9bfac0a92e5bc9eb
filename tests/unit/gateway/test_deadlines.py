"""Waits on an upstream connection end at their deadline, checked by one ticking timer."""

from __future__ import annotations

import asyncio
import time

import pytest

from inferplane.gateway.wire import connection
from inferplane.gateway.wire.connection import TICK, Conn, Origin, wait


def test_a_wait_without_news_times_out_at_its_deadline_and_is_forgotten() -> None:
    async def body() -> float:
        conn = Conn(Origin("127.0.0.1", 1))
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await wait(conn, 0.1)
        took = time.monotonic() - started
        deadlines = connection._DEADLINES[asyncio.get_running_loop()]
        assert not deadlines.waits and conn.waiter is None
        return took

    took = asyncio.run(body())
    assert took >= 0.1, "not before its deadline"


def test_news_ends_a_wait_early_and_the_timer_stops_when_no_wait_is_open() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        conns = [Conn(Origin("127.0.0.1", 1)) for _ in range(3)]
        waits = [asyncio.ensure_future(wait(c, 30)) for c in conns]
        await asyncio.sleep(0)
        deadlines = connection._DEADLINES[loop]
        assert len(deadlines.waits) == 3
        for conn in conns:
            conn.on_message_complete()  # news: the response ended
        await asyncio.gather(*waits)
        assert not deadlines.waits
        await asyncio.sleep(TICK * 3)
        assert not deadlines._ticking, "no timer runs while nothing waits"

    asyncio.run(body())


def test_one_expired_wait_leaves_the_others_waiting() -> None:
    async def body() -> None:
        short, long = Conn(Origin("127.0.0.1", 1)), Conn(Origin("127.0.0.1", 1))
        patient = asyncio.ensure_future(wait(long, 30))
        with pytest.raises(TimeoutError):
            await wait(short, 0.05)
        assert not patient.done()
        long.on_message_complete()
        await patient

    asyncio.run(body())
