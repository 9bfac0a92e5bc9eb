"""One inference call as the gateway reads it: which API, which model, streamed or not.

The body is parsed once (orjson); the prompt text that prefix-aware routing reads is built
only when the Service's strategy asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson

from inferplane.gateway import errors


class Api(Enum):
    CHAT = "/v1/chat/completions"
    COMPLETIONS = "/v1/completions"
    EMBEDDINGS = "/v1/embeddings"
    V2_INFER = "infer"
    V2_GENERATE = "generate"
    V2_GENERATE_STREAM = "generate_stream"

    @property
    def v2(self) -> bool:
        return self in (Api.V2_INFER, Api.V2_GENERATE, Api.V2_GENERATE_STREAM)

    @property
    def generates(self) -> bool:
        return self in (Api.CHAT, Api.COMPLETIONS)


OPENAI_PATHS = {api.value.encode(): api for api in (Api.CHAT, Api.COMPLETIONS, Api.EMBEDDINGS)}


@dataclass
class Call:
    api: Api
    raw: bytes
    body: dict[str, Any]
    model: str
    stream: bool
    n: int = 1
    wants_usage: bool = False
    """The client asked for a usage chunk at the end of its stream."""
    wants_token_ids: bool = False
    _prompt_text: str | None = field(default=None, repr=False)

    @property
    def prompt_text(self) -> str:
        """The prompt as one string (chat messages' contents joined), for prefix routing."""
        if self._prompt_text is None:
            self._prompt_text = _flatten(self.body)
        return self._prompt_text

    @property
    def resumable(self) -> bool:
        """A stream that can be continued elsewhere from its token ids."""
        return (
            self.stream
            and self.api.generates
            and self.n == 1
            and not self.body.get("logprobs")
            and not self.body.get("echo")
        )


def parse_openai(api: Api, raw: bytes) -> Call:
    """The call in an OpenAI request body; a 400 naming the field when it is malformed."""
    body = _object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise errors.bad_request("you must provide a model parameter", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise errors.bad_request("'stream' must be a boolean", param="stream")
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise errors.bad_request("'n' must be an integer of at least 1", param="n")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise errors.bad_request("'stream_options' must be an object", param="stream_options")
    return Call(
        api,
        raw,
        body,
        model,
        bool(stream),
        n,
        wants_usage=bool(options and options.get("include_usage")),
        wants_token_ids=body.get("return_token_ids") is True,
    )


def parse_v2(api: Api, model: str, raw: bytes) -> Call:
    body = _object(raw, v2=True)
    return Call(api, raw, body, model, stream=api is Api.V2_GENERATE_STREAM)


def _object(raw: bytes, *, v2: bool = False) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise errors.bad_request(f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a JSON object")
    return body


def _flatten(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        parts = []
        for message in messages:
            if isinstance(message, dict):
                content = message.get("content")
                if isinstance(content, str):
                    parts.append(content)
                elif isinstance(content, list):
                    texts = (p.get("text", "") for p in content if isinstance(p, dict))
                    parts += [t for t in texts if isinstance(t, str)]
        return "\n".join(parts)
    prompt = body.get("prompt") or body.get("text_input") or ""
    if isinstance(prompt, list):
        return "\n".join(p for p in prompt if isinstance(p, str))
    return prompt if isinstance(prompt, str) else ""
