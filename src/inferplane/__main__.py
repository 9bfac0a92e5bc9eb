"""`python -m inferplane` is the `inferplane` command (used by `up` to start its children)."""

from inferplane.cli.main import app

app(prog_name="inferplane")
