"""Continuing a broken stream on another endpoint, exactly under greedy decoding.

The gateway asked the first endpoint for token ids (vLLM's `return_token_ids`), so it knows
the prompt's ids and every id already streamed. The continuation is a plain completions
request whose prompt is those ids together: the model sees exactly the sequence it would have
seen had the first engine carried on. Its chunks are re-shaped into the original stream's
(same id, same object, chat deltas for a chat stream). It goes out through the attempt's own
send and check (pipeline.RequestRun.send, .check).
"""

from __future__ import annotations

from typing import Any

from inferplane.gateway.calls import Api, Call
from inferplane.gateway.sse import StreamTracker

SAMPLING = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "seed",
    "stop",
    "stop_token_ids",
    "ignore_eos",
    "skip_special_tokens",
    "min_tokens",
)
"""Request fields carried over to the continuation."""

API = Api.COMPLETIONS
"""The API of every continuation, a chat's included, and deliberately so: its prompt is token
ids with the chat template already applied (the first engine's prompt_token_ids), which only
the completions API takes; `Reshaper` turns its chunks back into the client's API. Only
OpenAI generation calls are resumable (calls.Call.resumable), so the path never depends on
the served model name, as a V2 path would."""
PATH = API.value.encode()
"""Where a continuation is sent: the completions path, from the one place paths are named."""


def continuation(call: Call, tracker: StreamTracker, model: str | None) -> dict[str, Any] | None:
    """The completions request that carries on the stream, or None when it cannot."""
    if tracker.prompt_ids is None:
        return None
    body: dict[str, Any] = {k: call.body[k] for k in SAMPLING if k in call.body}
    limit = call.body.get("max_completion_tokens") or call.body.get("max_tokens")
    if isinstance(limit, int):
        body["max_tokens"] = limit - len(tracker.ids)
        if body["max_tokens"] <= 0:
            return None
    if isinstance(body.get("min_tokens"), int):
        body["min_tokens"] = max(0, body["min_tokens"] - len(tracker.ids))
    if model is not None:
        body["model"] = model
    body |= {
        "prompt": tracker.prompt_ids + tracker.ids,
        "stream": True,
        "return_token_ids": True,
        "stream_options": {"include_usage": True},
    }
    return body


class Reshaper:
    """Turns the continuation's completion chunks into chunks of the original stream."""

    def __init__(self, call: Call, first: StreamTracker) -> None:
        self.chat = call.api is Api.CHAT
        self.id, self.created, self.object = first.id, first.created, first.object
        self.model = first.model
        self.prompt_tokens = len(first.prompt_ids or ())
        self.already = len(first.ids)

    def chunk(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj["id"], obj["created"], obj["model"] = self.id, self.created, self.model
        obj.pop("prompt_token_ids", None)
        if self.chat:
            obj["object"] = self.object or "chat.completion.chunk"
            obj["choices"] = [self._delta(c) for c in obj.get("choices") or []]
        for choice in obj.get("choices") or []:
            choice.pop("prompt_token_ids", None)
        usage = obj.get("usage")
        if usage:
            completion = self.already + int(usage.get("completion_tokens") or 0)
            obj["usage"] = {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion,
            }
        return obj

    def _delta(self, choice: dict[str, Any]) -> dict[str, Any]:
        delta = {"content": choice.get("text", "")}
        out = {
            "index": choice.get("index", 0),
            "delta": delta,
            "logprobs": None,
            "finish_reason": choice.get("finish_reason"),
        }
        if "token_ids" in choice:
            out["token_ids"] = choice["token_ids"]
        return out
