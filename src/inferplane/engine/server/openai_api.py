"""`/v1/completions` and `/v1/chat/completions`, streamed (SSE) and not."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from inferplane.engine.async_engine import AsyncEngine, EngineStepFailed, EngineUnavailable
from inferplane.engine.llm import EngineInfo, RequestError
from inferplane.engine.outputs import SequenceOutput
from inferplane.engine.sampling_params import SamplingParamError, SamplingParams
from inferplane.engine.server import errors, merge, responses, streams
from inferplane.engine.server.metrics import Metrics, RequestTimer
from inferplane.engine.server.protocol import ChatRequest, CompletionRequest, _Sampling
from inferplane.engine.server.unsupported import FieldError
from inferplane.engine.tokenizer import ChatTemplateError, Tokenizer

Json = responses.Json


@dataclass
class Server:
    """What the handlers share: the engine, its public name, the metrics, and what they need
    to know of the model (its tokenizer and limits)."""

    engine: AsyncEngine
    model_name: str
    metrics: Metrics
    info: EngineInfo

    @property
    def accepting(self) -> bool:
        """False once shutdown began: new requests and /health get a 503."""
        return self.engine.accepting

    def check_model(self, name: str | None) -> None:
        if name is not None and name != self.model_name:
            raise errors.model_not_found(name)

    async def start(
        self, request_id: str, prompt_ids: list[int], params: SamplingParams, priority: int
    ) -> Generation:
        """Admit the request and wait for its first output, so that a bad prompt is a 400
        before any response header goes out."""
        timer = self.metrics.timer()
        outputs = self.engine.generate(request_id, prompt_ids, params, priority=priority)
        try:
            first = await anext(outputs)
        except RequestError as exc:
            raise errors.APIError(str(exc), param=exc.param) from exc
        except EngineUnavailable as exc:
            raise errors.unavailable(str(exc)) from exc
        return Generation(first, outputs, timer)

    async def start_all(
        self, request_id: str, prompts: list[list[int]], params: SamplingParams, priority: int
    ) -> AsyncIterator[SequenceOutput]:
        """One engine request per prompt, admitted together; their outputs merged, each
        `index` made `prompt_index * n + index` as OpenAI numbers the choices. One prompt
        the engine refuses refuses the request and aborts the others."""
        if len(prompts) == 1:
            return (await self.start(request_id, prompts[0], params, priority)).outputs()
        starts = [
            self.start(f"{request_id}-{i}", ids, params, priority) for i, ids in enumerate(prompts)
        ]
        results = await asyncio.gather(*starts, return_exceptions=True)
        started = [r for r in results if isinstance(r, Generation)]
        for result in results:
            if isinstance(result, BaseException):
                for generation in started:
                    await generation.aclose()
                raise result
        sources = [_reindexed(g.outputs(), i * params.n) for i, g in enumerate(started)]
        return merge.merge(sources)


@dataclass
class Generation:
    """One admitted engine request: its first output and the rest, timed into the metrics
    as they are read."""

    first: SequenceOutput
    rest: AsyncGenerator[SequenceOutput]
    timer: RequestTimer

    async def outputs(self) -> AsyncIterator[SequenceOutput]:
        try:
            self.timer.observe(self.first)
            yield self.first
            async for output in self.rest:
                self.timer.observe(output)
                yield output
            self.timer.finish(self.first.prompt_tokens)
        finally:
            await self.rest.aclose()

    async def aclose(self) -> None:
        """Abort the request when `outputs` will never be read."""
        await self.rest.aclose()


async def _reindexed(
    outputs: AsyncIterator[SequenceOutput], offset: int
) -> AsyncIterator[SequenceOutput]:
    async for output in outputs:
        yield dataclasses.replace(output, index=offset + output.index)


def _params(body: _Sampling) -> SamplingParams:
    try:
        body.check_supported()
        return body.sampling_params()
    except FieldError as exc:
        raise errors.APIError(str(exc), param=exc.param, code=exc.code) from exc
    except SamplingParamError as exc:
        raise errors.APIError(str(exc), param=exc.param) from exc


def router(server: Server) -> APIRouter:
    api = APIRouter()
    tokenizer = server.info.tokenizer
    vocab_size = server.info.vocab_size

    @api.post("/v1/completions")
    async def completions(request: Request) -> Response:
        body = await errors.read_body(request, CompletionRequest)
        server.check_model(body.model)
        params = _params(body)
        ids = _prompt_ids(body, tokenizer.encode, vocab_size)
        prompts = responses.Prompts(ids, params.n, return_token_ids=bool(body.return_token_ids))
        envelope = responses.Envelope(f"cmpl-{uuid.uuid4().hex}", body.model, "text_completion")
        outputs = await server.start_all(envelope.id, ids, params, body.priority)
        if body.stream:
            chunks = streams.completion(tokenizer, envelope, outputs, prompts, body.include_usage)
            return StreamingResponse(chunks, media_type="text/event-stream")
        return JSONResponse(await _complete(server, envelope, outputs, params, prompts, chat=False))

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
        prompts = responses.Prompts([ids], params.n, return_token_ids=bool(body.return_token_ids))
        envelope = responses.Envelope(f"chatcmpl-{uuid.uuid4().hex}", body.model, "chat.completion")
        outputs = (await server.start(envelope.id, ids, params, body.priority)).outputs()
        if body.stream:
            chunks = streams.chat(tokenizer, envelope, outputs, prompts, body.include_usage)
            return StreamingResponse(chunks, media_type="text/event-stream")
        return JSONResponse(await _complete(server, envelope, outputs, params, prompts, chat=True))

    return api


def _prompt_ids(
    body: CompletionRequest, encode: Callable[[str], list[int]], vocab_size: int
) -> list[list[int]]:
    """Each prompt as token ids; token ids outside the vocabulary are a 400 here, since the
    model would fail on them mid-step, and with it every request in the batch."""
    try:
        prompts = body.prompts()
    except FieldError as exc:
        raise errors.APIError(str(exc), param=exc.param) from exc
    ids = [encode(p) if isinstance(p, str) else p for p in prompts]
    if any(not 0 <= t < vocab_size for prompt in ids for t in prompt):
        raise errors.APIError(f"prompt: token ids must be in [0, {vocab_size})", param="prompt")
    return ids


async def _complete(
    server: Server,
    envelope: responses.Envelope,
    outputs: AsyncIterator[SequenceOutput],
    params: SamplingParams,
    prompts: responses.Prompts,
    *,
    chat: bool,
) -> Json:
    choices = [responses.Choice() for _ in range(prompts.num_choices)]
    tally = responses.Tally(params.n)
    try:
        async for output in outputs:
            tally.add(output)
            choices[output.index].add(output)
    except EngineStepFailed as exc:
        raise errors.internal(str(exc)) from exc
    build = _chat_choice if chat else _completion_choice
    tokenizer = server.info.tokenizer
    body = [build(tokenizer, i, c, params.logprobs) for i, c in enumerate(choices)]
    extra = _token_ids(body, choices, prompts, chat=chat) if prompts.return_token_ids else {}
    obj = "chat.completion" if chat else "text_completion"
    envelope = responses.Envelope(envelope.id, envelope.model, obj, envelope.created)
    return envelope.body(body, usage=tally.usage(), **extra)


def _token_ids(
    body: list[Json], choices: list[responses.Choice], prompts: responses.Prompts, *, chat: bool
) -> Json:
    """vLLM's `return_token_ids`, unstreamed: each choice's generated ids (the EOS or stop
    token included) and the prompt's ids, on each completion choice or on the chat response;
    returns the response's fields."""
    for index, choice in enumerate(body):
        choice["token_ids"] = choices[index].token_ids
        if not chat:
            choice["prompt_token_ids"] = prompts.of(index)
    return {"prompt_token_ids": prompts.of(0)} if chat else {}


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
