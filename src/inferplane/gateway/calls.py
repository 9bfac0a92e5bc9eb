"""One inference call as the gateway reads it: which API, which model, streamed or not.

The body is parsed once (orjson); the prompt text that prefix-aware routing reads is built
only when the Service's strategy asks for it.
"""

from __future__ import annotations

import functools
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

    # cached: read several times per request, and a member's answer never changes
    @functools.cached_property
    def v2(self) -> bool:
        return self in (Api.V2_INFER, Api.V2_GENERATE, Api.V2_GENERATE_STREAM)

    @functools.cached_property
    def generates(self) -> bool:
        return self in (Api.CHAT, Api.COMPLETIONS)


OPENAI_PATHS = {api.value.encode(): api for api in (Api.CHAT, Api.COMPLETIONS, Api.EMBEDDINGS)}

MAX_N = 128
"""The most choices one request may ask for: OpenAI's bound, which the reference engine
serves (n choices, as vLLM does)."""
MAX_TOKENS = ("max_tokens", "max_completion_tokens")
"""The output bounds of a generation: an integer of at least 1, or null."""
_MISSING = object()
_JSON_TYPES: dict[type, str] = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
}
_JSON_TYPES |= {list: "an array", dict: "an object", type(None): "null"}


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


def parse_openai(api: Api, raw: bytes, content_type: bytes | None = None) -> Call:
    """The call in an OpenAI request body; a 400 naming the field when it is malformed.

    `content_type` is the request's header: absent is read as JSON, as OpenAI does."""
    if content_type is not None:
        _check_content_type(content_type)
    body = _object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise errors.bad_request("you must provide a model parameter", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise errors.bad_request("'stream' must be a boolean", param="stream")
    n = _integer(body.get("n", 1), "n", high=MAX_N)
    if api.generates:
        for name in MAX_TOKENS:
            if (value := body.get(name)) is not None:  # null: up to the context
                _integer(value, name)
    if api is Api.CHAT:
        _check_messages(body.get("messages", _MISSING))
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


def _check_content_type(value: bytes) -> None:
    if value == b"application/json":
        return  # what every client sends: no parsing
    if value.partition(b";")[0].strip().lower() != b"application/json":
        shown = value[:100].decode("latin-1")
        message = f"Invalid Content-Type header ({shown}), expected application/json."
        raise errors.bad_request(message, param="Content-Type")


def _integer(value: object, name: str, *, high: int | None = None) -> int:
    """`value` of field `name` as an integer of at least 1 (and at most `high`): a bool or a
    string is refused, not coerced."""
    if type(value) is not int:
        raise _invalid(name, "an integer", value)
    if value < 1:
        message = f"Invalid '{name}': integer below minimum value. Expected a value >= 1, "
        raise errors.bad_request(message + f"but got {value} instead.", param=name)
    if high is not None and value > high:
        message = f"{value} is greater than the maximum of {high} - '{name}'"
        raise errors.bad_request(message, param=name)
    return value


def _check_messages(messages: object) -> None:
    """A chat's messages: a non-empty array of objects, each with a role and a content that
    is null only for an assistant's turn that calls tools."""
    if not isinstance(messages, list):
        raise _invalid("messages", "an array", messages)
    if not messages:
        message = "Invalid 'messages': empty array. Expected an array with minimum length 1."
        raise errors.bad_request(message, param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid(f"messages.[{index}]", "an object", message)
        _check_message(index, message)


def _check_message(index: int, message: dict[str, Any]) -> None:
    role = message.get("role", _MISSING)
    if not isinstance(role, str):
        raise _invalid(f"messages.[{index}].role", "a string", role)
    content = message.get("content", _MISSING)
    if isinstance(content, (str, list)):
        return
    calls_tools = message.get("tool_calls") or message.get("function_call")
    if role == "assistant" and calls_tools and (content is None or content is _MISSING):
        return
    raise _invalid(f"messages.[{index}].content", "a string or an array of content parts", content)


def _invalid(param: str, expected: str, value: object) -> errors.GatewayError:
    """A 400 for a missing, null or mistyped field, in OpenAI's words."""
    if value is _MISSING:
        message = f"Missing required parameter: '{param}'."
    elif value is None:
        message = f"Invalid value for '{param}': expected {expected}, got null."
    else:
        got = _JSON_TYPES.get(type(value), "another type")
        message = f"Invalid type for '{param}': expected {expected}, but got {got} instead."
    return errors.bad_request(message, param=param)


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
