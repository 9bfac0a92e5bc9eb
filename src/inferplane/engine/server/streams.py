"""The server-sent event streams of `/v1/completions` and `/v1/chat/completions`.

With vLLM's `return_token_ids`, a chunk's choice carries `token_ids`, the ids sampled since
the choice's previous chunk (its text may lag them, as in vLLM: a possible stop string or an
incomplete character is held back), so the ids of all chunks of a choice concatenate to its
generated ids, the EOS or stop token included. The prompt's ids come once: on a completion
choice's first chunk (`prompt_token_ids`, null on its later chunks), on each chat role chunk
(top-level `prompt_token_ids`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from inferplane.engine.async_engine import EngineStepFailed
from inferplane.engine.outputs import SequenceOutput
from inferplane.engine.server import errors, responses
from inferplane.engine.tokenizer import Tokenizer

Json = responses.Json


async def completion(
    tokenizer: Tokenizer,
    envelope: responses.Envelope,
    outputs: AsyncIterator[SequenceOutput],
    prompts: responses.Prompts,
    include_usage: bool,
) -> AsyncIterator[str]:
    extra: Json = {"usage": None} if include_usage else {}
    tally = responses.Tally(prompts.n)
    offsets: dict[int, int] = {}
    unsent = set(range(prompts.num_choices))  # choices whose prompt ids are still to send
    async for output in _until_failure(outputs, tally):
        if not (output.text or output.finish_reason or output.token_ids):
            continue
        choice = {
            "index": output.index,
            "text": output.text,
            "logprobs": _completion_logprobs(tokenizer, output, offsets),
            "finish_reason": output.finish_reason,
        }
        if prompts.return_token_ids:
            first = output.index in unsent
            unsent.discard(output.index)
            choice["prompt_token_ids"] = prompts.of(output.index) if first else None
            choice["token_ids"] = output.token_ids
        yield responses.sse(envelope.body([choice], **extra))
    async for tail in _stream_end(envelope, tally, include_usage):
        yield tail


def _completion_logprobs(
    tokenizer: Tokenizer, output: SequenceOutput, offsets: dict[int, int]
) -> Json | None:
    """The chunk's logprobs, their text offsets running on from the choice's last chunk."""
    if not output.logprobs:
        return None
    offset = offsets.get(output.index, 0)
    logprobs = responses.completion_logprobs(
        tokenizer, output.token_ids, output.logprobs, offset=offset
    )
    offsets[output.index] = offset + sum(len(t) for t in logprobs["tokens"])
    return logprobs


async def chat(
    tokenizer: Tokenizer,
    envelope: responses.Envelope,
    outputs: AsyncIterator[SequenceOutput],
    prompts: responses.Prompts,
    include_usage: bool,
) -> AsyncIterator[str]:
    envelope = responses.Envelope(envelope.id, envelope.model, "chat.completion.chunk")
    extra: Json = {"usage": None} if include_usage else {}
    for chunk in _role_chunks(envelope, prompts, extra):
        yield chunk
    tally = responses.Tally(prompts.n)
    ids = prompts.return_token_ids
    async for output in _until_failure(outputs, tally):
        if not (output.text or output.finish_reason or (ids and output.token_ids)):
            continue
        logprobs = None
        if output.logprobs:
            logprobs = responses.chat_logprobs(tokenizer, output.token_ids, output.logprobs)
        choice = {
            "index": output.index,
            "delta": {"content": output.text} if output.text else {},
            "logprobs": logprobs,
            "finish_reason": output.finish_reason,
        }
        if ids:
            choice["token_ids"] = output.token_ids
        yield responses.sse(envelope.body([choice], **extra))
    async for tail in _stream_end(envelope, tally, include_usage):
        yield tail


def _role_chunks(
    envelope: responses.Envelope, prompts: responses.Prompts, extra: Json
) -> list[str]:
    """The chunk that opens each choice with the assistant's role (and, as vLLM sends it,
    the prompt's token ids when asked for)."""
    if prompts.return_token_ids:
        extra = {**extra, "prompt_token_ids": prompts.of(0)}
    chunks = []
    for index in range(prompts.n):
        role = {"index": index, "delta": {"role": "assistant", "content": ""}}
        choice = {**role, "logprobs": None, "finish_reason": None}
        chunks.append(responses.sse(envelope.body([choice], **extra)))
    return chunks


async def _until_failure(
    outputs: AsyncIterator[SequenceOutput], tally: responses.Tally
) -> AsyncIterator[SequenceOutput]:
    """The outputs, tallied; an engine failure ends them and is kept in the tally, so the
    stream can say so in an error event instead of breaking off."""
    try:
        async for output in outputs:
            tally.add(output)
            yield output
    except EngineStepFailed as exc:
        tally.failure = errors.internal(str(exc))


async def _stream_end(
    envelope: responses.Envelope, tally: responses.Tally, include_usage: bool
) -> AsyncIterator[str]:
    """vLLM's end of a stream: an error event if the engine failed, the usage chunk if asked
    for, then `[DONE]`."""
    if tally.failure is not None:
        yield responses.sse(tally.failure.body())
    elif include_usage:
        yield responses.sse(envelope.body([], usage=tally.usage()))
    yield responses.DONE
