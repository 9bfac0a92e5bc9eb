"""Generate docs/reference/cli.md from the command tree, so the reference never drifts.

Run `python -m inferplane.cli.reference > docs/reference/cli.md`; a test fails when the file
differs from what this prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from inferplane.cli.main import app

HEADER = """\
# CLI reference

Generated from `inferplane --help` by `python -m inferplane.cli.reference`; do not edit.

Every command takes `--context NAME` (before the command) to pick a saved context. The
server and token come from, in order: `INFERPLANE_SERVER` / `INFERPLANE_TOKEN`, the current
context in `~/.inferplane/config` (`INFERPLANE_CONFIG` moves it), and, for a control plane on
this machine, `http://127.0.0.1:8470` with the admin token in `~/.inferplane/admin-token`.
Exit codes: 0 success, 1 an error (printed as `error: …` on stderr), 2 bad usage.
"""


def render() -> str:
    root = typer.main.get_command(app)
    parts = [HEADER]
    for name, command in _walk(root, "inferplane"):
        parts.append(_section(name, command))
    return "\n".join(parts)


# typer vendors its own click, so commands and parameters are read by duck typing.
def _walk(command: Any, path: str) -> list[tuple[str, Any]]:
    if not hasattr(command, "list_commands"):
        return [(path, command)]
    found: list[tuple[str, Any]] = []
    ctx = command.context_class(command)
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is not None and not sub.hidden:
            found += _walk(sub, f"{path} {name}")
    return found


def _section(name: str, command: Any) -> str:
    ctx = command.context_class(command, info_name=name)
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = [f"## `{name}`", "", f"```\n{name} {usage}\n```", "", _help(command.help or ""), ""]
    rows = [_param_row(p) for p in command.params if not getattr(p, "hidden", False)]
    if rows:
        lines += ["| option | meaning |", "|---|---|", *rows, ""]
    return "\n".join(lines)


def _help(text: str) -> str:
    """The help text with its examples fenced as shell."""
    prose, _, examples = text.strip().partition("Examples:")
    if not examples.strip():
        return prose.strip()
    commands = [line.strip() for line in examples.strip().splitlines() if line.strip()]
    return prose.strip() + "\n\nExamples:\n\n```sh\n" + "\n".join(commands) + "\n```"


def _param_row(param: Any) -> str:
    names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    option = param.param_type_name == "option"
    if not option:
        names = f"`{(param.metavar or param.name or '').upper()}`"
    text = getattr(param, "help", None) or ""
    default = param.default
    if option and default not in (None, False, (), []) and param.show_default is not False:
        shown = str(default).replace(str(Path.home()), "~")  # the same docs on every machine
        text += f" (default: `{shown}`)"
    if option and param.envvar:
        text += f" (env: `{param.envvar}`)"
    cell = text.replace("|", "\\|").replace("\n", " ")
    return f"| {names} | {cell} |"


if __name__ == "__main__":
    print(render(), end="")
