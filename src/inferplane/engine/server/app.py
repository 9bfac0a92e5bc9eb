"""The engine's HTTP server: OpenAI routes, vLLM's /tokenize, /detokenize and /metrics,
KServe V2 and /health, around one AsyncEngine; or, for an embedding model, around one
Embedder."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from inferplane.engine.async_engine import AsyncEngine
from inferplane.engine.server import auth, embeddings_api, errors, kserve_api, openai_api
from inferplane.engine.server.metrics import Metrics
from inferplane.engine.server.protocol import DetokenizeRequest, TokenizeRequest
from inferplane.engine.tokenizer import ChatTemplateError

SHUTDOWN_GRACE_S = 30.0
"""How long in-flight requests may run on after shutdown begins, by default."""


def create_app(
    engine: AsyncEngine,
    served_model_name: str,
    *,
    shutdown_grace: float = SHUTDOWN_GRACE_S,
    clock: Callable[[], float] = time.monotonic,
    api_key: str | None = None,
) -> FastAPI:
    """The app; its lifespan starts the engine thread and drains it on shutdown. With
    `api_key`, every route but the probes needs it as a bearer token (see `auth`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine.start()
        yield
        await engine.shutdown(shutdown_grace)

    app = FastAPI(title="inferplane engine", lifespan=lifespan)
    errors.install(app)
    _guard(app, api_key)
    metrics = Metrics(engine, served_model_name, clock)
    server = openai_api.Server(engine, served_model_name, metrics, engine.info)
    app.include_router(openai_api.router(server))
    app.include_router(embeddings_api.refuse_embeddings())
    app.include_router(kserve_api.router(kserve_api.V2Model(served_model_name, generator=server)))
    _add_service_routes(app, server)
    _add_tokenizer_routes(app, server)
    return app


def create_embedding_app(
    service: embeddings_api.EmbeddingService,
    *,
    shutdown_grace: float = SHUTDOWN_GRACE_S,
    api_key: str | None = None,
) -> FastAPI:
    """The app of an embedding model: /v1/embeddings, V2 infer, health, /metrics and
    /v1/models; the generate routes answer 400. Its lifespan drains the service. With
    `api_key`, every route but the probes needs it (see `auth`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await service.drain(shutdown_grace)

    app = FastAPI(title="inferplane engine (embeddings)", lifespan=lifespan)
    errors.install(app)
    _guard(app, api_key)
    app.include_router(embeddings_api.router(service))
    app.include_router(embeddings_api.refuse_generation())
    app.include_router(kserve_api.router(kserve_api.V2Model(service.model_name, embedder=service)))

    @app.get("/health")
    async def health() -> Response:
        if not service.accepting:
            return errors.unavailable("the engine is shutting down").response()
        return Response(status_code=200)

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        return JSONResponse({"object": "list", "data": [_card(service.model_name)]})

    @app.get("/metrics")
    async def metrics() -> Response:
        return _prometheus(service.metrics.registry)

    return app


def _guard(app: FastAPI, api_key: str | None) -> None:
    if api_key is not None:
        app.add_middleware(auth.TokenCheck, token=api_key)


def _prometheus(registry: CollectorRegistry) -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _card(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": int(time.time()), "owned_by": "inferplane"}


def _add_service_routes(app: FastAPI, server: openai_api.Server) -> None:
    @app.get("/health")
    async def health() -> Response:
        if not server.accepting:
            return errors.unavailable("the engine is shutting down").response()
        return Response(status_code=200)

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        card = {**_card(server.model_name), "max_model_len": server.info.max_model_len}
        return JSONResponse({"object": "list", "data": [card]})

    @app.get("/metrics")
    async def metrics() -> Response:
        return _prometheus(server.metrics.registry)


def _add_tokenizer_routes(app: FastAPI, server: openai_api.Server) -> None:
    tokenizer = server.info.tokenizer

    @app.post("/tokenize")
    async def tokenize(request: Request) -> JSONResponse:
        body = await errors.read_body(request, TokenizeRequest)
        server.check_model(body.model)
        if body.messages is not None:
            messages = [{"role": m.role, "content": m.text()} for m in body.messages]
            try:
                text = tokenizer.apply_chat_template(messages)
            except ChatTemplateError as exc:
                raise errors.APIError(str(exc), param="messages") from exc
            ids = tokenizer.encode(text, add_special_tokens=False)
        elif body.prompt is not None:
            ids = tokenizer.encode(body.prompt, add_special_tokens=body.add_special_tokens)
        else:
            raise errors.APIError("give a prompt or messages", param="prompt")
        limit = server.info.max_model_len
        return JSONResponse({"count": len(ids), "max_model_len": limit, "tokens": ids})

    @app.post("/detokenize")
    async def detokenize(request: Request) -> JSONResponse:
        body = await errors.read_body(request, DetokenizeRequest)
        server.check_model(body.model)
        return JSONResponse({"prompt": tokenizer.decode(body.tokens)})
