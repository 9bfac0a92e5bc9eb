"""OpenAI's response bodies and stream chunks, built from the engine's SequenceOutputs."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from inferplane.engine.outputs import SequenceOutput
from inferplane.engine.sampler import TokenLogprobs
from inferplane.engine.server import errors
from inferplane.engine.tokenizer import Tokenizer

Json = dict[str, Any]


def sse(data: Json | str) -> str:
    """One server-sent event as OpenAI writes it: `data: {json}` and a blank line."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n"


DONE = sse("[DONE]")


@dataclass
class Choice:
    """One sequence of a non-streamed request, accumulated across steps."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprobs] = field(default_factory=list)
    finish_reason: str | None = None
    completion_tokens: int = 0

    def add(self, output: SequenceOutput) -> None:
        self.text += output.text
        self.token_ids += output.token_ids
        self.logprobs += output.logprobs
        self.finish_reason = output.finish_reason or self.finish_reason
        self.completion_tokens = max(self.completion_tokens, output.completion_tokens)


@dataclass(frozen=True)
class Prompts:
    """A request's prompts as fed to the model, `n` choices each (choice `i` comes from
    prompt `i // n`), and whether the client asked for token ids back (vLLM's
    `return_token_ids`)."""

    ids: list[list[int]]
    n: int
    return_token_ids: bool = field(default=False, kw_only=True)

    @property
    def num_choices(self) -> int:
        return len(self.ids) * self.n

    def of(self, index: int) -> list[int]:
        """The prompt token ids of choice `index`."""
        return self.ids[index // self.n]


@dataclass
class Tally:
    """Token counts of a request's choices: one prompt per `n` choices (index // n)."""

    n: int
    prompt: dict[int, int] = field(default_factory=dict)
    completion: dict[int, int] = field(default_factory=dict)
    failure: errors.APIError | None = None

    def add(self, output: SequenceOutput) -> None:
        if output.prompt_tokens:
            self.prompt[output.index // self.n] = output.prompt_tokens
        seen = self.completion.get(output.index, 0)
        self.completion[output.index] = max(seen, output.completion_tokens)

    def usage(self) -> Json:
        return usage(sum(self.prompt.values()), sum(self.completion.values()))


def usage(prompt_tokens: int, completion_tokens: int) -> Json:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


@dataclass(frozen=True)
class Envelope:
    """What every response and chunk of one request repeats."""

    id: str
    model: str
    object: str
    created: int = field(default_factory=lambda: int(time.time()))

    def body(self, choices: list[Json], **extra: Any) -> Json:
        head = {"id": self.id, "object": self.object, "created": self.created, "model": self.model}
        return {**head, "choices": choices, **extra}


def _token(tokenizer: Tokenizer, token_id: int) -> str:
    return tokenizer.decode([token_id], skip_special_tokens=False)


def completion_logprobs(
    tokenizer: Tokenizer,
    token_ids: Sequence[int],
    logprobs: Sequence[TokenLogprobs],
    *,
    offset: int = 0,
) -> Json:
    """The legacy completions shape: parallel lists, top alternatives as {token: logprob}."""
    tokens = [_token(tokenizer, t) for t in token_ids[: len(logprobs)]]
    offsets = []
    for token in tokens:
        offsets.append(offset)
        offset += len(token)
    return {
        "tokens": tokens,
        "token_logprobs": [lp.logprob for lp in logprobs],
        "top_logprobs": [{_token(tokenizer, i): v for i, v in lp.top} for lp in logprobs],
        "text_offset": offsets,
    }


def chat_logprobs(
    tokenizer: Tokenizer, token_ids: Sequence[int], logprobs: Sequence[TokenLogprobs]
) -> Json:
    """The chat shape: one entry per token with its bytes and its top alternatives."""
    return {
        "content": [
            {
                **_chat_entry(_token(tokenizer, token_id), lp.logprob),
                "top_logprobs": [_chat_entry(_token(tokenizer, i), v) for i, v in lp.top],
            }
            for token_id, lp in zip(token_ids, logprobs, strict=False)
        ]
    }


def _chat_entry(token: str, logprob: float) -> Json:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}
