"""``login`` and ``config ...``: which control plane the other commands talk to, as whom."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import typer

from inferplane import client as api_client
from inferplane import clientconfig, tls
from inferplane.cli import errors, options, output, session

config_app = typer.Typer(
    name="config",
    help="Show and switch the saved contexts (server, token, namespace).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Settings")(login)
    app.add_typer(config_app, rich_help_panel="Settings")


def login(
    ctx: typer.Context,
    url: Annotated[
        str,
        typer.Argument(
            help="The control plane's URL, e.g. https://cp.example.com.", show_default=False
        ),
    ],
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="An API key's token; asked for (hidden) when left out.",
            show_default=False,
        ),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            "--context", help="Name to save the context under; default: the URL's host and port."
        ),
    ] = None,
    namespace: Annotated[
        str,
        typer.Option("--namespace", "-n", help="Namespace the context works in by default."),
    ] = clientconfig.DEFAULT_NAMESPACE,
    ca_bundle: options.CaBundle = None,
    client_cert: options.ClientCert = None,
    client_key: options.ClientKey = None,
) -> None:
    """Check a token against a control plane, then save it as the current context, with
    the CA bundle to verify its certificate and the client certificate to present, if given
    (saved as absolute paths).

    Examples:

    inferplane login https://cp.example.com --token ipk_... --namespace team-a
    inferplane login http://127.0.0.1:8470 --context local
    inferplane login https://cp.example.com:8470 --token ipk_... --ca-bundle pki/ca.crt
    """
    with errors.reported():
        files = [p.resolve() if p else None for p in (ca_bundle, client_cert, client_key)]
        secret = token or typer.prompt("Token", hide_input=True)
        _check_token(session.of(ctx), url, secret, namespace, options.client_tls(*files))
        name = context or urlsplit(url).netloc or url
        config = clientconfig.load()
        paths = [str(p) if p else None for p in files]
        config.upsert(clientconfig.Context(name, url, secret, namespace, *paths))
        config.current_context = name
        path = clientconfig.save(config)
        typer.echo(f"logged in to {url}; context {name!r} saved in {path} and now current")


def _check_token(
    current: session.Session,
    url: str,
    token: str,
    namespace: str,
    files: tls.ClientTLS | None,
) -> None:
    """Any authenticated read proves the token (and the TLS files); every role may list
    fleet-scoped kinds."""
    with current.client_for(url, token, namespace, tls=files) as client:
        try:
            client.list("Cluster")
        except api_client.Unauthorized as exc:
            raise errors.UsageError(f"{url} refused the token: {exc.message}") from exc


@config_app.command("get-contexts")
def get_contexts() -> None:
    """List the saved contexts; the current one is marked with '*'.

    Example:

    inferplane config get-contexts
    """
    with errors.reported():
        config = clientconfig.load()
        if not config.contexts:
            typer.echo("No contexts saved; add one with: inferplane login URL --token T", err=True)
            return
        rows = [
            ["*" if c.name == config.current_context else "", c.name, c.server, c.namespace]
            for c in config.contexts
        ]
        output.Table(["CURRENT", "NAME", "SERVER", "NAMESPACE"]).print(rows)


@config_app.command("use-context")
def use_context(
    name: Annotated[str, typer.Argument(help="Name of a saved context.", show_default=False)],
) -> None:
    """Make a saved context the current one.

    Example:

    inferplane config use-context prod
    """
    with errors.reported():
        config = clientconfig.load()
        config.find(name)
        config.current_context = name
        clientconfig.save(config)
        typer.echo(f"switched to context {name!r}")


@config_app.command("current-context")
def current_context() -> None:
    """Print the name of the current context.

    Example:

    inferplane config current-context
    """
    with errors.reported():
        name = clientconfig.load().current_context
        if not name:
            raise errors.UsageError("no current context; set one with: inferplane login URL")
        typer.echo(name)
