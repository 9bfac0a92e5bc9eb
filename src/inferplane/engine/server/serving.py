"""Run the engine's app under uvicorn; SIGTERM drains it gracefully."""

from __future__ import annotations

import logging
from pathlib import Path
from types import FrameType

import uvicorn

from inferplane.engine.async_engine import AsyncEngine
from inferplane.engine.embedder import Embedder
from inferplane.engine.llm import EngineConfig, LLMEngine
from inferplane.engine.server.app import create_app, create_embedding_app
from inferplane.engine.server.embeddings_api import EmbeddingService


class _Server(uvicorn.Server):
    """On SIGTERM/SIGINT the engine stops admitting at once (503s), then uvicorn waits up to
    the grace period for open responses, and the app's lifespan aborts what is left."""

    def __init__(self, config: uvicorn.Config, engine: AsyncEngine) -> None:
        super().__init__(config)
        self.engine = engine

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.engine.stop_admitting()
        super().handle_exit(sig, frame)


def serve(
    config: EngineConfig,
    *,
    host: str,
    port: int,
    served_model_name: str,
    shutdown_grace: float,
    log_level: str = "info",
) -> None:
    logging.basicConfig(level=log_level.upper())
    engine = AsyncEngine(LLMEngine(config))
    app = create_app(engine, served_model_name, shutdown_grace=shutdown_grace)
    uv_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=int(shutdown_grace) or None,
    )
    _Server(uv_config, engine).run()


def serve_embeddings(
    folder: Path,
    *,
    host: str,
    port: int,
    served_model_name: str,
    device: str = "auto",
    log_level: str = "info",
) -> None:
    """Serve a sentence-transformers folder: /v1/embeddings and V2 infer."""
    logging.basicConfig(level=log_level.upper())
    embedder = Embedder(folder, device=_device(device))
    app = create_embedding_app(EmbeddingService(embedder, served_model_name))
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def _device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
