"""`POST /v1/embeddings` in OpenAI's shape, served by an Embedder in a worker thread; and
the refusals that tell a client it asked the wrong kind of model."""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from inferplane.engine.embedder import Embedder, Embedding
from inferplane.engine.server import errors, unsupported
from inferplane.engine.server.metrics import EmbeddingMetrics

SERVES_EMBEDDINGS = "this model serves embeddings; use POST /v1/embeddings"
SERVES_GENERATION = "this model serves text generation, not embeddings"
GENERATE_ROUTES = ("/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize")


class EmbeddingRequest(BaseModel):
    """`POST /v1/embeddings`."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    input: str | list[str] | list[int] | list[list[int]]
    """One text or token-id list, or a list of them; each gets one embedding, in order."""
    encoding_format: Literal["float", "base64"] = "float"
    """`base64`: the little-endian float32 bytes of each vector, base64-encoded."""
    dimensions: int | None = None
    """Only the model's own dimension is accepted (no truncation)."""
    user: str | None = None
    """Accepted and ignored."""

    def check_supported(self) -> None:
        """APIError 400 naming a field the engine does not implement (see `unsupported`)."""
        try:
            unsupported.check(self.model_extra or {}, unsupported.EMBEDDING, n=1)
        except unsupported.FieldError as exc:
            raise errors.APIError(str(exc), param=exc.param, code=exc.code) from exc

    def inputs(self) -> list[str | list[int]]:
        """The inputs as a list of texts or token-id lists; 400 for empty ones."""
        given = self.input
        ids = [] if isinstance(given, str) else [x for x in given if isinstance(x, int)]
        items: list[str | list[int]]
        if isinstance(given, str) or ids:
            items = [given if isinstance(given, str) else ids]  # one text or one id list
        else:
            items = [x for x in given if not isinstance(x, int)]
        if not items:
            raise errors.APIError("input is empty", param="input")
        if any(not item for item in items):
            raise errors.APIError("input holds an empty string or token list", param="input")
        return items


@dataclass
class EmbeddingService:
    """An Embedder behind a lock, run in a worker thread so the event loop stays free; it
    admits requests until drained and keeps the counts and metrics of what it runs."""

    embedder: Embedder
    model_name: str
    clock: Callable[[], float] = time.monotonic
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    accepting: bool = True
    num_in_flight: int = 0
    """Requests admitted and not yet answered (waiting for the lock, or running)."""
    num_running: int = 0
    """Requests whose batch is in the model now (one at a time)."""
    metrics: EmbeddingMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = EmbeddingMetrics(self, self.model_name)

    @property
    def dimensions(self) -> int:
        return self.embedder.dimensions

    @property
    def num_waiting(self) -> int:
        return self.num_in_flight - self.num_running

    def check_model(self, name: str | None) -> None:
        if name is not None and name != self.model_name:
            raise errors.model_not_found(name)

    async def embed(self, inputs: Sequence[str | list[int]]) -> list[Embedding]:
        """All of `inputs` (texts or token ids) as one batch, in a worker thread; one batch
        runs at a time. APIError 503 once draining."""
        if not self.accepting:
            raise errors.unavailable("the engine is shutting down")
        self._check_ids(inputs)
        started = self.clock()
        self.num_in_flight += 1
        try:
            async with self.lock:
                embeddings = await self._run(inputs)
        finally:
            self.num_in_flight -= 1
        tokens = sum(e.tokens for e in embeddings)
        self.metrics.observe(seconds=self.clock() - started, prompt_tokens=tokens)
        return embeddings

    async def _run(self, inputs: Sequence[str | list[int]]) -> list[Embedding]:
        self.num_running += 1
        try:
            return await asyncio.to_thread(self._embed, inputs)
        finally:
            self.num_running -= 1

    def stop_admitting(self) -> None:
        """New requests get a 503 from now on; admitted ones go on."""
        self.accepting = False

    async def drain(self, grace: float) -> None:
        """Stop admitting and wait up to `grace` seconds for admitted requests to finish (a
        batch in the model cannot be cut short)."""
        self.stop_admitting()
        deadline = self.clock() + grace
        while self.num_in_flight and self.clock() < deadline:
            await asyncio.sleep(0.02)

    def _embed(self, inputs: Sequence[str | list[int]]) -> list[Embedding]:
        encode = self.embedder.tokenizer.encode
        ids = [encode(item).ids if isinstance(item, str) else item for item in inputs]
        return self.embedder.embed_ids(ids)

    def _check_ids(self, inputs: Sequence[str | list[int]]) -> None:
        vocab = self.embedder.vocab_size
        for item in inputs:
            if not isinstance(item, str) and any(not 0 <= t < vocab for t in item):
                message = f"token ids must be in [0, {vocab})"
                raise errors.APIError(message, param="input")


def router(service: EmbeddingService) -> APIRouter:
    api = APIRouter()

    @api.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        body = await errors.read_body(request, EmbeddingRequest)
        service.check_model(body.model)
        body.check_supported()
        _check_dimensions(body.dimensions, service.dimensions)
        embeddings = await service.embed(body.inputs())
        return JSONResponse(response_body(embeddings, body, service.model_name))

    return api


def _check_dimensions(asked: int | None, own: int) -> None:
    if asked is not None and asked != own:
        message = f"this model's embeddings have {own} dimensions; dimensions={asked} is refused"
        raise errors.APIError(message, param="dimensions")


def response_body(
    embeddings: list[Embedding], body: EmbeddingRequest, model: str
) -> dict[str, object]:
    data = [
        {"object": "embedding", "index": i, "embedding": encode(e.vector, body.encoding_format)}
        for i, e in enumerate(embeddings)
    ]
    tokens = sum(e.tokens for e in embeddings)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": body.model or model, "usage": usage}


def encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def refuse_generation() -> APIRouter:
    """The generate routes on an embedding model: each a 400 saying what the model serves."""
    api = APIRouter()

    async def refuse() -> JSONResponse:
        return errors.APIError(SERVES_EMBEDDINGS).response()

    for path in GENERATE_ROUTES:
        api.add_api_route(path, refuse, methods=["POST"])
    return api


def refuse_embeddings() -> APIRouter:
    """`/v1/embeddings` on a generative model: a 400."""
    api = APIRouter()

    @api.post("/v1/embeddings")
    async def embeddings() -> JSONResponse:
        return errors.APIError(SERVES_GENERATION, param="model").response()

    return api
