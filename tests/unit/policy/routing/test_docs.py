"""The example in docs/routing-policies.md runs and prints what the page says."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

PAGE = pathlib.Path(__file__).parents[4] / "docs" / "routing-policies.md"


def test_the_documented_example_runs_as_shown() -> None:
    text = PAGE.read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    shown = re.search(r"It prints:\n\n```\n(.*?)```", text, re.S)
    assert code is not None and shown is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.group(1), str(PAGE), "exec"), {})
    assert out.getvalue() == shown.group(1)
