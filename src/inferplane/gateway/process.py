"""Running the gateway: event loop, listener, table sync, usage on disk, graceful stop.

The routing table comes from the control plane's watches (`--control`) or from a file of
objects (`--config`, no control plane at all). With a state directory, the last table and
the quota ledger survive restarts: a gateway restarted while the control plane is down serves
from what it knew.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson
import prometheus_client
import uvloop

from inferplane import client as api_client
from inferplane import logs, tls
from inferplane.api import wellknown
from inferplane.gateway import enginestats, traffic, usage
from inferplane.gateway.accesslog import AccessLog
from inferplane.gateway.app import GatewayApp
from inferplane.gateway.sync import TableSync, write_atomically
from inferplane.gateway.table import NsName, Object
from inferplane.gateway.tunnel.edge import Edge
from inferplane.gateway.tunnel.hub import PATH, TunnelHub
from inferplane.gateway.wire.server import serve
from inferplane.policy import quotas

log = logging.getLogger("inferplane.gateway")

USAGE_FILE = "usage.json"
USAGE_SAVE_SECONDS = 2.0


@dataclass(frozen=True)
class GatewaySettings:
    host: str = "127.0.0.1"
    port: int = 8080
    control: str | None = None
    token: str | None = None
    config: list[Object] | None = None
    """Objects to serve instead of following a control plane."""
    state_dir: Path | None = None
    region: str | None = None
    access_log: str | None = "-"
    """Path of the access log, '-' for stderr, None for none."""
    log_prompts: bool = False
    drain_seconds: float = 30.0
    server_tls: tls.ServerTLS | None = None
    """Serve HTTPS with this certificate; None: plain HTTP."""
    control_tls: tls.ClientTLS | None = None
    """How the control plane's certificate is verified, and the client certificate shown to it."""
    upstream_ca: Path | None = None
    """CA certificates trusted for https:// upstreams besides the system's."""
    allow_secret_env: frozenset[str] = frozenset()
    """Environment variables an Endpoint's apiKeySecretRef may name; none by default."""
    allow_secret_file: frozenset[str] = frozenset()
    """Files an Endpoint's apiKeySecretRef may name; none by default."""
    plane: str | None = None
    """Be this cluster's plane gateway: route to its engines only."""
    tunnel_to: str | None = None
    """A plane gateway's tunnel to a global gateway (ws:// or wss:// URL)."""
    tunnel_port: int | None = None
    """Accept plane edges' tunnels on this port."""


def run(settings: GatewaySettings) -> None:
    """Serve until SIGINT or SIGTERM, then finish in-flight requests (up to drain_seconds)."""
    prometheus_client.disable_created_metrics()  # a _created series per child is noise here
    uvloop.install()
    asyncio.run(_main(settings))


def _quiet_gc() -> None:
    """Objects alive at start-up (modules, the table) are never collected again, and the
    young generation is collected 100× less often: a request's garbage is freed by reference
    counting, and a full collection of a large heap is a latency spike on the request path."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(70_000, 20, 100)


async def _main(settings: GatewaySettings) -> None:
    loop = asyncio.get_running_loop()
    out = _access_log_stream(settings.access_log)
    app = GatewayApp(
        region=settings.region, access_log=AccessLog(out), log_prompts=settings.log_prompts
    )
    if settings.upstream_ca is not None:
        app.upstreams.pool.trust(settings.upstream_ca)
    sync = TableSync(loop, app.set_table, settings.state_dir)
    sync.objects.allow_env = settings.allow_secret_env
    sync.objects.allow_file = settings.allow_secret_file
    sync.objects.plane = settings.plane
    tasks: list[asyncio.Task[None]] = []
    usage_path = settings.state_dir / USAGE_FILE if settings.state_dir else None
    _restore_usage(app, usage_path)
    if settings.config is not None:
        sync.load_static(settings.config)
    else:
        sync.restore()
        assert settings.control is not None
        control, token, control_tls = settings.control, settings.token, settings.control_tls

        def make_client() -> api_client.Client:
            return api_client.Client(control, token, timeout=10.0, tls=control_tls)

        sync.follow(make_client)
        app.demand_hook = _demand_signaller(make_client)
        reports = traffic.TrafficReports(instance=_instance())
        tasks.append(
            loop.create_task(
                traffic.report_forever(
                    reports, lambda: app.table, app.router, app.hold, make_client
                )
            )
        )
        tasks.append(
            loop.create_task(
                usage.report_forever(app.usage, lambda: app.ledger, lambda: app.table, make_client)
            )
        )
    _quiet_gc()
    files = settings.server_tls
    context = files.context() if files is not None else None
    server = await serve(app.handle, app.on_error, settings.host, settings.port, tls=context)
    scheme = "https" if context is not None else "http"
    logs.event(
        log,
        "gateway listening",
        address=f"{scheme}://{settings.host}:{settings.port}",
        source=settings.control or "config",
        region=settings.region or "-",
    )
    hub = await _accept_tunnels(app, settings, context)
    if settings.tunnel_to is not None:
        tasks.append(loop.create_task(_edge(app, settings).run()))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    saver = loop.create_task(_save_usage_forever(app, usage_path))
    scraper = loop.create_task(
        enginestats.scrape_forever(app.upstreams, lambda: app.table, app.router.engine_load)
    )
    await stop.wait()
    logs.event(log, "gateway stopping", in_flight=sum(app.router.in_flight.values()))
    server.close()
    deadline = time.monotonic() + settings.drain_seconds
    while sum(app.router.in_flight.values()) > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for task in (saver, scraper, *tasks):
        task.cancel()
    if hub is not None:
        await hub.stop()
    sync.stop()
    _save_usage(app, usage_path)
    app.access_log.flush()
    app.upstreams.pool.close()


async def _accept_tunnels(
    app: GatewayApp, settings: GatewaySettings, context: ssl.SSLContext | None
) -> TunnelHub | None:
    """With --tunnel-port: accept plane edges, and dial their planes' engines through them."""
    if settings.tunnel_port is None:
        return None
    pool = app.upstreams.pool
    hub = TunnelHub(
        lambda token: app.table.edge_of(token, time.time()), app.metrics, pool.drop_cluster
    )
    port = await hub.start(settings.host, settings.tunnel_port, context)
    pool.dialer = hub
    scheme = "wss" if context is not None else "ws"
    logs.event(log, "tunnels accepted", address=f"{scheme}://{settings.host}:{port}{PATH}")
    return hub


