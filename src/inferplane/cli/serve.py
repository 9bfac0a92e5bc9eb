"""`inferplane control` and `inferplane up`: the commands that run the system's processes."""

from __future__ import annotations

import signal
import socket
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from inferplane import datadir, lifeline
from inferplane.cli import options, updemo
from inferplane.cli.apikey import parse_duration
from inferplane.control.settings import DEFAULT_PORT

if TYPE_CHECKING:
    from inferplane.client import Client
    from inferplane.supervisor import Child, Supervisor

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="INFERPLANE_DATA_DIR",
        help="Directory for the SQLite store and the admin token (created if missing).",
        show_default=True,
    ),
]
"""--data-dir; typer reads $INFERPLANE_DATA_DIR itself, so the default shown is the fallback."""
Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(help="Port of the control plane's resource API.")]
LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error.")]


class AuditLevel(StrEnum):
    none = "None"
    metadata = "Metadata"
    request = "Request"


def control(
    data_dir: DataDir = datadir.in_home(),
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
    audit_level: Annotated[
        AuditLevel,
        typer.Option(
            help="What the audit trail keeps of each write and each denied call: None (nothing), "
            "Metadata (who, what, when, result) or Request (also the body; Secret values never)."
        ),
    ] = AuditLevel.metadata,
    audit_policy: Annotated[
        Path | None,
        typer.Option(
            help="YAML audit policy: rules {level, kinds, verbs}, the first that matches a call "
            "sets its level, else --audit-level (docs/security-audit.md).",
            show_default=False,
        ),
    ] = None,
    audit_retention: Annotated[
        timedelta,
        typer.Option(
            parser=parse_duration,
            metavar="DURATION",
            help="Delete audit records older than this, e.g. 7d, 12h, 90d.",
        ),
    ] = "7d",  # type: ignore[assignment]  # typer parses the default too
    tls_cert: options.TlsCert = None,
    tls_key: options.TlsKey = None,
    client_ca: Annotated[
        Path | None,
        typer.Option(
            help="Verify client certificates against these PEM CA certificates (mutual TLS): "
            "a client presenting one they did not sign is refused. Needs --tls-cert.",
            show_default=False,
        ),
    ] = None,
    client_cert_required: Annotated[
        bool,
        typer.Option(help="Refuse clients that present no certificate (needs --client-ca)."),
    ] = False,
    secret_key_file: Annotated[
        Path | None,
        typer.Option(
            help="Keys that seal Secret values (AES-256-GCM), made 0600 at first start; keep it "
            "out of the store's backups. Default: DATA_DIR/secret-keys.",
            show_default=False,
        ),
    ] = None,
    allow_secret_env: Annotated[
        list[str] | None,
        typer.Option(
            help="An environment variable of the gateway that an Endpoint's apiKeySecretRef may "
            "name (repeat; the gateway needs the same flag). Default: none.",
            show_default=False,
        ),
    ] = None,
    allow_secret_file: Annotated[
        list[str] | None,
        typer.Option(
            help="A file on the gateway's host that an Endpoint's apiKeySecretRef may name "
            "(repeat; the gateway needs the same flag). Default: none.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the control plane: resource API, admission, auth, controllers.

    At first start it creates a fleet-admin token in DATA_DIR/admin-token (mode 0600);
    the CLI on the same machine finds it there. With --tls-cert and --tls-key it serves
    HTTPS (TLS 1.2+); with --client-ca it also verifies client certificates
    (docs/security-tls.md).

    Examples:

    inferplane control --port 8470 --data-dir ./state
    INFERPLANE_STORE=postgresql://inferplane@db:5432/inferplane inferplane control
    inferplane control --host 0.0.0.0 --tls-cert pki/cp.example.com.crt --tls-key pki/cp.example.com.key --client-ca pki/ca.crt --client-cert-required
    """  # noqa: E501
    from inferplane.control import audit
    from inferplane.control.main import serve
    from inferplane.control.settings import ControlSettings

    tls = options.server_tls(
        tls_cert, tls_key, client_ca=client_ca, client_cert_required=client_cert_required
    )

    try:
        audit.load_policy(audit_policy, default=audit.Level(audit_level))
    except audit.PolicyError as exc:
        raise typer.BadParameter(str(exc), param_hint="--audit-policy") from exc
    settings = ControlSettings(
        data_dir=data_dir.expanduser(),
        host=host,
        port=port,
        store_url=store,
        watch_history=watch_history,
        controllers=controllers,
        log_level=log_level,
        tls=tls,
        audit_level=str(audit_level),
        audit_policy=audit_policy,
        audit_retention_seconds=audit_retention.total_seconds(),
        secret_key_file=secret_key_file,
        allow_secret_env=tuple(allow_secret_env or ()),
        allow_secret_file=tuple(allow_secret_file or ()),
    )
    serve(settings)


def rotate_secret_key(
    data_dir: DataDir = datadir.in_home(),
    secret_key_file: Annotated[
        Path | None,
        typer.Option(help="The key file; default DATA_DIR/secret-keys.", show_default=False),
    ] = None,
) -> None:
    """Put a new key first in the Secret key file; the old keys stay to open what they sealed.

    Restart the control plane afterwards: at start it seals every Secret again with the new
    key. Then the old key's line can be deleted from the file (docs/security.md).

    Example:

    inferplane rotate-secret-key --data-dir ./state
    """
    from inferplane.control import secretbox

    path = (secret_key_file or data_dir.expanduser() / "secret-keys").expanduser()
    if not path.exists():
        raise typer.BadParameter(f"{path} does not exist", param_hint="--secret-key-file")
    key_id = secretbox.rotate(path)
    typer.echo(f"new sealing key {key_id} first in {path}; restart the control plane to reseal")


def up(
    data_dir: DataDir = datadir.in_home(),
    port: Port = DEFAULT_PORT,
    gateway_port: Annotated[
        int, typer.Option(help="Port of the gateway, the endpoint clients use.")
    ] = 8080,
    replicas: Annotated[
        int,
        typer.Option(
            help="Replicas of the demo deployment: its autoscaler's minimum (it adds up to 4 "
            "under load; 0 lets it scale to zero when idle).",
            min=0,
        ),
    ] = 2,
    heartbeat_grace: Annotated[
        float | None,
        typer.Option(
            help="Set the local clusters' spec.heartbeatGraceSeconds (seconds without a "
            "heartbeat before a cluster is NotReady); the agents heartbeat 4 times as often. "
            "Default: leave the clusters' setting (30 s on a new cluster).",
            min=0.5,
            show_default=False,
        ),
    ] = None,
    eviction_grace: Annotated[
        float | None,
        typer.Option(
            help="Set the local clusters' spec.evictionGraceSeconds (seconds NotReady before "
            "their replicas are re-placed). Default: leave the clusters' setting (120 s).",
            min=0,
            show_default=False,
        ),
    ] = None,
    ready_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each process and for the replicas.")
    ] = 600.0,
    log_level: LogLevel = "warning",
) -> None:
    """Run the whole system on this machine: the control plane (SQLite store), two local
    workload planes (agents of clusters local-a, region=local-east, and local-b,
    region=local-west), and a demo Deployment of the reference engine serving the demo model,
    two replicas spread across the two planes (autoscaled up to 4 under load: try
    `inferplane load -m demo` and `inferplane get deployments -w`), with a Service `demo`,
    and the gateway in front of them.

    The demo model is built once into DATA_DIR/models (a few minutes on a laptop, with a
    progress bar), then reused. A live table shows the replicas while they start; once they
    are Ready, `up` prints the gateway's endpoint, an API key (ApiKey demo-client, kept in
    DATA_DIR/demo-api-key) and ready-to-paste curl and openai snippets.
    Re-running on the same data dir reuses what is there (the objects are applied, not
    duplicated). Logs: DATA_DIR/logs (processes) and DATA_DIR/agents/CLUSTER (engines).

    Stop with Ctrl-C (or SIGTERM): the agents stop their engines, then the control plane
    stops; nothing is left running. An agent or the control plane that dies is reported and
    the rest keep running: replicas keep serving without the control plane, and a lost
    plane's replicas move to the other one after the eviction grace.

    Examples:

    inferplane up
    inferplane up --data-dir ./state --port 9470 --gateway-port 9480
    inferplane up --heartbeat-grace 4 --eviction-grace 5    # fail over within seconds
    """
    from inferplane.supervisor import Supervisor

    console = Console(stderr=True)
    _check_ports_free(console, ((port, "--port"), (gateway_port, "--gateway-port")))
    local = _Local(_prepared(data_dir), port, gateway_port, log_level, ready_timeout)
    _stop_on_sigterm()
    supervisor = Supervisor([], local.data_dir)
    code = 0
    try:
        _run(
            console,
            supervisor,
            local,
            replicas=replicas,
            heartbeat_grace=heartbeat_grace,
            eviction_grace=eviction_grace,
        )
    except KeyboardInterrupt:
        pass
    except _StartFailed:
        code = 1
    finally:
        code = _stop_all(console, supervisor, code)
    raise typer.Exit(code)


@dataclass(frozen=True)
class _Local:
    """Where `up`'s processes keep their state and listen, and how long each may take."""

    data_dir: Path
    port: int
    gateway_port: int
    log_level: str
    ready_timeout: float

    @property
    def url(self) -> str:
        """The control plane's."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"


def _check_ports_free(console: Console, ports: tuple[tuple[int, str], ...]) -> None:
    """Refuse to start (exit 1) when a port is taken, naming the flag that moves it."""
    for taken, flag in ports:
        if not _port_free(taken):
            console.print(
                f"[red]error:[/red] port {taken} is in use (another inferplane up or control?);"
                f" stop it or pass {flag}"
            )
            raise typer.Exit(1)


def _prepared(data_dir: Path) -> Path:
    data_dir = data_dir.expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir


def _stop_on_sigterm() -> None:
    """SIGTERM stops `up` as Ctrl-C does, and SIGINT reaches it even where it was ignored."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    lifeline.interruptible()


def _run(
    console: Console,
    supervisor: Supervisor,
    local: _Local,
    *,
    replicas: int,
    heartbeat_grace: float | None,
    eviction_grace: float | None,
) -> None:
    """Start everything in order (demo model, control plane, agents, gateway, the demo's
    objects), say where it is, then wait until stopped."""
    from inferplane import client as api_client

    model_dir = updemo.build_demo(local.data_dir, console)
    token = _start_control(console, supervisor, local)
    with api_client.Client(local.url, token) as client:
        _start_agents(
            console,
            supervisor,
            client,
            local,
            token=token,
            heartbeat_grace=heartbeat_grace,
            eviction_grace=eviction_grace,
        )
        gateway_child = _start_gateway(console, supervisor, client, local)
        key, ready = _deploy_demo(console, client, local, replicas=replicas, model_dir=model_dir)
    _announce(console, local, key=key, ready=ready, gateway_log=gateway_child.log_path)
    console.print("[dim]Ctrl-C stops everything.[/dim]")
    supervisor.wait(on_exit=lambda child: _report_exit(console, child))


def _start_control(console: Console, supervisor: Supervisor, local: _Local) -> str:
    """Start the control plane, wait for /readyz; the admin token it wrote at first start."""
    from inferplane.supervisor import Child, http_ready

    args = ["control", "--port", str(local.port), "--data-dir", str(local.data_dir)]
    child = Child(
        "control plane",
        [*args, "--log-level", local.log_level],
        http_ready(f"{local.url}/readyz"),
        log_path=local.data_dir / "logs" / "control.log",
    )
    timeout = min(local.ready_timeout, 60.0)
    _start(console, supervisor, child, "starting the control plane…", timeout=timeout)
    return (local.data_dir / "admin-token").read_text().strip()


def _start_agents(
    console: Console,
    supervisor: Supervisor,
    client: Client,
    local: _Local,
    *,
    token: str,
    heartbeat_grace: float | None,
    eviction_grace: float | None,
) -> None:
    """Create (or set the graces on) each local Cluster, then start its agent with a join key
    and wait for the Cluster to be Ready; the agents heartbeat 4 times per grace."""
    from inferplane.cli import upgateway

    for plane in updemo.LOCAL_PLANES:
        updemo.apply_cluster(client, plane, heartbeat_grace, eviction_grace)
    heartbeat = max(0.2, heartbeat_grace / 4) if heartbeat_grace else None
    for plane in updemo.LOCAL_PLANES:
        join = upgateway.join_key(client, plane.cluster, local.data_dir / "agents" / plane.cluster)
        child = _agent_child(
            plane, local.url, token, join, local.data_dir, heartbeat, local.log_level
        )
        status = f"starting the workload plane {plane.cluster}…"
        _start(console, supervisor, child, status, timeout=min(local.ready_timeout, 120.0))


def _start_gateway(
    console: Console, supervisor: Supervisor, client: Client, local: _Local
) -> Child:
    """Start the gateway with a key of its own (role gateway, kept in DATA_DIR)."""
    from inferplane.cli import upgateway

    token = upgateway.gateway_key(client, local.data_dir)
    child = upgateway.gateway_child(
        local.gateway_port, local.url, token, local.data_dir, local.log_level
    )
    timeout = min(local.ready_timeout, 60.0)
    _start(console, supervisor, child, "starting the gateway…", timeout=timeout)
    return child


def _start(
    console: Console, supervisor: Supervisor, child: Child, status: str, *, timeout: float
) -> None:
    """Start one child under a spinner; one that is not ready in time ends `up` (exit 1)."""
    with console.status(status):
        if not supervisor.start_one(child, timeout=timeout):
            _fail(console, child)


def _deploy_demo(
    console: Console, client: Client, local: _Local, *, replicas: int, model_dir: Path
) -> tuple[str, list[dict[str, Any]]]:
    """Apply the demo's objects and its key, and show its replicas start: the key's token and
    the replicas Ready in time."""
    from inferplane.cli import upgateway, upview

    updemo.apply_demo(client, replicas)
    key = upgateway.demo_key(client, local.data_dir)
    ready = upview.watch_replicas(client, console, replicas, model_dir, local.ready_timeout)
    return key, ready


def _announce(
    console: Console,
    local: _Local,
    *,
    key: str,
    ready: list[dict[str, Any]],
    gateway_log: Path | None,
) -> None:
    """The banner; once replicas are Ready and the gateway routes to them, the endpoint,
    the key and the snippets to paste."""
    from inferplane.cli import upgateway, upview

    console.print(upview.banner(local.url, local.gateway, local.data_dir))
    if not ready:
        return
    with console.status("waiting for the gateway to route to the replicas…"):
        answering = upgateway.wait_answering(local.gateway, key, min(local.ready_timeout, 60.0))
    if not answering:
        console.print(f"[yellow]the gateway does not answer yet; see {gateway_log}[/yellow]")
    upview.print_endpoint(local.gateway, key, ready, local.data_dir / upgateway.KEY_FILE)


def _stop_all(console: Console, supervisor: Supervisor, code: int) -> int:
    """Stop what was started, the gateway and agents before the control plane; the exit code."""
    if not supervisor.started:
        return code
    with console.status(
        "stopping: the gateway, the agents and their engines, then the control plane…"
    ):
        code = supervisor.stop() or code
    console.print("stopped.")
    return code


class _StartFailed(Exception):
    pass


def _agent_child(
    plane: updemo.LocalPlane,
    url: str,
    token: str,
    join_token: str,
    data_dir: Path,
    heartbeat: float | None,
    log_level: str,
) -> Any:
    """The agent of a local plane: it joins with `join_token` and then runs as its own
    cluster's identity; `token` (the admin's) only watches it come up."""
    from inferplane import client as api_client
    from inferplane.supervisor import Child

    args = ["agent", "--control", url, "--cluster", plane.cluster]
    args += ["--labels", f"region={plane.region},provider=local"]
    args += ["--data-dir", str(data_dir / "agents" / plane.cluster), "--log-level", log_level]
    args += ["--load-interval", "2", "--drain-grace", "10"]
    if heartbeat is not None:
        args += ["--heartbeat", f"{heartbeat:g}"]

    def joined() -> bool:
        try:
            with api_client.Client(url, token, timeout=2.0) as client:
                cluster = client.get("Cluster", plane.cluster)
        except api_client.ClientError:
            return False
        return (cluster.get("status") or {}).get("phase") == "Ready"

    return Child(
        f"agent {plane.cluster}",
        args,
        joined,
        env={"INFERPLANE_JOIN_TOKEN": join_token},
        log_path=data_dir / "logs" / f"agent-{plane.cluster}.log",
        stop_grace=30.0,
    )


def _fail(console: Console, child: Any) -> None:
    where = f"; see {child.log_path}" if child.log_path else ""
    console.print(f"[red]error:[/red] {child.name} did not start{where}")
    raise _StartFailed


def _report_exit(console: Console, child: Any) -> None:
    code = child.process.returncode if child.process else None
    console.print(
        f"[yellow]{child.name} exited ({code}); the rest keep running. "
        f"Log: {child.log_path}[/yellow]"
    )


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Run")(control)
    app.command(rich_help_panel="Run")(rotate_secret_key)
    app.command(rich_help_panel="Run")(up)
