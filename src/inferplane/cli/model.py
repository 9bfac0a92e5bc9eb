"""`inferplane model`: model folders the engine serves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

model_app = typer.Typer(help="Model folders: make the offline demo model.", no_args_is_help=True)


@model_app.command("create-demo")
def create_demo(
    path: Annotated[Path, typer.Argument(help="Folder to write the model to (created).")],
    seed: Annotated[
        int, typer.Option(help="Seed: the same seed on the same machine, the same model.")
    ] = 0,
    steps: Annotated[
        int, typer.Option(min=1, help="Training steps (about 0.5-1 s each on 2 cores).")
    ] = 240,
) -> None:
    """Build a small Llama model folder offline: tokenizer trained here, weights trained on
    English that ships with Python, a chat template. Takes a minute or two.

    Examples:

    inferplane model create-demo ./demo
    inferplane model create-demo ./demo --seed 7 --steps 60
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from inferplane.engine import demo

    spec = demo.DemoSpec(seed=seed, steps=steps)
    columns = (
        TextColumn("training"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("train", total=steps, loss=float("nan"))

        def report(step: int, total: int, loss: float) -> None:
            progress.update(task, completed=step, loss=loss)

        demo.create_demo(path, spec, progress=report)
    typer.echo(f"demo model written to {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model", rich_help_panel="Run")
