"""The tunnel's frames: one binary WebSocket message each, a 5-byte head and a payload.

The head is the frame's type (1 byte) and its stream (4 bytes, big-endian). A stream is one
TCP connection from the global gateway to an engine in the plane, opened by the global side:

- OPEN (global → edge): payload "host:port", the engine to connect to;
- OPENED (edge → global): connected;
- DATA (both ways): bytes of the connection, as they came;
- CLOSE (both ways): the connection ended; payload the reason, empty for a clean end;
- PAUSE / RESUME (both ways): the sender's reader is full / has room again, so the other
  side stops / starts reading its socket for this stream (per-stream flow control: one slow
  client does not stall the other streams of the tunnel).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

HEAD = struct.Struct(">BI")
MAX_STREAM = 2**32 - 1
MAX_TARGET = 300
"""Longest OPEN payload: a host name (253) and a port."""


class Kind(enum.IntEnum):
    OPEN = 1
    OPENED = 2
    DATA = 3
    CLOSE = 4
    PAUSE = 5
    RESUME = 6


class FrameError(ValueError):
    """A message that is not a frame of this protocol."""


@dataclass(frozen=True)
class Frame:
    kind: Kind
    stream: int
    payload: bytes = b""


def encode(kind: Kind, stream: int, payload: bytes = b"") -> bytes:
    return HEAD.pack(kind, stream) + payload


def decode(message: bytes | str) -> Frame:
    """The frame in one WebSocket message; FrameError for anything else."""
    if isinstance(message, str) or len(message) < HEAD.size:
        raise FrameError("a frame is a binary message of at least 5 bytes")
    raw_kind, stream = HEAD.unpack_from(message)
    try:
        kind = Kind(raw_kind)
    except ValueError:
        raise FrameError(f"unknown frame type {raw_kind}") from None
    payload = bytes(message[HEAD.size :])
    if kind is Kind.OPEN and len(payload) > MAX_TARGET:
        raise FrameError("OPEN names a target longer than a host and port")
    return Frame(kind, stream, payload)


def target(host: str, port: int) -> bytes:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}".encode()


def parse_target(payload: bytes) -> tuple[str, int]:
    """(host, port) of an OPEN payload; FrameError when it is not one."""
    try:
        text = payload.decode("ascii")
        host, _, port_text = text.rpartition(":")
        port = int(port_text)
    except (UnicodeDecodeError, ValueError):
        raise FrameError(f"OPEN target {payload[:80]!r} is not host:port") from None
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not 0 < port < 65536:
        raise FrameError(f"OPEN target {text[:80]!r} is not host:port")
    return host, port
