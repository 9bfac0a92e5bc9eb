"""`/v1/completions` and `/v1/chat/completions`, streamed (SSE) and not."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from inferplane.engine.async_engine import AsyncEngine, EngineUnavailable
from inferplane.engine.llm import RequestError
from inferplane.engine.outputs import SequenceOutput
from inferplane.engine.sampling_params import SamplingParamError, SamplingParams
from inferplane.engine.server import errors, responses
from inferplane.engine.server.metrics import Metrics, RequestTimer
from inferplane.engine.server.protocol import ChatRequest, CompletionRequest, _Sampling
from inferplane.engine.tokenizer import ChatTemplateError, Tokenizer

Json = responses.Json


@dataclass
class Server:
    """What the handlers share: the engine, its public name and the metrics."""

    engine: AsyncEngine
    model_name: str
    metrics: Metrics

    def check_model(self, name: str | None) -> None:
        if name is not None and name != self.model_name:
            raise errors.model_not_found(name)

    async def start(
        self, request_id: str, prompt_ids: list[int], params: SamplingParams, priority: int
    ) -> AsyncIterator[SequenceOutput]:
        """Admit the request and wait for its first output, so that a bad prompt is a 400
        before any response header goes out; then the rest, timed into the metrics."""
        timer = self.metrics.timer()
        outputs = self.engine.generate(request_id, prompt_ids, params, priority=priority)
        try:
            first = await anext(outputs)
        except RequestError as exc:
            raise errors.APIError(str(exc), param=exc.param) from exc
        except EngineUnavailable as exc:
            raise errors.unavailable(str(exc)) from exc
        return _timed(first, outputs, timer)


async def _timed(
    first: SequenceOutput, rest: AsyncGenerator[SequenceOutput], timer: RequestTimer
) -> AsyncIterator[SequenceOutput]:
    prompt_tokens = first.prompt_tokens
    try:
        timer.observe(first)
        yield first
        async for output in rest:
            timer.observe(output)
            yield output
        timer.finish(prompt_tokens)
    finally:
        await rest.aclose()


def _params(body: _Sampling) -> SamplingParams:
    try:
        return body.sampling_params()
    except SamplingParamError as exc:
        raise errors.APIError(str(exc), param=exc.param) from exc


def router(server: Server) -> APIRouter:
    api = APIRouter()
    tokenizer = server.engine.engine.tokenizer

    @api.post("/v1/completions")
    async def completions(request: Request) -> Response:
        body = await errors.read_body(request, CompletionRequest)
        server.check_model(body.model)
        params = _params(body)
        ids = _completion_prompt(body, tokenizer.encode)
        envelope = responses.Envelope(f"cmpl-{uuid.uuid4().hex}", body.model, "text_completion")
        outputs = await server.start(envelope.id, ids, params, body.priority)
        if body.stream:
            chunks = _stream_completion(server, envelope, outputs, body.include_usage)
            return StreamingResponse(chunks, media_type="text/event-stream")
        return JSONResponse(await _complete(server, envelope, outputs, params, chat=False))

    @api.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await errors.read_body(request, ChatRequest)
        server.check_model(body.model)
        params = _params(body)
        try:
            text = tokenizer.apply_chat_template(body.template_messages())
        except ChatTemplateError as exc:
            raise errors.APIError(str(exc), param="messages") from exc
        ids = tokenizer.encode(text, add_special_tokens=False)
        envelope = responses.Envelope(f"chatcmpl-{uuid.uuid4().hex}", body.model, "chat.completion")
        outputs = await server.start(envelope.id, ids, params, body.priority)
        if body.stream:
            chunks = _stream_chat(server, envelope, outputs, params.n, body.include_usage)
            return StreamingResponse(chunks, media_type="text/event-stream")
        return JSONResponse(await _complete(server, envelope, outputs, params, chat=True))

    return api


def _completion_prompt(body: CompletionRequest, encode: Callable[[str], list[int]]) -> list[int]:
    prompt = body.prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        if len(prompt) != 1:
            raise errors.APIError("only one prompt per request is supported", param="prompt")
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise errors.APIError("the prompt is empty", param="prompt")
        return encode(prompt)
    if not prompt:
        raise errors.APIError("the prompt is empty", param="prompt")
    return [int(t) for t in prompt]


async def _complete(
    server: Server,
    envelope: responses.Envelope,
    outputs: AsyncIterator[SequenceOutput],
    params: SamplingParams,
    *,
    chat: bool,
) -> Json:
    choices = [responses.Choice() for _ in range(params.n)]
    prompt_tokens = 0
    async for output in outputs:
        prompt_tokens = output.prompt_tokens or prompt_tokens
        choices[output.index].add(output)
    build = _chat_choice if chat else _completion_choice
    tokenizer = server.engine.engine.tokenizer
    body = [build(tokenizer, i, c, params.logprobs) for i, c in enumerate(choices)]
    completion_tokens = sum(c.completion_tokens for c in choices)
    obj = "chat.completion" if chat else "text_completion"
    envelope = responses.Envelope(envelope.id, envelope.model, obj, envelope.created)
    return envelope.body(body, usage=responses.usage(prompt_tokens, completion_tokens))


def _completion_choice(
    tokenizer: Tokenizer, index: int, choice: responses.Choice, lp: bool
) -> Json:
    logprobs = (
        responses.completion_logprobs(tokenizer, choice.token_ids, choice.logprobs) if lp else None
    )
    return {
        "index": index,
        "text": choice.text,
        "logprobs": logprobs,
        "finish_reason": choice.finish_reason,
    }


def _chat_choice(tokenizer: Tokenizer, index: int, choice: responses.Choice, lp: bool) -> Json:
    logprobs = responses.chat_logprobs(tokenizer, choice.token_ids, choice.logprobs) if lp else None
    return {
        "index": index,
        "message": {"role": "assistant", "content": choice.text},
        "logprobs": logprobs,
        "finish_reason": choice.finish_reason,
    }


async def _stream_completion(
    server: Server,
    envelope: responses.Envelope,
    outputs: AsyncIterator[SequenceOutput],
    include_usage: bool,
) -> AsyncIterator[str]:
    tokenizer = server.engine.engine.tokenizer
    extra: Json = {"usage": None} if include_usage else {}
    tally = _Tally()
    offsets: dict[int, int] = {}
    async for output in outputs:
        tally.add(output)
        if not (output.text or output.finish_reason or output.token_ids):
            continue
        logprobs = None
        if output.logprobs:
            offset = offsets.get(output.index, 0)
            logprobs = responses.completion_logprobs(
                tokenizer, output.token_ids, output.logprobs, offset=offset
            )
            offsets[output.index] = offset + sum(len(t) for t in logprobs["tokens"])
        choice = {
            "index": output.index,
            "text": output.text,
            "logprobs": logprobs,
            "finish_reason": output.finish_reason,
        }
        yield responses.sse(envelope.body([choice], **extra))
    if include_usage:
        yield responses.sse(envelope.body([], usage=tally.usage()))
    yield responses.DONE


async def _stream_chat(
    server: Server,
    envelope: responses.Envelope,
    outputs: AsyncIterator[SequenceOutput],
    n: int,
    include_usage: bool,
) -> AsyncIterator[str]:
    tokenizer = server.engine.engine.tokenizer
    envelope = responses.Envelope(envelope.id, envelope.model, "chat.completion.chunk")
    extra: Json = {"usage": None} if include_usage else {}
    for index in range(n):
        role = {"index": index, "delta": {"role": "assistant", "content": ""}}
        yield responses.sse(
            envelope.body([{**role, "logprobs": None, "finish_reason": None}], **extra)
        )
    tally = _Tally()
    async for output in outputs:
        tally.add(output)
        if not (output.text or output.finish_reason):
            continue
        logprobs = None
        if output.logprobs:
            logprobs = responses.chat_logprobs(tokenizer, output.token_ids, output.logprobs)
        delta = {"content": output.text} if output.text else {}
        choice = {
            "index": output.index,
            "delta": delta,
            "logprobs": logprobs,
            "finish_reason": output.finish_reason,
        }
        yield responses.sse(envelope.body([choice], **extra))
    if include_usage:
        yield responses.sse(envelope.body([], usage=tally.usage()))
    yield responses.DONE


@dataclass
class _Tally:
    """Token counts of a streamed request, for its usage chunk."""

    prompt_tokens: int = 0
    completion: dict[int, int] = field(default_factory=dict)

    def add(self, output: SequenceOutput) -> None:
        self.prompt_tokens = output.prompt_tokens or self.prompt_tokens
        seen = self.completion.get(output.index, 0)
        self.completion[output.index] = max(seen, output.completion_tokens)

    def usage(self) -> Json:
        return responses.usage(self.prompt_tokens, sum(self.completion.values()))
