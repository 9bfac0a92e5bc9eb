"""`inferplane control` and `inferplane up`: the commands that run the system's processes."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel

from inferplane.control.settings import DEFAULT_PORT, default_data_dir

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="INFERPLANE_DATA_DIR",
        help="Directory for the SQLite store and the admin token (created if missing).",
        show_default=True,
    ),
]
Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(help="Port of the control plane's resource API.")]
LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error.")]


def control(
    data_dir: DataDir = default_data_dir(),
    host: Host = "127.0.0.1",
    port: Port = DEFAULT_PORT,
    store: Annotated[
        str | None,
        typer.Option(
            envvar="INFERPLANE_STORE",
            help="Store URL: sqlite:///PATH or postgresql://USER@HOST:PORT/DB. "
            "Default: SQLite in --data-dir.",
        ),
    ] = None,
    watch_history: Annotated[
        int, typer.Option(help="Changes kept for watch resumption; older versions get 410 Gone.")
    ] = 100_000,
    controllers: Annotated[
        bool, typer.Option(help="Run the reconcile loops (turn off to serve the bare API).")
    ] = True,
    log_level: LogLevel = "info",
) -> None:
    """Run the control plane: resource API, admission, auth, controllers.

    At first start it creates a fleet-admin token in DATA_DIR/admin-token (mode 0600);
    the CLI on the same machine finds it there.

    Examples:

    inferplane control --port 8470 --data-dir ./state
    INFERPLANE_STORE=postgresql://inferplane@db:5432/inferplane inferplane control
    """
    from inferplane.control.main import serve
    from inferplane.control.settings import ControlSettings

    settings = ControlSettings(
        data_dir=data_dir.expanduser(),
        host=host,
        port=port,
        store_url=store,
        watch_history=watch_history,
        controllers=controllers,
        log_level=log_level,
    )
    serve(settings)


def up(
    data_dir: DataDir = default_data_dir(),
    port: Port = DEFAULT_PORT,
    log_level: LogLevel = "warning",
) -> None:
    """Run the whole system on this machine with embedded defaults (SQLite store).

    Today this starts the control plane; the agent, gateway and reference engine join it as
    their issues land. Stop with Ctrl-C: every child is stopped gracefully.

    Examples:

    inferplane up
    inferplane up --data-dir ./state --port 9470
    """
    from inferplane.supervisor import Child, Supervisor

    console = Console(stderr=True)
    if not _port_free(port):
        console.print(
            f"[red]error:[/red] port {port} is in use (another inferplane up or control?);"
            " stop it or pass --port"
        )
        raise typer.Exit(1)
    data_dir = data_dir.expanduser()
    url = f"http://127.0.0.1:{port}"
    control_child = Child(
        "control plane",
        ["control", "--port", str(port), "--data-dir", str(data_dir), "--log-level", log_level],
        f"{url}/readyz",
    )
    supervisor = Supervisor([control_child], data_dir)
    with console.status("starting the control plane…"):
        failed = supervisor.start()
    if failed:
        supervisor.stop()
        console.print(f"[red]error:[/red] {', '.join(c.name for c in failed)} did not start")
        raise typer.Exit(1)
    console.print(_banner(url, data_dir))
    raise typer.Exit(supervisor.wait())


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _banner(url: str, data_dir: Path) -> Panel:
    token_path = data_dir / "admin-token"
    lines = [
        f"[bold]control plane[/bold]  {url}",
        f"[bold]API docs[/bold]       {url}/docs",
        f"[bold]admin token[/bold]    {token_path}",
        f"[bold]store[/bold]          sqlite in {data_dir}",
        "",
        "The agent, gateway and engine are not started yet: they arrive with the",
        "workload-plane, engine and gateway issues. Try:",
        "  inferplane get deployments -A",
        "  inferplane explain Deployment.spec",
        "",
        "Ctrl-C stops everything.",
    ]
    if os.environ.get("INFERPLANE_DATA_DIR") is None and data_dir != default_data_dir():
        lines.insert(-1, f"  export INFERPLANE_DATA_DIR={data_dir}")
    return Panel("\n".join(lines), title="inferplane is up", expand=False)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Run")(control)
    app.command(rich_help_panel="Run")(up)
