"""Where inferplane keeps its state on this machine, by default: one definition for every process.

`$INFERPLANE_DATA_DIR` if it is set (and not empty), else `~/.inferplane`. The control plane
keeps its SQLite store and admin token there, the CLI reads that token from there, `inferplane
up` passes the variable to its children so that they all agree, and agents, the gateway and
the engine keep their own state beneath it.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "INFERPLANE_DATA_DIR"


def default() -> Path:
    """The data directory: `$INFERPLANE_DATA_DIR` (a leading `~` expanded), else `in_home()`."""
    override = os.environ.get(ENV)
    return Path(override).expanduser() if override else in_home()


def in_home() -> Path:
    """~/.inferplane, the data directory when `$INFERPLANE_DATA_DIR` is not set. Command-line
    flags show it as their default: typer reads the variable itself (`envvar=ENV`)."""
    return Path.home() / ".inferplane"
