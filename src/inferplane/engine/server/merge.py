"""Several async iterators read as one, items in the order they come.

A `/v1/completions` request with several prompts runs one engine request per prompt; their
outputs interleave as the engine makes them, so each source is read by a task of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class _Item(Generic[T]):
    value: T


@dataclass(frozen=True)
class _Failed:
    error: Exception


@dataclass(frozen=True)
class _Ended:
    pass


async def merge(sources: Sequence[AsyncIterator[T]]) -> AsyncIterator[T]:
    """The items of all `sources` as each arrives. An error in one source is raised here;
    stopping early (or that error) cancels the readers, which closes every source."""
    queue: asyncio.Queue[_Item[T] | _Failed | _Ended] = asyncio.Queue()
    readers = [asyncio.create_task(_read(source, queue)) for source in sources]
    try:
        remaining = len(readers)
        while remaining:
            item = await queue.get()
            if isinstance(item, _Failed):
                raise item.error
            if isinstance(item, _Ended):
                remaining -= 1
            else:
                yield item.value
    finally:
        for reader in readers:
            reader.cancel()  # a cancelled reader's source runs its own cleanup (an abort)
        await asyncio.gather(*readers, return_exceptions=True)


async def _read(
    source: AsyncIterator[T], queue: asyncio.Queue[_Item[T] | _Failed | _Ended]
) -> None:
    try:
        async for value in source:
            queue.put_nowait(_Item(value))
    except Exception as exc:  # handed to the consumer, which raises it
        queue.put_nowait(_Failed(exc))
        return
    queue.put_nowait(_Ended())
