"""What the router knows of one request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RouteRequest:
    """The routing-relevant facts of one inference request."""

    prompt_text: str = ""
    """The prompt as text (chat messages already flattened); prefix-aware routing reads it."""
    session: str | None = None
    """The value of the Service's sessionHeader, if the client sent one."""
