"""`inferplane gateway`: the OpenAI-compatible front door."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from inferplane import clientconfig
from inferplane.cli import options


def gateway(
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    control: options.ControlUrl = clientconfig.DEFAULT_SERVER,
    token: options.FleetToken = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="Serve the Services, Endpoints, ApiKeys and Quotas in this YAML file instead "
            "of following a control plane (tests, benchmarks, a gateway of its own).",
            show_default=False,
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="This gateway's region: endpoints there are preferred, others take the "
            "overflow when they are saturated or failing.",
            show_default=False,
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the last routing table and the quota usage are kept, so a restart "
            "serves even with the control plane down. Default: $INFERPLANE_DATA_DIR/gateway.",
            show_default=False,
        ),
    ] = None,
    access_log: Annotated[
        str, typer.Option(help="File for the access log (one JSON line per request); - is stderr.")
    ] = "-",
    no_access_log: Annotated[bool, typer.Option(help="Write no access log.")] = False,
    log_prompts: Annotated[
        bool, typer.Option(help="Include the prompt text in access-log lines (off: never).")
    ] = False,
    drain: Annotated[
        float, typer.Option(help="Seconds in-flight requests may finish after SIGTERM.", min=0)
    ] = 30.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    tls_cert: options.TlsCert = None,
    tls_key: options.TlsKey = None,
    ca_bundle: options.CaBundle = None,
    client_cert: options.ClientCert = None,
    client_key: options.ClientKey = None,
    upstream_ca_bundle: Annotated[
        Path | None,
        typer.Option(
            help="PEM CA certificates to trust for https:// upstreams (external Endpoints) "
            "besides the system's, e.g. a private upstream's CA.",
            show_default=False,
        ),
    ] = None,
    allow_secret_env: Annotated[
        list[str] | None,
        typer.Option(
            help="An environment variable an Endpoint's apiKeySecretRef may name (repeat; the "
            "control plane needs the same flag). Default: none, only Secrets.",
            show_default=False,
        ),
    ] = None,
    allow_secret_file: Annotated[
        list[str] | None,
        typer.Option(
            help="A file an Endpoint's apiKeySecretRef may name (repeat; the control plane needs "
            "the same flag). Default: none, only Secrets.",
            show_default=False,
        ),
    ] = None,
    plane: Annotated[
        str | None,
        typer.Option(
            help="Be the edge of this cluster's plane: route only to its engines (the plane-"
            "local gateway, run inside the plane).",
            show_default=False,
        ),
    ] = None,
    tunnel_to: Annotated[
        str | None,
        typer.Option(
            help="With --plane: keep a tunnel to this global gateway (ws:// or wss://HOST:PORT, "
            "its --tunnel-port) and carry its traffic to this plane's engines, so the plane "
            "needs no inbound port. --token must be a gateway key naming the cluster.",
            show_default=False,
        ),
    ] = None,
    tunnel_port: Annotated[
        int | None,
        typer.Option(
            help="Accept plane edges' tunnels on this port (same --host and TLS as the API): "
            "a plane whose edge is connected is reached through its tunnel.",
            min=0,
            max=65535,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the OpenAI API (chat, completions, embeddings, models) and KServe V2 in front of
    every Service of the fleet: API keys, rate limits and budgets, weighted splits, cache-
    and load-aware routing, retries, stream resumption, fallbacks and scale from zero.

    The gateway learns Services, Endpoints, ApiKeys and Quotas by watching the control plane
    and never calls it on the request path; if the control plane goes down it keeps serving
    from the last table, which it also keeps on disk for its own restarts.

    Examples:

    inferplane gateway --port 8080
    inferplane gateway --control https://cp.example.com --token $TOKEN --region eu-west
    inferplane gateway --config services.yaml --state-dir /tmp/gw
    inferplane gateway --host 0.0.0.0 --port 443 --tls-cert pki/gw.example.com.crt --tls-key pki/gw.example.com.key --control https://cp.example.com:8470 --ca-bundle pki/ca.crt
    inferplane gateway --host 0.0.0.0 --tunnel-port 8471 --control https://cp.example.com --token $GW
    inferplane gateway --plane eu-1 --tunnel-to wss://gw.example.com:8471 --control https://cp.example.com --token $EDGE
    curl localhost:8080/v1/chat/completions -H "Authorization: Bearer $KEY" -d '{"model": "demo", "messages": [{"role": "user", "content": "hi"}]}'
    """  # noqa: E501
    from inferplane import logs
    from inferplane.gateway import process

    objects = _config_objects(config) if config is not None else None
    if objects is None:
        token = token or clientconfig.local_admin_token_for(control)
        if not token:
            typer.echo(
                "error: give a fleet-admin token with --token or $INFERPLANE_TOKEN", err=True
            )
            raise typer.Exit(1)
    if tunnel_to is not None and (plane is None or not token):
        typer.echo("error: --tunnel-to needs --plane and --token (a gateway key naming the"
                   " cluster)", err=True)  # fmt: skip
        raise typer.Exit(1)
    if tunnel_to is not None and not tunnel_to.startswith(("ws://", "wss://")):
        typer.echo(f"error: --tunnel-to {tunnel_to!r} is not a ws:// or wss:// URL", err=True)
        raise typer.Exit(1)
    server_tls = options.server_tls(tls_cert, tls_key)
    control_tls = options.client_tls(ca_bundle, client_cert, client_key)
    upstream_ca = options.ca_file(upstream_ca_bundle, "--upstream-ca-bundle")
    logs.configure(log_level)
    settings = process.GatewaySettings(
        host=host,
        port=port,
        control=None if objects is not None else control,
        token=token,
        config=objects,
        state_dir=(state_dir or clientconfig.data_dir() / "gateway").expanduser(),
        region=region,
        access_log=None if no_access_log else access_log,
        log_prompts=log_prompts,
        drain_seconds=drain,
        server_tls=server_tls,
        control_tls=control_tls,
        upstream_ca=upstream_ca,
        allow_secret_env=frozenset(allow_secret_env or ()),
        allow_secret_file=frozenset(allow_secret_file or ()),
        plane=plane,
        tunnel_to=tunnel_to,
        tunnel_port=tunnel_port,
    )
    process.run(settings)


def _config_objects(path: Path) -> list[dict[str, Any]]:
    from inferplane.api import yamlio

    try:
        return yamlio.load_documents(path.read_text(), str(path))
    except (OSError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="--config") from error


def register(app: typer.Typer) -> None:
    app.command("gateway", rich_help_panel="Run")(gateway)
