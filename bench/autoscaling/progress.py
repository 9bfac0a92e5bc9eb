"""Progress on stderr: which phase the bench is in, and the seconds since it started."""

from __future__ import annotations

import sys
import time

_START = time.monotonic()


def elapsed() -> float:
    return time.monotonic() - _START


def note(phase: str, message: str) -> None:
    """One line on stderr: `[  12.3 s] phase: message`."""
    print(f"[{elapsed():7.1f} s] {phase}: {message}", file=sys.stderr, flush=True)
