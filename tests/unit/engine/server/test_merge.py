"""merge(): items of several async iterators as they come; errors raised; sources closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from inferplane.engine.server.merge import merge


class Source:
    """Yields its items, each after the gate of that item opens; records being closed."""

    def __init__(self, items: list[str], *, fail: bool = False) -> None:
        self.items = items
        self.fail = fail
        self.gates = [asyncio.Event() for _ in items]
        self.closed = False

    async def run(self) -> AsyncIterator[str]:
        try:
            for item, gate in zip(self.items, self.gates, strict=True):
                await gate.wait()
                yield item
            if self.fail:
                raise RuntimeError("source failed")
        finally:
            self.closed = True


def test_items_come_in_arrival_order_across_sources() -> None:
    async def main() -> list[str]:
        a, b = Source(["a1", "a2"]), Source(["b1"])
        merged = merge([a.run(), b.run()])
        order = [b.gates[0], a.gates[0], a.gates[1]]
        seen = []
        for gate in order:
            gate.set()
            seen.append(await anext(merged))
        with pytest.raises(StopAsyncIteration):
            await anext(merged)
        return seen

    assert asyncio.run(main()) == ["b1", "a1", "a2"]


def test_an_error_in_one_source_is_raised_and_closes_the_others() -> None:
    async def main() -> tuple[bool, bool]:
        bad, slow = Source([], fail=True), Source(["never"])
        with pytest.raises(RuntimeError, match="source failed"):
            async for _ in merge([bad.run(), slow.run()]):
                pass
        return bad.closed, slow.closed

    assert asyncio.run(main()) == (True, True)


def test_stopping_early_closes_every_source() -> None:
    async def main() -> list[bool]:
        sources = [Source(["x", "y"]), Source(["z"])]
        for source in sources:
            source.gates[0].set()
        merged = merge([source.run() for source in sources])
        await anext(merged)
        await merged.aclose()
        return [source.closed for source in sources]

    assert asyncio.run(main()) == [True, True]
