"""Run the engine's app under uvicorn; SIGTERM drains it gracefully.

On SIGTERM (or Ctrl-C) the server stops admitting at once: from then on a new request gets
a 503 in OpenAI's error shape and `/health` a 503, while the listener stays open. In-flight
requests run on for up to the grace period; those still running at its end are aborted and
end cleanly (a stream gets a final chunk with `finish_reason: "abort"`, then `[DONE]`).
Only then does uvicorn close the listener (connections are refused from there on), give
open responses `FLUSH_S` to finish writing, and stop; the process exits 0. A second Ctrl-C
stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from pathlib import Path
from types import FrameType
from typing import Protocol

import uvicorn
from fastapi import FastAPI

from inferplane.engine.async_engine import AsyncEngine
from inferplane.engine.embedder import Embedder
from inferplane.engine.llm import EngineConfig, LLMEngine
from inferplane.engine.server.app import SHUTDOWN_GRACE_S, create_app, create_embedding_app
from inferplane.engine.server.embeddings_api import EmbeddingService

FLUSH_S = 5
"""After the drain, how long uvicorn waits for open responses to finish writing."""


class Drainable(Protocol):
    """What the server drains on SIGTERM: an AsyncEngine or an EmbeddingService."""

    def stop_admitting(self) -> None: ...

    async def drain(self, grace: float) -> None: ...


class _Server(uvicorn.Server):
    """uvicorn, with the drain above in front of its own shutdown."""

    def __init__(self, config: uvicorn.Config, target: Drainable, *, grace: float) -> None:
        super().__init__(config)
        self.target = target
        self.grace = grace

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not uvicorn's own: it records the signal and raises it again once shut down, so
        # the process would die of its SIGTERM (exit -15) even after a clean drain.
        self.target.stop_admitting()
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Drain first, while the listener is still open: a client that arrives now is told
        # 503 rather than refused, and the requests cut at the deadline end with a final
        # chunk before uvicorn would cancel them mid-stream.
        await self._drain()
        await super().shutdown(sockets)

    async def _drain(self) -> None:
        drain = asyncio.ensure_future(self.target.drain(self.grace))
        while not drain.done() and not self.force_exit:
            await asyncio.wait({drain}, timeout=0.1)
        if not drain.done():
            drain.cancel()


def _run(
    app: FastAPI, target: Drainable, *, host: str, port: int, grace: float, level: str
) -> None:
    config = uvicorn.Config(
        app, host=host, port=port, log_level=level, timeout_graceful_shutdown=FLUSH_S
    )
    _Server(config, target, grace=grace).run()


def serve(
    config: EngineConfig,
    *,
    host: str,
    port: int,
    served_model_name: str,
    shutdown_grace: float,
    log_level: str = "info",
    api_key: str | None = None,
) -> None:
    logging.basicConfig(level=log_level.upper())
    engine = AsyncEngine(LLMEngine(config))
    app = create_app(engine, served_model_name, shutdown_grace=shutdown_grace, api_key=api_key)
    _run(app, engine, host=host, port=port, grace=shutdown_grace, level=log_level)


def serve_embeddings(
    folder: Path,
    *,
    host: str,
    port: int,
    served_model_name: str,
    device: str = "auto",
    shutdown_grace: float = SHUTDOWN_GRACE_S,
    log_level: str = "info",
    api_key: str | None = None,
) -> None:
    """Serve a sentence-transformers folder: /v1/embeddings and V2 infer. A batch cannot be
    cut: one still running at the end of the grace period delays the exit until it ends."""
    logging.basicConfig(level=log_level.upper())
    embedder = Embedder(folder, device=_device(device))
    service = EmbeddingService(embedder, served_model_name)
    app = create_embedding_app(service, shutdown_grace=shutdown_grace, api_key=api_key)
    _run(app, service, host=host, port=port, grace=shutdown_grace, level=log_level)


def _device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
