"""Serving the control plane with uvicorn."""

from __future__ import annotations

import uvicorn

from inferplane import logs
from inferplane.control.server import create_app
from inferplane.control.settings import ControlSettings


def serve(settings: ControlSettings) -> None:
    """Run until SIGINT/SIGTERM; uvicorn drains open requests before the lifespan ends."""
    logs.configure(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        loop="auto",
        http="auto",
    )
