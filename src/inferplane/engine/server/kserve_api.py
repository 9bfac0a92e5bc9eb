"""KServe's V2 / Open Inference Protocol over HTTP, and Triton's generate extension.

Health, server and model metadata, model readiness, `infer` (a BYTES `text_input` tensor in;
`text_output` BYTES out for a generative model, `embedding` FP32 `[n, dim]` out for an
embedding model), `generate` and `generate_stream` (server-sent `data: {json}` events).
Errors are V2's shape, `{"error": "..."}`: 404 for an unknown model, 400 for bad input.
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inferplane.engine.sampling_params import SamplingParamError, SamplingParams
from inferplane.engine.server import errors, openai_api, responses
from inferplane.engine.server.embeddings_api import SERVES_EMBEDDINGS, EmbeddingService
from inferplane.engine.server.protocol import CompletionRequest

Json = responses.Json
P = ParamSpec("P")
VERSION = "1"
TEXT_INPUT = "text_input"
IGNORED_PARAMETERS = frozenset({"stream", "model", "prompt", "exclude_input_in_output"})
"""Keys of `parameters` that are not sampling fields (Triton clients send some of them)."""


class Tensor(BaseModel):
    """One input tensor of an infer request, data flattened row-major (or nested)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    inputs: list[Tensor] = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)


class GenerateRequest(BaseModel):
    """Triton's generate extension: `text_input`, `parameters`, other top-level keys are
    parameters too."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    text_input: str
    parameters: dict[str, Any] = Field(default_factory=dict)

    def all_parameters(self) -> dict[str, Any]:
        return {**(self.model_extra or {}), **self.parameters}


@dataclass
class V2Model:
    """The one served model: a generator (the engine's Server) or an embedder."""

    name: str
    generator: openai_api.Server | None = None
    embedder: EmbeddingService | None = None

    def ready(self) -> bool:
        return self.embedder is not None or (
            self.generator is not None and self.generator.engine.accepting
        )

    def check(self, name: str) -> None:
        if name != self.name:
            raise errors.APIError(f"model '{name}' is not served here", status=404)

    def metadata(self) -> Json:
        tensor = {"name": TEXT_INPUT, "datatype": "BYTES", "shape": [-1]}
        if self.embedder is not None:
            out = {"name": "embedding", "datatype": "FP32", "shape": [-1, self.embedder.dimensions]}
        else:
            out = {"name": "text_output", "datatype": "BYTES", "shape": [-1]}
        return {
            "name": self.name,
            "versions": [VERSION],
            "platform": "inferplane",
            "inputs": [tensor],
            "outputs": [out],
        }

    def require_generator(self) -> openai_api.Server:
        if self.generator is None:
            raise errors.APIError(SERVES_EMBEDDINGS)
        return self.generator


def v2_errors(handler: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Answer an APIError raised by `handler` in V2's shape, `{"error": message}`."""

    @functools.wraps(handler)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await handler(*args, **kwargs)
        except errors.APIError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)

    return wrapped


def router(model: V2Model) -> APIRouter:
    api = APIRouter()
    _add_health_routes(api, model)
    _add_infer_route(api, model)
    _add_generate_routes(api, model)
    return api


def _add_health_routes(api: APIRouter, model: V2Model) -> None:
    @api.get("/v2")
    async def server_metadata() -> JSONResponse:
        extensions = ["generate"] if model.generator else []
        return JSONResponse({"name": "inferplane", "version": VERSION, "extensions": extensions})

    @api.get("/v2/health/live")
    async def live() -> JSONResponse:
        return JSONResponse({"live": True})

    @api.get("/v2/health/ready")
    async def ready() -> JSONResponse:
        return JSONResponse({"ready": model.ready()}, status_code=200 if model.ready() else 503)

    @api.get("/v2/models/{name}")
    @v2_errors
    async def metadata(name: str) -> Response:
        model.check(name)
        return JSONResponse(model.metadata())

    @api.get("/v2/models/{name}/ready")
    @v2_errors
    async def model_ready(name: str) -> Response:
        model.check(name)
        ok = model.ready()
        return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 503)


def _add_infer_route(api: APIRouter, model: V2Model) -> None:
    @api.post("/v2/models/{name}/infer")
    @v2_errors
    async def infer(name: str, request: Request) -> Response:
        model.check(name)
        body = await _read(request, InferRequest)
        texts = text_input(body.inputs)
        if model.embedder is not None:
            outputs = await _embed(model.embedder, texts)
        else:
            parameters = {**body.parameters, **scalar_inputs(body.inputs)}
            outputs = await _generate_all(model.require_generator(), texts, parameters)
        head: Json = {"model_name": name, "model_version": VERSION}
        return JSONResponse({**head, **({"id": body.id} if body.id else {}), "outputs": outputs})


