"""A watch stream: ADDED, MODIFIED, DELETED (and BOOKMARK) events, one per line."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import TracebackType

import httpx

from inferplane.client import errors
from inferplane.client.objects import Object


@dataclass(frozen=True)
class WatchEvent:
    """One line of a watch stream: ADDED, MODIFIED, DELETED or BOOKMARK, and the object."""

    type: str
    object: Object

    @property
    def resource_version(self) -> str | None:
        return (self.object.get("metadata") or {}).get("resourceVersion")


def event_from(line: str) -> WatchEvent:
    """The event one line of the stream carries; BadResponse when it carries none."""
    try:
        raw = json.loads(line)
        return WatchEvent(type=str(raw["type"]), object=raw.get("object") or {})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        message = f"the server sent a watch line that is not an event: {line[:200]!r}"
        raise errors.ApiError(200, "BadResponse", message, []) from exc


@dataclass
class Watch(Iterator[WatchEvent]):
    """A watch stream, opened on the first ``next()``; iteration ends when the server closes it.

    ``resource_version`` is the last version seen (events and bookmarks alike): watch again from
    it after the stream ends and nothing is missed or seen twice.
    """

    open_stream: Callable[[], AbstractContextManager[httpx.Response]]
    """Opens the HTTP stream (Connection.stream): errors and transport failures raise."""
    resource_version: str | None = None
    bookmarks: bool = False
    """Yield BOOKMARK events too; they always advance ``resource_version``."""
    _events: Generator[WatchEvent, None, None] | None = field(default=None, init=False)

    def __next__(self) -> WatchEvent:
        if self._events is None:
            self._events = self._stream()
        return next(self._events)

    def close(self) -> None:
        """Drop the connection; safe at any time, and iterating afterwards stops at once."""
        if self._events is None:
            self._events = self._stream()
        self._events.close()

    def __enter__(self) -> Watch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _stream(self) -> Generator[WatchEvent, None, None]:
        with self.open_stream() as response:
            yield from self._parse(response.iter_lines())

    def _parse(self, lines: Iterator[str]) -> Iterator[WatchEvent]:
        for line in lines:
            if not line.strip():
                continue
            event = event_from(line)
            if event.type == "ERROR":
                raise errors.error_from_status(int(event.object.get("code") or 500), event.object)
            self.resource_version = event.resource_version or self.resource_version
            if event.type != "BOOKMARK" or self.bookmarks:
                yield event
