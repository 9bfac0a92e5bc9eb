"""A benchmark's results as JSON: to a file, or to stdout with '-'."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(where: str, data: dict[str, object]) -> None:
    text = json.dumps(data, indent=1, default=str)
    if where == "-":
        print(text)
    else:
        Path(where).write_text(text)
        print(f"JSON in {where}")
