"""docs/api-keys.md: its ledger example prints what the page says, and its YAML is valid."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import yaml

from inferplane.api import validation

PAGE = pathlib.Path(__file__).parents[3] / "docs" / "api-keys.md"


def test_the_ledger_example_runs_as_shown() -> None:
    text = PAGE.read_text()
    code = re.search(r"```python\nfrom inferplane.policy import quotas\n(.*?)```", text, re.S)
    shown = re.search(r"It prints:\n\n```\n(.*?)```", text, re.S)
    assert code is not None and shown is not None
    out = io.StringIO()
    source = "from inferplane.policy import quotas\n" + code.group(1)
    with contextlib.redirect_stdout(out):
        exec(compile(source, str(PAGE), "exec"), {})
    assert out.getvalue() == shown.group(1)


def test_every_yaml_example_is_a_valid_object() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), re.S)
    kinds = [validation.parse_object(yaml.safe_load(block)).kind for block in blocks]
    assert kinds == ["ApiKey", "Service", "Quota"]
