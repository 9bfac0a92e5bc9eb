"""Where a tail of N lines starts, read through the runtime's paged log reads."""

from __future__ import annotations

import pytest

from inferplane.agent import logship
from inferplane.agent.runtime import base


def reader(data: bytes) -> logship.ReadLog:
    def read_log(name: str, *, offset: int, limit: int) -> base.LogChunk:
        chunk = data[offset : offset + limit]
        return base.LogChunk(data=chunk, offset=offset + len(chunk), size=len(data))

    return read_log


@pytest.mark.parametrize(
    ("data", "lines", "expected"),
    [
        (b"a\nb\nc\n", 1, b"c\n"),
        (b"a\nb\nc\n", 2, b"b\nc\n"),
        (b"a\nb\nc", 1, b"c"),  # a last line without its newline counts
        (b"a\nb\nc\n", 10, b"a\nb\nc\n"),
        (b"a\nb\n", 0, b""),
        (b"", 3, b""),
    ],
)
def test_tail_offset(data: bytes, lines: int, expected: bytes) -> None:
    offset = logship.tail_offset(reader(data), "ns/x", lines)
    assert data[offset:] == expected


def test_tail_offset_across_pages() -> None:
    data = b"".join(f"line {i:06d}\n".encode() for i in range(20_000))  # ~240 KiB
    offset = logship.tail_offset(reader(data), "ns/x", 12_345)
    assert data[offset:].count(b"\n") == 12_345
    assert data[offset:].startswith(b"line 007655\n")
