"""One structured line per request, buffered so that logging never stalls the request path.

Lines are JSON (orjson), gathered and written at most every 200 ms or every 64 KB. The prompt
is never logged unless the gateway was started with --log-prompts.
"""

from __future__ import annotations

import asyncio
import time
from typing import IO, Any

import orjson

FLUSH_SECONDS = 0.2
FLUSH_BYTES = 64 * 1024


def request_record(
    request_id: bytes,
    path: bytes,
    status: int,
    key: str | None,
    duration_s: float,
    cause: str | None,
    **served: Any,
) -> dict[str, Any]:
    """The one shape of a request's line. A request refused before it had a call (no key, no
    service) leaves `served` empty and gets its defaults; a served one passes every field."""
    record: dict[str, Any] = {
        "ts": time.time(),
        "event": "request",
        "request_id": request_id.decode(),
        "path": path.decode("latin-1"),
        "status": status,
        "key": key,
        **REFUSED,
        "duration_ms": round(duration_s * 1000, 2),
        "cause": cause,
    }
    unknown = served.keys() - REFUSED.keys() - {"prompt"}
    if unknown:
        raise TypeError(f"not an access-log field: {sorted(unknown)}")
    record.update(served)
    return record


REFUSED: dict[str, Any] = {
    "service": "-",
    "model": None,
    "endpoint": "-",
    "stream": None,
    "prompt_tokens": 0,
    "completion_tokens": 0,
    "cost": 0.0,
    "first_byte_ms": None,
    "retries": 0,
    "resumes": 0,
    "fallback": None,
}


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
