"""KServe's V2 / Open Inference Protocol over HTTP, and Triton's generate extension.

Health, server and model metadata, model readiness, `infer` (a BYTES `text_input` tensor in;
`text_output` BYTES out for a generative model, `embedding` FP32 `[n, dim]` out for an
embedding model), `generate` and `generate_stream` (server-sent `data: {json}` events, the
last with the finish reason). Every model route also answers under
`/v2/models/{name}/versions/{version}`. Errors are V2's shape, `{"error": "..."}` (see
`errors.install`): 404 for an unknown model or version, 400 for bad input.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inferplane.engine.async_engine import EngineStepFailed
from inferplane.engine.outputs import SequenceOutput
from inferplane.engine.sampling_params import SamplingParamError, SamplingParams
from inferplane.engine.server import errors, openai_api, responses
from inferplane.engine.server.embeddings_api import SERVES_EMBEDDINGS, EmbeddingService
from inferplane.engine.server.protocol import CompletionRequest
from inferplane.engine.server.unsupported import FieldError

Json = responses.Json
VERSION = "1"
TEXT_INPUT = "text_input"
IGNORED_PARAMETERS = frozenset(
    {
        "stream",
        "model",
        "prompt",
        "exclude_input_in_output",
        "return_finish_reason",
        "return_num_input_tokens",
        "return_num_output_tokens",
    }
)
"""Keys of `parameters` that are not sampling fields (Triton clients send some of them; the
`return_*` ones ask for what the last generate_stream event always carries). Any other key
must be a completion field the engine implements, or the request is refused."""
MODEL_ROUTE = "/v2/models/{name}"
VERSIONED_ROUTE = "/v2/models/{name}/versions/{version}"


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
        if self.embedder is not None:
            return self.embedder.accepting
        return self.generator is not None and self.generator.accepting

    def check(self, request: Request) -> str:
        """The route's model name, if it is this model (and the version, if given, is its
        version); else a 404."""
        name = str(request.path_params["name"])
        if name != self.name:
            raise errors.APIError(f"model '{name}' is not served here", status=404)
        version = request.path_params.get("version")
        if version is not None and version != VERSION:
            message = f"model '{name}' has no version '{version}' (it serves version {VERSION})"
            raise errors.APIError(message, status=404)
        return name

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


Handler = Callable[[Request], Awaitable[Response]]


def _model_route(api: APIRouter, suffix: str, handler: Handler, method: str) -> None:
    """`handler` at `/v2/models/{name}<suffix>` and its versioned twin."""
    for prefix in (MODEL_ROUTE, VERSIONED_ROUTE):
        api.add_api_route(prefix + suffix, handler, methods=[method])


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

    async def metadata(request: Request) -> Response:
        model.check(request)
        return JSONResponse(model.metadata())

    async def model_ready(request: Request) -> Response:
        name = model.check(request)
        ok = model.ready()
        return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 503)

    _model_route(api, "", metadata, "GET")
    _model_route(api, "/ready", model_ready, "GET")


def _add_infer_route(api: APIRouter, model: V2Model) -> None:
    async def infer(request: Request) -> Response:
        name = model.check(request)
        body = await _read(request, InferRequest)
        texts = text_input(body.inputs)
        if model.embedder is not None:
            outputs = await _embed(model.embedder, texts)
        else:
            parameters = {**body.parameters, **scalar_inputs(body.inputs)}
            outputs = await _generate_all(model.require_generator(), texts, parameters)
        head: Json = {"model_name": name, "model_version": VERSION}
        return JSONResponse({**head, **({"id": body.id} if body.id else {}), "outputs": outputs})

    _model_route(api, "/infer", infer, "POST")


def _add_generate_routes(api: APIRouter, model: V2Model) -> None:
    async def generate(request: Request) -> Response:
        name = model.check(request)
        body = await _read(request, GenerateRequest)
        result = await _complete(model.require_generator(), body.text_input, body.all_parameters())
        return JSONResponse(_event(name, result.text, result.finish()))

    async def generate_stream(request: Request) -> Response:
        name = model.check(request)
        body = await _read(request, GenerateRequest)
        outputs = await _start(model.require_generator(), body.text_input, body.all_parameters())
        return StreamingResponse(_events(name, outputs), media_type="text/event-stream")

    _model_route(api, "/generate", generate, "POST")
    _model_route(api, "/generate_stream", generate_stream, "POST")


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
    if body.return_token_ids:
        message = "parameters.return_token_ids: only the OpenAI routes return token ids"
        raise errors.APIError(message, param="return_token_ids")
    try:
        body.check_supported()
        return body.sampling_params()
    except (FieldError, SamplingParamError) as exc:
        raise errors.APIError(f"parameters.{exc.param}: {exc}", param=exc.param) from exc


async def _start(
    server: openai_api.Server, text: str, parameters: dict[str, Any]
) -> AsyncIterator[SequenceOutput]:
    """Admit one prompt; its outputs. A bad prompt or parameter is a 400 here."""
    if not text:
        raise errors.APIError(f"{TEXT_INPUT} is empty", param=TEXT_INPUT)
    params = sampling_params(parameters)
    priority = int(parameters.get("priority", 0))
    ids = server.info.tokenizer.encode(text)
    generation = await server.start(f"v2-{uuid.uuid4().hex}", ids, params, priority)
    return generation.outputs()


@dataclass
class _Progress:
    """What a generation has produced so far, for the finish information."""

    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None

    def add(self, output: SequenceOutput) -> None:
        self.text += output.text
        self.prompt_tokens = output.prompt_tokens or self.prompt_tokens
        self.completion_tokens = max(self.completion_tokens, output.completion_tokens)
        self.finish_reason = output.finish_reason or self.finish_reason

    def finish(self) -> Json:
        """The finish information, as Triton's vLLM backend names its optional outputs."""
        return {
            "finish_reason": self.finish_reason,
            "num_input_tokens": self.prompt_tokens,
            "num_output_tokens": self.completion_tokens,
        }


async def _complete(server: openai_api.Server, text: str, parameters: dict[str, Any]) -> _Progress:
    outputs = await _start(server, text, parameters)
    progress = _Progress()
    try:
        async for output in outputs:
            progress.add(output)
    except EngineStepFailed as exc:
        raise errors.internal(str(exc)) from exc
    return progress


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
    data = [result.text for result in results]
    return [{"name": "text_output", "datatype": "BYTES", "shape": [len(texts)], "data": data}]


async def _embed(service: EmbeddingService, texts: list[str]) -> list[Json]:
    embeddings = await service.embed(texts)
    data = [value for e in embeddings for value in e.vector]
    shape = [len(texts), service.dimensions]
    return [{"name": "embedding", "datatype": "FP32", "shape": shape, "data": data}]


def _event(name: str, text: str, finish: Json | None = None) -> Json:
    return {"model_name": name, "model_version": VERSION, "text_output": text, **(finish or {})}


async def _events(name: str, outputs: AsyncIterator[SequenceOutput]) -> AsyncIterator[str]:
    """One event per output with new text; the last carries the finish information (also
    when aborted at shutdown). An engine failure ends the stream with an error event."""
    progress = _Progress()
    try:
        async for output in outputs:
            progress.add(output)
            if output.finish_reason is not None:
                yield responses.sse(_event(name, output.text, progress.finish()))
            elif output.text:
                yield responses.sse(_event(name, output.text))
    except EngineStepFailed as exc:
        yield responses.sse({"error": str(exc)})
