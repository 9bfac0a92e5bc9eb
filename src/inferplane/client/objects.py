"""Objects as the client hands them over: plain dicts, exactly as the server sends them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Object = dict[str, Any]
Objects = list[Object]


@dataclass(frozen=True)
class ObjectList:
    """A list answer: the items and the resourceVersion a following watch should start from."""

    items: list[Object]
    resource_version: str
