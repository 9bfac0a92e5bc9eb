"""Children that die with their parent: `inferplane up`'s processes, the agent's engines."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with(parent: int) -> Callable[[], None] | None:
    """A pre-exec hook that has the kernel SIGTERM the child when `parent` dies (Linux; None
    elsewhere), so that a kill -9 of the parent leaves no orphan behind.

    The kernel ties this to the thread that forked, so a parent starts such children from its
    main thread only.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the hook ran
            os._exit(1)

    return hook


def interruptible() -> None:
    """Make SIGINT raise KeyboardInterrupt even if this process was started with it ignored.

    A shell without job control starts background commands with SIGINT ignored, and Python
    then leaves it ignored; commands that run until interrupted (`up`, `logs -f`) must
    still stop on Ctrl-C or a SIGINT from their parent.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
