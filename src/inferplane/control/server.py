"""The control plane's ASGI app: resource API, health, metrics, and the background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException

import inferplane
from inferplane import logs
from inferplane.api import registry
from inferplane.control import (
    audit,
    auditlog,
    auth,
    authguard,
    bootstrap,
    errors,
    join,
    leader,
    loadreports,
    logrelay,
    resources,
    reveal,
    secretbox,
)
from inferplane.control import controllers as controllers_
from inferplane.control import secrets as control_secrets
from inferplane.control.metrics import Metrics
from inferplane.control.middleware import Contain, Observe
from inferplane.control.plane import ControlPlane
from inferplane.control.runtime.controller import ControllerRunner
from inferplane.control.runtime.events import EventRecorder, expire_events
from inferplane.control.runtime.objects import Objects
from inferplane.control.settings import ControlSettings
from inferplane.store import base as store_base
from inferplane.store import open_store, sqlite_url
from inferplane.store.watch import WatchHub

log = logging.getLogger(__name__)


def create_app(settings: ControlSettings) -> FastAPI:
    registry.all_kinds()  # build every schema now, not on the first request
    metrics = Metrics()
    policy = audit.load_policy(settings.audit_policy, default=audit.Level(settings.audit_level))
    trail = auditlog.AuditWriter()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        plane = await _start(settings, metrics)
        app.state.plane = plane
        tasks = [*_background(plane), asyncio.create_task(trail.run(plane.store), name="audit")]
        plane.ready = True
        scheme = "https" if settings.tls else "http"
        logs.event(log, "control plane ready", url=f"{scheme}://{settings.host}:{settings.port}")
        try:
            yield
        finally:
            plane.ready = False
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await plane.hub.stop()
            await trail.flush()  # the requests served last are recorded too
            await asyncio.to_thread(plane.store.close)

    app = FastAPI(
        title="inferplane control plane",
        version=inferplane.__version__,
        description="The resource API: see docs/reference/resource-api.md.",
        lifespan=lifespan,
    )
    app.state.logrelay = logrelay.LogRelay()
    app.state.audit = trail
    app.state.auth_guard = authguard.Guard()
    app.include_router(logrelay.router())
    app.include_router(auditlog.router())  # before the resource routes, which take any plural
    app.include_router(reveal.router())
    app.include_router(join.router())
    app.include_router(loadreports.router())
    app.include_router(resources.router())
    _add_probes(app, metrics)
    _add_error_handlers(app)
    app.add_middleware(Contain)  # inside Observe, which then records the 500 it sends
    app.add_middleware(audit.AuditTrail, policy=policy, sink=trail.add)
    app.add_middleware(Observe, metrics=metrics)
    return app


async def _start(settings: ControlSettings, metrics: Metrics) -> ControlPlane:
    # The data dir holds the store and the admin token: private to the control plane's user.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    url = settings.store_url or sqlite_url(settings.data_dir)
    store = await asyncio.to_thread(open_store, url)
    await asyncio.to_thread(bootstrap.ensure_admin_token, store, settings.admin_token_path)
    hub = WatchHub(store, poll_interval=settings.watch_poll_seconds)
    await hub.start()
    authn = auth.Authenticator()
    keys, _ = await asyncio.to_thread(store.list, "ApiKey", None)
    authn.load(keys)
    box = await asyncio.to_thread(_secretbox, settings, store)
    return ControlPlane(
        settings=settings, store=store, hub=hub, authn=authn, metrics=metrics, secretbox=box
    )


def _secretbox(settings: ControlSettings, store: store_base.Store) -> secretbox.SecretBox:
    """The sealing keys; every Secret still sealed with an older key is sealed again, so that
    after a rotation the old key can be dropped once the control plane has started."""
    box = secretbox.load(settings.secret_keys_path)
    items, _ = store.list("Secret", None)
    resealed = 0
    for obj in items:
        if control_secrets.needs_reseal(box, obj):
            store.update(control_secrets.reseal(box, obj))
            resealed += 1
    if resealed:
        logs.event(log, "secrets resealed", count=resealed, key=box.primary)
    return box


def _background(plane: ControlPlane) -> list[asyncio.Task[None]]:
    tasks = [
        asyncio.create_task(_follow_keys(plane), name="apikeys"),
        asyncio.create_task(_housekeeping(plane), name="housekeeping"),
    ]
    if plane.settings.controllers:
        elector = leader.LeaderElector(plane.store, identity=_identity(plane.settings))
        gauge = plane.metrics.leader

        def on_change(held: bool) -> None:
            gauge.set(1 if held else 0)

        runs = elector.run(lambda: _controllers(plane), on_change=on_change)
        tasks.append(asyncio.create_task(runs, name="leader-election"))
    else:
        # Credentials are not decisions: a replica written by hand still gets its engine token.
        credentials = _controllers(plane, everything=False)
        tasks.append(asyncio.create_task(credentials, name="credentials"))
    return tasks


def _identity(settings: ControlSettings) -> str:
    return f"{socket.gethostname()}:{settings.port}:{os.getpid()}"


async def _controllers(plane: ControlPlane, *, everything: bool = True) -> None:
    """Every reconcile loop; runs only on the replica that holds the controllers lease. Without
    `everything`, only those that issue credentials (the control plane's --no-controllers)."""
    loop = asyncio.get_running_loop()

    def notify() -> None:
        loop.call_soon_threadsafe(plane.hub.notify)

    objects = Objects(plane.store, notify)
    recorder = EventRecorder(plane.store, component="control-plane", on_write=notify)
    box = plane.secretbox
    controllers = (
        controllers_.build(objects, recorder, box=box, board=plane.load_board)
        if everything
        else controllers_.build_credentials(objects, box=box)
    )
    runners = [
        ControllerRunner(c, plane.store, plane.hub, plane.metrics, workers=getattr(c, "workers", 2))
        for c in controllers
    ]
    await asyncio.gather(*(runner.run() for runner in runners))


async def _follow_keys(plane: ControlPlane) -> None:
    """Keep the token table in step with ApiKey writes, so revocation is immediate."""
    while True:
        keys, version = await plane.read(plane.store.list, "ApiKey", None)
        plane.authn.load(keys)
        try:
            async for event in plane.hub.subscribe(
                kind="ApiKey", namespace=None, resource_version=version
            ):
                if event.type == "DELETED":
                    plane.authn.remove(event.object)
                else:
                    plane.authn.upsert(event.object)
            return  # the hub stopped: the control plane is shutting down
        except store_base.GoneError:
            continue


async def _housekeeping(plane: ControlPlane) -> None:
    """Compact the watch log, expire old Events and audit records, forever."""
    settings = plane.settings
    while True:
        try:
            horizon = await plane.read(plane.store.compact, keep=settings.watch_history)
            now = datetime.now(UTC)
            expired = await plane.read(
                expire_events, plane.store, ttl=settings.event_ttl_seconds, now=now
            )
            if expired:
                plane.hub.notify()
            retention = timedelta(seconds=settings.audit_retention_seconds)
            audited = await plane.read(plane.store.expire_audit, before=now - retention)
            version = await plane.read(plane.store.current_resource_version)
            plane.metrics.resource_version.set(version)
            logs.event(
                log, "housekeeping", horizon=horizon, events_expired=expired, audit_expired=audited
            )
        except Exception:
            log.exception("housekeeping failed")
        await asyncio.sleep(settings.compact_interval_seconds)


def _add_probes(app: FastAPI, metrics: Metrics) -> None:
    @app.get("/healthz", tags=["health"], response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok"

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> Response:
        plane: ControlPlane | None = getattr(request.app.state, "plane", None)
        if plane is None or not plane.ready:
            return PlainTextResponse("not ready", status_code=503)
        try:
            await plane.read(plane.store.current_resource_version)
        except Exception as exc:
            return PlainTextResponse(f"store unreachable: {exc}", status_code=503)
        return PlainTextResponse("ok")

    @app.get("/metrics", tags=["health"])
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.ApiProblem)
    async def problem(request: Request, exc: errors.ApiProblem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def bad_params(request: Request, exc: RequestValidationError) -> JSONResponse:
        causes = [
            errors.Cause(".".join(str(p) for p in err["loc"][1:]), err["msg"])
            for err in exc.errors()
        ]
        return errors.bad_request("invalid request parameters", causes=causes).response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        reasons = {404: "NotFound", 405: "MethodNotAllowed"}
        reason = reasons.get(exc.status_code, "BadRequest")
        message = f"{exc.detail}: {request.method} {request.url.path}"
        return errors.ApiProblem(exc.status_code, reason, message).response()