def _add_generate_routes(api: APIRouter, model: V2Model) -> None:
    @api.post("/v2/models/{name}/generate")
    @v2_errors
    async def generate(name: str, request: Request) -> Response:
        model.check(name)
        body = await _read(request, GenerateRequest)
        text = await _complete(model.require_generator(), body.text_input, body.all_parameters())
        return JSONResponse({"model_name": name, "model_version": VERSION, "text_output": text})

    @api.post("/v2/models/{name}/generate_stream")
    @v2_errors
    async def generate_stream(name: str, request: Request) -> Response:
        model.check(name)
        body = await _read(request, GenerateRequest)
        pieces = await _start(model.require_generator(), body.text_input, body.all_parameters())
        return StreamingResponse(_events(name, pieces), media_type="text/event-stream")


async def _read(request: Request, model: type[errors.Model]) -> errors.Model:
    return await errors.read_body(request, model)


def text_input(inputs: list[Tensor]) -> list[str]:
    """The strings of the BYTES `text_input` tensor, flattened; 400s name what is wrong."""
    found = [t for t in inputs if t.name == TEXT_INPUT]
    if not found:
        raise errors.APIError(f"the request has no '{TEXT_INPUT}' input", param=TEXT_INPUT)
    tensor = found[0]
    if tensor.datatype != "BYTES":
        message = f"input '{TEXT_INPUT}' must be BYTES, not {tensor.datatype}"
        raise errors.APIError(message, param=TEXT_INPUT)
    texts = _flatten(tensor.data)
    if not texts or not all(isinstance(t, str) and t for t in texts):
        message = f"input '{TEXT_INPUT}' must hold non-empty strings"
        raise errors.APIError(message, param=TEXT_INPUT)
    return [str(t) for t in texts]


def scalar_inputs(inputs: list[Tensor]) -> dict[str, Any]:
    """Other one-element inputs as parameters (TensorRT-LLM's `max_tokens`, `temperature`...;
    vLLM backend's `sampling_parameters` JSON string is unpacked)."""
    found = {t.name: _flatten(t.data)[0] for t in inputs if t.name != TEXT_INPUT and t.data}
    packed = found.pop("sampling_parameters", None)
    if isinstance(packed, str):
        try:
            found |= dict(json.loads(packed))
        except (ValueError, TypeError) as exc:
            message = f"input 'sampling_parameters' is not a JSON object: {exc}"
            raise errors.APIError(message, param="sampling_parameters") from exc
    return found


def _flatten(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def sampling_params(parameters: dict[str, Any]) -> SamplingParams:
    """Completion sampling fields from V2 `parameters`; errors name `parameters.<field>`."""
    fields = {k: v for k, v in parameters.items() if k not in IGNORED_PARAMETERS}
    try:
        body = CompletionRequest.model_validate({**fields, "model": "", "prompt": "-"})
    except ValidationError as exc:
        error = errors.from_validation(exc)
        raise errors.APIError(f"parameters.{error.message}", param=error.param) from exc
    if body.n != 1:
        raise errors.APIError("parameters.n: only 1 is supported", param="n")
    try:
        return body.sampling_params()
    except SamplingParamError as exc:
        raise errors.APIError(f"parameters.{exc.param}: {exc}", param=exc.param) from exc


async def _start(
    server: openai_api.Server, text: str, parameters: dict[str, Any]
) -> AsyncIterator[str]:
    """Admit one prompt; its text deltas. A bad prompt or parameter is a 400 here."""
    if not text:
        raise errors.APIError(f"{TEXT_INPUT} is empty", param=TEXT_INPUT)
    params = sampling_params(parameters)
    priority = int(parameters.get("priority", 0))
    ids = server.engine.engine.tokenizer.encode(text)
    outputs = await server.start(f"v2-{uuid.uuid4().hex}", ids, params, priority)
    return (output.text async for output in outputs if output.text)


async def _complete(server: openai_api.Server, text: str, parameters: dict[str, Any]) -> str:
    pieces = await _start(server, text, parameters)
    return "".join([piece async for piece in pieces])


async def _generate_all(
    server: openai_api.Server, texts: list[str], parameters: dict[str, Any]
) -> list[Json]:
    tasks = [asyncio.ensure_future(_complete(server, text, parameters)) for text in texts]
    try:
        results = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()  # a bad prompt aborts its siblings
        raise
    return [{"name": "text_output", "datatype": "BYTES", "shape": [len(texts)], "data": results}]


async def _embed(service: EmbeddingService, texts: list[str]) -> list[Json]:
    embeddings = await service.embed(texts)
    data = [value for e in embeddings for value in e.vector]
    shape = [len(texts), service.dimensions]
    return [{"name": "embedding", "datatype": "FP32", "shape": shape, "data": data}]


async def _events(name: str, pieces: AsyncIterator[str]) -> AsyncIterator[str]:
    async for piece in pieces:
        event = {"model_name": name, "model_version": VERSION, "text_output": piece}
        yield responses.sse(event)
