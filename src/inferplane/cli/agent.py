"""`inferplane agent`: run a workload plane's agent on this machine."""

from __future__ import annotations

import functools
import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from inferplane import clientconfig, tls
from inferplane.cli import options

Labels = Annotated[
    str,
    typer.Option(
        help="The cluster's labels, e.g. region=eu-west,tier=prod; `region` (and `provider`) "
        "also set the Cluster's spec.region (spec.provider).",
        show_default=False,
    ),
]


def agent(
    cluster: Annotated[
        str,
        typer.Option(help="Name of this workload plane's Cluster; created if it does not exist."),
    ],
    control: options.ControlUrl = clientconfig.DEFAULT_SERVER,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="INFERPLANE_TOKEN",
            help="Token of an agent key of this cluster (or a fleet-admin key). Unneeded once "
            "the agent has joined: it keeps its own credential in --data-dir.",
            show_default=False,
        ),
    ] = None,
    join_token: Annotated[
        str | None,
        typer.Option(
            envvar="INFERPLANE_JOIN_TOKEN",
            help="Token of a join key: exchanged once for an agent key bound to this cluster, "
            "kept (0600) in --data-dir and reused on restart (docs/security.md).",
            show_default=False,
        ),
    ] = None,
    labels: Labels = "",
    pool_file: Annotated[
        Path | None,
        typer.Option(
            help="YAML file describing this cluster's pools (see docs/agent.md); without it "
            "the agent reports the host's CPU and, through nvidia-smi, its GPUs.",
            show_default=False,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where engine logs and the state file go; an agent restarted with the same "
            "dir adopts the engines still running. Default: $INFERPLANE_DATA_DIR/agents/CLUSTER.",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address engines listen on and the host of their URLs.")
    ] = "127.0.0.1",
    heartbeat: Annotated[float, typer.Option(help="Seconds between heartbeats.", min=0.1)] = 5.0,
    load_interval: Annotated[
        float, typer.Option(help="Seconds between scrapes of each engine's /metrics.", min=0.1)
    ] = 5.0,
    drain_grace: Annotated[
        float, typer.Option(help="Seconds a stopping engine may drain before it is killed.")
    ] = 30.0,
    deregistration_delay: Annotated[
        float,
        typer.Option(
            help="Seconds an engine to be stopped keeps serving before its drain starts, while "
            "gateways learn that its Endpoint is gone (0: drain at once).",
            min=0,
        ),
    ] = 2.0,
    keep_engines_on_exit: Annotated[
        bool,
        typer.Option(
            help="Leave engines running when the agent exits (for an upgrade: the next agent "
            "on the same --data-dir adopts them). By default they stop with the agent."
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    ca_bundle: options.CaBundle = None,
    client_cert: options.ClientCert = None,
    client_key: options.ClientKey = None,
) -> None:
    """Run the agent of a workload plane: join the fleet as CLUSTER, report its pools, and
    run the replicas the scheduler binds to it as engine processes on this machine.

    Every connection is outbound, so an agent behind NAT works. If the control plane is
    unreachable, replicas keep running and serving; the agent catches up when it returns.

    Examples:

    inferplane agent --cluster laptop
    inferplane agent --control https://cp.example.com --join-token $JOIN --cluster eu-1 --labels region=eu-west,tier=prod
    inferplane agent --cluster h100-a --pool-file pools.yaml --host 10.0.0.5
    inferplane agent --control https://cp.example.com:8470 --ca-bundle pki/ca.crt --client-cert pki/agent-eu-1.crt --client-key pki/agent-eu-1.key --cluster eu-1
    """  # noqa: E501
    from inferplane import logs
    from inferplane.agent import agent as agent_mod
    from inferplane.agent import discovery
    from inferplane.agent.runtime import base, choice, registry

    name = _cluster_name(cluster)
    state_dir = (data_dir or clientconfig.data_dir() / "agents" / cluster).expanduser()
    client_tls = options.client_tls(ca_bundle, client_cert, client_key)
    settings = agent_mod.AgentSettings(
        control=control,
        token=_token(control, name, token, join_token, state_dir, client_tls),
        cluster=name,
        labels=parse_labels(labels),
        data_dir=state_dir,
        heartbeat_seconds=heartbeat,
        load_seconds=load_interval,
        drain_grace_seconds=drain_grace,
        deregistration_seconds=deregistration_delay,
        stop_engines_on_exit=not keep_engines_on_exit,
        tls=client_tls,
    )
    logs.configure(log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
    runtime_options = registry.RuntimeOptions(
        settings.data_dir, host=host, keep_engines_on_exit=keep_engines_on_exit
    )
    try:
        # Before the agent starts: the runtime it adopts engines with is the Cluster's.
        chosen = choice.runtime_for(
            lambda: agent_mod.client_of(settings), name, settings.data_dir, runtime_options
        )
        pools = registry.pools(chosen.runtime.kind, chosen.options, pool_file, cluster=name)
    except (registry.UnknownRuntime, discovery.PoolFileError, base.RuntimeFailure) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    runtime = chosen.runtime
    rediscover = None
    if pool_file is None and runtime.kind in registry.DISCOVERY:
        rediscover = functools.partial(registry.DISCOVERY[runtime.kind], chosen.options)
    stop = threading.Event()
    _stop_on_signals(stop)
    agent_mod.Agent(settings, runtime, pools, rediscover=rediscover).run(stop)


def _token(
    control: str,
    cluster: str,
    token: str | None,
    join_token: str | None,
    data_dir: Path,
    client_tls: tls.ClientTLS | None,
) -> str:
    """The agent's credential: its kept one or a join (when it has joined or is told to
    join), else --token, else the local admin token of a loopback control plane."""
    from inferplane.agent import credential

    try:
        if join_token or credential.kept(data_dir, cluster):
            return credential.obtain(control, cluster, join_token, data_dir, client_tls)
    except credential.CredentialError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    found = token or clientconfig.local_admin_token_for(control)
    if not found:
        typer.echo("error: give --join-token, or --token (agent or fleet-admin key)", err=True)
        raise typer.Exit(1)
    return found


def _cluster_name(name: str) -> str:
    from inferplane.api import meta

    try:
        return meta.check_dns_label(name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--cluster") from exc


def parse_labels(text: str) -> dict[str, str]:
    """`region=eu-west,tier=prod` as a dict of valid Kubernetes labels."""
    from inferplane.api import meta

    labels = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--labels")
        labels[key.strip()] = value.strip()
    try:
        return meta.check_labels(labels)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--labels") from exc


def _stop_on_signals(stop: threading.Event) -> None:
    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Run")(agent)
