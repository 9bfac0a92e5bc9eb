"""Serving the control plane with uvicorn."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI

from inferplane import logs
from inferplane.control.server import create_app
from inferplane.control.settings import ControlSettings


class _Server(uvicorn.Server):
    """uvicorn waits for open responses before shutting down, and a watch never ends by
    itself: on SIGINT/SIGTERM, stop the watch hub first so every watch stream ends at once
    (clients resume from their last version on the next control plane)."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        loop = asyncio.get_running_loop()
        plane = getattr(self._app.state, "plane", None)
        if plane is not None:
            loop.call_soon_threadsafe(lambda: loop.create_task(plane.hub.stop()))
        relay = getattr(self._app.state, "logrelay", None)
        if relay is not None:  # log readers and agents' long polls end now, too
            loop.call_soon_threadsafe(lambda: loop.create_task(relay.stop()))


def serve(settings: ControlSettings) -> None:
    """Run until SIGINT/SIGTERM; requests in flight finish, watches end, then the store closes."""
    logs.configure(settings.log_level)
    app = create_app(settings)
    files = settings.tls

    def tls_context(
        config: uvicorn.Config, default: Callable[[], ssl.SSLContext]
    ) -> ssl.SSLContext:
        # Ours, not uvicorn's default: TLS 1.2 at least, and client certificates optional or
        # required as configured (inferplane.tls, shared with the gateway).
        assert files is not None
        return files.context()

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        ssl_context_factory=tls_context if files is not None else None,
    )
    _Server(config, app).run()