def _edge(app: GatewayApp, settings: GatewaySettings) -> Edge:
    """With --plane and --tunnel-to: the plane's end of the tunnel, to its own engines only."""
    assert settings.tunnel_to is not None and settings.plane is not None
    context = ssl.create_default_context()
    if settings.upstream_ca is not None:
        tls.trust(context, settings.upstream_ca)

    def allowed(host: str, port: int) -> bool:
        return (host, port) in app.table.engine_addresses

    return Edge(settings.tunnel_to, settings.token or "", settings.plane, allowed, tls=context)


def _access_log_stream(target: str | None) -> IO[bytes] | None:
    if target is None:
        return None
    if target == "-":
        return sys.stderr.buffer
    path = Path(target).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


def _restore_usage(app: GatewayApp, path: Path | None) -> None:
    if path is None or not path.exists():
        return
    try:
        app.ledger = quotas.Ledger.from_json(orjson.loads(path.read_bytes()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        logs.event(
            log, "saved usage unreadable", level=logging.WARNING, path=str(path), error=str(error)
        )


async def _save_usage_forever(app: GatewayApp, path: Path | None) -> None:
    if path is None:
        return
    while True:
        await asyncio.sleep(USAGE_SAVE_SECONDS)
        data = orjson.dumps(app.ledger.to_json())
        await asyncio.get_running_loop().run_in_executor(None, write_atomically, path, data)


def _save_usage(app: GatewayApp, path: Path | None) -> None:
    if path is not None:
        write_atomically(path, orjson.dumps(app.ledger.to_json()))


def _instance() -> str:
    """This gateway among those sharing its API key: host and process, as a DNS label."""
    host = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-") or "gateway"
    return f"{host[:50].rstrip('-')}-{os.getpid()}"


def _demand_signaller(
    make_client: Callable[[], api_client.Client],
) -> Callable[[NsName, int], None]:
    """Tell the control plane a deployment has requests waiting for a replica: annotations
    on the Deployment that an autoscaler acts on. Off the request path, in a thread."""

    def signal_demand(deployment: NsName, waiting: int) -> None:
        patch = {
            "metadata": {
                "annotations": {
                    wellknown.DEMAND_AT_ANNOTATION: datetime.now(UTC).isoformat(timespec="seconds"),
                    wellknown.DEMAND_WAITING_ANNOTATION: str(waiting),
                }
            }
        }

        def send() -> None:
            ns, name = deployment
            try:
                with make_client() as client:
                    client.patch("Deployment", name, patch, namespace=ns)
            except api_client.ClientError as error:
                logs.event(
                    log,
                    "demand not signalled",
                    level=logging.WARNING,
                    deployment=f"{ns}/{name}",
                    error=str(error),
                )

        threading.Thread(target=send, name="demand", daemon=True).start()

    return signal_demand
