"""One structured line per request, buffered so that logging never stalls the request path.

Lines are JSON (orjson), gathered and written at most every 200 ms or every 64 KB. The prompt
is never logged unless the gateway was started with --log-prompts.
"""

from __future__ import annotations

import asyncio
from typing import IO, Any

import orjson

FLUSH_SECONDS = 0.2
FLUSH_BYTES = 64 * 1024


class AccessLog:
    def __init__(self, out: IO[bytes] | None) -> None:
        self._out = out
        self._lines: list[bytes] = []
        self._size = 0
        self._scheduled = False

    @property
    def enabled(self) -> bool:
        return self._out is not None

    def write(self, record: dict[str, Any]) -> None:
        if self._out is None:
            return
        line = orjson.dumps(record) + b"\n"
        self._lines.append(line)
        self._size += len(line)
        if self._size >= FLUSH_BYTES:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._out is None or not self._lines:
            return
        data, self._lines, self._size = b"".join(self._lines), [], 0
        try:
            self._out.write(data)
            self._out.flush()
        except (OSError, ValueError):
            pass  # a closed or full log must not take the gateway down
