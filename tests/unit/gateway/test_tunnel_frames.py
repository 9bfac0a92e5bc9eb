"""The tunnel's frames: what goes over the WebSocket, and what a hostile far end cannot make
either side accept."""

from __future__ import annotations

import pytest

from inferplane.gateway.tunnel import frames


def test_a_frame_survives_the_wire() -> None:
    message = frames.encode(frames.Kind.DATA, 7, b"payload")
    assert frames.decode(message) == frames.Frame(frames.Kind.DATA, 7, b"payload")
    assert frames.decode(frames.encode(frames.Kind.CLOSE, frames.MAX_STREAM)).stream == 2**32 - 1


@pytest.mark.parametrize("message", [b"", b"\x03\x00", "text", b"\x09\x00\x00\x00\x01"])
def test_what_is_not_a_frame_is_refused(message: bytes | str) -> None:
    with pytest.raises(frames.FrameError):
        frames.decode(message)


def test_targets_are_host_and_port_and_nothing_else() -> None:
    assert frames.parse_target(frames.target("10.0.0.5", 8001)) == ("10.0.0.5", 8001)
    assert frames.parse_target(frames.target("fd00::1", 80)) == ("fd00::1", 80)
    for bad in (b"no-port", b"host:0", b"host:70000", b":80", "h\xe9:1".encode(), b"h:x"):
        with pytest.raises(frames.FrameError):
            frames.parse_target(bad)
    with pytest.raises(frames.FrameError, match="longer"):
        frames.decode(frames.encode(frames.Kind.OPEN, 1, b"a" * 400 + b":1"))
